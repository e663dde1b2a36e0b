"""Excel import and export of the grid tree and of people: templates, round trips, row errors, scope."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO

import pytest
from openpyxl import Workbook, load_workbook

from server import sheets
from server.auth import add_membership, create_person, sign_in
from server.grids import GridError, retire_node
from server.models import AuditEntry, GridNode, Membership, Person
from server.scope import scope_for_person
from server.sheets import (
    PEOPLE_HEADERS,
    TREE_HEADERS,
    ImportResult,
    RowError,
    error_report,
    export_people,
    export_tree,
    import_people,
    import_tree,
    people_template,
    tree_template,
)

# -- helpers ----------------------------------------------------------------------------------


def xlsx(rows, headers=TREE_HEADERS, title="网格") -> bytes:
    """Build a workbook in memory: a header row, then the rows."""
    wb = Workbook()
    ws = wb.active
    ws.title = title
    if headers is not None:
        ws.append(headers)
    for row in rows:
        ws.append(row)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def people_xlsx(rows, **kwargs) -> bytes:
    return xlsx(rows, headers=PEOPLE_HEADERS, title="人员", **kwargs)


def sheet_rows(content: bytes, title: str | None = None) -> list[list]:
    """Read back a sheet's rows as lists (the first sheet unless named)."""
    wb = load_workbook(BytesIO(content))
    ws = wb[title] if title else wb.worksheets[0]
    return [list(row) for row in ws.iter_rows(values_only=True)]


def counts() -> tuple[int, int, int, int]:
    return (GridNode.select().count(), Person.select().count(), Membership.select().count(),
            AuditEntry.select().count())


def who(username: str):
    """Return (person, scope) for a username."""
    person = Person.get(Person.username == username)
    return person, scope_for_person(person.id)


def run_tree(username: str, rows, **kwargs) -> ImportResult:
    person, scope = who(username)
    return import_tree(xlsx(rows, **kwargs), person, scope)


def run_people(username: str, rows, **kwargs) -> ImportResult:
    person, scope = who(username)
    return import_people(people_xlsx(rows, **kwargs), person, scope)


def node(code: str) -> GridNode:
    return GridNode.get(GridNode.code == code)


def errors_of(result: ImportResult) -> list[tuple[int, str]]:
    return [(e.row, e.message) for e in result.errors]


@pytest.fixture
def admins(people):
    """A root administrator (at C1) and a district administrator (at D1)."""
    people.make("root", "admin@C1")
    people.make("d1admin", "admin@D1")
    return people


# -- templates --------------------------------------------------------------------------------


def test_tree_template_has_a_bold_frozen_header_and_explains_the_levels(app):
    wb = load_workbook(BytesIO(tree_template()))
    assert wb.sheetnames == ["网格", "说明"]
    data = wb["网格"]
    assert [c.value for c in data[1]] == TREE_HEADERS
    assert data.max_row == 1
    assert data["A1"].font.b
    assert data.freeze_panes == "A2"
    assert data.column_dimensions["G"].width >= 30
    notes = [v for row in wb["说明"].iter_rows(values_only=True) for v in row if v]
    assert "street" in notes and "街道（乡镇）" in notes and "微网格" in notes
    assert "450902001" in notes  # the examples are on the 说明 sheet, not the data sheet


def test_people_template_lists_roles_and_departments(app):
    wb = load_workbook(BytesIO(people_template()))
    assert wb.sheetnames == ["人员", "说明"]
    assert [c.value for c in wb["人员"][1]] == PEOPLE_HEADERS
    assert wb["人员"].max_row == 1
    notes = [v for row in wb["说明"].iter_rows(values_only=True) for v in row if v]
    for text in ("department_staff", "部门人员", "网格员", "civil_affairs", "民政"):
        assert text in notes
    assert any("不会被导入修改" in n for n in notes)  # existing passwords are never reset


def test_importing_the_templates_unchanged_imports_nothing(admins):
    before = counts()
    person, scope = who("root")
    for result in (import_tree(tree_template(), person, scope), import_people(people_template(), person, scope)):
        assert result.ok and (result.created, result.updated) == (0, 0)
    assert counts()[:3] == before[:3]


# -- the tree: export and round trip ----------------------------------------------------------


def test_tree_export_is_the_administered_subtree_in_template_columns(admins):
    GridNode.update(households=320, population=1000, boundary={"type": "Point", "coordinates": [1, 2]}).where(
        GridNode.code == "G1").execute()
    retire_node(node("G2"))
    rows = sheet_rows(export_tree(who("d1admin")[1]))
    assert rows[0] == TREE_HEADERS
    assert [r[0] for r in rows[1:]] == ["D1", "S1", "M1", "G1"]  # by path; G2 retired, D2 outside
    assert rows[1][:4] == ["D1", "甲区", "县（市、区）", "C1"]
    assert rows[4][2:6] == ["网格", "M1", 320, 1000]
    assert json.loads(rows[4][6]) == {"type": "Point", "coordinates": [1, 2]}
    root_rows = sheet_rows(export_tree(who("root")[1]))
    assert root_rows[1][:4] == ["C1", "示范市", "市", None]  # a root has no parent code
    assert len(root_rows) == 1 + 9


@pytest.mark.parametrize("username", ["root", "d1admin"])
def test_tree_export_then_import_is_a_no_op(admins, username):
    GridNode.update(households=320, boundary={"type": "Polygon", "coordinates": [[[0.5, 1], [2, 3], [0.5, 1]]]}
                    ).where(GridNode.code == "S1").execute()
    person, scope = who(username)
    before = counts()
    result = import_tree(export_tree(scope), person, scope)
    assert result.ok, result.errors
    assert (result.created, result.updated) == (0, 0)
    assert counts()[:3] == before[:3]


def test_people_export_then_import_is_a_no_op(admins):
    admins.make("wgy", "grid_worker@G1", "grid_leader@G2")
    admins.make("mz", "department_staff:civil_affairs@S1")
    create_person("loner", "x", name="独行", phone="13900000001", password_hash="x")
    for username in ("root", "d1admin"):
        person, scope = who(username)
        before = counts()
        result = import_people(export_people(scope), person, scope)
        assert result.ok, result.errors
        assert (result.created, result.updated) == (0, 0)
        assert counts()[:3] == before[:3]


# -- the tree: good imports -------------------------------------------------------------------


def test_tree_import_creates_nodes_whose_parents_come_later_in_the_file(admins):
    before = counts()
    result = run_tree("d1admin", [
        ["G9", "新网格", "grid", "M9", "120", 300.0, None],
        ["M9", "新社区", "社区", "S9", None, None, '{"type": "Point", "coordinates": [110.1, 22.6]}'],
        [" S9 ", "新街道", "街道（乡镇）", "D1", 5000, "16000", None],
        [450902, "数字编码社区", "社区(村)", "S1", None, None, None],
        [None, None, None, None, None, None, None],  # an empty row is skipped
        ["MX1", "楼栋", "微网格", "G9", None, None, None],
    ])
    assert result.ok, result.errors
    assert (result.created, result.updated) == (5, 0)
    assert counts()[0] == before[0] + 5
    expected = {"S9": ("/C1/D1/S9/", 2, "street"), "M9": ("/C1/D1/S9/M9/", 3, "community"),
                "G9": ("/C1/D1/S9/M9/G9/", 4, "grid"), "MX1": ("/C1/D1/S9/M9/G9/MX1/", 5, "micro"),
                "450902": ("/C1/D1/S1/450902/", 3, "community")}
    for code, (path, depth, level) in expected.items():
        made = node(code)
        assert (made.path, made.depth, made.level) == (path, depth, level)
    assert (node("G9").households, node("G9").population) == (120, 300)
    assert node("S9").population == 16000
    assert node("M9").boundary == {"type": "Point", "coordinates": [110.1, 22.6]}
    entry = AuditEntry.select().order_by(AuditEntry.id.desc()).get()
    assert entry.action == "tree_imported"
    assert entry.detail == {"created": 5, "updated": 0}
    assert entry.actor_id == who("d1admin")[0].id


def test_tree_import_updates_existing_nodes_and_counts_only_real_changes(admins):
    result = run_tree("d1admin", [
        ["G1", "东一社区一网格", "grid", "M1", 350, None, '{"type":"Point","coordinates":[1,2]}'],
        ["G2", "东一社区第二网格", "网格", "M1", None, None, None],  # unchanged
        ["M1", "东一社区", "community", "S1", "", "", ""],  # empty figures leave them alone
    ])
    assert result.ok, result.errors
    assert (result.created, result.updated) == (0, 1)
    g1 = node("G1")
    assert (g1.name, g1.households, g1.population, g1.path) == ("东一社区一网格", 350, None, "/C1/D1/S1/M1/G1/")
    assert g1.boundary == {"type": "Point", "coordinates": [1, 2]}


def test_columns_in_any_order_extra_columns_and_another_sheet_name(admins):
    headers = ["备注", " 上级编码 ", "层级", "名称", "编码", "边界(GeoJSON)"]
    rows = [["随便写", "M1", "grid", "第三网格", "G7", '{"type":"Point","coordinates":[1,2]}'],
            ["只有备注的行会被跳过", None, None, None, None, None]]
    result = run_tree("d1admin", rows, headers=headers, title="Sheet1")
    assert result.ok, result.errors
    assert result.created == 1
    assert node("G7").path == "/C1/D1/S1/M1/G7/"
    assert node("G7").boundary == {"type": "Point", "coordinates": [1, 2]}


# -- the tree: bad rows -----------------------------------------------------------------------

BAD_TREE_ROWS = [
    (["", "无编码", "grid", "M1"], "编码不能为空"),
    (["g-1", "小写编码", "grid", "M1"], "编码 g-1 不正确"),
    (["G8", "", "grid", "M1"], "名称不能为空"),
    (["G8", "名" * 129, "grid", "M1"], "名称不能超过 128 个字"),
    (["G8", "无层级", "", "M1"], "层级不能为空"),
    (["G8", "怪层级", "小区", "M1"], "层级“小区”未配置"),
    (["G8", "孤儿", "grid", "D9"], "上级编码 D9 不存在（表中和系统中都没有）"),
    (["G8", "自己", "grid", "G8"], "上级编码不能是自己"),
    (["S8", "街道在社区下", "street", "M1"], "层级“街道（乡镇）”须低于上级 M1 的层级“社区（村）”"),
    (["G8", "同层", "grid", "G1"], "须低于上级 G1"),
    (["G8", "负户数", "grid", "M1", -3], "户数应为不小于 0 的整数，现在是“-3”"),
    (["G8", "小数人口", "grid", "M1", None, 1.5], "人口应为不小于 0 的整数，现在是“1.5”"),
    (["G8", "文字户数", "grid", "M1", "很多"], "户数应为不小于 0 的整数"),
    (["G8", "坏边界", "grid", "M1", None, None, "{not json"], "边界不是有效的 GeoJSON"),
    (["G8", "边界无类型", "grid", "M1", None, None, "[1, 2]"], "边界不是有效的 GeoJSON"),
    (["G8", "非数边界", "grid", "M1", None, None, '{"type": "Point", "coordinates": [NaN, 1]}'],
     "边界不是有效的 GeoJSON"),
    (["G1", "换上级", "grid", "M2"], "网格 G1 已存在且上级不同；移动网格请在网格管理页面操作"),
    (["G1", "换层级", "micro", "M1"], "网格 G1 已存在，层级是“网格”"),
    (["G2", "已撤销", "grid", "M1"], "网格 G2 已撤销"),
    (["G8", "上级已撤销", "micro", "G2"], "上级网格 G2 已撤销"),
    (["G3", "别区的网格", "grid", "M2"], "无权修改网格 G3（超出您的管理范围）"),
    (["G8", "别区新网格", "grid", "M2"], "无权在 M2 之下添加网格（超出您的管理范围）"),
    (["C2", "新市", "city", ""], "无权新建顶层网格"),
]


@pytest.mark.parametrize("bad, message", BAD_TREE_ROWS, ids=[m[:12] for _, m in BAD_TREE_ROWS])
def test_a_bad_tree_row_is_reported_at_its_row_and_nothing_is_written(admins, bad, message):
    retire_node(node("G2"))
    before = counts()
    result = run_tree("d1admin", [["G5", "好网格", "grid", "M1"], bad + [None] * (7 - len(bad))])
    assert not result.ok
    assert (result.created, result.updated) == (0, 0)
    assert [e.row for e in result.errors] == [3], result.errors
    assert message in result.errors[0].message
    assert result.errors[0].sheet == "网格"
    assert counts() == before
    assert not GridNode.select().where(GridNode.code == "G5").exists()


def test_every_bad_tree_row_is_reported_not_only_the_first(admins):
    before = counts()
    result = run_tree("d1admin", [
        ["G5", "好网格", "grid", "M1"],
        ["G5", "重复", "grid", "M1"],
        ["G6", "", "grid", "D9", -1],
        ["G1", "东一社区第一网格", "grid", "M1", None, None, "{"],
    ])
    assert errors_of(result) == [
        (3, "编码 G5 与第 2 行重复"),
        (4, "名称不能为空"),
        (4, "户数应为不小于 0 的整数，现在是“-1”"),
        (4, "上级编码 D9 不存在（表中和系统中都没有）"),
        (5, "边界不是有效的 GeoJSON：应为含 type 的 JSON 对象，如 {\"type\":\"Polygon\",…}"),
    ]
    assert counts() == before


def test_a_cycle_of_parents_in_the_file_is_reported_on_each_of_its_rows(admins):
    result = run_tree("d1admin", [
        ["X1", "甲", "grid", "X2"],
        ["X2", "乙", "community", "X3"],
        ["X3", "丙", "street", "X1"],
        ["X4", "丁", "micro", "X1"],
    ])
    cycle = [e for e in result.errors if "循环" in e.message]
    assert [e.row for e in cycle] == [2, 3, 4]
    assert "X1 → X2 → X3 → X1" in cycle[0].message
    assert not GridNode.select().where(GridNode.code.startswith("X")).exists()


# -- the tree: scope --------------------------------------------------------------------------


def test_a_district_administrator_stays_in_the_district_and_the_root_administrator_does_not(admins):
    rows = [["S7", "乙区新街道", "street", "D2"], ["C2", "新市", "市", None], ["S8", "甲区新街道", "street", "D1"]]
    refused = run_tree("d1admin", rows)
    assert errors_of(refused) == [
        (2, "无权在 D2 之下添加网格（超出您的管理范围）"),
        (3, "无权新建顶层网格（只有管理整棵网格树的管理员可以），请填写上级编码"),
    ]
    assert not GridNode.select().where(GridNode.code.in_(["S7", "C2", "S8"])).exists()
    allowed = run_tree("root", rows)
    assert allowed.ok and allowed.created == 3
    assert (node("C2").path, node("C2").depth) == ("/C2/", 0)
    assert node("S7").path == "/C1/D2/S7/"


def test_a_person_without_administration_exports_nothing(admins):
    admins.make("wgy", "grid_worker@G1")
    assert sheet_rows(export_tree(who("wgy")[1])) == [TREE_HEADERS]
    assert sheet_rows(export_people(who("wgy")[1])) == [PEOPLE_HEADERS]


# -- file-level errors ------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"not a workbook", b"", b"PK\x03\x04broken zip"])
def test_a_file_that_is_not_xlsx_is_one_file_level_error(admins, content):
    person, scope = who("root")
    for do in (import_tree, import_people):
        result = do(content, person, scope)
        assert [(e.row, e.message[:6]) for e in result.errors] == [(0, "无法打开文件")]


def test_a_zip_that_is_not_a_workbook_is_a_file_level_error(admins):
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "你好")
    result = import_tree(out.getvalue(), *who("root"))
    assert errors_of(result) == [(0, "无法打开文件：请上传 Excel 工作簿（.xlsx），可先下载模板再填写")]


def test_missing_header_columns_are_named(admins):
    result = run_tree("root", [["G8", "新网格", "grid"]], headers=["编码", "名字", "层级"])
    assert errors_of(result) == [(0, "第 1 行的表头缺少列：名称、上级编码；请对照模板")]
    empty = import_people(xlsx([], headers=None, title="人员"), *who("root"))
    assert errors_of(empty) == [(0, "第 1 行的表头缺少列：用户名、姓名、角色、网格编码；请对照模板")]


def test_too_many_rows_is_a_file_level_error(admins, monkeypatch):
    monkeypatch.setattr(sheets.book, "MAX_ROWS", 2)
    rows = [[f"G{n}0", "网格", "grid", "M1"] for n in range(3)]
    assert errors_of(run_tree("root", rows)) == [(0, "数据超过 2 行，请分成几个文件导入")]
    assert run_tree("root", rows[:2]).created == 2


# -- people -----------------------------------------------------------------------------------


def test_people_import_creates_people_with_memberships_who_can_sign_in(admins, monkeypatch):
    hashed = []
    real = sheets.people.hash_password
    monkeypatch.setattr(sheets.people, "hash_password", lambda pw: hashed.append(pw) or real(pw))
    before = counts()
    result = run_people("d1admin", [
        ["zhangsan", "张三", 13800138000, "Zs-grid-2024", "网格员", "G1", None],
        ["zhangsan", None, None, None, "grid_leader", "G2", None],
        ["lisi", "李四", "13800138001", "Shared-pass-1", "部门人员", "S1", "民政"],
        ["lisi", "李四", None, "Shared-pass-1", "department_staff", "M1", "health"],
        ["wangwu", "王五", None, "Shared-pass-1", "社区书记", "M1", ""],
        ["wangwu", "王五", None, None, "社区书记", "M1", None],  # the same membership twice: one
    ])
    assert result.ok, result.errors
    assert (result.created, result.updated) == (3, 0)
    assert sorted(hashed) == ["Shared-pass-1", "Zs-grid-2024"]  # each distinct password hashed once
    assert counts()[1:3] == (before[1] + 3, before[2] + 5)
    zhang = sign_in("zhangsan", "Zs-grid-2024", "127.0.0.1")
    assert (zhang.name, zhang.phone) == ("张三", "13800138000")
    assert sorted((m.role, m.node.code) for m in zhang.memberships) == [("grid_leader", "G2"), ("grid_worker", "G1")]
    li = sign_in("13800138001", "Shared-pass-1", "127.0.0.1")
    assert sorted((m.department, m.node.code) for m in li.memberships) == [("civil_affairs", "S1"), ("health", "M1")]
    assert sign_in("wangwu", "Shared-pass-1", "127.0.0.1").memberships.count() == 1
    entry = AuditEntry.select().order_by(AuditEntry.id.desc()).get()
    assert (entry.action, entry.detail) == ("people_imported", {"created": 3, "updated": 0})


def test_an_existing_person_in_scope_gets_new_memberships_and_a_new_name_but_keeps_the_password(admins):
    admins.make("wgy", "grid_worker@G1")
    before = counts()
    result = run_people("d1admin", [
        ["wgy", "王网格", "13700000000", "ignored-password", "mediator", "M1", None],
        ["wgy", None, None, None, "grid_worker", "G1", None],  # already held
    ])
    assert result.ok, result.errors
    assert (result.created, result.updated) == (0, 1)
    wgy = Person.get(Person.username == "wgy")
    assert (wgy.name, wgy.phone) == ("王网格", "13700000000")
    assert counts()[2] == before[2] + 1
    assert sign_in("wgy", "secret-pass", "127.0.0.1").id == wgy.id  # the password did not change


def test_an_existing_person_with_memberships_outside_the_scope_is_refused(admins):
    admins.make("both", "grid_worker@G1", "grid_worker@G3")
    create_person("loner", "x", password_hash="x")
    before = counts()
    result = run_people("d1admin", [
        ["both", "改名", None, None, "mediator", "M1", None],
        ["loner", "独行", None, None, "mediator", "M1", None],
    ])
    assert errors_of(result) == [
        (2, "账号 both 有您管理范围以外的职务，请联系上级管理员"),
        (3, "账号 loner 没有任何职务，只有管理整棵网格树的管理员可以修改"),
    ]
    assert counts() == before
    assert Person.get(Person.username == "both").name == "both"
    assert run_people("root", [["both", "改名", None, None, "mediator", "M1", None]]).updated == 1


BAD_PEOPLE_ROWS = [
    (["", "无名", None, "Good-pass-1", "网格员", "G1"], "用户名不能为空"),
    (["has space", "空格", None, "Good-pass-1", "网格员", "G1"], "用户名不能为空、不能含空格"),
    (["new1", "", None, "Good-pass-1", "网格员", "G1"], "新账号 new1 须填写姓名"),
    (["new1", "新人", None, "", "网格员", "G1"], "新账号 new1 须填写初始密码"),
    (["new1", "新人", None, "short", "网格员", "G1"], "初始密码不合格：密码至少 8 位"),
    (["newuser1", "新人", None, "NewUser1", "网格员", "G1"], "初始密码不合格：密码不能与用户名相同"),
    (["new1", "新人", "12345", "Good-pass-1", "网格员", "G1"], "手机号 12345 不正确"),
    (["new1", "新人", None, "Good-pass-1", "村长", "G1"], "角色“村长”未配置"),
    (["new1", "新人", None, "Good-pass-1", "网格员", ""], "角色和网格编码须同时填写"),
    (["new1", "新人", None, "Good-pass-1", "", "G1"], "角色和网格编码须同时填写"),
    (["new1", "新人", None, "Good-pass-1", "网格员", "G404"], "网格编码 G404 不存在"),
    (["new1", "新人", None, "Good-pass-1", "网格员", "G2"], "网格 G2 已撤销"),
    (["new1", "新人", None, "Good-pass-1", "网格员", "G3"], "无权在网格 G3 安排职务（超出您的管理范围）"),
    (["new1", "新人", None, "Good-pass-1", "部门人员", "S1"], "部门人员须填写部门"),
    (["new1", "新人", None, "Good-pass-1", "部门人员", "S1", "财政"], "部门“财政”未配置"),
    (["new1", "新人", None, "Good-pass-1", "网格员", "G1", "民政"], "只有角色为部门人员时才填写部门"),
    (["new1", "新人", None, "Good-pass-1", None, None], "没有职务的账号只有根网格管理员可以导入"),
    (["taken", "新人", "13600000000", "Good-pass-1", "网格员", "G1"], "手机号 13600000000 已被其他账号使用"),
    (["good", "其他名字", None, None, "网格长", "G1"], "账号 good 的姓名与第 2 行不一致"),
    (["ok2", "好人二", "13500000000", "Good-pass-1", "网格员", "G1"], "手机号 13500000000 与第 2 行账号 good 的重复"),
]


@pytest.mark.parametrize("bad, message", BAD_PEOPLE_ROWS, ids=[m[:14] for _, m in BAD_PEOPLE_ROWS])
def test_a_bad_people_row_is_reported_at_its_row_and_nothing_is_written(admins, bad, message):
    retire_node(node("G2"))
    admins.make("d1phone", "grid_worker@G1")
    Person.update(phone="13600000000").where(Person.username == "d1phone").execute()
    before = counts()
    result = run_people("d1admin", [["good", "好人", "13500000000", "Good-pass-1", "网格员", "G1", None],
                                    bad + [None] * (7 - len(bad))])
    assert not result.ok
    assert [e.row for e in result.errors] == [3], result.errors
    assert message in result.errors[0].message
    assert result.errors[0].sheet == "人员"
    assert counts() == before
    assert not Person.select().where(Person.username == "good").exists()


def test_the_root_administrator_may_import_a_person_without_memberships(admins):
    result = run_people("root", [["solo", "独立账号", None, "Good-pass-1", None, None, None]])
    assert result.ok and result.created == 1
    assert Person.get(Person.username == "solo").memberships.count() == 0
    rows = sheet_rows(export_people(who("root")[1]))
    assert ["solo", "独立账号", None, None, None, None, None] in rows
    assert "solo" not in [r[0] for r in sheet_rows(export_people(who("d1admin")[1]))]


def test_people_export_lists_memberships_in_scope_with_chinese_names(admins):
    admins.make("mz", "department_staff:civil_affairs@S1", "grid_worker@G1")
    admins.make("west", "grid_worker@G3")
    admins.make("both", "grid_worker@G1", "grid_worker@G3")
    rows = sheet_rows(export_people(who("d1admin")[1]))
    assert rows[0] == PEOPLE_HEADERS
    assert [r for r in rows if r[0] == "mz"] == [["mz", "mz", None, None, "部门人员", "S1", "民政"],  # by path
                                                 ["mz", "mz", None, None, "网格员", "G1", None]]
    assert {r[0] for r in rows[1:]} == {"d1admin", "mz"}  # west and both hold roles outside D1
    assert {r[0] for r in sheet_rows(export_people(who("root")[1]))[1:]} == {"root", "d1admin", "mz", "west", "both"}


def test_a_failure_while_saving_undoes_the_whole_import(admins, monkeypatch):
    calls = []

    def flaky(person, code, role, department=None):
        calls.append(code)
        if len(calls) == 2:
            raise GridError(f"网格编码 {code} 刚刚被撤销")
        return add_membership(person, code, role, department)

    monkeypatch.setattr(sheets.people, "add_membership", flaky)
    before = counts()
    result = run_people("d1admin", [["a1", "甲", None, "Good-pass-1", "网格员", "G1", None],
                                    ["b1", "乙", None, "Good-pass-1", "网格员", "M1", None]])
    assert errors_of(result) == [(3, "网格编码 M1 刚刚被撤销（未导入任何内容）")]
    assert (result.created, result.updated) == (0, 0)
    assert counts() == before


# -- error report and cell safety -------------------------------------------------------------


def test_the_error_report_lists_every_error(admins):
    result = ImportResult(errors=[RowError("网格", 0, "无法打开文件"), RowError("人员", 7, "手机号 1 不正确")])
    rows = sheet_rows(error_report(result), "错误")
    assert rows == [["表", "行号", "错误"], ["网格", None, "无法打开文件"], ["人员", 7, "手机号 1 不正确"]]
    real = run_tree("d1admin", [["G8", "", "grid", "D9"]])
    assert sheet_rows(error_report(real))[1:] == [["网格", 2, "名称不能为空"],
                                                  ["网格", 2, "上级编码 D9 不存在（表中和系统中都没有）"]]


def test_text_that_looks_like_a_formula_is_exported_as_text(admins):
    GridNode.update(name="=HYPERLINK(\"http://x\")").where(GridNode.code == "G1").execute()
    wb = load_workbook(BytesIO(export_tree(who("root")[1])))
    cell = next(row[1] for row in wb.worksheets[0].iter_rows() if row[0].value == "G1")
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://x")', "s")
