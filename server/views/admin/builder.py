"""The form builder: fields as rows, a live preview, a JSON view, drafts, publishing, history, adaptations."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass

from flask import abort, flash, g, redirect, render_template, request, url_for
from peewee import JOIN

from ... import auth
from ...definitions import builder, drafts, overlays
from ...definitions.check import _meta_validator, describe_meta_error
from ...definitions.diff import form_changes
from ...definitions.jsonlines import pointer_lines
from ...definitions.versions import latest_flow, latest_flows, latest_form, latest_forms
from ...formdata import apply_op, from_post
from ...grids import node_by_code
from ...models import DefinitionDraft, Form, FormVersion, GridNode, Person
from ...rendering import Context, Renderer, defaults
from ...validation import compiled_form
from ...web import admin_required
from . import bp

KEY = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


@dataclass
class Target:
    """What a builder page edits: a form (scope '') or a grid's adaptation of it (scope = grid code)."""

    kind: str
    key: str
    scope: str
    grid: GridNode | None
    at: str = ""  # a step form inside a flow: JSON Pointer to its {"schema", "ui"}

    @property
    def args(self) -> dict:
        return {"key": self.key, **({"grid": self.scope} if self.scope else {}), **({"at": self.at} if self.at else {})}

    def endpoint(self, name: str) -> str:
        """The endpoint of a builder operation for this target (forms, or a flow's step forms)."""
        return ("admin.step_" if self.at else "admin.form_") + name


def target_for(kind: str, key: str) -> Target:
    """The builder's target from the URL; who may edit what is checked here (404 otherwise)."""
    code = request.values.get("grid", "").strip().upper()
    if not code:
        if not g.scope.is_root_admin():
            abort(403, description="只有市级管理员可以修改模板；请在您的辖区“本地调整”")
        return Target(kind, key, "", None)
    grid = node_by_code(code)
    if grid is None or not g.scope.is_admin_at(grid.path) or grid.parent_id is None:
        abort(404, description=f"找不到网格 {code}，或它不在您的管理范围内")
    return Target(kind, key, code, grid)


STEP_FORM = re.compile(r"^/nodes/[a-z][a-z0-9_]{0,63}/(?:form|actions/\d{1,3}/form)$")


def _target(key: str) -> Target:
    """The builder's target: a form, or (on the step routes) a step form of a flow."""
    if not (request.endpoint or "").startswith("admin.step_"):
        return target_for("form", key)
    target = target_for("flow", key)
    target.at = request.values.get("at", "")
    if not STEP_FORM.match(target.at):
        abort(404, description="找不到这个步骤表单")
    return target


def _doc(target: Target, draft: DefinitionDraft) -> dict:
    """The form the builder edits: the draft itself, or a step form of a flow draft as a form."""
    if not target.at:
        return draft.definition
    parts = target.at.strip("/").split("/")
    node = (draft.definition.get("nodes") or {}).get(parts[1])
    if node is None:
        abort(404, description="找不到这个步骤")
    holder = node
    title = node.get("title", parts[1])
    if parts[2] == "actions":
        actions = node.get("actions") or []
        index = int(parts[3])
        if index >= len(actions):
            abort(404, description="找不到这个操作")
        holder = actions[index]
        title = f"{title} · {holder.get('title', '')}"
    part = holder.get("form") or {}
    return {"key": target.key, "title": title, "schema": part.get("schema") or {"type": "object", "properties": {}},
            "ui": part.get("ui") or {}}


def _put(target: Target, draft: DefinitionDraft, doc: dict) -> dict:
    """The whole draft with an edited step form put back in its place."""
    if not target.at:
        return doc
    full = copy.deepcopy(draft.definition)
    parts = target.at.strip("/").split("/")
    holder = full["nodes"][parts[1]]
    if parts[2] == "actions":
        holder = holder["actions"][int(parts[3])]
    form = {"schema": doc["schema"], **({"ui": doc["ui"]} if doc.get("ui") else {})}
    if form["schema"].get("properties"):
        holder["form"] = form
    else:
        holder.pop("form", None)
    return full


def _published(target: Target) -> dict | None:
    """The definition a draft starts from: the template, or the grid's current effective version."""
    if target.scope:
        row = overlays.effective(target.kind, target.key, target.grid.path)
    else:
        row = latest_form(target.key) if target.kind == "form" else latest_flow(target.key)
    return copy.deepcopy(row.definition) if row is not None else None


def _draft(target: Target, create: bool = True) -> DefinitionDraft:
    draft = drafts.find(target.kind, target.key, target.scope)
    if draft is None and create:
        doc = _published(target)
        if doc is None:
            abort(404, description=f"找不到 {target.key}")
        doc = _with_conflicts(target, doc)
        draft = drafts.start(target.kind, target.key, doc, g.person, target.scope)
    if draft is None:
        abort(404)
    return draft


def _start_of(target: Target) -> dict | None:
    """What a new draft for this target would start from now (to re-apply an older draft's edits on)."""
    doc = _published(target)
    return _with_conflicts(target, doc) if doc is not None else None


def _with_conflicts(target: Target, doc: dict) -> dict:
    """For an adaptation in conflict: the new parent with what still applies of the overlay."""
    if not target.scope:
        return doc
    adaptation = _adaptation(target)
    if adaptation is None or not adaptation.conflict:
        return doc
    parent = overlays.parent_of(target.kind, target.key, target.grid)
    overlay = _overlay(target, adaptation.overlay_version)
    out, _ = overlays.apply_partly(parent.definition, overlay.patch, doc)
    return out


def _adaptation(target: Target):
    from ...models import Adaptation

    return Adaptation.get_or_none((Adaptation.kind == target.kind) & (Adaptation.key == target.key)
                                  & (Adaptation.grid == target.grid))


def _overlay(target: Target, version: int):
    from ...models import Overlay

    return Overlay.get_or_none((Overlay.kind == target.kind) & (Overlay.key == target.key)
                               & (Overlay.grid == target.grid) & (Overlay.version == version))


def conflict_notes(target: Target) -> list[str]:
    """The conflicts of an adaptation, as its owner reads them."""
    adaptation = _adaptation(target) if target.scope else None
    if adaptation is None or not adaptation.conflict:
        return []
    parent = overlays.parent_of(target.kind, target.key, target.grid)
    overlay = _overlay(target, adaptation.overlay_version)
    known = overlays._row(target.kind, adaptation.effective).definition if adaptation.effective else None
    _, found = overlays.apply_partly(parent.definition, overlay.patch, known)
    return [c.message for c in found] or [adaptation.conflict.get("message", "")]


# -- pages --------------------------------------------------------------------------------------

@bp.get("/forms")
@admin_required
def forms():
    """List the forms: published versions, drafts, and the adaptations in this administrator's area."""
    versions = latest_forms()
    within = g.scope.admin_paths
    adapted = {v.form.key: overlays.adaptations("form", v.form.key, within) for v in versions}
    pending = list(DefinitionDraft.select().where(DefinitionDraft.kind == "form").order_by(DefinitionDraft.key))
    published = {v.form.key for v in versions}
    new_drafts = [d for d in pending if d.key not in published and not d.scope]
    return render_template("admin/forms/index.html", versions=versions, adapted=adapted, drafts=pending,
                           new_drafts=new_drafts, conflicts=overlays.conflicts(within),
                           root=g.scope.is_root_admin(), my_grids=_my_grids(),
                           items=[(v.form.key, v.form.title) for v in versions])


def _my_grids() -> list[GridNode]:
    """The nodes where this administrator may adapt templates (their own, not a root)."""
    return [n for n in GridNode.select().where(GridNode.path.in_(g.scope.admin_paths)).order_by(GridNode.path)
            if n.parent_id is not None]


@bp.post("/forms/new")
@admin_required
def form_new():
    """Start a new form from a blank page or as a copy of an existing one (a draft until published)."""
    if not g.scope.is_root_admin():
        abort(403, description="只有市级管理员可以新建模板")
    title = request.form.get("title", "").strip()
    key = request.form.get("key", "").strip().lower() or _free_key()
    source = request.form.get("source", "").strip()
    problems = []
    if not title:
        problems.append("请填写表单名称")
    if not KEY.match(key):
        problems.append("表单标识只能用小写英文字母、数字和下划线，以字母开头，至少 2 个字符")
    if Form.get_or_none(Form.key == key) or drafts.find("form", key):
        problems.append(f"表单标识 {key} 已被使用")
    base = latest_form(source) if source else None
    if source and base is None:
        problems.append(f"找不到要复制的表单 {source}")
    if problems:
        for p in problems:
            flash(p, "error")
        return redirect(url_for("admin.forms"))
    if base is not None:
        doc = copy.deepcopy(base.definition)
        doc.update(key=key, title=title)
    else:
        doc = {"key": key, "title": title, "schema": {"type": "object", "properties": {}}, "ui": {}}
    drafts.start("form", key, doc, g.person)
    auth.audit(g.person, "form_draft", key, source=source or None)
    return redirect(url_for("admin.form_edit", key=key))


def _free_key() -> str:
    n = 1
    while Form.get_or_none(Form.key == f"form_{n}") or drafts.find("form", f"form_{n}"):
        n += 1
    return f"form_{n}"


@bp.get("/forms/adapt")
@admin_required
def form_adapt():
    """Open the builder on a grid's adaptation of a form (picked on the forms page)."""
    return redirect(url_for("admin.form_edit", key=request.args.get("key", ""), grid=request.args.get("grid", "")))


@bp.get("/forms/<key>/edit")
@admin_required
def form_edit(key: str):
    """The builder page: fields, the selected field's settings, the live preview and the JSON view."""
    target = _target(key)
    draft = _draft(target)
    return render_template("admin/forms/edit.html", **_state(target, draft, request.args.get("field")))


def _path(raw: str | None) -> tuple[str, ...]:
    return tuple(p for p in (raw or "").split("/") if p)


def _state(target: Target, draft: DefinitionDraft, selected: str | None = None, errors=None,
           json_text: str | None = None, json_errors=None, preview_data=None, preview_errors=None,
           preview_note=None, panel_error=None, pending_condition=False) -> dict:
    doc = _doc(target, draft)
    path = _path(selected)
    cond_text = ""
    try:
        settings = builder.settings(doc, path) if path else None
        if path:
            field_ui = builder.locate(copy.deepcopy(doc), path)[3]
            cond_text = builder.describe_condition(doc, field_ui.get("ui:visibleWhen"))
    except builder.BuildError:
        settings, path = None, ()
    if settings is not None and pending_condition:
        visible = settings["visible"] or {"mode": "all", "rows": [], "raw": None}
        visible["rows"].append({"field": "", "op": "eq", "value": ""})  # shown, saved once a field is picked
        settings["visible"] = visible
    form = compiled_form(_hash(doc), doc.get("schema") or {}, doc.get("ui"))
    data = preview_data if preview_data is not None else (defaults(form) or {})
    try:
        tree = Renderer(form, Context(errors=preview_errors or {}, grid_choices=[])).tree(data)
    except Exception:  # noqa: BLE001 - a half-built definition must not take the builder down
        tree = None
    return dict(
        target=target, draft=draft, doc=doc, rows=builder.rows(doc), selected="/".join(path), settings=settings,
        kinds=builder.KINDS, operators=builder.OPERATORS, cond_fields=builder.condition_fields(doc),
        value_choices=builder.value_choices, cond_text=cond_text,
        position=(builder.position(doc, path) if path else None), flows=[f.flow.key for f in latest_flows()],
        flow_titles={f.flow.key: f.flow.title for f in latest_flows()},
        findings=drafts.problems(target.kind, draft.definition), ep=target.endpoint, errors=errors or [],
        json_text=json_text or drafts.text_of(doc),
        json_errors=json_errors or [], tree=tree, preview_note=preview_note,
        preview_urls=_preview_urls(target), conflicts=conflict_notes(target), panel_error=panel_error,
        base=_published_base(target),
    )


def _published_base(target: Target):
    return latest_form(target.key)


def _hash(doc: dict) -> str:
    from ...definitions.versions import content_hash

    return content_hash(doc)


def _preview_urls(target: Target) -> dict:
    args = target.args
    return {"submit": url_for(target.endpoint("preview"), **args),
            "render": url_for(target.endpoint("preview_render"), **args),
            "check": url_for(target.endpoint("preview_check"), **args),
            "upload": url_for(target.endpoint("preview_upload"), **args),
            "grids": url_for("fill.pick_grid"), "target": "#b-preview"}


def _builder(target: Target, draft: DefinitionDraft, selected: str | None, **extra):
    """Answer a builder operation with the whole builder, redrawn (htmx keeps the focus by id)."""
    return render_template("admin/forms/_builder.html", **_state(target, draft, selected, **extra))


def _revision() -> int | None:
    raw = request.form.get("_rev", "")
    return int(raw) if raw.isdigit() else None


STALE = "草稿已在别处修改（另一个窗口或另一位管理员），已显示最新内容，请重新操作"


def _save(target: Target, draft: DefinitionDraft, doc: dict, selected: str | None, pending_condition=False):
    try:
        draft = drafts.save(draft, _put(target, draft, doc), g.person, _revision())
    except drafts.Stale:
        draft = drafts.find(target.kind, target.key, target.scope) or draft
        return _builder(target, draft, selected, errors=[STALE]), 409
    return _builder(target, draft, selected, pending_condition=pending_condition)


@bp.post("/forms/<key>/edit/add")
@admin_required
def form_add(key: str):
    """Add a field of a kind at the end of the form or of a group."""
    target = _target(key)
    draft = _draft(target)
    kind = request.form.get("kind", "text")
    try:
        doc, path = builder.add_field(_doc(target, draft), _path(request.form.get("parent")), kind,
                                      request.form.get("title", "").strip() or None,
                                      prefix="local" if target.scope else "field")
    except builder.BuildError as exc:
        return _builder(target, draft, None, errors=[str(exc)]), 422
    return _save(target, draft, doc, "/".join(path))


@bp.post("/forms/<key>/edit/remove")
@admin_required
def form_remove(key: str):
    """Remove a field."""
    target = _target(key)
    draft = _draft(target)
    try:
        doc = builder.remove_field(_doc(target, draft), _path(request.form.get("path")))
    except builder.BuildError as exc:
        return _builder(target, draft, None, errors=[str(exc)]), 422
    return _save(target, draft, doc, None)


@bp.post("/forms/<key>/edit/move")
@admin_required
def form_move(key: str):
    """Move a field up, down, or to a position (drag and drop)."""
    target = _target(key)
    draft = _draft(target)
    path = _path(request.form.get("path"))
    try:
        index, _count = builder.position(_doc(target, draft), path)
        to = request.form.get("to", "")
        where = index - 1 if to == "up" else index + 1 if to == "down" else int(to)
        doc = builder.move_field(_doc(target, draft), path, where)
    except (builder.BuildError, ValueError):
        return _builder(target, draft, "/".join(path), errors=["无法移动这个字段"]), 422
    return _save(target, draft, doc, "/".join(path))


def _posted_settings(doc: dict, path: tuple) -> dict:
    """The settings panel's post as builder settings, with its option and condition row buttons applied."""
    f = request.form
    options = [{"value": v, "label": lab} for v, lab in zip(f.getlist("opt_value"), f.getlist("opt_label"),
                                                            strict=False)]
    rows = [{"field": a, "op": b, "value": c} for a, b, c in zip(f.getlist("cond_field"), f.getlist("cond_op"),
                                                                 f.getlist("cond_value"), strict=False)]
    op = f.get("_op", "")
    options, rows = _row_op(op, options, rows)
    raw = None
    if f.get("cond_raw") and op != "cond-clear":
        raw = json.loads(f["cond_raw"])
    visible = {"mode": f.get("cond_mode", "all"), "rows": rows, "raw": raw}
    return {
        "key": f.get("key", path[-1]), "kind": f.get("kind"), "title": f.get("title", ""),
        "description": f.get("description", ""), "help": f.get("help", ""), "placeholder": f.get("placeholder", ""),
        "required": bool(f.get("required")), "sensitive": bool(f.get("sensitive")), "default": f.get("default"),
        "options": options, "min_length": f.get("min_length"), "max_length": f.get("max_length"),
        "minimum": f.get("minimum"), "maximum": f.get("maximum"), "min_items": f.get("min_items"),
        "max_items": f.get("max_items"), "rows": f.get("rows"), "visible": visible,
    }


def _row_op(op: str, options: list, rows: list) -> tuple[list, list]:
    """Apply an option or condition row button: opt-add, opt-del-N, opt-up-N, opt-down-N, cond-add, cond-del-N."""
    parts = op.split("-")
    if op == "opt-add":
        options.append({"value": "", "label": f"选项{len(options) + 1}"})
    elif op == "cond-add":
        rows.append({"field": "", "op": "eq", "value": ""})
    elif op == "cond-clear":
        rows.clear()
    elif len(parts) == 3 and parts[2].isdigit():
        items = options if parts[0] == "opt" else rows
        i = int(parts[2])
        if 0 <= i < len(items):
            if parts[1] == "del":
                items.pop(i)
            elif parts[1] == "up" and i > 0:
                items[i - 1], items[i] = items[i], items[i - 1]
            elif parts[1] == "down" and i < len(items) - 1:
                items[i + 1], items[i] = items[i], items[i + 1]
    return options, [r for r in rows if r["field"] or op == "cond-add"]


@bp.post("/forms/<key>/edit/field")
@admin_required
def form_field(key: str):
    """Save the selected field's settings (sent as the administrator edits them)."""
    target = _target(key)
    draft = _draft(target)
    path = _path(request.form.get("path"))
    try:
        doc, path = builder.apply_settings(_doc(target, draft), path, _posted_settings(_doc(target, draft), path))
    except (builder.BuildError, ValueError) as exc:
        return _builder(target, draft, "/".join(path), panel_error=str(exc)), 422
    pending = request.form.get("_op") == "cond-add"
    return _save(target, draft, doc, "/".join(path), pending_condition=pending)


@bp.get("/forms/<key>/edit/field")
@admin_required
def form_pick(key: str):
    """Select a field to edit (the builder redrawn with its settings)."""
    target = _target(key)
    return _builder(target, _draft(target), request.args.get("path"))


@bp.post("/forms/<key>/edit/meta")
@admin_required
def form_meta(key: str):
    """Save the form's own settings: title, description and the flow its submissions start."""
    target = _target(key)
    draft = _draft(target)
    doc = copy.deepcopy(_doc(target, draft))
    title = request.form.get("form_title", "").strip()
    if not title:
        return _builder(target, draft, None, errors=["表单名称不能为空"]), 422
    doc["title"] = title
    builder._set(doc, "description", request.form.get("form_description", "").strip())
    if not target.scope:
        builder._set(doc, "flow", request.form.get("form_flow", "").strip())
    return _save(target, draft, doc, request.form.get("path"))


@bp.post("/forms/<key>/edit/json")
@admin_required
def form_json(key: str):
    """Take the JSON view's text: parsed, checked against the meta-schema (errors by line), then saved."""
    target = _target(key)
    draft = _draft(target)
    text = request.form.get("json", "")
    doc, errors = parse_definition("form", text)
    if errors:
        return _builder(target, draft, None, json_text=text, json_errors=errors), 422
    if doc.get("key") != key:
        return _builder(target, draft, None, json_text=text,
                        json_errors=[(1, f"表单标识 key 须保持为 {key}")]), 422
    return _save(target, draft, doc, None)


def parse_definition(kind: str, text: str) -> tuple[dict, list[tuple[int, str]]]:
    """Parse a definition's JSON text; errors as (line, message in Chinese), meta-schema included."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, [(exc.lineno, f"第 {exc.lineno} 行第 {exc.colno} 列：JSON 格式有误（{_json_reason(exc.msg)}）")]
    if not isinstance(doc, dict):
        return {}, [(1, "定义应是一个 JSON 对象 { … }")]
    lines = pointer_lines(text)
    found = [("".join(f"/{p}" for p in e.absolute_path), describe_meta_error(e))
             for e in sorted(_meta_validator(kind).iter_errors(doc), key=lambda e: list(e.absolute_path))]
    if not found:
        found = [(p.pointer, p.message) for p in _schema_errors(kind, doc)]
    errors = []
    for where, message in found:
        line = _line(lines, where)
        errors.append((line, f"第 {line} 行（{where or '/'}）：{message}"))
    return doc, errors


def _schema_errors(kind: str, doc: dict) -> list:
    """Invalid JSON Schemas in a definition (the form's, or each step form's): refused by the JSON view.

    Other findings (a step that leads nowhere…) are saved to the draft and listed; they block publishing.
    """
    from ...definitions.check import schema_problems

    if kind == "form":
        return schema_problems(doc.get("schema"), "", ("schema",))
    found = []
    for ident, node in (doc.get("nodes") or {}).items():
        forms = [(("nodes", ident, "form"), node.get("form"))]
        forms += [(("nodes", ident, "actions", i, "form"), a.get("form"))
                  for i, a in enumerate(node.get("actions") or []) if isinstance(a, dict)]
        for at, form in forms:
            if isinstance(form, dict) and isinstance(form.get("schema"), dict):
                found += schema_problems(form["schema"], "", (*at, "schema"))
    return found


def _line(lines: dict[str, int], where: str) -> int:
    while where and where not in lines:
        where = where.rsplit("/", 1)[0]
    return lines.get(where, 1)


JSON_REASONS = {
    "Expecting ',' delimiter": "缺少逗号", "Expecting ':' delimiter": "缺少冒号",
    "Expecting property name enclosed in double quotes": "键名须用英文双引号括起来，或多了一个逗号",
    "Expecting value": "缺少值", "Unterminated string starting at": "字符串没有结束的引号",
    "Extra data": "结尾有多余的内容", "Invalid control character at": "字符串中有换行等控制字符",
}


def _json_reason(message: str) -> str:
    for english, chinese in JSON_REASONS.items():
        if message.startswith(english):
            return chinese
    return message


# -- the preview --------------------------------------------------------------------------------

def _draft_form(target: Target, draft: DefinitionDraft):
    doc = _doc(target, draft)
    return compiled_form(_hash(doc), doc.get("schema") or {}, doc.get("ui"))


def _pairs():
    return [(k, v) for k, vs in request.form.lists() for v in vs]


@bp.post("/forms/<key>/edit/preview")
@admin_required
def form_preview(key: str):
    """Try the draft: the preview's data validated like a real submission (kept as a test, not filed)."""
    target = _target(key)
    draft = _draft(target)
    form = _draft_form(target, draft)
    converted = from_post(form, _pairs(), keep_empty=False, base=defaults(form) or {})
    result = form.validate(converted.data)
    errors: dict[str, str] = {}
    for e in converted.errors + result.errors:
        errors.setdefault(e.path, e.message)
    if errors:
        note = f"有 {len(errors)} 处不符合要求（这是试填，不会保存为正式提交）"
        return _builder(target, draft, request.form.get("path"), preview_data=result.data, preview_errors=errors,
                        preview_note=("error", note))
    count = drafts.add_test(draft, result.data)
    draft = DefinitionDraft.get_by_id(draft.id)
    return _builder(target, draft, request.form.get("path"), preview_data=result.data,
                    preview_note=("ok", f"试填通过（第 {count} 次试填；试填记录在发布时丢弃）"))


@bp.post("/forms/<key>/edit/preview/render")
@admin_required
def form_preview_render(key: str):
    """Redraw the preview after a condition's field changed or a row was added or removed."""
    target = _target(key)
    draft = _draft(target)
    form = _draft_form(target, draft)
    data = from_post(form, _pairs(), keep_empty=True, base=defaults(form) or {}).data
    op = request.form.get("_op")
    if op and op != "render":
        data = apply_op(data, op, form)
    state = _state(target, draft, request.form.get("path"), preview_data=data)
    return render_template("admin/forms/_preview.html", **state)


@bp.post("/forms/<key>/edit/preview/check")
@admin_required
def form_preview_check(key: str):
    """Check one preview field as the administrator leaves it."""
    from ..fill import check_field

    target = _target(key)
    return check_field(_draft_form(target, _draft(target)), _preview_urls(target))


@bp.post("/forms/<key>/edit/preview/upload")
@admin_required
def form_preview_upload(key: str):
    """Take a photo or file picked in the preview."""
    from ..fill import upload_field

    target = _target(key)
    return upload_field(_draft_form(target, _draft(target)), _preview_urls(target))


# -- publishing ---------------------------------------------------------------------------------

@bp.post("/forms/<key>/publish")
@admin_required
def form_publish(key: str):
    """Publish the draft as a new version (or a new version of the grid's adaptation).

    Risky changes (a removed field or option, a changed type) that stored submissions use are
    shown with their counts first; publishing then needs a second, confirmed post.
    """
    target = target_for("form", key)
    draft = _draft(target, create=False)
    base = _published(target)
    impacts = drafts.impacts(key, base, draft.definition) if base is not None and not target.scope else []
    if any(i.count for i in impacts) and not request.form.get("confirm"):
        return render_template("admin/forms/confirm.html", target=target, draft=draft, impacts=impacts,
                               changes=form_changes(base, draft.definition)), 409
    try:
        what, number = drafts.publish(draft, g.person, _start_of(target))
    except overlays.Refused as exc:
        for message in exc.messages:
            flash(message, "error")
        return redirect(url_for("admin.form_edit", **target.args))
    auth.audit(g.person, "form_publish", key, grid=target.scope or None, what=what, version=number,
               confirmed_impacts=[i.count for i in impacts] or None)
    what = "本地调整" if target.scope else "新版本"
    flash(f"已发布{what}：第 {number} 版" + ("（试填记录已丢弃）" if draft.tests else ""), "ok")
    return redirect(url_for("admin.form_view", key=key, **({"grid": target.scope} if target.scope else {})))


def discard_draft(kind: str, key: str) -> None:
    """Throw away this target's draft (with its test submissions), if there is one."""
    draft = drafts.find(kind, key, target_for(kind, key).scope)
    if draft is not None:
        drafts.discard(draft)
        flash("已放弃草稿", "ok")


def withdraw_adaptation(kind: str, key: str) -> None:
    """Stop a grid's adaptation: its subtree uses the definition above again (overlay history kept)."""
    target = target_for(kind, key)
    if not target.scope:
        abort(404)
    if overlays.withdraw(kind, key, target.grid, g.person):
        auth.audit(g.person, "overlay_withdraw", key, grid=target.scope, kind=kind)
        flash("已取消本地调整，辖区改用上级版本", "ok")


@bp.post("/forms/<key>/discard")
@admin_required
def form_discard(key: str):
    """Throw the draft away (with its test submissions)."""
    discard_draft("form", key)
    if latest_form(key) is None:
        return redirect(url_for("admin.forms"))
    return redirect(url_for("admin.form_view", key=key))


@bp.post("/forms/<key>/withdraw")
@admin_required
def form_withdraw(key: str):
    """Stop adapting a form for a grid: it uses the definition above again (history kept)."""
    withdraw_adaptation("form", key)
    return redirect(url_for("admin.form_view", key=key))


# -- a form's page: versions, diffs, adaptations --------------------------------------------

def version_history(kind: str, head) -> dict:
    """A form's or flow's published versions (who, when), the readable diff between two picked with
    ?a=&b= (default: the newest against the one before), and the adaptations in this administrator's area."""
    from ...definitions.diff import flow_changes
    from ...models import FlowVersion

    model, owner = (FormVersion, FormVersion.form) if kind == "form" else (FlowVersion, FlowVersion.flow)
    changes_of = form_changes if kind == "form" else flow_changes
    versions = list(model.select(model, Person)
                    .join(Person, on=(model.created_by == Person.id), join_type=JOIN.LEFT_OUTER)
                    .where((owner == head) & (model.variant == "")).order_by(model.version.desc()))
    numbers = [v.version for v in versions]
    b = request.args.get("b", type=int) or numbers[0]
    a = request.args.get("a", type=int) or (b - 1 if b - 1 in numbers else None)
    by_number = {v.version: v for v in versions}
    changes = None
    if a in by_number and b in by_number:
        changes = changes_of(by_number[a].definition, by_number[b].definition)
    adapted = []
    for adaptation in overlays.adaptations(kind, head.key, g.scope.admin_paths):
        row = overlays._row(kind, adaptation.effective) if adaptation.effective else None
        parent = overlays.parent_of(kind, head.key, adaptation.grid)
        adapted.append((adaptation, row, changes_of(parent.definition, row.definition) if row else []))
    return {"versions": versions, "a": a, "b": b, "changes": changes, "adapted": adapted,
            "latest": by_number[numbers[0]]}


@bp.get("/forms/<key>")
@admin_required
def form_view(key: str):
    """A form's versions (who published what), a readable diff between any two, and its adaptations."""
    head = Form.get_or_none(Form.key == key)
    if head is None:
        abort(404, description=f"找不到表单 {key}")
    history = version_history("form", head)
    return render_template("admin/forms/view.html", head=head, **history, drafts=list(DefinitionDraft.select().where(
                               (DefinitionDraft.kind == "form") & (DefinitionDraft.key == key))),
                           root=g.scope.is_root_admin(), my_grids=_my_grids(),
                           grid=request.args.get("grid"))


# A flow's step forms are built with the same builder, on their own routes.
for _name, _rule, _methods in (
    ("edit", "/edit", ["GET"]), ("add", "/edit/add", ["POST"]), ("remove", "/edit/remove", ["POST"]),
    ("move", "/edit/move", ["POST"]), ("field", "/edit/field", ["POST"]), ("pick", "/edit/field", ["GET"]),
    ("json", "/edit/json", ["POST"]), ("preview", "/edit/preview", ["POST"]),
    ("preview_render", "/edit/preview/render", ["POST"]), ("preview_check", "/edit/preview/check", ["POST"]),
    ("preview_upload", "/edit/preview/upload", ["POST"]),
):
    bp.add_url_rule("/flows/<key>/step" + _rule[len("/edit"):], endpoint=f"step_{_name}",
                    view_func=globals()[f"form_{_name}"], methods=_methods)
