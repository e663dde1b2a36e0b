"""The flow editor: the diagram, each step's settings as forms, check findings, drafts and publishing."""

from __future__ import annotations

import copy
import json

from flask import abort, flash, g, redirect, render_template, request, url_for

from ... import auth
from ...definitions import drafts, flowedit, overlays
from ...definitions.builder import OPERATORS, BuildError, condition_fields, value_choices
from ...definitions.diagram import flow_svg
from ...definitions.versions import latest_flow, latest_flows, latest_forms
from ...grids import department_names, level_names, role_names
from ...models import DefinitionDraft, Flow
from ...web import admin_required
from . import bp
from .builder import (
    STALE,
    _draft,
    _my_grids,
    _start_of,
    conflict_notes,
    discard_draft,
    parse_definition,
    target_for,
    version_history,
    withdraw_adaptation,
)


def fields_form(key: str, flow: dict) -> dict:
    """A form-like view of the data a flow's conditions look at: its forms' fields and its step forms'."""
    props: dict = {}
    ui: dict = {}
    for version in latest_forms():
        if version.definition.get("flow") == key:
            props.update(version.definition["schema"].get("properties") or {})
            ui.update({k: v for k, v in (version.definition.get("ui") or {}).items() if not k.startswith("ui:")})
    for node in (flow.get("nodes") or {}).values():
        forms = [node.get("form")] + [a.get("form") for a in node.get("actions") or []]
        for form in forms:
            if isinstance(form, dict):
                props.update((form.get("schema") or {}).get("properties") or {})
    return {"schema": {"type": "object", "properties": props}, "ui": ui}


def _state(target, draft, node: str | None = None, errors=None, json_text=None, json_errors=None, panel_error=None):
    doc = draft.definition
    nodes = doc.get("nodes") or {}
    node = node if node in nodes else None
    try:
        settings = flowedit.node_settings(doc, node) if node else None
    except BuildError:
        settings = None
    facts = fields_form(target.key, doc)

    def link(ident: str) -> str:
        return url_for("admin.flow_edit", node=ident, **target.args)

    return dict(
        target=target, draft=draft, doc=doc, nodes=nodes, node=node, settings=settings,
        svg=flow_svg(doc, current=[node] if node else [], link=link), findings=drafts.problems("flow", doc),
        errors=errors or [], json_text=json_text or drafts.text_of(doc), json_errors=json_errors or [],
        panel_error=panel_error, conflicts=conflict_notes(target), types=flowedit.NODE_TYPES,
        modes=flowedit.MODES, who=flowedit.WHO, timeouts=flowedit.TIMEOUTS, action_kinds=flowedit.ACTION_KINDS,
        comments=flowedit.COMMENTS, outcomes=flowedit.OUTCOMES, units=flowedit.UNITS,
        roles=role_names(), levels=level_names(), departments=department_names(),
        forms=[(v.form.key, v.form.title) for v in latest_forms()], cond_fields=condition_fields(facts),
        operators=OPERATORS, value_choices=value_choices, base=latest_flow(target.key),
    )


BLANK_WHO = {"who": "role", "value": "", "level": "", "role": ""}


def _editor(target, draft, node=None, status=200, pending: str | None = None, **extra):
    """Answer with the whole editor; `pending` shows a just-added row (saved once it is filled in)."""
    state = _state(target, draft, node, **extra)
    settings = state["settings"]
    if pending and settings is not None:
        if pending == "conditions":
            settings.setdefault("conditions", []).append({"to": "", "when": None, "visits": None})
        elif pending in ("assignees", "to"):
            settings.setdefault(pending, []).append(dict(BLANK_WHO))
        elif pending == "fallback" and not settings.get("fallback"):
            settings["fallback"] = {**BLANK_WHO, "who": request.form.get("fb_who") or "role"}
    return render_template("admin/flows/_editor.html", **state), status


def _save(target, draft, doc, node, pending: str | None = None):
    try:
        draft = drafts.save(draft, doc, g.person, _revision())
    except drafts.Stale:
        draft = drafts.find("flow", target.key, target.scope) or draft
        return _editor(target, draft, node, 409, errors=[STALE])
    return _editor(target, draft, node, pending=pending)


def _revision() -> int | None:
    raw = request.form.get("_rev", "")
    return int(raw) if raw.isdigit() else None


# -- pages --------------------------------------------------------------------------------------

@bp.get("/flows")
@admin_required
def flows():
    """List the flows with their diagrams, drafts and the adaptations in this administrator's area."""
    versions = latest_flows()
    within = g.scope.admin_paths
    return render_template("admin/flows/index.html", versions=versions,
                           adapted={v.flow.key: overlays.adaptations("flow", v.flow.key, within) for v in versions},
                           drafts=list(DefinitionDraft.select().where(DefinitionDraft.kind == "flow")),
                           conflicts=[a for a in overlays.conflicts(within) if a.kind == "flow"],
                           root=g.scope.is_root_admin(), my_grids=_my_grids(),
                           items=[(v.flow.key, v.flow.title) for v in versions])


@bp.get("/flows/adapt")
@admin_required
def flow_adapt():
    """Open the editor on a grid's adaptation of a flow."""
    return redirect(url_for("admin.flow_edit", key=request.args.get("key", ""), grid=request.args.get("grid", "")))


@bp.get("/flows/<key>")
@admin_required
def flow_view(key: str):
    """A flow's diagram, versions, a readable diff between any two, and its adaptations."""
    head = Flow.get_or_none(Flow.key == key)
    if head is None:
        abort(404, description=f"找不到流程 {key}")
    history = version_history("flow", head)
    return render_template("admin/flows/view.html", head=head, **history, svg=flow_svg(history["latest"].definition),
                           root=g.scope.is_root_admin(), my_grids=_my_grids())


@bp.get("/flows/<key>/edit")
@admin_required
def flow_edit(key: str):
    """The flow editor: diagram, steps, the selected step's settings, check findings, JSON view."""
    target = target_for("flow", key)
    draft = _draft(target)
    return render_template("admin/flows/edit.html", **_state(target, draft, request.args.get("node")))


@bp.get("/flows/<key>/edit/node")
@admin_required
def flow_pick(key: str):
    """Select a step to edit."""
    target = target_for("flow", key)
    return _editor(target, _draft(target), request.args.get("node"))


@bp.post("/flows/<key>/edit/add")
@admin_required
def flow_add(key: str):
    """Add a step (after a chosen step: inserted on its way out)."""
    target = target_for("flow", key)
    draft = _draft(target)
    try:
        doc, ident = flowedit.add_node(draft.definition, request.form.get("type", "task"),
                                       request.form.get("title", "").strip() or None,
                                       request.form.get("after") or None)
    except BuildError as exc:
        return _editor(target, draft, None, 422, errors=[str(exc)])
    return _save(target, draft, doc, ident)


@bp.post("/flows/<key>/edit/remove")
@admin_required
def flow_remove(key: str):
    """Remove a step (what led to it leads on to where it went)."""
    target = target_for("flow", key)
    draft = _draft(target)
    try:
        doc = flowedit.remove_node(draft.definition, request.form.get("node", ""))
    except BuildError as exc:
        return _editor(target, draft, None, 422, errors=[str(exc)])
    return _save(target, draft, doc, None)


@bp.post("/flows/<key>/edit/meta")
@admin_required
def flow_meta(key: str):
    """Save the flow's name, description and first step."""
    target = target_for("flow", key)
    draft = _draft(target)
    doc = copy.deepcopy(draft.definition)
    title = request.form.get("flow_title", "").strip()
    if not title:
        return _editor(target, draft, None, 422, errors=["流程名称不能为空"])
    doc["title"] = title
    description = request.form.get("flow_description", "").strip()
    if description:
        doc["description"] = description
    else:
        doc.pop("description", None)
    start = request.form.get("flow_start", "")
    if start in (doc.get("nodes") or {}):
        doc["start"] = start
    return _save(target, draft, doc, request.form.get("node"))


def _rows(prefix: str, names: tuple[str, ...]) -> list[dict]:
    columns = [request.form.getlist(f"{prefix}_{n}") for n in names]
    return [dict(zip(names, values, strict=False)) for values in zip(*columns, strict=False)]


def _apply_op(op: str, lists: dict[str, list]) -> None:
    """Row buttons: X-add, X-del-N, X-up-N, X-down-N on the panel's row lists."""
    parts = op.split("-")
    items = lists.get(parts[0])
    if items is None:
        return
    if parts[1:] == ["add"]:
        items.append({})
        return
    if len(parts) != 3 or not parts[2].isdigit():
        return
    i = int(parts[2])
    if not 0 <= i < len(items):
        return
    if parts[1] == "del":
        items.pop(i)
    elif parts[1] == "up" and i > 0:
        items[i - 1], items[i] = items[i], items[i - 1]
    elif parts[1] == "down" and i < len(items) - 1:
        items[i + 1], items[i] = items[i], items[i + 1]


def _posted_node() -> dict:
    f = request.form
    lists = {
        "a": _rows("a", ("who", "value", "level", "role")),
        "t": _rows("t", ("who", "value", "level", "role")),
        "act": _rows("act", ("key", "title", "to", "kind", "comment")),
        "c": _rows("c", ("to", "field", "op", "value", "vnode", "vcmp", "vcount", "raw")),
    }
    op = f.get("_op", "")
    _apply_op(op, lists)
    conditions = []
    for row in lists["c"]:
        if not (row.get("field") or row.get("raw") or row.get("vnode")):
            continue  # an empty row (just added, or cleared) is shown, not saved
        when = None
        if row.get("raw"):
            when = {"raw": json.loads(row["raw"]), "rows": []}
        elif row.get("field"):
            when = {"mode": "all", "rows": [{"field": row["field"], "op": row.get("op", "eq"),
                                             "value": row.get("value", "")}], "raw": None}
        visits = {"node": row.get("vnode"), "cmp": row.get("vcmp"), "count": row.get("vcount")} \
            if row.get("vnode") else None
        conditions.append({"to": row.get("to") or f.get("default"), "when": when, "visits": visits})
    fallback = {"who": f.get("fb_who"), "value": f.get("fb_value", ""), "level": f.get("fb_level", ""),
                "role": f.get("fb_role", "")} \
        if f.get("fb_who") else None
    first = next(iter(request.form.getlist("act_to")), "") or f.get("default", "")
    return {
        "title": f.get("title", ""), "description": f.get("description", ""),
        "assignees": [r for r in lists["a"] if r],
        "mode": f.get("mode"), "fallback": fallback,
        "deadline": {"amount": f.get("dl_amount"), "unit": f.get("dl_unit"), "working": bool(f.get("dl_working")),
                     "raw": f.get("dl_raw")},
        "timeout": f.get("timeout"), "auto_action": f.get("auto_action"), "status": f.get("status"),
        "actions": [r if r else {"title": "新操作", "to": first} for r in lists["act"]],
        "conditions": conditions, "default": f.get("default"),
        "branches": f.getlist("branches"), "foreach": f.get("foreach"), "branch": f.get("branch"),
        "join": f.get("join"), "next": f.get("next"),
        "to": [r for r in lists["t"] if r], "form": f.get("form"), "outcome": f.get("outcome"),
    }


@bp.post("/flows/<key>/edit/node")
@admin_required
def flow_node(key: str):
    """Save the selected step's settings (sent as the administrator edits them)."""
    target = target_for("flow", key)
    draft = _draft(target)
    node = request.form.get("node", "")
    posted = _posted_node()
    try:
        doc = flowedit.apply_node(draft.definition, node, posted, fields_form(key, draft.definition))
    except (BuildError, ValueError) as exc:
        return _editor(target, draft, node, 422, panel_error=str(exc))
    op = request.form.get("_op", "")
    pending = {"c-add": "conditions", "a-add": "assignees", "t-add": "to"}.get(op)
    if not pending and request.form.get("fb_who") and not request.form.get("fb_value") \
            and request.form.get("fb_who") != "submitter":
        pending = "fallback"
    return _save(target, draft, doc, node, pending=pending)


@bp.post("/flows/<key>/edit/json")
@admin_required
def flow_json(key: str):
    """Take the JSON view's text: parsed, checked against the meta-schema (errors by line), then saved."""
    target = target_for("flow", key)
    draft = _draft(target)
    text = request.form.get("json", "")
    doc, errors = parse_definition("flow", text)
    if not errors and doc.get("key") != key:
        errors = [(1, f"流程标识 key 须保持为 {key}")]
    if errors:
        return _editor(target, draft, None, 422, json_text=text, json_errors=errors)
    return _save(target, draft, doc, None)


@bp.post("/flows/<key>/publish")
@admin_required
def flow_publish(key: str):
    """Publish the draft; a flow with check findings is refused."""
    target = target_for("flow", key)
    draft = _draft(target, create=False)
    try:
        what, number = drafts.publish(draft, g.person, _start_of(target))
    except overlays.Refused as exc:
        for message in exc.messages:
            flash(message, "error")
        return redirect(url_for("admin.flow_edit", **target.args))
    auth.audit(g.person, "flow_publish", key, grid=target.scope or None, what=what, version=number)
    flash(f"已发布{'本地调整' if target.scope else '新版本'}：第 {number} 版", "ok")
    return redirect(url_for("admin.flow_view", key=key))


@bp.post("/flows/<key>/discard")
@admin_required
def flow_discard(key: str):
    """Throw the draft away."""
    discard_draft("flow", key)
    return redirect(url_for("admin.flow_view", key=key))


@bp.post("/flows/<key>/withdraw")
@admin_required
def flow_withdraw(key: str):
    """Stop adapting a flow for a grid (cases already running keep their version)."""
    withdraw_adaptation("flow", key)
    return redirect(url_for("admin.flow_view", key=key))
