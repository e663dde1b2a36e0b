"""Levels, roles and departments are configuration: a township names and counts its own levels."""

from __future__ import annotations

import pytest

from server.auth import add_membership, create_person
from server.cli import main
from server.grids import GridError, create_node
from server.models import Department, GridNode, Level, Role
from server.scope import scope_for_person


def run(runner, *args):
    return runner.invoke(main, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def township_levels(runner):
    """Replace the default six levels with a township's four: 乡/村/片区/网格."""
    for key in ("city", "district", "street", "community", "grid", "micro"):
        ok(run(runner, "level", "remove", key))
    for depth, (key, name) in enumerate([("township", "乡"), ("village", "村"), ("area", "片区"),
                                         ("grid", "网格")]):
        ok(run(runner, "level", "set", key, name, "--depth", depth))


def test_a_township_names_and_counts_its_own_levels(runner, app):
    township_levels(runner)
    listed = ok(run(runner, "level", "list")).stdout.splitlines()
    assert listed == ["0\ttownship\t乡", "1\tvillage\t村", "2\tarea\t片区", "3\tgrid\t网格"]
    town = create_node("T1", "黄山乡", "township")
    village = create_node("V1", "石门村", "village", town)
    area = create_node("A1", "东片区", "area", village)
    grid = create_node("G1", "东片一网格", "grid", area)
    assert grid.path == "/T1/V1/A1/G1/" and grid.depth == 3
    with pytest.raises(GridError, match="没有 street 这一层级"):
        create_node("S1", "街道", "street", town)
    with pytest.raises(GridError, match="不能作为上级"):
        create_node("V2", "倒挂的村", "village", area)


def test_a_level_in_use_keeps_its_depth_and_cannot_be_removed(runner, tree):
    result = run(runner, "level", "remove", "grid")
    assert result.exit_code == 1 and "不能删除" in result.stderr
    result = run(runner, "level", "set", "grid", "网格", "--depth", "9")
    assert result.exit_code == 1 and "不能再改变它的深度" in result.stderr
    ok(run(runner, "level", "set", "grid", "基础网格"))
    assert Level.get_by_id("grid").name == "基础网格" and Level.get_by_id("grid").depth == 4


@pytest.mark.parametrize("args, message", [
    (["level", "set", "Town", "乡", "--depth", "7"], "层级键 Town 不正确"),
    (["level", "set", "town", "乡"], "须给出深度"),
    (["level", "set", "town", "乡", "--depth", "2"], "深度 2 已由层级 street"),
    (["level", "set", "town", "乡", "--depth", "-1"], "深度不能为负数"),
    (["level", "remove", "nope"], "没有 nope 这一层级"),
    (["role", "set", "网格员", "网格员"], "角色键 网格员 不正确"),
    (["department", "set", "a-b", "部门"], "部门键 a-b 不正确"),
])
def test_bad_configuration_is_refused_in_chinese(runner, app, args, message):
    before = (Level.select().count(), Role.select().count(), Department.select().count())
    result = run(runner, *args)
    assert result.exit_code == 1 and message in result.stderr
    assert (Level.select().count(), Role.select().count(), Department.select().count()) == before


def test_a_new_role_and_what_it_allows(runner, tree):
    ok(run(runner, "role", "set", "party_secretary", "村党支部书记", "--admin", "--sensitive"))
    listed = ok(run(runner, "role", "list")).stdout
    assert "party_secretary\t村党支部书记\t管理、敏感字段" in listed
    person = create_person("shuji", "secret-pass-1")
    add_membership(person, "M1", "party_secretary")
    scope = scope_for_person(person.id)
    assert scope.is_admin_at("/C1/D1/S1/M1/G1/") and scope.sees_sensitive_at("/C1/D1/S1/M1/G1/")
    ok(run(runner, "role", "set", "party_secretary", "党支部书记", "--no-sensitive"))
    role = Role.get_by_id("party_secretary")
    assert (role.name, role.is_admin, role.sees_sensitive) == ("党支部书记", True, False)
    assert not scope_for_person(person.id).sees_sensitive_at("/C1/D1/S1/M1/G1/")


def test_a_new_department_and_its_staff(runner, tree):
    ok(run(runner, "department", "set", "veterans", "退役军人事务"))
    assert "veterans\t退役军人事务" in ok(run(runner, "department", "list")).stdout
    person = create_person("tyjr", "secret-pass-1")
    add_membership(person, "D1", "department_staff", "veterans")
    assert scope_for_person(person.id).departments() == [("veterans", "/C1/D1/")]
    with pytest.raises(GridError, match="部门 nope 未配置"):
        add_membership(person, "D1", "department_staff", "nope")


def test_default_configuration_is_what_design_names(app):
    assert [lvl.key for lvl in Level.select().order_by(Level.depth)] == [
        "city", "district", "street", "community", "grid", "micro"]
    assert {r.key for r in Role.select()} == {
        "grid_worker", "grid_leader", "building_head", "community_secretary", "mediator", "street_officer",
        "department_staff", "volunteer", "admin"}
    assert {r.key for r in Role.select().where(Role.is_admin)} == {"admin"}
    assert {d.name for d in Department.select()} >= {"公安", "司法", "卫健", "民政", "市场监管", "城管", "教育"}
    assert GridNode.select().count() == 0


def test_tokens_are_listed_and_revoked_from_the_command_line(runner, client, people):
    token = people.make("wgy", "grid_worker@G1")
    listed = ok(run(runner, "token", "list", "wgy")).stdout.splitlines()
    assert len(listed) == 1 and token[:10] in listed[0] and "有效" in listed[0] and token not in listed[0]
    token_id = listed[0].split("\t")[0]
    ok(run(runner, "token", "revoke", "wgy", token_id))
    assert client.get("/api/v1/grids", headers=people.headers("wgy")).status_code == 401
    assert "已撤销" in ok(run(runner, "token", "list", "wgy")).stdout
    again = run(runner, "token", "revoke", "wgy", token_id)
    assert again.exit_code == 1 and "没有编号为" in again.stderr
