"""The read side of /api/v1: forms, submission lists with filters and cursors, one case, grids, the document."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime

import pytest

from server import cases
from server.definitions.versions import canonical, latest_form, publish
from server.grids import node_by_code
from server.models import GridNode, Person, Submission

from .conftest import fixture_path
from .test_api_submissions import VALID


@pytest.fixture
def form(visit_form, people):
    people.make("wgy", "grid_worker@G1")
    people.make("wgy2", "grid_worker@G2")
    people.make("xi", "grid_worker@G3")
    people.make("sq", "community_secretary@M1")
    people.make("boss", "admin@C1")
    return visit_form


def file(username: str, grid: str, at: datetime | None = None, **data) -> Submission:
    """Store a submission directly (as the API would), optionally back-dated to a UTC time."""
    person = Person.get(Person.username == username)
    case, created = cases.submit(person, latest_form("test_visit"), node_by_code(grid), {**VALID, **data})
    assert created
    if at is not None:
        Submission.update(created_at=at, updated_at=at).where(Submission.id == case.id).execute()
    return Submission.get_by_id(case.id)


def listing(client, people, user="boss", **params):
    response = client.get("/api/v1/submissions", query_string=params, headers=people.headers(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body) -> list[str]:
    return [item["id"] for item in body["items"]]


# -- forms ------------------------------------------------------------------------------------

def test_forms_lists_the_newest_version_of_each_form(client, people, form):
    response = client.get("/api/v1/forms", headers=people.headers("wgy"))
    assert response.status_code == 200
    assert response.get_json() == {"forms": [
        {"key": "test_visit", "title": "测试走访", "version": 1, "flow": "test_flow"}]}
    doc = json.loads(fixture_path("visit_form.json").read_text(encoding="utf-8"))
    publish("form", {**doc, "title": "测试走访（修订）"})
    forms = client.get("/api/v1/forms", headers=people.headers("wgy")).get_json()["forms"]
    assert forms == [{"key": "test_visit", "title": "测试走访（修订）", "version": 2, "flow": "test_flow"}]


def test_form_definition_for_a_grid_in_scope(client, people, form):
    response = client.get("/api/v1/forms/test_visit", query_string={"grid": "G1"},
                          headers=people.headers("wgy"))
    assert response.status_code == 200
    body = response.get_json()
    doc = canonical(json.loads(fixture_path("visit_form.json").read_text(encoding="utf-8")))
    assert (body["key"], body["title"], body["version"], body["flow"]) == ("test_visit", "测试走访", 1, "test_flow")
    assert body["schema"] == doc["schema"] and body["ui"] == doc["ui"]  # field orders stated in ui:order
    assert body["ui"]["members"]["items"]["ui:order"] == list(doc["schema"]["properties"]["members"]["items"]
                                                            ["properties"])
    assert body["overlays"] == []


def test_form_definition_without_grid_is_the_base(client, people, form):
    response = client.get("/api/v1/forms/test_visit", headers=people.headers("wgy"))
    assert response.status_code == 200
    assert response.get_json()["schema"]["required"] == ["household", "visit_date", "has_issue", "issue_detail"]


@pytest.mark.parametrize("key, grid", [("test_visit", "G3"), ("test_visit", "M1"), ("test_visit", "NOPE"),
                                       ("nope", "G1")])
def test_form_definition_is_404_for_unknown_form_or_grid_out_of_scope(client, people, form, key, grid):
    response = client.get(f"/api/v1/forms/{key}", query_string={"grid": grid}, headers=people.headers("wgy"))
    assert response.status_code == 404
    body = response.get_json()
    assert body["error"] == "not_found" and body["message"]


# -- submission lists: filters ----------------------------------------------------------------

def test_list_shows_only_cases_in_the_callers_scope(client, people, form):
    g1, g2, g3 = file("wgy", "G1"), file("wgy2", "G2"), file("xi", "G3")
    assert set(ids(listing(client, people, "boss"))) == {g1.id, g2.id, g3.id}
    assert set(ids(listing(client, people, "sq"))) == {g1.id, g2.id}
    assert ids(listing(client, people, "wgy")) == [g1.id]
    assert ids(listing(client, people, "xi")) == [g3.id]


def test_list_item_is_the_submission_json(client, people, form):
    case = file("wgy", "G1", at=datetime(2026, 3, 1, 16, 30))
    [item] = listing(client, people, "wgy")["items"]
    assert item == {
        "id": case.id, "form": "test_visit", "version": 1, "grid": "G1", "status": "in_progress",
        "data": VALID, "created_by": "wgy", "created_at": "2026-03-02T00:30:00+08:00",
        "updated_at": "2026-03-02T00:30:00+08:00", "revision": 1,
    }


def test_person_without_memberships_sees_an_empty_list(client, people, form):
    file("wgy", "G1")
    people.make("nobody")
    assert listing(client, people, "nobody") == {"items": [], "next": None}


def test_filter_by_form(client, people, form):
    doc = json.loads(fixture_path("visit_form.json").read_text(encoding="utf-8"))
    publish("form", {**doc, "key": "other_visit", "title": "另一走访"})
    visit = file("wgy", "G1")
    other, _ = cases.submit(Person.get(Person.username == "wgy"), latest_form("other_visit"),
                            node_by_code("G1"), VALID)
    assert ids(listing(client, people, form="test_visit")) == [visit.id]
    assert ids(listing(client, people, form="other_visit")) == [other.id]
    assert ids(listing(client, people, form="nope")) == []


@pytest.mark.parametrize("grid, expected", [
    ("C1", {"G1", "G2", "G3"}), ("D1", {"G1", "G2"}), ("S2", {"G3"}), ("M1", {"G1", "G2"}), ("G2", {"G2"}),
])
def test_filter_by_grid_takes_the_whole_subtree(client, people, form, grid, expected):
    made = {"G1": file("wgy", "G1").id, "G2": file("wgy2", "G2").id, "G3": file("xi", "G3").id}
    assert set(ids(listing(client, people, grid=grid))) == {made[code] for code in expected}


def test_filter_by_grid_does_not_match_a_code_that_merely_starts_the_same(client, people, form, tree):
    from server.grids import create_node

    create_node("G10", "东一社区第十网格", "grid", tree["M1"])
    people.make("wgy10", "grid_worker@G10")
    g1, g10 = file("wgy", "G1"), file("wgy10", "G10")
    assert ids(listing(client, people, grid="G1")) == [g1.id]
    assert ids(listing(client, people, grid="G10")) == [g10.id]


@pytest.mark.parametrize("grid", ["G3", "NOPE"])
def test_filter_by_grid_out_of_scope_or_unknown_is_422(client, people, form, grid):
    file("xi", "G3")
    response = client.get("/api/v1/submissions", query_string={"grid": grid}, headers=people.headers("wgy"))
    assert response.status_code == 422
    assert [e["path"] for e in response.get_json()["errors"]] == ["/grid"]


def test_filter_by_status(client, people, form):
    open_ = file("wgy", "G1")
    closed = file("wgy", "G1")
    Submission.update(status="closed").where(Submission.id == closed.id).execute()
    assert ids(listing(client, people, status="in_progress")) == [open_.id]
    assert ids(listing(client, people, status="closed")) == [closed.id]
    assert ids(listing(client, people, status="rejected")) == []


def test_from_and_to_are_local_days_in_shanghai(client, people, form):
    # 2026-03-01 15:59 UTC is 23:59 on 1 March in Shanghai; 16:00 UTC is already 2 March.
    late_first = file("wgy", "G1", at=datetime(2026, 3, 1, 15, 59, 59))
    early_second = file("wgy", "G1", at=datetime(2026, 3, 1, 16, 0, 0))
    late_second = file("wgy", "G1", at=datetime(2026, 3, 2, 15, 59, 59, 999999))
    early_third = file("wgy", "G1", at=datetime(2026, 3, 2, 16, 0, 0))
    assert ids(listing(client, people, **{"from": "2026-03-02", "to": "2026-03-02"})) == [
        late_second.id, early_second.id]
    assert ids(listing(client, people, **{"from": "2026-03-02"})) == [early_third.id, late_second.id,
                                                                       early_second.id]
    assert ids(listing(client, people, to="2026-03-01")) == [late_first.id]
    assert ids(listing(client, people, **{"from": "2026-03-03", "to": "2026-03-03"})) == [early_third.id]
    assert ids(listing(client, people, **{"from": "2026-03-04"})) == []


@pytest.mark.parametrize("name, value", [("from", "2026-13-01"), ("to", "yesterday"), ("from", "01/03/2026")])
def test_bad_dates_are_422_on_the_parameter(client, people, form, name, value):
    response = client.get("/api/v1/submissions", query_string={name: value}, headers=people.headers("boss"))
    assert response.status_code == 422
    assert [e["path"] for e in response.get_json()["errors"]] == [f"/{name}"]


def test_q_finds_chinese_text_anywhere_in_the_data(client, people, form):
    zhang = file("wgy", "G1", household="张三丰")
    li = file("wgy", "G1", household="李四光", has_issue=True, issue_detail="楼道堆放杂物，影响通行")
    wang = file("wgy2", "G2", household="王小明", members=[{"name": "王丽娟"}])
    assert ids(listing(client, people, q="三丰")) == [zhang.id]
    assert ids(listing(client, people, q="堆放杂物")) == [li.id]
    assert ids(listing(client, people, q="丽娟")) == [wang.id]
    assert ids(listing(client, people, q="  张三丰 ")) == [zhang.id]
    assert ids(listing(client, people, q="赵钱孙")) == []


def test_q_is_case_insensitive_for_latin_letters(client, people, form):
    tom = file("wgy", "G1", household="Tom Lee")
    file("wgy", "G1", household="张三丰")
    assert ids(listing(client, people, q="tom lee")) == [tom.id]
    assert ids(listing(client, people, q="TOM")) == [tom.id]


def test_q_combines_with_other_filters_and_scope(client, people, form):
    mine = file("wgy", "G1", household="张三丰")
    file("xi", "G3", household="张三丰")
    assert ids(listing(client, people, "wgy", q="张三丰")) == [mine.id]
    assert ids(listing(client, people, "boss", q="张三丰", grid="D1")) == [mine.id]


def test_q_treats_percent_and_underscore_as_plain_text(client, people, form):
    percent = file("wgy", "G1", has_issue=True, issue_detail="满意度达到100%以上")
    underscore = file("wgy", "G1", household="王_五")
    file("wgy", "G1", household="张三丰")
    assert ids(listing(client, people, q="100%")) == [percent.id]
    assert ids(listing(client, people, q="%")) == [percent.id]
    assert ids(listing(client, people, q="王_五")) == [underscore.id]
    assert ids(listing(client, people, q="_五")) == [underscore.id]
    assert ids(listing(client, people, q="王%五")) == []


def test_q_matches_values_not_field_names(client, people, form):
    file("wgy", "G1", household="张三丰")
    assert ids(listing(client, people, q="household")) == []
    assert ids(listing(client, people, q="visit_date")) == []


# -- submission lists: limit and cursor -------------------------------------------------------

def test_default_page_size_comes_from_the_settings(client, people, form, app):
    app.config["PAGE_SIZE"] = 2
    made = [file("wgy", "G1", at=datetime(2026, 3, 1, 8, i)) for i in range(3)]
    body = listing(client, people)
    assert ids(body) == [made[2].id, made[1].id] and body["next"]


@pytest.mark.parametrize("limit, count", [("1", 1), ("3", 3), ("200", 5)])
def test_limit_within_bounds_is_honoured(client, people, form, limit, count):
    for i in range(5):
        file("wgy", "G1", at=datetime(2026, 3, 1, 8, i))
    body = listing(client, people, limit=limit)
    assert len(body["items"]) == count
    assert (body["next"] is None) == (count == 5)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "1.5", "abc", "", " 5", "²"])
def test_limit_out_of_bounds_or_not_a_number_is_422(client, people, form, limit):
    response = client.get("/api/v1/submissions", query_string={"limit": limit}, headers=people.headers("boss"))
    assert response.status_code == 422
    assert [e["path"] for e in response.get_json()["errors"]] == ["/limit"]


def test_cursor_walks_every_case_once_newest_first(client, people, form):
    made = []
    for i in range(11):
        # Several cases share a timestamp, so the id must break ties without gaps or repeats.
        at = datetime(2026, 3, 1, 8, i // 3, 0, 0 if i % 2 else 123456)
        made.append(file(["wgy", "wgy2", "xi"][i % 3], ["G1", "G2", "G3"][i % 3], at=at))
    expected = [c.id for c in sorted(made, key=lambda c: (c.created_at, c.id), reverse=True)]
    seen, pages, cursor = [], [], None
    while True:
        params = {"limit": 3} if cursor is None else {"limit": 3, "cursor": cursor}
        body = listing(client, people, **params)
        pages.append(len(body["items"]))
        seen += ids(body)
        cursor = body["next"]
        if cursor is None:
            break
        assert len(pages) < 10, "the cursor never ends"
    assert pages == [3, 3, 3, 2]
    assert seen == expected


def test_cursor_keeps_the_filters_and_ends_exactly_on_a_full_page(client, people, form):
    mine = [file("wgy", "G1", at=datetime(2026, 3, 1, 8, i)) for i in range(4)]
    file("xi", "G3", at=datetime(2026, 3, 1, 8, 30))
    first = listing(client, people, grid="G1", limit=2)
    second = listing(client, people, grid="G1", limit=2, cursor=first["next"])
    assert ids(first) + ids(second) == [c.id for c in reversed(mine)]
    assert second["next"] is None


def test_new_cases_do_not_shift_later_pages(client, people, form):
    made = [file("wgy", "G1", at=datetime(2026, 3, 1, 8, i)) for i in range(4)]
    first = listing(client, people, limit=2)
    file("wgy", "G1")  # arrives between the two page requests, newer than everything
    second = listing(client, people, limit=2, cursor=first["next"])
    assert ids(second) == [made[1].id, made[0].id]


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "not-a-cursor", "@@@@", "eyJ", _b64("[1, 2]"), _b64('{"a": 1}'), _b64('["yesterday", "x"]'), _b64("5"),
    _b64('"ab"'), _b64("[" * 1200),
])
def test_bad_cursor_is_400(client, people, form, cursor):
    file("wgy", "G1")
    response = client.get("/api/v1/submissions", query_string={"cursor": cursor}, headers=people.headers("boss"))
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_cursor" and "游标" in body["message"]


# -- one case ---------------------------------------------------------------------------------

def test_case_shows_data_version_and_history(client, people, form):
    case = file("wgy", "G1", at=datetime(2026, 3, 1, 1, 2, 3))
    response = client.get(f"/api/v1/submissions/{case.id}", headers=people.headers("sq"))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["form"], body["version"], body["grid"]) == (case.id, "test_visit", 1, "G1")
    assert body["data"] == VALID and body["revision"] == 1
    # its flow started: 社区审核 waits for sq, who may act on it
    [task] = body["tasks"]
    assert (task["node"], task["title"], task["state"], task["assignees"]) == ("review", "社区审核", "open", ["sq"])
    assert [a["key"] for a in task["actions"] if not a.get("operation")] == ["approve"]
    event, opened = body["history"]
    assert event["kind"] == "submitted" and event["actor"] == "wgy" and event["to_status"] == "submitted"
    assert (opened["kind"], opened["node"], opened["assignees"], opened["to_status"]) == (
        "task_opened", "review", ["sq"], "in_progress")
    assert event["revision"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+08:00", event["at"])


def test_case_history_grows_with_an_edit(client, people, form):
    case = file("wgy", "G1")
    edited = client.put(f"/api/v1/submissions/{case.id}", json={"data": {**VALID, "household": "张君宝"},
                                                                 "revision": 1}, headers=people.headers("wgy"))
    assert edited.status_code == 200
    body = client.get(f"/api/v1/submissions/{case.id}", headers=people.headers("wgy")).get_json()
    assert [e["kind"] for e in body["history"]] == ["submitted", "task_opened", "edited"]
    assert body["history"][2]["diff"] == [{"op": "replace", "path": "/household", "value": "张君宝"}]


@pytest.mark.parametrize("user", ["xi", "wgy2"])  # another district; the neighbouring grid
def test_case_out_of_scope_is_404(client, people, form, user):
    case = file("wgy", "G1")
    response = client.get(f"/api/v1/submissions/{case.id}", headers=people.headers(user))
    assert response.status_code == 404
    assert "data" not in response.get_json()


@pytest.mark.parametrize("sid", ["7f1d7a5e-4f0b-4a8e-9a51-1c7f0e9c2b10", "not-a-uuid", "张三"])
def test_unknown_case_is_404(client, people, form, sid):
    file("wgy", "G1")
    response = client.get(f"/api/v1/submissions/{sid}", headers=people.headers("boss"))
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


# -- grids ------------------------------------------------------------------------------------

def test_grid_shows_its_ancestors_root_first(client, people, form):
    response = client.get("/api/v1/grids/G1", headers=people.headers("wgy"))
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("code", "name", "level", "parent", "path")} == {
        "code": "G1", "name": "东一社区第一网格", "level": "grid", "parent": "M1",
        "path": ["C1", "D1", "S1", "M1"]}


def test_root_grid_has_no_parent_and_an_empty_path(client, people, form):
    body = client.get("/api/v1/grids/C1", headers=people.headers("boss")).get_json()
    assert (body["code"], body["level"], body["parent"], body["path"]) == ("C1", "city", None, [])
    street = client.get("/api/v1/grids/S2", headers=people.headers("boss")).get_json()
    assert (street["parent"], street["path"]) == ("D2", ["C1", "D2"])


@pytest.mark.parametrize("user, code", [("wgy", "G2"), ("wgy", "G3"), ("wgy", "M1"), ("sq", "D1"), ("boss", "NOPE")])
def test_grid_out_of_scope_or_unknown_is_404(client, people, form, user, code):
    response = client.get(f"/api/v1/grids/{code}", headers=people.headers(user))
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_grids_without_parent_are_the_tops_of_the_callers_scope(client, people, form):
    def codes(user):
        response = client.get("/api/v1/grids", headers=people.headers(user))
        assert response.status_code == 200
        return [item["code"] for item in response.get_json()["items"]]

    people.make("two", "grid_worker@G3", "grid_worker@G1", "community_secretary@M1")
    people.make("nobody")
    assert codes("boss") == ["C1"]
    assert codes("wgy") == ["G1"]
    assert codes("two") == ["G3", "M1"]
    assert codes("nobody") == []


def test_grids_with_parent_are_its_children_in_code_order(client, people, form):
    response = client.get("/api/v1/grids", query_string={"parent": "M1"}, headers=people.headers("sq"))
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [(i["code"], i["parent"], i["path"]) for i in items] == [
        ("G1", "M1", ["C1", "D1", "S1", "M1"]), ("G2", "M1", ["C1", "D1", "S1", "M1"])]
    assert [i["code"] for i in client.get("/api/v1/grids", query_string={"parent": "C1"},
                                          headers=people.headers("boss")).get_json()["items"]] == ["D1", "D2"]
    leaf = client.get("/api/v1/grids", query_string={"parent": "G1"}, headers=people.headers("wgy"))
    assert leaf.status_code == 200 and leaf.get_json()["items"] == []


def test_retired_children_are_not_listed(client, people, form):
    GridNode.update(retired_at=datetime(2026, 1, 1)).where(GridNode.code == "G2").execute()
    items = client.get("/api/v1/grids", query_string={"parent": "M1"}, headers=people.headers("sq")).get_json()
    assert [i["code"] for i in items["items"]] == ["G1"]


@pytest.mark.parametrize("user, parent", [("wgy", "M1"), ("wgy", "G3"), ("sq", "S2"), ("boss", "NOPE")])
def test_grids_of_a_parent_out_of_scope_or_unknown_is_404(client, people, form, user, parent):
    response = client.get("/api/v1/grids", query_string={"parent": parent}, headers=people.headers(user))
    assert response.status_code == 404


def test_read_endpoints_need_a_token(client, people, form):
    case = file("wgy", "G1")
    for path in ["/api/v1/forms", "/api/v1/forms/test_visit", "/api/v1/submissions",
                 f"/api/v1/submissions/{case.id}", "/api/v1/grids", "/api/v1/grids/G1"]:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.get_json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# -- health and the OpenAPI document ----------------------------------------------------------

def test_healthz_answers_ok_without_a_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_openapi_document_is_public(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def _shape(path: str) -> str:
    """Reduce a route to its shape: Flask's <name> and OpenAPI's {name} both become {}."""
    return re.sub(r"<(?:[^<>:]+:)?[^<>]+>|\{[^{}]+\}", "{}", path)


def test_openapi_documents_every_api_route_and_method(client, app):
    doc = client.get("/api/v1/openapi.json").get_json()
    routes = {
        (_shape(rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (_shape(path), method)
        for path, item in doc["paths"].items() if path.startswith("/api/v1")
        for method in item if method in {"get", "put", "post", "patch", "delete"}
    }
    assert routes, "no /api/v1 routes found"
    assert documented == routes


def test_openapi_path_parameters_match_their_templates(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, item in doc["paths"].items():
        names = set(re.findall(r"\{([^{}]+)\}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)
            assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")


def test_openapi_references_all_resolve(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    refs = re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', json.dumps(doc))
    assert refs
    assert set(refs) <= set(doc["components"]["schemas"])


def test_openapi_lists_every_query_filter_of_the_submission_list(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    names = {p["name"] for p in doc["paths"]["/api/v1/submissions"]["get"]["parameters"]}
    assert names >= {"form", "grid", "status", "from", "to", "q", "limit", "cursor"}
