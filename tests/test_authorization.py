"""Authorization matrix: every endpoint and page × every role × a node inside and outside the scope.

The world (see `world`): the tree C1 > D1 (S1 > M1 > G1, G2), D2 (S2 > M2 > G3); one person per
shipped role, each with a scope holding G1 and not G3; a G3 grid worker who files the case outside;
a city administrator for contrast. Two door-knock visits with sensitive fields: one at G1 (address
甲甲甲, phone edited once to 13812345678) and one at G3 (乙乙乙, 13987654321).

The policy asserted here, in short: inside the scope a person reads (and files); outside, nothing
exists (404 for objects, 422 for a filter, 403 for filing); sensitive fields are masked in every
list and, for roles without `sees_sensitive`, in the detail and its history; each full view is
logged; only the author or an administrator edits; administration pages are for administrators
only, and an administrator of D1 sees and changes nothing outside D1: not in pages, searches,
counts, exports, imports or error messages.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import parse_qs, urlsplit

import pytest
from openpyxl import Workbook, load_workbook

from server.models import Event, GridNode, Membership, Person, Submission

# -- the people --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    username: str
    grant: str  # for people.make
    sees_sensitive: bool  # Role.sees_sensitive of the shipped defaults (server/grids.py)
    admin: bool
    tops: tuple[str, ...]  # GET /api/v1/grids without parent: the top nodes of the scope


ROLES = [
    Role("grid_worker", "grid_worker@G1", True, False, ("G1",)),
    Role("grid_leader", "grid_leader@G1", True, False, ("G1",)),
    Role("building_head", "building_head@G1", False, False, ("G1",)),
    Role("volunteer", "volunteer@G1", False, False, ("G1",)),
    Role("community_secretary", "community_secretary@M1", True, False, ("M1",)),
    Role("mediator", "mediator@M1", True, False, ("M1",)),
    Role("street_officer", "street_officer@S1", False, False, ("S1",)),
    Role("department_staff", "department_staff:civil_affairs@D1", True, False, ("D1",)),
    Role("district_admin", "admin@D1", False, True, ("D1",)),
]
BY_NAME = {role.username: role for role in ROLES}
ROLE_IDS = [role.username for role in ROLES]
AUTHOR = "grid_worker"  # files the G1 case
ADMIN = "district_admin"
OUTSIDER = "xi_author"  # grid_worker@G3, files the G3 case
OUTSIDER_PHONE = "13900000003"
CITY_ADMIN = "city_admin"  # admin@C1
EDITORS = {AUTHOR, ADMIN}

# -- the cases ---------------------------------------------------------------------------------

IN_ADDRESS, OUT_ADDRESS = "城站路甲甲甲号", "福西村乙乙乙号"
IN_PHONE_FILED, IN_PHONE = "13812340000", "13812345678"  # the author changes the phone once
OUT_PHONE = "13987654321"
IN_ID, OUT_ID = "45090219800118123X", "450903198001014569"  # valid GB 11643 numbers
MASKED_IN_PHONE, MASKED_IN_ID = "138****5678", "4509**********123X"
MASKED_OUT_PHONE, MASKED_OUT_ID = "139****4321", "4509**********4569"
RAW_SENSITIVE = [IN_PHONE_FILED, IN_PHONE, OUT_PHONE, IN_ID, OUT_ID, "高血压", "腰椎间盘"]
OUT_MARKERS = ["乙乙乙", OUT_PHONE, OUT_ID, MASKED_OUT_ID, OUTSIDER, "腰椎间盘"]


def visit(address: str, phone: str, id_number: str, notes: str) -> dict:
    """A door-knock visit with a phone, a member's ID number, health and notes (all x-sensitive)."""
    return {
        "visited_at": "2026-11-18T09:30:00+08:00",
        "met_resident": True,
        "head_name": "黄桂英",
        "address": address,
        "phone": phone,
        "topics": ["info_collection"],
        "residence_type": "registered",
        "members": [{"name": "黄桂英", "relation": "head", "gender": "female", "id_card": id_number,
                     "health": "chronic", "notes": notes}],
        "has_issue": False,
        "location": {"latitude": 22.6545, "longitude": 110.1543, "address": "玉林市玉州区"},
        "summary": "老人身体尚可，已登记送餐需求。",
    }


IN_DATA = visit(IN_ADDRESS, IN_PHONE, IN_ID, "高血压，子女在外务工")
OUT_DATA = visit(OUT_ADDRESS, OUT_PHONE, OUT_ID, "腰椎间盘突出，行动不便")


@dataclass
class World:
    people: object  # tests.conftest.People
    cases: dict[str, str]  # grid code → the id of the case filed there

    def headers(self, username: str) -> dict:
        return self.people.headers(username)


def api(client, user: str | None, method: str, path: str, body=None, world: World | None = None):
    headers = world.headers(user) if user else {}
    return client.open(path, method=method, json=body, headers=headers)


@pytest.fixture
def world(client, people, shipped) -> World:
    """The people of every role, the G3 outsider, the city admin, and one case at G1 and one at G3."""
    for role in ROLES:
        people.make(role.username, role.grant)
    people.make(OUTSIDER, "grid_worker@G3")
    people.make(CITY_ADMIN, "admin@C1")
    Person.update(phone=OUTSIDER_PHONE).where(Person.username == OUTSIDER).execute()
    w = World(people, {})
    for user, grid, data in [(AUTHOR, "G1", {**IN_DATA, "phone": IN_PHONE_FILED}), (OUTSIDER, "G3", OUT_DATA)]:
        response = api(client, user, "POST", "/api/v1/forms/door_knock_visit/submissions",
                       {"grid": grid, "data": data}, w)
        assert response.status_code == 201, response.get_json()
        w.cases[grid] = response.get_json()["id"]
    # The author corrects the phone: the history now holds a diff carrying a sensitive value.
    response = api(client, AUTHOR, "PUT", f"/api/v1/submissions/{w.cases['G1']}",
                   {"data": IN_DATA, "revision": 1}, w)
    assert response.status_code == 200, response.get_json()
    assert stored("G1", w)["phone"] == IN_PHONE
    return w


def stored(grid: str, world: World) -> dict:
    return Submission.get_by_id(world.cases[grid]).data


def text_of(body) -> str:
    """A JSON body as text with Chinese kept, to look for values in it."""
    return json.dumps(body, ensure_ascii=False)


def snapshot() -> tuple:
    """Everything an authorization bug could change: nodes, people, memberships, cases."""
    return (
        sorted(map(str, GridNode.select(GridNode.code, GridNode.name, GridNode.path, GridNode.retired_at,
                                        GridNode.households, GridNode.population).tuples())),
        sorted(map(str, Person.select(Person.username, Person.name, Person.phone, Person.password_hash,
                                      Person.active, Person.session_epoch).tuples())),
        sorted(map(str, Membership.select(Membership.person, Membership.node, Membership.role,
                                          Membership.department).tuples())),
        sorted((s.id, s.grid_path, s.revision, text_of(s.data)) for s in Submission.select()),
    )


# -- the API matrix ----------------------------------------------------------------------------

# (method, path, target, expected status): `{grid}` is the target node, `{case}` the case filed
# at the target; an expected status by username ("*": everybody else) where roles differ.
API_MATRIX = [
    ("GET", "/api/v1/forms", None, 200),
    ("GET", "/api/v1/forms/door_knock_visit?grid={grid}", "G1", 200),
    ("GET", "/api/v1/forms/door_knock_visit?grid={grid}", "G3", 404),
    ("GET", "/api/v1/forms/door_knock_visit?grid={grid}", "C1", 404),
    ("POST", "/api/v1/forms/door_knock_visit/submissions", "G1", 201),
    ("POST", "/api/v1/forms/door_knock_visit/submissions", "G3", 403),
    ("POST", "/api/v1/forms/door_knock_visit/submissions", "G2", {"*": 403, "community_secretary": 201,
                                                                 "mediator": 201, "street_officer": 201,
                                                                 "department_staff": 201, ADMIN: 201}),
    ("GET", "/api/v1/submissions", None, 200),
    ("GET", "/api/v1/submissions?grid={grid}", "G1", 200),
    ("GET", "/api/v1/submissions?grid={grid}", "G3", 422),
    ("GET", "/api/v1/submissions?grid={grid}", "D2", 422),
    ("GET", "/api/v1/submissions?grid={grid}", "C1", 422),
    ("GET", "/api/v1/submissions?q=乙乙乙", None, 200),
    ("GET", "/api/v1/submissions/{case}", "G1", 200),
    ("GET", "/api/v1/submissions/{case}", "G3", 404),
    ("PUT", "/api/v1/submissions/{case}", "G1", {"*": 403, AUTHOR: 200, ADMIN: 200}),
    ("PUT", "/api/v1/submissions/{case}", "G3", 404),
    ("GET", "/api/v1/grids", None, 200),
    ("GET", "/api/v1/grids?parent={grid}", "G1", 200),
    ("GET", "/api/v1/grids?parent={grid}", "M2", 404),
    ("GET", "/api/v1/grids?parent={grid}", "C1", 404),
    ("GET", "/api/v1/grids/{grid}", "G1", 200),
    ("GET", "/api/v1/grids/{grid}", "G3", 404),
    ("GET", "/api/v1/grids/{grid}", "D2", 404),
    ("GET", "/api/v1/grids/{grid}", "C1", 404),
]


def expected_for(expected, username: str) -> int:
    return expected.get(username, expected["*"]) if isinstance(expected, dict) else expected


# The matrix spelt out: (role, method, path, target, expected status).
API_CASES = [(role.username, method, path, target, expected_for(expected, role.username))
             for role in ROLES for method, path, target, expected in API_MATRIX]


def api_request(client, world: World, username: str, method: str, path: str, target: str | None):
    """Send one matrix row: fill in the target, and a body for writes."""
    url = path.format(grid=target, case=world.cases.get(target, ""))
    body = None
    if method == "POST":
        body = {"grid": target, "data": IN_DATA if target != "G3" else OUT_DATA}
    elif method == "PUT":
        case = Submission.get_by_id(world.cases[target])
        body = {"data": {**case.data, "summary": f"{username} 修改了小结"}, "revision": case.revision}
    return api(client, username, method, url, body, world)


@pytest.mark.parametrize("username", ROLE_IDS)
def test_api_matrix(client, world, username):
    """Every API row for one role: the status, and no change where the request is refused."""
    wrong = []
    for role, method, path, target, expected in API_CASES:
        if role != username:
            continue
        before = snapshot() if method != "GET" else None
        response = api_request(client, world, username, method, path, target)
        if response.status_code != expected:
            wrong.append(f"{method} {path} [{target}] as {username}: expected {expected}, "
                         f"got {response.status_code} {response.get_data(as_text=True)[:200]}")
        if before is not None and expected >= 400 and snapshot() != before:
            wrong.append(f"{method} {path} [{target}] as {username}: refused, yet something changed")
    assert wrong == []


def test_api_without_a_token_is_401(client, world):
    """The matrix rows without a token are 401 whatever the target."""
    wrong = []
    for method, path, target, _ in API_MATRIX:
        url = path.format(grid=target, case=world.cases.get(target, ""))
        response = client.open(url, method=method, json={} if method != "GET" else None)
        if response.status_code != 401:
            wrong.append(f"{method} {url} without a token: {response.status_code}")
    assert wrong == []


# -- lists, search and masking ------------------------------------------------------------------

def listing(client, world: World, username: str, **params) -> dict:
    response = client.get("/api/v1/submissions", query_string=params, headers=world.headers(username))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body: dict) -> list[str]:
    return [item["id"] for item in body["items"]]


def assert_masked_item(item: dict) -> None:
    data = item["data"]
    assert data["phone"] == MASKED_IN_PHONE, data
    member = data["members"][0]
    assert (member["id_card"], member["health"], member["notes"]) == (MASKED_IN_ID, "***", "***"), member
    assert data["address"] == IN_ADDRESS  # not sensitive: shown
    for raw in RAW_SENSITIVE:
        assert raw not in text_of(item), raw


@pytest.mark.parametrize("username", ROLE_IDS)
def test_lists_and_search_show_the_case_inside_masked_and_never_the_one_outside(client, world, username):
    inside, outside = world.cases["G1"], world.cases["G3"]
    body = listing(client, world, username)
    assert ids(body) == [inside] and body["next"] is None
    for marker in OUT_MARKERS:
        assert marker not in text_of(body), marker
    assert ids(listing(client, world, username, q="甲甲甲")) == [inside]
    assert ids(listing(client, world, username, q="乙乙乙")) == []
    assert ids(listing(client, world, username, q="福西村")) == []
    assert ids(listing(client, world, username, q=OUT_PHONE)) == []  # a sensitive value of the case outside
    assert ids(listing(client, world, username, q=OUT_ID)) == []
    assert ids(listing(client, world, username, q="黄桂英")) == [inside]  # in both cases: only ours
    assert ids(listing(client, world, username, grid="G1")) == [inside]
    assert ids(listing(client, world, username, form="door_knock_visit", status="closed")) == [inside]
    assert ids(listing(client, world, username, **{"from": "2000-01-01", "to": "2100-01-01"})) == [inside]
    # Walking every page one item at a time never reaches the case outside.
    seen, cursor = [], None
    while True:
        page = listing(client, world, username, limit=1, **({"cursor": cursor} if cursor else {}))
        seen += ids(page)
        cursor = page["next"]
        if not cursor:
            break
    assert outside not in seen and inside in seen
    # A grid filter outside the scope is refused exactly like an unknown code.
    for code in ("G3", "M2", "D2", "C1"):
        refused = client.get("/api/v1/submissions", query_string={"grid": code}, headers=world.headers(username))
        unknown = client.get("/api/v1/submissions", query_string={"grid": "NOPE"}, headers=world.headers(username))
        assert refused.status_code == unknown.status_code == 422, code
        assert text_of(refused.get_json()).replace(code, "NOPE") == text_of(unknown.get_json()), code
    # Every item is masked, for every role, also a case this person filed themselves.
    filed = api(client, username, "POST", "/api/v1/forms/door_knock_visit/submissions",
                {"grid": "G1", "data": IN_DATA}, world)
    assert filed.status_code == 201
    items = listing(client, world, username, limit=200)["items"]
    assert [item["id"] for item in items] == [filed.get_json()["id"], inside]
    for item in items:
        assert item["grid"] == "G1"
        assert_masked_item(item)


# -- one case: sensitive fields and the log of full views --------------------------------------

def full_views(username: str, grid: str, world: World) -> int:
    person = Person.get(Person.username == username)
    return (Event.select().where((Event.kind == "sensitive_viewed") & (Event.actor == person.id)
                                 & (Event.submission == world.cases[grid])).count())


@pytest.mark.parametrize("username", ROLE_IDS)
def test_one_case_inside_shows_sensitive_fields_by_role_and_the_one_outside_does_not_exist(client, world, username):
    role = BY_NAME[username]
    before = full_views(username, "G1", world)
    response = client.get(f"/api/v1/submissions/{world.cases['G1']}", headers=world.headers(username))
    assert response.status_code == 200
    body = response.get_json()
    [edit] = [e for e in body["history"] if e["kind"] == "edited"]
    phone_ops = [op for op in edit["diff"] if op["path"] == "/phone"]
    assert [op["op"] for op in phone_ops] == ["replace"]
    member = body["data"]["members"][0]
    if role.sees_sensitive:
        assert body["data"]["phone"] == IN_PHONE
        assert (member["id_card"], member["health"]) == (IN_ID, "chronic")
        assert phone_ops[0]["value"] == IN_PHONE
        assert full_views(username, "G1", world) == before + 1
    else:
        assert body["data"]["phone"] == MASKED_IN_PHONE
        assert (member["id_card"], member["health"], member["notes"]) == (MASKED_IN_ID, "***", "***")
        assert phone_ops[0]["value"] == MASKED_IN_PHONE
        for raw in RAW_SENSITIVE:
            assert raw not in text_of(body), raw
        assert full_views(username, "G1", world) == before
    assert IN_PHONE_FILED not in text_of(body)  # the phone before the edit is never shown
    for marker in OUT_MARKERS:
        assert marker not in text_of(body), marker
    # The case outside: exactly like an id that does not exist, and no full view is logged.
    unknown = str(uuid.uuid4())
    for method, body in [("GET", None), ("PUT", {"data": OUT_DATA, "revision": 1})]:
        outside = api(client, username, method, f"/api/v1/submissions/{world.cases['G3']}", body, world)
        missing = api(client, username, method, f"/api/v1/submissions/{unknown}", body, world)
        assert outside.status_code == missing.status_code == 404, method
        assert outside.get_json() == missing.get_json(), method
        for marker in OUT_MARKERS:
            assert marker not in outside.get_data(as_text=True), marker
    assert full_views(username, "G3", world) == 0
    assert Submission.get_by_id(world.cases["G3"]).revision == 1


def test_each_full_view_is_logged_once(client, world):
    for expected in (1, 2, 3):
        assert client.get(f"/api/v1/submissions/{world.cases['G1']}",
                          headers=world.headers("mediator")).status_code == 200
        assert full_views("mediator", "G1", world) == expected
    listing(client, world, "mediator")  # lists are masked: no full view
    assert full_views("mediator", "G1", world) == 3


def test_masked_admin_saving_the_masked_data_back_keeps_the_real_values(client, world):
    """admin@D1 sees masked values; sending them back with one other change must not store the masks."""
    case_id = world.cases["G1"]
    shown = client.get(f"/api/v1/submissions/{case_id}", headers=world.headers(ADMIN)).get_json()
    assert shown["data"]["phone"] == MASKED_IN_PHONE
    data = copy.deepcopy(shown["data"])
    data["summary"] = "管理员补充：已转居家养老服务站"
    response = api(client, ADMIN, "PUT", f"/api/v1/submissions/{case_id}",
                   {"data": data, "revision": shown["revision"]}, world)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["phone"] == MASKED_IN_PHONE  # the answer is masked too
    now = stored("G1", world)
    assert now == {**IN_DATA, "summary": "管理员补充：已转居家养老服务站"}
    assert now["phone"] == IN_PHONE and now["members"][0]["id_card"] == IN_ID
    last = Event.select().where(Event.submission == case_id).order_by(Event.id.desc()).first()
    assert last.kind == "edited" and [op["path"] for op in last.diff] == ["/summary"]


# -- grids over the API -----------------------------------------------------------------------

@pytest.mark.parametrize("username", ROLE_IDS)
def test_grids_start_at_the_top_of_the_scope_and_stop_at_its_edge(client, world, username):
    role = BY_NAME[username]

    def get(path, **params):
        return client.get(path, query_string=params, headers=world.headers(username))

    assert [n["code"] for n in get("/api/v1/grids").get_json()["items"]] == list(role.tops)
    # Walk down from the tops: every node reached lies in the scope, G3's branch never appears.
    seen, todo = [], list(role.tops)
    while todo:
        code = todo.pop()
        seen.append(code)
        response = get("/api/v1/grids", parent=code)
        assert response.status_code == 200, code
        todo += [n["code"] for n in response.get_json()["items"]]
    assert not {"G3", "M2", "S2", "D2", "C1"} & set(seen)
    assert "G1" in seen
    assert get("/api/v1/grids/G1").get_json()["code"] == "G1"
    unknown = get("/api/v1/grids/NOPE")
    for code in ("G3", "M2", "S2", "D2", "C1"):
        one, children = get(f"/api/v1/grids/{code}"), get("/api/v1/grids", parent=code)
        assert one.status_code == children.status_code == 404, code
        assert text_of(one.get_json()).replace(code, "NOPE") == text_of(unknown.get_json()), code
        assert "西一" not in text_of(one.get_json()) + text_of(children.get_json())


# -- the web pages -----------------------------------------------------------------------------

ADMIN_PAGES = ["/admin/", "/admin/grids", "/admin/people", "/admin/import", "/admin/export/grids.xlsx",
               "/admin/export/people.xlsx", "/admin/templates/grids.xlsx", "/admin/templates/people.xlsx"]
NEW_PERSON = {"username": "new_worker", "password": "New-pass-2026", "name": "新网格员", "role": "grid_worker"}

# (method, path, form data, status for each non-admin role, status for admin@D1)
WEB_MATRIX = [
    ("GET", "/", None, 200, 200),
    ("GET", "/account", None, 200, 200),
    *[("GET", page, None, 403, 200) for page in ADMIN_PAGES],
    ("GET", "/admin/grids?q=西一", None, 403, 200),
    ("GET", "/admin/grids/G1", None, 403, 200),
    ("GET", "/admin/grids/D1", None, 403, 200),
    ("GET", "/admin/grids/G3", None, 403, 404),
    ("GET", "/admin/grids/M2", None, 403, 404),
    ("GET", "/admin/grids/D2", None, 403, 404),
    ("GET", "/admin/grids/C1", None, 403, 404),
    ("GET", "/admin/people?grid=G1", None, 403, 200),
    ("GET", "/admin/people?grid=G3", None, 403, 404),
    ("GET", "/admin/people?grid=C1", None, 403, 404),
    ("GET", "/admin/new-person", None, 403, 200),
    ("GET", f"/admin/people/{AUTHOR}", None, 403, 200),
    ("GET", f"/admin/people/{OUTSIDER}", None, 403, 404),
    ("GET", f"/admin/people/{CITY_ADMIN}", None, 403, 404),
    # refused to the administrator too: a target outside D1 named from inside
    ("POST", "/admin/grids/G2/move", {"parent": "M2"}, 403, 422),
    ("POST", "/admin/grids/G1/cases/move", {"target": "G3"}, 403, 422),
    ("POST", "/admin/new-person", {**NEW_PERSON, "grid": "G3"}, 403, 422),
    ("POST", "/admin/people/volunteer/memberships", {"grid": "G3", "role": "volunteer"}, 403, 422),
    ("POST", "/admin/people/volunteer/edit", {"name": "志愿者", "phone": OUTSIDER_PHONE}, 403, 422),
    # actions on something outside D1: as if it did not exist
    ("POST", "/admin/grids/G3/edit", {"name": "改名"}, 403, 404),
    ("POST", "/admin/grids/D2/edit", {"name": "改名"}, 403, 404),
    ("POST", "/admin/grids/C1/edit", {"name": "改名"}, 403, 404),
    ("POST", "/admin/grids/G3/children", {"code": "G3X", "name": "新网格", "level": "micro"}, 403, 404),
    ("POST", "/admin/grids/G3/move", {"parent": "M1"}, 403, 404),
    ("POST", "/admin/grids/G3/retire", {}, 403, 404),
    ("POST", "/admin/grids/G3/restore", {}, 403, 404),
    ("POST", "/admin/grids/G3/cases/move", {"target": "G1"}, 403, 404),
    ("POST", f"/admin/people/{OUTSIDER}/edit", {"name": "改名"}, 403, 404),
    ("POST", f"/admin/people/{OUTSIDER}/memberships", {"grid": "G1", "role": "volunteer"}, 403, 404),
    ("POST", f"/admin/people/{OUTSIDER}/password", {"password": "Taken-over-2026"}, 403, 404),
    ("POST", f"/admin/people/{OUTSIDER}/active", {"active": "0"}, 403, 404),
    ("POST", f"/admin/people/{CITY_ADMIN}/password", {"password": "Taken-over-2026"}, 403, 404),
    ("POST", f"/admin/people/{CITY_ADMIN}/active", {"active": "0"}, 403, 404),
    # actions inside D1: refused to everybody but the administrator
    ("POST", "/admin/grids/G1/edit", {"name": "东一社区第一网格"}, 403, 302),
    ("POST", "/admin/grids/G2/children", {"code": "G2X", "name": "新网格", "level": "micro"}, 403, 302),
    ("POST", "/admin/new-person", {**NEW_PERSON, "grid": "G2"}, 403, 302),
    ("POST", "/admin/people/volunteer/memberships", {"grid": "G2", "role": "volunteer"}, 403, 302),
    ("POST", "/admin/people/volunteer/edit", {"name": "志愿者", "phone": ""}, 403, 302),
    ("POST", "/admin/people/volunteer/password", {"password": "Another-pass-2026"}, 403, 302),
    ("POST", "/admin/people/volunteer/active", {"active": "0"}, 403, 302),
    ("POST", "/admin/import/grids", {}, 403, 422),
    ("POST", "/admin/import/people", {}, 403, 422),
    ("POST", "/admin/import/errors.xlsx", {"errors": "[]"}, 403, 200),
]

# The matrix spelt out: (role, method, path, data, expected status).
WEB_CASES = [(role.username, method, path, data, admin if role.admin else other)
             for role in ROLES for method, path, data, other, admin in WEB_MATRIX]
TOKEN = re.compile(r'(name="csrf_token" value="|"X-CSRFToken": ")[^"]*')


def page_text(response, *echoed: str) -> str:
    """A page's text without its random CSRF tokens (which could hold any short code by chance),
    and without the search terms it echoes back."""
    text = TOKEN.sub(r"\1", response.get_data(as_text=True))
    for term in echoed:
        text = text.replace(f'value="{term}"', 'value=""').replace(f"“{term}”", "“”")
    return text


@pytest.mark.parametrize("username", ROLE_IDS)
def test_web_matrix(web, world, username):
    client = web.client(username)
    wrong = []
    for role, method, path, data, expected in WEB_CASES:
        if role != username:
            continue
        before = snapshot() if method == "POST" else None
        if method == "GET":
            response = client.get(path)
        else:
            response = web.post(client, path, data)
        if response.status_code != expected:
            wrong.append(f"{method} {path} as {username}: expected {expected}, got {response.status_code}")
        if before is not None and expected >= 400 and snapshot() != before:
            wrong.append(f"{method} {path} as {username}: refused, yet something changed")
        if method == "GET" and response.status_code == 200 and response.mimetype == "text/html":
            text = page_text(response, *parse_qs(urlsplit(path).query).get("q", []))
            for marker in ("西一", "西街道", "乙区", OUTSIDER, CITY_ADMIN, OUTSIDER_PHONE):
                if marker in text:
                    wrong.append(f"GET {path} as {username}: the page shows {marker!r}")
    assert wrong == []


def test_signed_out_every_page_goes_to_login(web, world):
    client = web.client()
    wrong = []
    for method, path, data, _, _ in WEB_MATRIX:
        response = client.get(path) if method == "GET" else web.post(client, path, data, page="/login")
        location = response.headers.get("Location", "")
        if response.status_code != 302 or not location.startswith("/login"):
            wrong.append(f"{method} {path} signed out: {response.status_code} {location}")
    assert wrong == []


# -- admin@D1: pages, searches and counts -------------------------------------------------------

IN_SCOPE_PEOPLE = sorted(role.username for role in ROLES)  # every membership lies under D1


def admin_page(client, path: str, **params) -> str:
    response = client.get(path, query_string=params)
    assert response.status_code == 200, (path, params, response.status_code)
    return page_text(response)


def grid_links(page: str) -> set[str]:
    return set(re.findall(r'href="/admin/grids/([^"/?]+)"', page))


def usernames_on(page: str) -> set[str]:
    return set(re.findall(r'href="/admin/people/([^"/?]+)"', page)) - {"new"}


def test_admin_grid_pages_and_search_stay_inside_d1(web, world):
    client = web.client(ADMIN)
    index = admin_page(client, "/admin/")
    assert "/admin/grids/D1" in index and "甲区" in index
    assert "/admin/grids/C1" not in index and "示范市" not in index
    for htmx in ({}, {"HX-Request": "true"}):
        response = client.get("/admin/grids", headers=htmx)
        assert response.status_code == 200
        tops = page_text(response)
        assert "/admin/grids/D1" in tops
        for code in ("C1", "D2", "S2", "M2", "G3"):
            assert f"/admin/grids/{code}" not in tops, code
        for q in ("西一", "西", "乙区", "G3", "g3", "M2", "D2", "C1", "示范市", "网格"):
            response = client.get("/admin/grids", query_string={"q": q}, headers=htmx)
            assert response.status_code == 200
            page = page_text(response, q)
            assert grid_links(page) <= {"D1", "S1", "M1", "G1", "G2"}, q
            for marker in ("西一", "西街道", "乙区", "示范市"):
                assert marker not in page, (q, marker)
        assert grid_links(page_text(client.get("/admin/grids", query_string={"q": "网格"}, headers=htmx))) == {
            "G1", "G2"}
    # A node page counts only what lies below it. (Visits without issues close at once: open both
    # cases again so that there is something to count.)
    Submission.update(closed_at=None, status="in_progress").execute()
    d1 = admin_page(client, "/admin/grids/D1")
    assert re.search(r'id="open-cases">1<', d1), "D1 has one open case (G3's is not below it)"
    children = grid_links(d1.split("下级</h2>")[1].split("</section>")[0])
    assert children == {"S1"}
    g1 = admin_page(client, "/admin/grids/G1")
    assert re.search(r'id="open-cases">1<', g1)
    assert "西一" not in d1 + g1


def test_admin_people_list_count_and_search_stay_inside_d1(web, world):
    client = web.client(ADMIN)
    for htmx in ({}, {"HX-Request": "true"}):
        response = client.get("/admin/people", headers=htmx)
        page = page_text(response)
        assert usernames_on(page) == set(IN_SCOPE_PEOPLE)
        assert f"共 {len(IN_SCOPE_PEOPLE)} 人" in page
        assert OUTSIDER not in page and CITY_ADMIN not in page and "西一" not in page
        for q, expected in [(OUTSIDER, set()), ("xi_", set()), (OUTSIDER_PHONE, set()), ("1390000", set()),
                            (CITY_ADMIN, set()), ("city", set()), ("admin", {ADMIN}), ("worker", {AUTHOR})]:
            response = client.get("/admin/people", query_string={"q": q}, headers=htmx)
            assert response.status_code == 200
            page = page_text(response, q)
            assert usernames_on(page) == expected, q
            assert f"共 {len(expected)} 人" in page, q
            for marker in (OUTSIDER, CITY_ADMIN, OUTSIDER_PHONE, "西一"):
                assert marker not in page, (q, marker)
    by_grid = page_text(client.get("/admin/people", query_string={"grid": "M1"}))
    assert usernames_on(by_grid) == {"grid_worker", "grid_leader", "building_head", "volunteer",
                                     "community_secretary", "mediator"}
    assert "共 6 人" in by_grid
    for code in ("G3", "M2", "S2", "D2", "C1", "NOPE"):
        assert client.get("/admin/people", query_string={"grid": code}).status_code == 404, code
    for username in (OUTSIDER, CITY_ADMIN, "nobody-at-all"):
        response = client.get(f"/admin/people/{username}")
        assert response.status_code == 404, username
        assert OUTSIDER_PHONE not in page_text(response)


def test_admin_person_page_of_somebody_inside_shows_no_outside_membership(web, world):
    client = web.client(ADMIN)
    for username in IN_SCOPE_PEOPLE:
        page = admin_page(client, f"/admin/people/{username}")
        assert "西一" not in page and "乙区" not in page and "示范市" not in page, username


def test_somebody_serving_inside_and_outside_is_shown_to_admin_d1_without_what_lies_outside(web, world):
    """A volunteer at G1 and at G3: listed (one membership is inside), but G3 is never named, and
    admin@D1 cannot change the account (part of it lies outside)."""
    people = world.people
    people.make("both_sides", "volunteer@G1", "volunteer@G3")
    client = web.client(ADMIN)
    listed = admin_page(client, "/admin/people", q="both_sides")
    assert usernames_on(listed) == {"both_sides"} and "共 1 人" in listed
    shown = admin_page(client, "/admin/people/both_sides")
    for page, where in [(listed, "/admin/people?q=both_sides"), (shown, "/admin/people/both_sides")]:
        for marker in ("西一", "西街道", "乙区", "G3"):
            assert marker not in page, (where, marker)
    before = snapshot()
    for path, data in [("/admin/people/both_sides/password", {"password": "Taken-over-2026"}),
                       ("/admin/people/both_sides/active", {"active": "0"}),
                       ("/admin/people/both_sides/edit", {"name": "改名"})]:
        assert web.post(client, path, data).status_code in (403, 404), path
    assert snapshot() == before
    header, *rows = workbook_rows(download(client, "/admin/export/people.xlsx"))
    assert "G3" not in {row[5] for row in rows}


# -- admin@D1: exports and imports ---------------------------------------------------------------

def workbook_rows(content: bytes) -> list[list]:
    wb = load_workbook(BytesIO(content), read_only=True)
    try:
        return [list(row) for row in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()


def all_cells(content: bytes) -> str:
    wb = load_workbook(BytesIO(content), read_only=True)
    try:
        return "\n".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
                         for v in row if v is not None)
    finally:
        wb.close()


def download(client, path: str) -> bytes:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert response.mimetype.endswith("spreadsheetml.sheet")
    return response.data


def test_admin_exports_hold_only_d1(web, world):
    client = web.client(ADMIN)
    tree = download(client, "/admin/export/grids.xlsx")
    header, *rows = workbook_rows(tree)
    assert sorted(row[0] for row in rows) == ["D1", "G1", "G2", "M1", "S1"]
    assert {row[3] for row in rows} == {"C1", "D1", "S1", "M1"}  # D1's parent is named, nothing else of C1
    text = all_cells(tree)
    for marker in ("G3", "M2", "S2", "D2", "西一", "西街道", "乙区", "示范市"):
        assert marker not in text, marker
    people_book = download(client, "/admin/export/people.xlsx")
    header, *rows = workbook_rows(people_book)
    assert sorted({row[0] for row in rows}) == IN_SCOPE_PEOPLE
    text = all_cells(people_book)
    for marker in (OUTSIDER, CITY_ADMIN, OUTSIDER_PHONE, "西一", "示范市"):
        assert marker not in text, marker
    for kind in ("grids", "people"):  # templates carry examples, never anybody's data
        text = all_cells(download(client, f"/admin/templates/{kind}.xlsx"))
        for marker in (OUTSIDER, CITY_ADMIN, OUTSIDER_PHONE, ADMIN, "西一", "甲区"):
            assert marker not in text, (kind, marker)


def test_city_admin_contrast_sees_what_the_district_admin_does_not(client, web, world):
    """The checks above can fail: the city administrator does get G3, its case and its worker."""
    assert set(ids(listing(client, world, CITY_ADMIN))) == set(world.cases.values())
    assert ids(listing(client, world, CITY_ADMIN, q="乙乙乙")) == [world.cases["G3"]]
    assert client.get(f"/api/v1/submissions/{world.cases['G3']}",
                      headers=world.headers(CITY_ADMIN)).status_code == 200
    assert ids(listing(client, world, OUTSIDER)) == [world.cases["G3"]]
    assert client.get(f"/api/v1/submissions/{world.cases['G1']}",
                      headers=world.headers(OUTSIDER)).status_code == 404
    city = web.client(CITY_ADMIN)
    assert city.get("/admin/grids/G3").status_code == 200
    assert city.get(f"/admin/people/{OUTSIDER}").status_code == 200
    assert city.get(f"/admin/people/{ADMIN}").status_code == 200
    people = page_text(city.get("/admin/people"))
    assert usernames_on(people) == {*IN_SCOPE_PEOPLE, OUTSIDER, CITY_ADMIN}
    assert f"共 {len(IN_SCOPE_PEOPLE) + 2} 人" in people
    assert "G3" in {row[0] for row in workbook_rows(download(city, "/admin/export/grids.xlsx"))}
    assert OUTSIDER in {row[0] for row in workbook_rows(download(city, "/admin/export/people.xlsx"))}


def xlsx(title: str, headers: list[str], rows: list[list]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(headers)
    for row in rows:
        ws.append(row)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


TREE_HEADERS = ["编码", "名称", "层级", "上级编码", "户数", "人口", "边界（GeoJSON）"]
PEOPLE_HEADERS = ["用户名", "姓名", "手机号", "初始密码", "角色", "网格编码", "部门"]

# (what it tries, kind, rows) of workbooks reaching outside D1: each is refused whole, naming nobody outside.
OUTSIDE_IMPORTS = [
    ("change G3", "grids", [["G3", "改名网格", "grid", "M2", 10, 20, None]]),
    ("add under G3", "grids", [["G3X", "新网格", "micro", "G3", None, None, None]]),
    ("change D2", "grids", [["D2", "乙区改名", "district", "C1", None, None, None]]),
    ("G1 and under S2", "grids", [["G1", "东一社区第一网格", "grid", "M1", 30, 90, None],
                                   ["M2X", "新社区", "community", "S2", None, None, None]]),
    ("take the G3 worker", "people", [[OUTSIDER, "改名", "", "", "网格员", "G1", ""]]),
    ("take the city admin", "people", [[CITY_ADMIN, "", "", "", "网格员", "G1", ""]]),
    ("new person at G3", "people", [["new_worker", "新网格员", "", "New-pass-2026", "网格员", "G3", ""]]),
    ("phone of the G3 worker", "people", [["new_worker", "新网格员", OUTSIDER_PHONE, "New-pass-2026", "网格员", "G1",
                                           ""]]),
]


@pytest.mark.parametrize("kind, rows", [case[1:] for case in OUTSIDE_IMPORTS], ids=[c[0] for c in OUTSIDE_IMPORTS])
def test_admin_imports_reaching_outside_d1_are_refused_and_name_nobody_outside(web, world, kind, rows):
    client = web.client(ADMIN)
    title, headers = ("网格", TREE_HEADERS) if kind == "grids" else ("人员", PEOPLE_HEADERS)
    before = snapshot()
    response = web.post(client, f"/admin/import/{kind}", {"file": (BytesIO(xlsx(title, headers, rows)), "x.xlsx")},
                        page="/admin/import", content_type="multipart/form-data")
    assert response.status_code == 422
    assert snapshot() == before
    page = page_text(response)
    assert "import-errors" in page
    errors = page.split('id="import-errors"')[1].split("</table>")[0]
    mentioned = {OUTSIDER, CITY_ADMIN} - {row[0] for row in rows}
    for marker in (*mentioned, "西一", "乙区", "示范市"):
        assert marker not in errors, marker


def test_non_admins_cannot_import_or_export(web, world):
    """Uploads are refused before they are read, for every role without administration."""
    wrong = []
    book = xlsx("人员", PEOPLE_HEADERS, [["new_worker", "新网格员", "", "New-pass-2026", "网格员", "G1", ""]])
    for role in ROLES:
        if role.admin:
            continue
        client = web.client(role.username)
        before = snapshot()
        response = web.post(client, "/admin/import/people", {"file": (BytesIO(book), "x.xlsx")},
                            content_type="multipart/form-data")
        if response.status_code != 403 or snapshot() != before:
            wrong.append(f"POST /admin/import/people as {role.username}: {response.status_code}")
    assert wrong == []


# -- the matrix itself ---------------------------------------------------------------------------

def test_the_matrix_covers_every_role_inside_and_outside():
    assert len(ROLES) == 9 and len({r.grant.split("@")[0].split(":")[0] for r in ROLES}) == 9
    assert len(API_CASES) == len(ROLES) * len(API_MATRIX)
    assert len(WEB_CASES) == len(ROLES) * len(WEB_MATRIX)
    api_targets = {target for _, _, target, _ in API_MATRIX}
    assert {"G1", "G3"} <= api_targets
    web_paths = {path for _, path, _, _, _ in WEB_MATRIX}
    assert set(ADMIN_PAGES) <= web_paths and {"/", "/account"} <= web_paths
