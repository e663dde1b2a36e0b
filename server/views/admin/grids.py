"""Managing the grid tree: browse, search, add, rename, move, retire and restore nodes."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for

from ... import auth, cases, grids
from ...errors import Refusal
from ...grids import GridError, node_by_code
from ...models import GridNode, Level, Membership
from ...web import admin_required
from . import bp


def administered(code: str) -> GridNode:
    """Return a node this administrator manages, or 404 (nodes elsewhere are not revealed)."""
    node = node_by_code(code)
    if node is None or not g.scope.is_admin_at(node.path):
        abort(404, f"找不到网格 {code}，或它不在您的管理范围内")
    return node


def _figure(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise GridError(f"{'户数' if name == 'households' else '人口'}应为不小于 0 的整数")
    return int(raw)


def _done(node: GridNode, action: str, message: str, **detail):
    """Record a change to a node, say so, and show the node again."""
    auth.audit(g.person, action, node.code, **detail)
    flash(message, "ok")
    return redirect(url_for("admin.grid_view", code=node.code))


@bp.get("/grids")
@admin_required
def grid_list():
    """Search the nodes this administrator manages, or show the top ones."""
    q = request.args.get("q", "").strip()
    if q:
        nodes = grids.search_nodes(q, g.scope.admin_paths)
    else:
        nodes = list(GridNode.select(*grids.NODE_COLUMNS).where(GridNode.path.in_(g.scope.admin_paths))
                     .order_by(GridNode.path))
    template = "admin/_grid_rows.html" if request.headers.get("HX-Request") else "admin/grids.html"
    return render_template(template, nodes=nodes, q=q, levels=grids.level_names()), {"Vary": "HX-Request"}


def _node_page(node: GridNode, errors: dict | None = None, status: int = 200):
    ancestors = {n.code: n for n in GridNode.select(*grids.NODE_COLUMNS).where(
        GridNode.code.in_(grids.ancestor_codes(node)))}
    crumbs = [ancestors[c] for c in grids.ancestor_codes(node) if c in ancestors]
    depth = {lvl.key: lvl.depth for lvl in Level.select()}
    child_levels = [(k, v) for k, v in grids.level_names().items() if depth[k] > depth.get(node.level, 99)]
    return render_template(
        "admin/grid.html", node=node, crumbs=crumbs, children=grids.children(node, include_retired=True),
        levels=grids.level_names(), child_levels=child_levels, open_cases=grids.open_cases_below(node),
        staff=Membership.select().where(Membership.node == node.id).count(), errors=errors or {},
        form=request.form), status


@bp.get("/grids/<code>")
@admin_required
def grid_view(code: str):
    """Show a node: its place, figures, children, and what may be done with it."""
    return _node_page(administered(code))


@bp.post("/grids/<code>/edit")
@admin_required
def grid_edit(code: str):
    """Rename a node and change its figures."""
    node = administered(code)
    try:
        grids.rename_node(node, request.form.get("name", ""), _figure("households"), _figure("population"))
    except GridError as exc:
        return _node_page(node, {"edit": str(exc)}, 422)
    return _done(node, "grid_renamed", f"已保存 {node.name}", name=node.name)


@bp.post("/grids/<code>/children")
@admin_required
def grid_add_child(code: str):
    """Add a node under this one."""
    parent = administered(code)
    if parent.retired_at is not None:
        return _node_page(parent, {"add": "已撤销的网格下不能添加下级"}, 422)
    form = request.form
    try:
        node = grids.create_node(form.get("code", "").strip().upper(), form.get("name", "").strip(),
                                 form.get("level", ""), parent, households=_figure("households"),
                                 population=_figure("population"))
    except GridError as exc:
        return _node_page(parent, {"add": str(exc)}, 422)
    return _done(node, "grid_added", f"已添加 {node.name}（{node.code}）", parent=parent.code)


@bp.post("/grids/<code>/move")
@admin_required
def grid_move(code: str):
    """Move this node and its subtree under another parent."""
    node = administered(code)
    if node.path in g.scope.admin_paths:
        return _node_page(node, {"move": "这是您管理范围的顶层网格，请由上级管理员移动"}, 422)
    target_code = request.form.get("parent", "").strip().upper()
    target = node_by_code(target_code)
    if target is None or not g.scope.is_admin_at(target.path):
        return _node_page(node, {"move": f"找不到上级网格 {target_code}，或它不在您的管理范围内"}, 422)
    old_parent = grids.ancestor_codes(node)[-1:] or [None]
    try:
        moved = grids.move_node(node, target)
    except GridError as exc:
        return _node_page(node, {"move": str(exc)}, 422)
    return _done(node, "grid_moved", f"已把 {node.name} 及其下级共 {moved} 个网格移到 {target.name} 之下",
                 old_parent=old_parent[0], new_parent=target.code, nodes=moved)


@bp.post("/grids/<code>/retire")
@admin_required
def grid_retire(code: str):
    """Retire a node and its subtree, once no open case is left there."""
    node = administered(code)
    if node.path in g.scope.admin_paths:
        return _node_page(node, {"retire": "这是您管理范围的顶层网格，请由上级管理员撤销"}, 422)
    try:
        count = grids.retire_node(node)
    except GridError as exc:
        return _node_page(node, {"retire": str(exc)}, 422)
    return _done(node, "grid_retired", f"已撤销 {node.name} 及其下级共 {count} 个网格", nodes=count)


@bp.post("/grids/<code>/restore")
@admin_required
def grid_restore(code: str):
    """Bring a retired node back into service."""
    node = administered(code)
    try:
        grids.restore_node(node)
    except GridError as exc:
        return _node_page(node, {"retire": str(exc)}, 422)
    return _done(node, "grid_restored", f"已恢复 {node.name}")


@bp.post("/grids/<code>/cases/move")
@admin_required
def grid_move_cases(code: str):
    """Hand the open cases of this subtree to another node, so it can be retired."""
    node = administered(code)
    target_code = request.form.get("target", "").strip().upper()
    target = node_by_code(target_code)
    if target is None or not g.scope.is_admin_at(target.path):
        return _node_page(node, {"cases": f"找不到网格 {target_code}，或它不在您的管理范围内"}, 422)
    try:
        moved = cases.move_open_cases(g.person, node, target)
    except Refusal as exc:
        return _node_page(node, {"cases": exc.message}, 422)
    return _done(node, "cases_moved", f"已把 {moved} 件未办结案件移交到 {target.name}", to=target.code, cases=moved)
