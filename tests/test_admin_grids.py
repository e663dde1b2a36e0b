"""Managing the grid tree on the web: browse, search, add, rename, move, retire, restore."""

from __future__ import annotations

import pytest

from server.models import AuditEntry, Event, GridNode, Membership, Person, Submission

VALID = {"household": "张三丰", "visit_date": "2026-11-20", "has_issue": False}


@pytest.fixture
def admins(visit_form, people, web):
    people.make("city", "admin@C1")
    people.make("district", "admin@D1")
    people.make("wgy", "grid_worker@G1")
    return web


def node(code: str) -> GridNode:
    return GridNode.get(GridNode.code == code)


def file_case(client, people, grid="G1", user="wgy") -> str:
    response = client.post("/api/v1/forms/test_visit/submissions", json={"grid": grid, "data": VALID},
                           headers=people.headers(user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_an_administrator_starts_from_the_top_of_their_subtree(admins):
    page = admins.client("district").get("/admin/grids").get_data(as_text=True)
    assert "甲区" in page and "乙区" not in page and "示范市" not in page


def test_search_finds_nodes_by_name_or_code_inside_the_subtree_only(admins):
    client = admins.client("district")
    page = client.get("/admin/grids?q=第二").get_data(as_text=True)
    assert "东一社区第二网格" in page
    assert "东一社区第一网格" not in page
    assert "西一社区" not in client.get("/admin/grids?q=西一").get_data(as_text=True)
    assert "东一社区第一网格" in client.get("/admin/grids?q=g1").get_data(as_text=True)


def test_search_as_you_type_returns_only_the_rows(admins):
    response = admins.client("district").get("/admin/grids?q=第二", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and "东一社区第二网格" in body
    assert "HX-Request" in response.headers["Vary"]


def test_a_node_page_shows_its_place_children_and_figures(admins):
    page = admins.client("district").get("/admin/grids/M1").get_data(as_text=True)
    assert "东一社区" in page and "东一社区第一网格" in page and "东一社区第二网格" in page
    assert "东街道" in page  # breadcrumb


def test_add_a_child_node(admins):
    client = admins.client("district")
    response = admins.post(client, "/admin/grids/M1/children",
                           {"code": "g9", "name": "东一社区第九网格", "level": "grid", "households": "320"},
                           page="/admin/grids/M1")
    assert response.status_code == 302
    added = node("G9")
    assert (added.path, added.depth, added.households) == ("/C1/D1/S1/M1/G9/", 4, 320)
    assert AuditEntry.get(AuditEntry.action == "grid_added").target == "G9"


@pytest.mark.parametrize("form, message", [
    ({"code": "G1", "name": "重复", "level": "grid"}, "已存在"),
    ({"code": "中文", "name": "坏编码", "level": "grid"}, "只能用数字、大写字母和连字符"),
    ({"code": "X1", "name": "不能更高", "level": "district"}, "不能作为上级"),
    ({"code": "X2", "name": "", "level": "grid"}, "名称不能为空"),
    ({"code": "X3", "name": "坏户数", "level": "grid", "households": "-3"}, "户数应为不小于 0 的整数"),
])
def test_a_bad_child_is_refused_in_chinese_and_nothing_is_added(admins, form, message):
    client = admins.client("district")
    before = GridNode.select().count()
    response = admins.post(client, "/admin/grids/M1/children", form, page="/admin/grids/M1")
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert GridNode.select().count() == before


def test_rename_and_change_figures(admins):
    client = admins.client("district")
    response = admins.post(client, "/admin/grids/G1/edit", {"name": "东一社区一网格", "households": "410",
                                                           "population": "1200"}, page="/admin/grids/G1")
    assert response.status_code == 302
    renamed = node("G1")
    assert (renamed.name, renamed.households, renamed.population, renamed.code) == ("东一社区一网格", 410, 1200, "G1")


def test_a_move_carries_the_subtree_its_cases_and_its_people(admins, people, client):
    case = file_case(client, people)
    city = admins.client("city")
    response = admins.post(city, "/admin/grids/M1/move", {"parent": "S2"}, page="/admin/grids/M1")
    assert response.status_code == 302
    assert {n.code: (n.path, n.depth) for n in GridNode.select().where(GridNode.code.in_(["M1", "G1", "G2"]))} == {
        "M1": ("/C1/D2/S2/M1/", 3), "G1": ("/C1/D2/S2/M1/G1/", 4), "G2": ("/C1/D2/S2/M1/G2/", 4)}
    assert node("M1").parent_id == node("S2").id
    assert Submission.get_by_id(case).grid_path == "/C1/D2/S2/M1/G1/"
    # The worker at G1 still sees the case; the D1 administrator no longer manages the community.
    listed = client.get("/api/v1/submissions", headers=people.headers("wgy")).get_json()["items"]
    assert [c["id"] for c in listed] == [case]
    assert admins.client("district").get("/admin/grids/G1").status_code == 404
    member = Membership.get(Membership.person == Person.get(Person.username == "wgy").id)
    assert member.node.path == "/C1/D2/S2/M1/G1/"
    assert AuditEntry.get(AuditEntry.action == "grid_moved").detail["new_parent"] == "S2"


@pytest.mark.parametrize("target, message", [
    ("G1", "不能把"),        # under its own child
    ("NOPE", "找不到上级网格"),
    ("G3", "不能作为上级"),  # a grid cannot hold a community
])
def test_a_bad_move_changes_nothing(admins, target, message):
    city = admins.client("city")
    response = admins.post(city, "/admin/grids/M1/move", {"parent": target}, page="/admin/grids/M1")
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert node("M1").path == "/C1/D1/S1/M1/" and node("G1").path == "/C1/D1/S1/M1/G1/"


def test_an_administrator_cannot_move_or_retire_the_top_of_their_own_subtree(admins):
    client = admins.client("district")
    moved = admins.post(client, "/admin/grids/D1/move", {"parent": "D2"}, page="/admin/grids/D1")
    retired = admins.post(client, "/admin/grids/D1/retire", page="/admin/grids/D1")
    assert moved.status_code == retired.status_code == 422
    assert "上级管理员" in moved.get_data(as_text=True)
    assert node("D1").retired_at is None and node("D1").path == "/C1/D1/"


def test_retiring_waits_for_open_cases_to_be_moved_first(admins, people, client):
    case = file_case(client, people)
    district = admins.client("district")
    refused = admins.post(district, "/admin/grids/G1/retire", page="/admin/grids/G1")
    assert refused.status_code == 422
    assert "还有 1 件未办结的案件" in refused.get_data(as_text=True)
    assert node("G1").retired_at is None
    moved = admins.post(district, "/admin/grids/G1/cases/move", {"target": "G2"}, page="/admin/grids/G1")
    assert moved.status_code == 302
    assert Submission.get_by_id(case).grid_code == "G2"
    event = Event.get((Event.submission == case) & (Event.kind == "moved"))
    assert event.payload == {"from": "G1", "to": "G2"}
    assert admins.post(district, "/admin/grids/G1/retire", page="/admin/grids/G1").status_code == 302
    assert node("G1").retired_at is not None
    refused = client.post("/api/v1/forms/test_visit/submissions", json={"grid": "G1", "data": VALID},
                          headers=people.headers("wgy"))
    assert refused.status_code == 422 and "已撤销" in refused.get_json()["message"]


def test_retiring_a_node_retires_its_subtree_and_restore_brings_one_back(admins):
    district = admins.client("district")
    assert admins.post(district, "/admin/grids/M1/retire", page="/admin/grids/M1").status_code == 302
    assert all(node(c).retired_at is not None for c in ("M1", "G1", "G2"))
    refused = admins.post(district, "/admin/grids/G1/restore", page="/admin/grids/G1")
    assert refused.status_code == 422 and "请先恢复上级" in refused.get_data(as_text=True)
    assert admins.post(district, "/admin/grids/M1/restore", page="/admin/grids/M1").status_code == 302
    assert node("M1").retired_at is None and node("G1").retired_at is not None


def test_cases_cannot_be_moved_into_the_subtree_being_retired(admins, people, client):
    file_case(client, people)
    response = admins.post(admins.client("district"), "/admin/grids/M1/cases/move", {"target": "G2"},
                           page="/admin/grids/M1")
    assert response.status_code == 422 and "一并撤销" in response.get_data(as_text=True)
