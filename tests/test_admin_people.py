"""Managing people on the web: find, create, edit, roles, and the limits of a township administrator."""

from __future__ import annotations

import pytest

from server.auth import add_membership
from server.models import AuditEntry, Membership, Person


@pytest.fixture
def admins(people, web):
    people.make("district", "admin@D1")
    people.make("wgy1", "grid_worker@G1")
    people.make("wgy3", "grid_worker@G3")
    people.make("both", "grid_worker@G2", "mediator@M2")
    Person.update(name="王小明", phone="13700137000").where(Person.username == "wgy1").execute()
    return web


def person(username: str) -> Person:
    return Person.get(Person.username == username)


def grants(username: str) -> set[tuple]:
    return {(m.role, m.node.code, m.department) for m in Membership.select().where(
        Membership.person == person(username).id)}


def test_the_list_holds_only_people_working_inside_the_subtree(admins):
    page = admins.client("district").get("/admin/people").get_data(as_text=True)
    assert "wgy1" in page and "both" in page and "district" in page
    assert "wgy3" not in page
    assert "共 3 人" in page


@pytest.mark.parametrize("q", ["王小明", "13700137000", "wgy1", "小明"])
def test_search_by_name_phone_or_username(admins, q):
    page = admins.client("district").get(f"/admin/people?q={q}").get_data(as_text=True)
    assert "wgy1" in page and "both" not in page and "共 1 人" in page


def test_the_list_of_one_node(admins):
    page = admins.client("district").get("/admin/people?grid=G2").get_data(as_text=True)
    assert "both" in page and "wgy1" not in page


def test_create_a_person_who_can_then_sign_in(admins):
    client = admins.client("district")
    response = admins.post(client, "/admin/new-person", {
        "username": "wgy9", "name": "李四", "phone": "13900139000", "password": "first-pass-1",
        "role": "grid_worker", "grid": "g2"}, page="/admin/new-person")
    assert response.status_code == 302
    assert grants("wgy9") == {("grid_worker", "G2", None)}
    assert person("wgy9").phone == "13900139000"
    assert admins.login(admins.client(), "wgy9", "first-pass-1").status_code == 302
    assert AuditEntry.get(AuditEntry.action == "person_created").target == "wgy9"


@pytest.mark.parametrize("change, message", [
    ({"password": "short"}, "至少 8 位"),
    ({"username": "wgy1"}, "已存在"),
    ({"grid": "G3"}, "不在您的管理范围内"),
    ({"grid": "NOPE"}, "找不到网格"),
    ({"phone": "12345"}, "手机号 12345 不正确"),
    ({"phone": "13700137000"}, "已被其他账号使用"),
    ({"role": "department_staff"}, "须指明所属部门"),
    ({"department": "justice"}, "只有部门人员可以指明部门"),
    ({"role": "boss"}, "角色 boss 未配置"),
    ({"username": "has space"}, "不能含空格"),
])
def test_a_bad_new_person_is_refused_and_nothing_is_created(admins, change, message):
    form = {"username": "wgy9", "name": "李四", "phone": "", "password": "first-pass-1", "role": "grid_worker",
            "grid": "G2", **change}
    before = (Person.select().count(), Membership.select().count())
    response = admins.post(admins.client("district"), "/admin/new-person", form, page="/admin/new-person")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert 'value="李四"' in page  # what was typed is kept
    assert (Person.select().count(), Membership.select().count()) == before


def test_department_staff_are_created_with_their_department(admins):
    response = admins.post(admins.client("district"), "/admin/new-person", {
        "username": "mz1", "name": "民政干部", "password": "first-pass-1", "role": "department_staff",
        "department": "civil_affairs", "grid": "D1"}, page="/admin/new-person")
    assert response.status_code == 302
    assert grants("mz1") == {("department_staff", "D1", "civil_affairs")}


def test_give_and_take_a_role(admins):
    client = admins.client("district")
    response = admins.post(client, "/admin/people/wgy1/memberships", {"role": "mediator", "grid": "M1"},
                           page="/admin/people/wgy1")
    assert response.status_code == 302
    assert grants("wgy1") == {("grid_worker", "G1", None), ("mediator", "M1", None)}
    membership = Membership.get((Membership.person == person("wgy1").id) & (Membership.role == "mediator"))
    response = admins.post(client, f"/admin/people/wgy1/memberships/{membership.id}/remove",
                           page="/admin/people/wgy1")
    assert response.status_code == 302
    assert grants("wgy1") == {("grid_worker", "G1", None)}


def test_a_role_outside_the_subtree_is_neither_given_nor_taken(admins):
    client = admins.client("district")
    response = admins.post(client, "/admin/people/wgy1/memberships", {"role": "mediator", "grid": "M2"},
                           page="/admin/people/wgy1")
    assert response.status_code == 422 and "不在您的管理范围内" in response.get_data(as_text=True)
    outside = Membership.get((Membership.person == person("both").id) & (Membership.role == "mediator"))
    response = admins.post(client, f"/admin/people/both/memberships/{outside.id}/remove", page="/admin/people/both")
    assert response.status_code == 404
    assert grants("both") == {("grid_worker", "G2", None), ("mediator", "M2", None)}


def test_somebody_also_working_elsewhere_is_seen_but_managed_from_above(admins):
    client = admins.client("district")
    page = client.get("/admin/people/both").get_data(as_text=True)
    assert "上级管理员" in page and "重置密码" not in page
    for path, form in [("/admin/people/both/password", {"password": "new-pass-123"}),
                       ("/admin/people/both/active", {"active": "0"}),
                       ("/admin/people/both/edit", {"name": "改名"})]:
        response = admins.post(client, path, form, page="/admin/people/wgy1")
        assert response.status_code == 403, path
        assert "上级管理员" in response.get_data(as_text=True)
    assert person("both").active and person("both").name == "both"


def test_people_outside_the_subtree_are_not_found(admins):
    client = admins.client("district")
    assert client.get("/admin/people/wgy3").status_code == 404
    assert client.get("/admin/people/nobody").status_code == 404
    assert admins.post(client, "/admin/people/wgy3/password", {"password": "new-pass-123"},
                       page="/admin/people/wgy1").status_code == 404


def test_edit_name_and_phone(admins):
    client = admins.client("district")
    response = admins.post(client, "/admin/people/wgy1/edit", {"name": "王明", "phone": "13600136000"},
                           page="/admin/people/wgy1")
    assert response.status_code == 302
    assert (person("wgy1").name, person("wgy1").phone) == ("王明", "13600136000")
    refused = admins.post(client, "/admin/people/wgy1/edit", {"name": "王明", "phone": "1360013600"},
                          page="/admin/people/wgy1")
    assert refused.status_code == 422 and person("wgy1").phone == "13600136000"


def test_an_administrator_cannot_drop_their_own_admin_role_or_deactivate_themselves(admins):
    client = admins.client("district")
    own = Membership.get(Membership.person == person("district").id)
    response = admins.post(client, f"/admin/people/district/memberships/{own.id}/remove",
                           page="/admin/people/district")
    assert response.status_code == 422 and Membership.get_or_none(Membership.id == own.id) is not None
    response = admins.post(client, "/admin/people/district/active", {"active": "0"}, page="/admin/people/district")
    assert response.status_code == 422 and person("district").active


def test_people_without_any_role_are_managed_by_the_root_administrator(admins, people):
    people.make("city", "admin@C1")
    people.make("loose")
    assert admins.client("district").get("/admin/people/loose").status_code == 404
    city = admins.client("city")
    assert "loose" in city.get("/admin/people").get_data(as_text=True)
    assert city.get("/admin/people/loose").status_code == 200
    add_membership(person("loose"), "G1", "volunteer")
    assert admins.client("district").get("/admin/people/loose").status_code == 200


def test_roles_held_elsewhere_are_counted_but_not_named(admins):
    client = admins.client("district")
    page = client.get("/admin/people/both").get_data(as_text=True)
    assert "东一社区第二网格" in page and "西一社区" not in page
    assert "另有 1 项职务在您的管理范围以外" in page
    rows = client.get("/admin/people?q=both").get_data(as_text=True)
    assert "东一社区第二网格" in rows and "西一社区" not in rows and "另有 1 项职务" in rows


def test_a_workbook_larger_than_an_api_body_may_be_uploaded(admins):
    import io
    import os

    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    from .conftest import csrf_token

    client = admins.client("district")
    token = csrf_token(client, "/admin/import")

    def upload(content: bytes):
        # Encoded in memory: the test client would spool a large body to a file nobody closes.
        boundary, body = encode_multipart({"csrf_token": token,
                                           "file": FileStorage(io.BytesIO(content), "people.xlsx")})
        return client.post("/admin/import/people", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}")

    response = upload(os.urandom(3_000_000))  # over MAX_CONTENT_LENGTH, under the upload limit
    assert response.status_code == 422
    assert "无法打开文件" in response.get_data(as_text=True)
    assert upload(b"0" * 21_000_000).status_code == 413
