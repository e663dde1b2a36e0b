"""The `gridflow` command: init-db, load, check, demo, serve, user, token, grid, level, role, department."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup

from . import create_app


def _default_paths() -> list[Path]:
    return [Path(p) for p in current_app.config["DEFINITIONS"].split(":") if p and Path(p).exists()]


def _configured_levels_and_roles() -> tuple[list[str] | None, list[str] | None]:
    """Return the levels and roles configured in the database, or (None, None) for the defaults."""
    from peewee import PeeweeException

    from .grids import level_keys, role_keys

    try:
        return level_keys() or None, role_keys() or None
    except PeeweeException:
        return None, None


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main():
    """gridflow：党建引领网格化治理的表单与流程服务。"""


def _change(change):
    """Run a change in a transaction, turning a refusal (GridError) into a clean error; return its result."""
    from .db import database
    from .grids import GridError

    try:
        with database.atomic():
            return change()
    except GridError as exc:
        raise click.ClickException(str(exc)) from None


def _person(username: str):
    """Return the person with this username, or stop with a clean error."""
    from .models import Person

    person = Person.get_or_none(Person.username == username)
    if person is None:
        raise click.ClickException(f"用户 {username} 不存在")
    return person


@main.command("init-db")
def init_db():
    """Create or upgrade the database schema and the default levels and roles."""
    from .db import database, migrate_schema
    from .grids import seed_configuration

    applied = migrate_schema()
    with database.atomic():
        seed_configuration()
    if applied:
        click.echo("已应用迁移：" + "、".join(applied))
    else:
        click.echo("数据库结构已是最新")


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def check(paths):
    """Check definition files or folders (default: forms/ and flows/); non-zero exit on problems."""
    from .definitions.check import check_sources
    from .definitions.files import read_sources

    paths = list(paths) or _default_paths()
    if not paths:
        raise click.ClickException("没有找到要检查的定义：请给出文件或文件夹，或在含 forms/ 与 flows/ 的目录中运行")
    sources, problems = read_sources(paths)
    if not sources and not problems:
        raise click.ClickException("给出的路径中没有任何 .json 定义文件")
    kinds = {s.kind for s in sources}
    levels, roles = _configured_levels_and_roles()
    problems += check_sources(sources, check_flow_refs=kinds == {"form", "flow"}, levels=levels, roles=roles)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"发现 {len(problems)} 个问题（共检查 {len(sources)} 个定义）", err=True)
        sys.exit(1)
    click.echo(f"{len(sources)} 个定义全部通过检查")


@main.command("load")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def load(paths):
    """Load definition files or folders (default: forms/ and flows/); unchanged ones stay as they are."""
    from .definitions.versions import load_paths

    loaded, problems = load_paths(list(paths) or _default_paths())
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"发现 {len(problems)} 个问题，未载入任何定义", err=True)
        sys.exit(1)
    names = {"form": "表单", "flow": "流程"}
    for item in loaded:
        state = "新版本" if item.created else "未变化"
        click.echo(f"{names[item.kind]} {item.key} 版本 {item.version}（{state}）")


@main.command("demo")
@click.option("--password", default="gridflow", show_default=True, help="Password of every demo account.")
@click.option("--history", default=300, show_default=True, type=click.IntRange(0, 100_000),
              help="Past cases over the last year, handled through their flows (0: none).")
def demo(password, history):
    """Build the demo city: grid tree, people for every role, tokens, sample and past submissions."""
    from . import stats
    from .demo import build_demo, print_logins

    result = build_demo(password, history)
    if result.history:
        stats.rebuild(*stats.settings()[:2])
    print_logins(result, password)


@main.command("export")
@click.option("--to", "target", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder that holds forms/ and flows/.")
def export(target):
    """Write the newest published forms and flows back to forms/ and flows/ (for version control)."""
    from pathlib import Path

    from .definitions.versions import export_definitions

    written = 0
    for path, changed in export_definitions(Path(target)):
        written += changed
        click.echo(f"{'已写入' if changed else '未改变'} {path}")
    click.echo(f"共 {written} 个文件有变化")


@main.command("sweep")
@click.option("--now", "now_text", default=None, help="Pretend it is this time (ISO 8601), e.g. to test deadlines.")
def sweep(now_text):
    """Apply passed deadlines: mark overdue tasks, remind, escalate (safe to run from several processes)."""
    from datetime import datetime

    from .models import utcnow
    from .store import sweep as run_sweep

    now = utcnow()
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.ClickException(f"--now 须为 ISO 8601 时间，如 2026-10-09T09:00:00+08:00：{now_text}") from None
        if now.tzinfo is None:
            raise click.ClickException("--now 须带时区，如 2026-10-09T09:00:00+08:00")
    total = 0
    while True:
        changed = run_sweep(current_app.config["TIMEZONE"], now)
        total += changed
        if changed == 0:
            break
    from . import stats

    months = stats.refresh(*stats.settings()[:2])
    click.echo(f"已处理 {total} 个案件的到期事项；已更新 {len(months)} 个月的统计")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Use Flask's development server with reloading.")
def serve(host, port, debug):
    """Serve the application (gunicorn; the development server with --debug)."""
    if debug:
        from .store import start_timer

        start_timer(current_app._get_current_object())
        current_app.run(host=host, port=port, debug=True)
        return
    from .serving import serve_gunicorn

    serve_gunicorn(host, port, current_app.config["WORKERS"], current_app.config["THREADS"])


@main.group("user")
def user():
    """Manage people."""


@user.command("create")
@click.argument("username")
@click.option("--password", required=True, help="The person's password.")
@click.option("--name", default=None, help="Display name (default: the username).")
@click.option("--phone", default=None, help="Mobile number, usable as a login.")
@click.option("--role", "roles", multiple=True, metavar="ROLE@GRIDCODE",
              help="A role at a grid node, e.g. admin@450900; department staff name the department, "
                   "e.g. department_staff:civil_affairs@450902; repeat for several.")
def user_create(username, password, name, phone, roles):
    """Create a person with roles at grid nodes (how the first administrator is made)."""
    from .auth import add_membership, create_person, password_problem

    problem = password_problem(password, username)
    if problem:
        raise click.BadParameter(problem, param_hint="--password")
    grants = []
    for spec in roles:
        role, sep, code = spec.partition("@")
        if not sep or not role or not code:
            raise click.BadParameter(f"{spec}：应写作 角色@网格编码，如 admin@450900", param_hint="--role")
        role, _, department = role.partition(":")
        grants.append((role, code, department or None))
    def create():
        person = create_person(username, password, name=name, phone=phone)
        for role, code, department in grants:
            add_membership(person, code, role, department)

    _change(create)
    click.echo(f"已创建用户 {username}" + (f"，角色：{'、'.join(roles)}" if roles else ""))


@main.group("token")
def token():
    """Manage API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="A label to recognise the token by.")
def token_create(username, name):
    """Create an API token for a person and print it alone (it is shown only once)."""
    from .auth import create_token

    person = _person(username)
    if not person.active:
        raise click.ClickException(f"用户 {username} 已停用")
    click.echo(create_token(person, name))


@token.command("list")
@click.argument("username")
def token_list(username):
    """List a person's tokens: id, first characters, label, created, revoked."""
    from .models import ApiToken

    person = _person(username)
    for t in ApiToken.select().where(ApiToken.person == person.id).order_by(ApiToken.id):
        state = f"已撤销 {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "有效"
        click.echo(f"{t.id}\t{t.prefix}…\t{t.name}\t{t.created_at:%Y-%m-%d %H:%M}\t{state}")


@token.command("revoke")
@click.argument("username")
@click.argument("token_id", type=int)
def token_revoke(username, token_id):
    """Revoke one of a person's tokens (by the id `token list` shows); it stops working at once."""
    from .auth import audit, revoke_token

    person = _person(username)
    if not revoke_token(person, token_id):
        raise click.ClickException(f"用户 {username} 没有编号为 {token_id} 的有效令牌")
    audit(None, "token_revoked", username, token=token_id, via="cli")
    click.echo(f"已撤销令牌 {token_id}")


@main.group("grid")
def grid():
    """Manage the grid tree."""


@grid.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--level", required=True, help="Level key, e.g. city, district, street, community, grid, micro.")
@click.option("--parent", default=None, help="Code of the parent node (omit for a root).")
def grid_add(code, name, level, parent):
    """Add a grid node (the root of a real install, or a node under a parent)."""
    from .grids import GridError, create_node, node_by_code

    def add():
        above = node_by_code(parent) if parent else None
        if parent and above is None:
            raise GridError(f"上级网格 {parent} 不存在")
        return create_node(code, name, level, above)

    node = _change(add)
    click.echo(f"已添加网格 {node.name}（{node.code}，{level}）")


@main.group("level")
def level():
    """Configure the levels of the grid tree (市, 区, 街道 … or 乡, 村, 片区 …)."""


@level.command("list")
def level_list():
    """List the levels, top down: key, depth and name."""
    from .models import Level

    for row in Level.select().order_by(Level.depth):
        click.echo(f"{row.depth}\t{row.key}\t{row.name}")


@level.command("set")
@click.argument("key")
@click.argument("name")
@click.option("--depth", type=int, default=None, help="0 is the top level; required for a new level.")
def level_set(key, name, depth):
    """Add a level, or rename it (its depth changes only while no node uses it)."""
    from .grids import set_level

    _change(lambda: set_level(key, name, depth))
    click.echo(f"层级 {key}：{name}")


@level.command("remove")
@click.argument("key")
def level_remove(key):
    """Remove a level that no node uses."""
    from .grids import remove_level

    _change(lambda: remove_level(key))
    click.echo(f"已删除层级 {key}")


@main.group("role")
def role():
    """Configure roles: their names, and whether they administer or see sensitive fields."""


@role.command("list")
def role_list():
    """List the roles: key, name, and what they allow."""
    from .models import Role

    for row in Role.select().order_by(Role.key):
        flags = [label for label, on in (("管理", row.is_admin), ("敏感字段", row.sees_sensitive)) if on]
        click.echo(f"{row.key}\t{row.name}\t{'、'.join(flags) or '-'}")


@role.command("set")
@click.argument("key")
@click.argument("name")
@click.option("--admin/--no-admin", default=None, help="Administers the subtree where it is held.")
@click.option("--sensitive/--no-sensitive", default=None, help="Sees sensitive fields in full (each view logged).")
def role_set(key, name, admin, sensitive):
    """Add a role or change its name and what it allows."""
    from .grids import set_role

    _change(lambda: set_role(key, name, admin, sensitive))
    click.echo(f"角色 {key}：{name}")


@main.group("department")
def department():
    """Configure the departments whose staff serve a subtree (公安, 民政 …)."""


@department.command("list")
def department_list():
    """List the departments: key and name."""
    from .models import Department

    for row in Department.select().order_by(Department.key):
        click.echo(f"{row.key}\t{row.name}")


@department.command("set")
@click.argument("key")
@click.argument("name")
def department_set(key, name):
    """Add a department or rename it."""
    from .grids import set_department

    _change(lambda: set_department(key, name))
    click.echo(f"部门 {key}：{name}")
