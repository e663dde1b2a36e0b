"""POST /api/v1/forms/{key}/submissions: the contract's status codes and idempotent retries."""

from __future__ import annotations

import uuid

import pytest

from server.models import Event, Submission

VALID = {"household": "张三丰", "visit_date": "2026-11-20", "has_issue": False}


@pytest.fixture
def form(visit_form, people):
    people.make("wgy", "grid_worker@G1")
    people.make("other", "grid_worker@G3")
    return visit_form


def post(client, people, body, user="wgy", key="test_visit"):
    return client.post(f"/api/v1/forms/{key}/submissions", json=body, headers=people.headers(user))


def test_valid_submission_is_created_with_its_first_event(client, people, form):
    response = post(client, people, {"grid": "G1", "data": VALID})
    assert response.status_code == 201
    body = response.get_json()
    assert body["form"] == "test_visit" and body["version"] == 1 and body["grid"] == "G1"
    assert body["status"] == "in_progress" and body["revision"] == 1 and body["created_by"] == "wgy"
    assert response.headers["Location"] == f"/api/v1/submissions/{body['id']}"
    assert [e.kind for e in Event.select().where(Event.submission == body["id"])] == ["submitted", "task_opened"]


def test_same_id_and_data_again_stores_nothing_new(client, people, form):
    sid = str(uuid.uuid4())
    first = post(client, people, {"id": sid, "grid": "G1", "data": VALID})
    again = post(client, people, {"id": sid, "grid": "G1", "data": VALID})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == sid
    assert Submission.select().count() == 1
    assert [e.kind for e in Event.select()] == ["submitted", "task_opened"]  # filed and started once


def test_same_id_with_other_data_is_a_conflict(client, people, form):
    sid = str(uuid.uuid4())
    assert post(client, people, {"id": sid, "grid": "G1", "data": VALID}).status_code == 201
    other = post(client, people, {"id": sid, "grid": "G1", "data": {**VALID, "household": "李四光"}})
    assert other.status_code == 409
    assert other.get_json()["error"] == "conflict"
    assert "编号" in other.get_json()["message"]
    assert Submission.get_by_id(sid).data["household"] == "张三丰"


def test_same_id_from_another_person_is_a_conflict_not_a_leak(client, people, form):
    people.make("nb", "grid_worker@G1")
    sid = str(uuid.uuid4())
    assert post(client, people, {"id": sid, "grid": "G1", "data": VALID}).status_code == 201
    response = post(client, people, {"id": sid, "grid": "G1", "data": VALID}, user="nb")
    assert response.status_code == 409
    assert "data" not in response.get_json()


def test_invalid_data_gets_422_with_chinese_errors_by_pointer(client, people, form):
    data = {"household": "张", "visit_date": "2026-13-01", "has_issue": True,
            "phone": "12345", "members": [{"id_card": "110101199003071234"}]}
    response = post(client, people, {"grid": "G1", "data": data})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid"
    errors = {e["path"]: e["message"] for e in body["errors"]}
    assert errors == {
        "/household": "「户主姓名」至少需要 2 个字",
        "/visit_date": "「走访日期」应为有效日期，如 2024-05-01",
        "/phone": "「联系电话」应为11位手机号码",
        "/members/0/name": "「家庭成员第1项的姓名」为必填项",
        "/members/0/id_card": "「家庭成员第1项的身份证号」不是有效的18位身份证号码（请核对出生日期和最后一位校验码）",
        "/issue_detail": "「问题描述」为必填项",
    }
    assert Submission.select().count() == 0


def test_hidden_field_is_dropped_before_storing(client, people, form):
    data = {**VALID, "issue_detail": "楼道堆放杂物"}
    response = post(client, people, {"grid": "G1", "data": data})
    assert response.status_code == 201
    assert "issue_detail" not in response.get_json()["data"]


def test_unknown_form_is_404(client, people, form):
    response = post(client, people, {"grid": "G1", "data": VALID}, key="nope")
    assert response.status_code == 404
    assert response.get_json()["message"] == "找不到表单 nope"


def test_grid_outside_scope_is_403(client, people, form):
    response = post(client, people, {"grid": "G3", "data": VALID})
    assert response.status_code == 403
    assert Submission.select().count() == 0


def test_unknown_grid_is_422_on_grid(client, people, form):
    response = post(client, people, {"grid": "NOPE", "data": VALID})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["path"] == "/grid"


@pytest.mark.parametrize("body, path", [
    ({"data": VALID}, "/grid"),
    ({"grid": "G1"}, "/data"),
    ({"grid": "G1", "data": [1]}, "/data"),
    ({"grid": "G1", "data": VALID, "id": "not-a-uuid"}, "/id"),
    ({"grid": "G1", "data": VALID, "extra": 1}, "/extra"),
])
def test_malformed_body_fields_are_422_on_the_field(client, people, form, body, path):
    response = post(client, people, body)
    assert response.status_code == 422
    assert [e["path"] for e in response.get_json()["errors"]] == [path]


def test_unknown_data_field_is_refused(client, people, form):
    response = post(client, people, {"grid": "G1", "data": {**VALID, "surname": "张"}})
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"path": "/surname", "message": "表单中没有「surname」这一项，请删除"}]


def _raw(client, people, payload: bytes, content_type="application/json"):
    return client.post("/api/v1/forms/test_visit/submissions", data=payload,
                       headers={**people.headers("wgy"), "Content-Type": content_type})


@pytest.mark.parametrize("payload, status, code", [
    (b"{not json", 400, "bad_json"),
    (b"\xff\xfe{}", 400, "bad_json"),
    (b"[1, 2]", 400, "bad_json"),
    (b'{"grid": NaN}', 400, "bad_json"),
    (b"[" * 100 + b"]" * 100, 400, "too_deep"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, 400, "too_deep"),
])
def test_hostile_bodies_get_a_clear_json_error(client, people, form, payload, status, code):
    response = _raw(client, people, payload)
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == code and body["message"]


def test_wrong_content_type_is_415(client, people, form):
    response = _raw(client, people, b"grid=G1", "application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "application/json" in response.get_json()["message"]


def test_body_over_the_limit_is_413(client, people, form, app):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = _raw(client, people, b'{"grid": "' + b"x" * 2000 + b'"}')
    assert response.status_code == 413
    assert response.get_json()["error"] == "too_large"


def test_missing_or_bad_token_is_401(client, people, form):
    response = client.post("/api/v1/forms/test_visit/submissions", json={"grid": "G1", "data": VALID})
    assert response.status_code == 401
    bad = client.get("/api/v1/forms", headers={"Authorization": "Bearer gf_wrong"})
    assert bad.status_code == 401 and bad.get_json()["error"] == "unauthorized"


def test_inactive_person_token_stops_working(client, people, form):
    from server.models import Person

    assert client.get("/api/v1/forms", headers=people.headers("wgy")).status_code == 200
    Person.update(active=False).where(Person.username == "wgy").execute()
    assert client.get("/api/v1/forms", headers=people.headers("wgy")).status_code == 401


def test_retired_grid_takes_no_new_submissions(client, people, form):
    from server.models import GridNode, utcnow

    GridNode.update(retired_at=utcnow()).where(GridNode.code == "G1").execute()
    response = post(client, people, {"grid": "G1", "data": VALID})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["path"] == "/grid"
    assert "已撤销" in response.get_json()["message"]
    assert Submission.select().count() == 0


def test_unknown_time_zone_is_refused_at_start(tmp_path):
    from server import create_app

    with pytest.raises(ValueError, match="GRIDFLOW_TIMEZONE"):
        create_app({"TIMEZONE": "Mars/Olympus", "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x",
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
