"""PUT /api/v1/submissions/{id}: revisions, history with an RFC 6902 diff, conflicts and who may edit."""

from __future__ import annotations

import jsonpatch
import pytest

from server.models import Event, Submission

from .test_api_submissions import VALID

EDITED = {**VALID, "household": "张君宝", "phone": "13800138000"}


@pytest.fixture
def form(visit_form, people):
    people.make("wgy", "grid_worker@G1")
    people.make("nb", "grid_worker@G1")
    people.make("sq", "community_secretary@M1")
    people.make("xi", "grid_worker@G3")
    people.make("xi_admin", "admin@D2")
    people.make("qu_admin", "admin@D1")
    people.make("boss", "admin@C1")
    return visit_form


@pytest.fixture
def case(client, people, form) -> dict:
    response = client.post("/api/v1/forms/test_visit/submissions", json={"grid": "G1", "data": VALID},
                           headers=people.headers("wgy"))
    assert response.status_code == 201
    return response.get_json()


def put(client, people, sid, body, user="wgy"):
    return client.put(f"/api/v1/submissions/{sid}", json=body, headers=people.headers(user))


def events(sid) -> list[Event]:
    """The events about the data (the flow's own events are tested with the engine)."""
    return list(Event.select().where((Event.submission == sid) & Event.kind.in_(("submitted", "edited")))
                .order_by(Event.id))


def unchanged(sid, data=VALID, revision=1, kinds=("submitted",)) -> bool:
    stored = Submission.get_by_id(sid)
    return (stored.data, stored.revision, tuple(e.kind for e in events(sid))) == (data, revision, kinds)


def test_edit_makes_a_new_revision(client, people, case):
    response = put(client, people, case["id"], {"data": EDITED, "revision": 1})
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == case["id"] and body["revision"] == 2 and body["data"] == EDITED
    assert body["created_at"] == case["created_at"] and body["updated_at"] >= case["updated_at"]
    stored = Submission.get_by_id(case["id"])
    assert (stored.data, stored.revision, stored.version) == (EDITED, 2, 1)


def test_edit_keeps_the_old_data_in_history_with_an_rfc6902_diff(client, people, case):
    assert put(client, people, case["id"], {"data": EDITED, "revision": 1}).status_code == 200
    first, edit = events(case["id"])
    assert first.kind == "submitted"
    assert (edit.kind, edit.actor.username, edit.revision) == ("edited", "wgy", 2)
    assert (edit.from_status, edit.to_status) == ("in_progress", "in_progress")  # its flow had started
    assert edit.payload["previous_data"] == VALID and edit.payload["previous_revision"] == 1
    assert sorted(edit.diff, key=lambda op: op["path"]) == [
        {"op": "replace", "path": "/household", "value": "张君宝"},
        {"op": "add", "path": "/phone", "value": "13800138000"},
    ]
    assert jsonpatch.apply_patch(VALID, edit.diff) == EDITED


def test_successive_edits_chain_their_diffs(client, people, case):
    second = {**EDITED, "has_issue": True, "issue_detail": "楼道堆放杂物"}
    third = {k: v for k, v in second.items() if k != "phone"}
    assert put(client, people, case["id"], {"data": EDITED, "revision": 1}).status_code == 200
    assert put(client, people, case["id"], {"data": second, "revision": 2}).status_code == 200
    response = put(client, people, case["id"], {"data": third, "revision": 3})
    assert response.status_code == 200 and response.get_json()["revision"] == 4
    data = VALID
    for event in events(case["id"])[1:]:
        assert event.payload["previous_data"] == data
        data = jsonpatch.apply_patch(data, event.diff)
    assert data == third == Submission.get_by_id(case["id"]).data
    assert [e.revision for e in events(case["id"])] == [1, 2, 3, 4]


def test_stale_revision_is_409_and_nothing_changes(client, people, case):
    assert put(client, people, case["id"], {"data": EDITED, "revision": 1}).status_code == 200
    response = put(client, people, case["id"], {"data": {**VALID, "household": "李四光"}, "revision": 1})
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "stale" and "刷新" in body["message"]
    assert unchanged(case["id"], EDITED, 2, ("submitted", "edited"))


def test_revision_from_the_future_is_409(client, people, case):
    response = put(client, people, case["id"], {"data": EDITED, "revision": 5})
    assert response.status_code == 409
    assert unchanged(case["id"])


def test_invalid_data_is_422_by_field_and_nothing_changes(client, people, case):
    response = put(client, people, case["id"], {"data": {**VALID, "household": "张", "phone": "12345"},
                                               "revision": 1})
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "invalid"
    assert {e["path"]: e["message"] for e in body["errors"]} == {
        "/household": "「户主姓名」至少需要 2 个字", "/phone": "「联系电话」应为11位手机号码"}
    assert unchanged(case["id"])


def test_hidden_field_is_dropped_on_edit_too(client, people, case):
    response = put(client, people, case["id"], {"data": {**VALID, "issue_detail": "楼道堆放杂物"}, "revision": 1})
    assert response.status_code == 200
    assert "issue_detail" not in response.get_json()["data"]


@pytest.mark.parametrize("body, path", [
    ({"data": EDITED}, "/revision"),
    ({"data": EDITED, "revision": "1"}, "/revision"),
    ({"data": EDITED, "revision": True}, "/revision"),
    ({"data": EDITED, "revision": 1.0}, "/revision"),
    ({"data": EDITED, "revision": None}, "/revision"),
    ({"revision": 1}, "/data"),
    ({"data": [EDITED], "revision": 1}, "/data"),
    ({"data": EDITED, "revision": 1, "grid": "G2"}, "/grid"),
])
def test_missing_or_bad_fields_are_422_on_the_field(client, people, case, body, path):
    response = put(client, people, case["id"], body)
    assert response.status_code == 422
    assert [e["path"] for e in response.get_json()["errors"]] == [path]
    assert unchanged(case["id"])


def test_edit_body_must_be_json(client, people, case):
    response = client.put(f"/api/v1/submissions/{case['id']}", data="revision=1",
                          headers={**people.headers("wgy"), "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert unchanged(case["id"])


@pytest.mark.parametrize("user", ["nb", "sq"])
def test_person_in_scope_who_is_neither_author_nor_admin_gets_403(client, people, case, user):
    listed = client.get("/api/v1/submissions", headers=people.headers(user)).get_json()
    assert [item["id"] for item in listed["items"]] == [case["id"]]  # the case is in their scope
    response = put(client, people, case["id"], {"data": EDITED, "revision": 1}, user=user)
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert unchanged(case["id"])


@pytest.mark.parametrize("user", ["xi", "xi_admin"])
def test_person_out_of_scope_gets_404(client, people, case, user):
    response = put(client, people, case["id"], {"data": EDITED, "revision": 1}, user=user)
    assert response.status_code == 404
    assert "data" not in response.get_json()
    assert unchanged(case["id"])


def test_unknown_case_is_404(client, people, case):
    response = put(client, people, "7f1d7a5e-4f0b-4a8e-9a51-1c7f0e9c2b10", {"data": EDITED, "revision": 1})
    assert response.status_code == 404


@pytest.mark.parametrize("user", ["qu_admin", "boss"])
def test_an_admin_above_may_edit(client, people, case, user):
    response = put(client, people, case["id"], {"data": EDITED, "revision": 1}, user=user)
    assert response.status_code == 200
    assert response.get_json()["created_by"] == "wgy"
    edit = events(case["id"])[-1]
    assert (edit.kind, edit.actor.username) == ("edited", user)


def test_edit_needs_a_token(client, people, case):
    response = client.put(f"/api/v1/submissions/{case['id']}", json={"data": EDITED, "revision": 1})
    assert response.status_code == 401
    assert unchanged(case["id"])


def test_saving_the_same_data_makes_no_new_revision(client, people, case):
    response = put(client, people, case["id"], {"data": VALID, "revision": 1})
    assert response.status_code == 200
    assert response.get_json()["revision"] == 1
    assert unchanged(case["id"])


def test_stale_revision_is_reported_before_invalid_data(client, people, case):
    assert put(client, people, case["id"], {"data": {**VALID, "household": "李四光"}, "revision": 1}).status_code == 200
    response = put(client, people, case["id"], {"data": {"household": "王"}, "revision": 1})
    assert response.status_code == 409
    assert response.get_json()["error"] == "stale"
