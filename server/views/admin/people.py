"""Managing people: find, create, edit, give and take roles, reset passwords, deactivate."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from peewee import JOIN

from ... import auth, grids
from ...db import database
from ...grids import GridError, node_by_code
from ...models import ApiToken, GridNode, Membership, Person
from ...web import admin_required
from . import bp

PAGE = 50


def _membership_paths(person_id: int) -> list[str]:
    return [m.node.path for m in Membership.select(Membership, GridNode).join(GridNode)
            .where(Membership.person == person_id)]


def visible_person(username: str) -> tuple[Person, list[str]]:
    """Return a person this administrator may see (a membership in their subtrees), or 404."""
    person = Person.get_or_none(Person.username == username)
    if person is None:
        abort(404, f"找不到账号 {username}，或它不在您的管理范围内")
    paths = _membership_paths(person.id)
    if not any(g.scope.is_admin_at(p) for p in paths) and not (not paths and g.scope.is_root_admin()):
        abort(404, f"找不到账号 {username}，或它不在您的管理范围内")
    return person, paths


def managed_person(username: str) -> Person:
    """Return a person whose every membership this administrator manages, or 403."""
    person, paths = visible_person(username)
    if not g.scope.can_administer_person(paths):
        abort(403, "该账号有您管理范围以外的职务，请联系上级管理员")
    return person


def people_query(q: str = "", node: GridNode | None = None):
    """People with a membership in this administrator's subtrees (optionally one node's), searched."""
    inside = g.scope.admin_condition(GridNode.path)
    if node is not None:
        inside = grids.in_subtree(GridNode.path, node.path)
    members = (Membership.select(Membership.person).join(GridNode).where(inside))
    where = Person.id.in_(members)
    if node is None and g.scope.is_root_admin():
        where |= Person.id.not_in(Membership.select(Membership.person))
    query = Person.select().where(where)
    if q:
        query = query.where(Person.username.contains(q) | Person.name.contains(q) | Person.phone.contains(q))
    return query


def _done(person: Person, action: str, message: str, **detail):
    """Record a change to a person, say so, and show the person again."""
    auth.audit(g.person, action, person.username, **detail)
    flash(message, "ok")
    return redirect(url_for("admin.person_view", username=person.username))


@bp.get("/people")
@admin_required
def people_list():
    """List and search the people this administrator manages."""
    q = request.args.get("q", "").strip()
    code = request.args.get("grid", "").strip().upper()
    node = None
    if code:
        node = node_by_code(code)
        if node is None or not g.scope.is_admin_at(node.path):
            abort(404, f"找不到网格 {code}，或它不在您的管理范围内")
    page = max(1, request.args.get("page", 1, type=int))
    query = people_query(q, node)
    total = query.count()
    rows = list(query.order_by(Person.username).paginate(page, PAGE))
    roles = {}
    if rows:
        for m in (Membership.select(Membership.person, Membership.role, Membership.department, GridNode.name,
                                    GridNode.path)
                  .join(GridNode, JOIN.INNER).where(Membership.person.in_([p.id for p in rows]))):
            shown = g.scope.is_admin_at(m.node.path)  # roles elsewhere are counted, not named
            roles.setdefault(m.person_id, []).append((m.role, m.department, m.node.name) if shown else None)
    template = "admin/_people_rows.html" if request.headers.get("HX-Request") else "admin/people.html"
    page_html = render_template(template, people=rows, q=q, node=node, page=page, total=total, page_size=PAGE,
                                roles=roles, role_names=grids.role_names(), departments=grids.department_names())
    return page_html, {"Vary": "HX-Request"}


def _grant_options():
    return {"roles": grids.role_names(), "departments": grids.department_names()}


@bp.route("/new-person", methods=["GET", "POST"])  # not /people/new: "new" may be somebody's username
@admin_required
def person_new():
    """Create a person with a first role."""
    form = request.form
    if request.method == "GET":
        return render_template("admin/person_new.html", form={"grid": request.args.get("grid", "")},
                               error=None, **_grant_options())
    code = form.get("grid", "").strip().upper()
    node = node_by_code(code)
    try:
        if node is None or not g.scope.is_admin_at(node.path):
            raise GridError(f"找不到网格 {code}，或它不在您的管理范围内")
        problem = auth.password_problem(form.get("password", ""), form.get("username", ""))
        if problem:
            raise GridError(problem)
        with database.atomic():
            person = auth.create_person(form.get("username", ""), form.get("password", ""),
                                        name=form.get("name"), phone=form.get("phone"))
            auth.add_membership(person, code, form.get("role", ""), form.get("department") or None)
    except GridError as exc:
        return render_template("admin/person_new.html", form=form, error=str(exc), **_grant_options()), 422
    return _done(person, "person_created", f"已创建账号 {person.username}", role=form.get("role"), grid=code)


def _person_page(person: Person, errors: dict | None = None, status: int = 200):
    every = list(Membership.select(Membership, GridNode).join(GridNode)
                 .where(Membership.person == person.id).order_by(GridNode.path))
    manages = g.scope.can_administer_person([m.node.path for m in every])
    memberships = [m for m in every if g.scope.is_admin_at(m.node.path)]  # roles elsewhere: counted only
    tokens = person.tokens.where(ApiToken.revoked_at.is_null()).count()
    return render_template("admin/person.html", person=person, memberships=memberships, manages=manages,
                           elsewhere=len(every) - len(memberships),
                           live_tokens=tokens, errors=errors or {}, levels=grids.level_names(),
                           form=request.form, **_grant_options()), status


@bp.get("/people/<username>")
@admin_required
def person_view(username: str):
    """Show a person with their roles and what may be done."""
    person, _ = visible_person(username)
    return _person_page(person)


@bp.post("/people/<username>/edit")
@admin_required
def person_edit(username: str):
    """Change a person's name and phone."""
    person = managed_person(username)
    try:
        auth.update_person(person, request.form.get("name", ""), request.form.get("phone"))
    except GridError as exc:
        return _person_page(person, {"edit": str(exc)}, 422)
    return _done(person, "person_edited", "已保存")


@bp.post("/people/<username>/memberships")
@admin_required
def membership_add(username: str):
    """Give a person a role at a node this administrator manages."""
    person, _ = visible_person(username)
    code = request.form.get("grid", "").strip().upper()
    node = node_by_code(code)
    try:
        if node is None or not g.scope.is_admin_at(node.path):
            raise GridError(f"找不到网格 {code}，或它不在您的管理范围内")
        auth.add_membership(person, code, request.form.get("role", ""), request.form.get("department") or None)
    except GridError as exc:
        return _person_page(person, {"membership": str(exc)}, 422)
    return _done(person, "membership_added", "已添加职务", role=request.form.get("role"), grid=code)


@bp.post("/people/<username>/memberships/<int:membership_id>/remove")
@admin_required
def membership_remove(username: str, membership_id: int):
    """Take a role away (at a node this administrator manages)."""
    person, _ = visible_person(username)
    membership = (Membership.select(Membership, GridNode).join(GridNode)
                  .where((Membership.id == membership_id) & (Membership.person == person.id)).first())
    if membership is None or not g.scope.is_admin_at(membership.node.path):
        abort(404, "找不到该职务，或它不在您的管理范围内")
    if person.id == g.person.id and membership.role == "admin":
        return _person_page(person, {"membership": "不能取消自己的管理员职务，请由上级管理员操作"}, 422)
    membership.delete_instance()
    return _done(person, "membership_removed", "已取消职务", role=membership.role, grid=membership.node.code)


@bp.post("/people/<username>/password")
@admin_required
def person_reset_password(username: str):
    """Set a new password for somebody; their sessions end at once."""
    person = managed_person(username)
    try:
        auth.reset_password(g.person, person, request.form.get("password", ""))
    except GridError as exc:
        return _person_page(person, {"password": str(exc)}, 422)
    flash(f"已重置 {person.username} 的密码，其已登录的设备需重新登录", "ok")
    return redirect(url_for("admin.person_view", username=username))


@bp.post("/people/<username>/active")
@admin_required
def person_set_active(username: str):
    """Deactivate or reactivate somebody; a deactivated person's sessions and tokens stop at once."""
    person = managed_person(username)
    active = request.form.get("active") == "1"
    try:
        auth.set_active(g.person, person, active)
    except GridError as exc:
        return _person_page(person, {"active": str(exc)}, 422)
    flash(f"已{'启用' if active else '停用'}账号 {person.username}", "ok")
    return redirect(url_for("admin.person_view", username=username))

