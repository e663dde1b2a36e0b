"""The `gridflow` command: init-db, load, user create, token create and demo, run through Click."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from server import ROOT, create_app
from server.auth import person_for_token, verify_password
from server.cli import main
from server.db import database, sqlite_url
from server.definitions.versions import canonical, form_version, latest_form
from server.models import (
    ApiToken,
    Event,
    Flow,
    FlowVersion,
    Form,
    FormVersion,
    GridNode,
    Level,
    Membership,
    Person,
    Role,
    Submission,
)

from .conftest import fixture_path

FIXTURES = fixture_path("visit_form.json").parent


def run(runner, *args):
    return runner.invoke(main, [str(a) for a in args])


def ok(result) -> None:
    assert result.exit_code == 0, (result.output, result.exception)


# -- init-db ----------------------------------------------------------------------------------

@pytest.fixture
def fresh_app(tmp_path):
    """An application on an empty SQLite file: no tables yet."""
    app = create_app({"TESTING": True, "DATABASE_URL": sqlite_url(tmp_path / "fresh.db"),
                      "SECRET_KEY": "test-secret", "INSTANCE_PATH": str(tmp_path / "instance")})
    with app.app_context():
        yield app
    if not database.is_closed():
        database.close()


def test_init_db_creates_the_schema_then_has_nothing_to_do(fresh_app):
    runner = fresh_app.test_cli_runner()
    first = run(runner, "init-db")
    ok(first)
    assert first.stdout.startswith("已应用迁移：") and "0001" in first.stdout
    assert (Level.select().count(), Role.select().count()) == (6, 9)
    second = run(runner, "init-db")
    ok(second)
    assert second.stdout.strip() == "数据库结构已是最新"
    assert (Level.select().count(), Role.select().count()) == (6, 9)


def test_init_db_on_a_current_database_changes_nothing(runner, tree):
    counts = (Level.select().count(), Role.select().count(), GridNode.select().count())
    for _ in range(2):
        result = run(runner, "init-db")
        ok(result)
        assert result.stdout.strip() == "数据库结构已是最新"
    assert (Level.select().count(), Role.select().count(), GridNode.select().count()) == counts


# -- load -------------------------------------------------------------------------------------

def test_load_stores_the_fixture_definitions(runner):
    result = run(runner, "load", FIXTURES)
    ok(result)
    assert result.stdout.splitlines() == ["流程 test_flow 版本 1（新版本）", "表单 test_visit 版本 1（新版本）"]
    assert [f.key for f in Form.select()] == ["test_visit"] and [f.key for f in Flow.select()] == ["test_flow"]
    assert latest_form("test_visit").version == 1


def test_second_load_reports_unchanged_and_stores_no_version(runner):
    ok(run(runner, "load", FIXTURES))
    again = run(runner, "load", FIXTURES)
    ok(again)
    assert again.stdout.splitlines() == ["流程 test_flow 版本 1（未变化）", "表单 test_visit 版本 1（未变化）"]
    assert (FormVersion.select().count(), FlowVersion.select().count()) == (1, 1)


def _copy_fixtures(tmp_path) -> Path:
    folder = tmp_path / "defs"
    shutil.copytree(FIXTURES, folder)
    return folder


def _edit(path: Path, change) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return doc


def test_editing_a_file_makes_version_2_and_version_1_stays_readable(runner, tmp_path):
    folder = _copy_fixtures(tmp_path)
    original = json.loads((folder / "visit_form.json").read_text(encoding="utf-8"))
    ok(run(runner, "load", folder))

    def add_field(doc):
        doc["title"] = "测试走访（第二版）"
        doc["schema"]["properties"]["floor"] = {"type": "integer", "title": "楼层", "minimum": 1}

    edited = _edit(folder / "visit_form.json", add_field)
    result = run(runner, "load", folder)
    ok(result)
    assert result.stdout.splitlines() == ["流程 test_flow 版本 1（未变化）", "表单 test_visit 版本 2（新版本）"]
    v1, v2 = form_version("test_visit", 1), form_version("test_visit", 2)
    assert v1.definition == canonical(original) and "floor" not in v1.definition["schema"]["properties"]
    assert v2.definition == canonical(edited) and latest_form("test_visit").version == 2
    assert v1.content_hash != v2.content_hash
    assert Form.get(Form.key == "test_visit").title == "测试走访（第二版）"
    assert FlowVersion.select().count() == 1


def test_adding_only_a_schema_pointer_is_not_a_new_version(runner, tmp_path):
    folder = _copy_fixtures(tmp_path)
    ok(run(runner, "load", folder))
    _edit(folder / "visit_form.json", lambda doc: doc.update({"$schema": "../schemas/form.schema.json"}))
    result = run(runner, "load", folder)
    ok(result)
    assert "表单 test_visit 版本 1（未变化）" in result.stdout.splitlines()
    assert FormVersion.select().count() == 1


BROKEN = {
    "bad_json.json": lambda path: path.write_text('{"key": "broken", "title": "坏"', encoding="utf-8"),
    "no_title.json": lambda path: path.write_text(json.dumps(
        {"key": "no_title", "schema": {"type": "object", "properties": {}}}), encoding="utf-8"),
    "unknown_flow.json": lambda path: path.write_text(json.dumps(
        {"key": "lost", "title": "无流程", "flow": "no_such_flow",
         "schema": {"type": "object", "properties": {"a": {"type": "string", "title": "甲"}}}},
        ensure_ascii=False), encoding="utf-8"),
    "neither.json": lambda path: path.write_text('{"key": "x", "title": "既非表单也非流程"}', encoding="utf-8"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_load_stores_nothing_when_one_file_has_a_problem(runner, tmp_path, name):
    folder = _copy_fixtures(tmp_path)
    BROKEN[name](folder / name)
    result = run(runner, "load", folder)
    assert result.exit_code != 0
    assert name in result.stderr and "未载入任何定义" in result.stderr
    assert "新版本" not in result.stdout
    assert (Form.select().count(), FormVersion.select().count()) == (0, 0)
    assert (Flow.select().count(), FlowVersion.select().count()) == (0, 0)


def test_load_of_a_missing_path_fails(runner, tmp_path):
    result = run(runner, "load", FIXTURES, tmp_path / "nowhere")
    assert result.exit_code != 0
    assert "nowhere" in result.stderr and "不存在" in result.stderr
    assert Form.select().count() == 0


# -- user create ------------------------------------------------------------------------------

def test_user_create_makes_the_person_and_membership(runner, tree):
    result = run(runner, "user", "create", "admin2", "--password", "pass-word-1", "--role", "admin@C1")
    ok(result)
    assert "admin2" in result.stdout
    person = Person.get(Person.username == "admin2")
    assert verify_password(person, "pass-word-1") and not verify_password(person, "q")
    assert [(m.role, m.node.code) for m in person.memberships] == [("admin", "C1")]


def test_user_create_with_several_roles(runner, tree):
    ok(run(runner, "user", "create", "multi", "--password", "pass-word-1", "--name", "王芳", "--phone", "13800138000",
           "--role", "grid_worker@G1", "--role", "mediator@M1"))
    person = Person.get(Person.username == "multi")
    assert (person.name, person.phone) == ("王芳", "13800138000")
    assert sorted((m.role, m.node.code) for m in person.memberships) == [("grid_worker", "G1"), ("mediator", "M1")]


@pytest.mark.parametrize("spec", ["admin", "admin@", "@C1", "adminC1"])
def test_user_create_with_a_malformed_role_spec_is_refused(runner, tree, spec):
    result = run(runner, "user", "create", "admin2", "--password", "pass-word-1", "--role", spec)
    assert result.exit_code == 2
    assert "角色@网格编码" in result.output
    assert not Person.select().where(Person.username == "admin2").exists()


@pytest.mark.parametrize("roles, message", [
    (["admin@NOPE"], "网格编码 NOPE 不存在"),
    (["boss@C1"], "角色 boss 未配置"),
    (["admin@C1", "admin@NOPE"], "网格编码 NOPE 不存在"),
])
def test_user_create_with_unknown_grid_or_role_creates_nothing(runner, tree, roles, message):
    args = [a for spec in roles for a in ("--role", spec)]
    result = run(runner, "user", "create", "admin2", "--password", "pass-word-1", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert not Person.select().where(Person.username == "admin2").exists()
    assert Membership.select().count() == 0


def test_user_create_refuses_an_existing_username(runner, tree):
    ok(run(runner, "user", "create", "admin2", "--password", "pass-word-1", "--role", "admin@C1"))
    result = run(runner, "user", "create", "admin2", "--password", "other-pass-2", "--role", "admin@D1")
    assert result.exit_code == 1 and "已存在" in result.stderr
    person = Person.get(Person.username == "admin2")
    assert verify_password(person, "pass-word-1")
    assert [m.node.code for m in person.memberships] == ["C1"]


# -- token create -----------------------------------------------------------------------------

def test_token_create_prints_the_token_alone_and_it_works(runner, client, tree):
    ok(run(runner, "user", "create", "admin2", "--password", "pass-word-1", "--role", "admin@C1"))
    result = run(runner, "token", "create", "admin2")
    ok(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout == lines[0] + "\n"
    token = lines[0]
    assert re.fullmatch(r"gf_[A-Za-z0-9_-]{20,}", token)
    assert person_for_token(token).username == "admin2"
    response = client.get("/api/v1/grids", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert [item["code"] for item in response.get_json()["items"]] == ["C1"]


def test_each_token_create_makes_a_new_token(runner, tree):
    ok(run(runner, "user", "create", "admin2", "--password", "pass-word-1", "--role", "admin@C1"))
    first, second = (run(runner, "token", "create", "admin2").stdout.strip() for _ in range(2))
    assert first != second
    assert person_for_token(first) == person_for_token(second) == Person.get(Person.username == "admin2")
    assert not ApiToken.select().where(ApiToken.token_hash == first).exists()  # stored only hashed


def test_token_create_for_an_unknown_or_inactive_person_fails(runner, tree):
    unknown = run(runner, "token", "create", "nobody")
    assert unknown.exit_code == 1 and unknown.stdout == "" and "nobody" in unknown.stderr
    ok(run(runner, "user", "create", "gone", "--password", "pass-word-1"))
    Person.update(active=False).where(Person.username == "gone").execute()
    inactive = run(runner, "token", "create", "gone")
    assert inactive.exit_code == 1 and inactive.stdout == "" and "停用" in inactive.stderr
    assert ApiToken.select().count() == 0


# -- demo -------------------------------------------------------------------------------------

def _counts() -> dict:
    return {m.__name__: m.select().count() for m in (GridNode, Person, Membership, Submission, Event, Form,
                                                      FormVersion, Flow, FlowVersion)}


@pytest.fixture
def demo(runner, shipped):
    """Run `gridflow demo` after loading the shipped definitions (as `make run` does; the past cases
    of `--history` are tested in test_demo_history.py)."""
    result = run(runner, "demo", "--history", 0)
    ok(result)
    return result


def _children(node: GridNode, level: str) -> list[GridNode]:
    return list(GridNode.select().where((GridNode.parent == node) & (GridNode.level == level)))


def test_demo_builds_a_city_of_districts_streets_communities_and_grids(demo):
    [root] = GridNode.select().where(GridNode.parent.is_null())
    assert root.level == "city"
    districts = _children(root, "district")
    assert len(districts) >= 2
    for district in districts:
        streets = _children(district, "street")
        assert len(streets) >= 3, district.code
        for street in streets:
            communities = _children(street, "community")
            assert len(communities) >= 4, street.code
            for community in communities:
                assert len(_children(community, "grid")) >= 5, community.code
    micro = list(GridNode.select().where(GridNode.level == "micro"))
    assert micro and all(m.parent.level == "grid" for m in micro)
    assert all(n.path == n.parent.path + n.code + "/" for n in GridNode.select() if n.parent_id)


def test_demo_has_people_for_every_role_and_admin_at_the_root(demo):
    roles = {m.role for m in Membership.select(Membership.role)}
    assert roles >= {r.key for r in Role.select()}
    [root] = GridNode.select().where(GridNode.parent.is_null())
    admin = Person.get(Person.username == "admin")
    assert ("admin", root.code) in {(m.role, m.node.code) for m in admin.memberships}
    assert verify_password(admin, "gridflow")


def test_demo_prints_tokens_that_work(demo, client):
    tokens = re.findall(r"gf_[A-Za-z0-9_-]+", demo.stdout)
    assert tokens
    owners = {person_for_token(t).username for t in tokens if person_for_token(t) is not None}
    assert len(owners) == len(tokens) and "admin" in owners
    admin_token = next(t for t in tokens if person_for_token(t).username == "admin")
    response = client.get("/api/v1/grids", headers={"Authorization": f"Bearer {admin_token}"})
    [root] = GridNode.select().where(GridNode.parent.is_null())
    assert response.status_code == 200
    assert [item["code"] for item in response.get_json()["items"]] == [root.code]


def test_demo_twice_duplicates_nothing(demo, runner):
    before = _counts()
    again = run(runner, "demo")
    ok(again)
    assert _counts() == before
    admin = Person.get(Person.username == "admin")
    live = ApiToken.select().where((ApiToken.person == admin) & ApiToken.revoked_at.is_null())
    assert live.count() == 1
    [token] = [t for t in re.findall(r"gf_[A-Za-z0-9_-]+", again.stdout)
               if (p := person_for_token(t)) is not None and p.username == "admin"]
    assert person_for_token(token) == admin


def test_demo_has_sample_submissions_of_each_shipped_form(demo):
    shipped_keys = {json.loads(p.read_text(encoding="utf-8"))["key"] for p in (ROOT / "forms").glob("*.json")}
    assert shipped_keys
    per_form = {key: Submission.select().where(Submission.form == key).count() for key in shipped_keys}
    assert all(per_form.values()), per_form
    for case in Submission.select():
        assert case.form_version.version == case.version and case.form_version.form.key == case.form
        assert Event.select().where(Event.submission == case).exists()


def test_check_with_nothing_to_check_fails(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(runner, "check")
    assert result.exit_code != 0
    assert "没有找到要检查的定义" in result.output
    (tmp_path / "empty").mkdir()
    result = run(runner, "check", tmp_path / "empty")
    assert result.exit_code != 0
    assert "没有任何 .json 定义文件" in result.output
