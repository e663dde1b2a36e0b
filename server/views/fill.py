"""Filling forms on a phone: the fill page, its htmx fragments, drafts, uploads, my submissions."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from .. import attachments, cases, inbox
from ..db import database
from ..definitions.diagram import flow_svg
from ..definitions.overlays import effective
from ..definitions.versions import compiled, form_version, latest_forms
from ..errors import Refusal
from ..formdata import apply_op, from_post
from ..grids import node_by_code
from ..masking import mask_data
from ..models import Attachment, Draft, FlowVersion, FormVersion, GridNode, Person, Submission, utcnow
from ..rendering import Context, Renderer, defaults
from ..web import login_required

bp = Blueprint("fill", __name__)

STATUS_LABELS = inbox.STATUS_LABELS


GRID_CHOICES = 300  # more nodes than this in scope: the grid picker searches instead of listing
PAGE = 30


def urls_for(version: FormVersion) -> dict[str, str]:
    """Where a fill page's widgets post: redraw, check, upload, autosave, grid search."""
    key = version.form.key
    return {"submit": url_for("fill.submit", key=key), "render": url_for("fill.render", key=key),
            "check": url_for("fill.check", key=key), "upload": url_for("fill.upload", key=key),
            "draft": url_for("fill.save_draft", key=key), "grids": url_for("fill.pick_grid"), "target": "#fill"}


@bp.app_context_processor
def helpers():
    """Give templates the fill URLs of a form version and the Chinese name of a case status."""

    def status_label(status: str) -> str:
        return str(STATUS_LABELS.get(status, status))

    def outcome_label(outcome: str) -> str:
        return str(inbox.OUTCOMES.get(outcome, outcome))

    return {"urls": urls_for, "status_label": status_label, "outcome_label": outcome_label,
            "people_names": people_names, "department_label": department_label}


def people_names(usernames: list[str]) -> str:
    """Names of people by username, joined for reading (the username when someone is unknown)."""
    from ..models import Person

    names = {p.username: p.name for p in Person.select(Person.username, Person.name)
             .where(Person.username.in_(usernames))} if usernames else {}
    return _("、").join(names.get(u, u) for u in usernames) or _("（无）")


def department_label(key) -> str:
    """A department's Chinese name (the key when it is not configured)."""
    from ..grids import department_names

    return department_names().get(key, str(key))


@bp.app_template_global()
def file_info(sha: str):
    """An attachment's name and type, for widgets (a global: macros are imported without context)."""
    return Attachment.select().where(Attachment.sha256 == sha).order_by(Attachment.id).first()


# -- helpers ----------------------------------------------------------------------------------

def _version(key: str, grid: str | None = None) -> FormVersion:
    """The version a post was made with (kept across a new publication), else the one the grid uses.

    A grid may use a township's adaptation of the form; when the grid posted uses other
    adaptations than the page was drawn with, the grid's version is used (and the page redrawn).
    """
    node = node_by_code(grid) if grid else None
    here = effective("form", key, node.path if node else None)
    if here is None:
        abort(404, description=_("找不到这张表单"))
    wanted = request.form.get("_version", type=int) if request.method == "POST" else None
    if wanted:
        variant = request.form.get("_variant", "")
        posted = form_version(key, wanted, variant)
        if posted is not None and _chain(posted) == _chain(here):
            return posted
    return here


def _posted_grid() -> str | None:
    return (request.form.get("_grid") or "").strip().upper() or None


def _chain(version: FormVersion) -> tuple:
    return tuple(o["grid"] for o in version.overlays or [])


def _switched(version: FormVersion) -> bool:
    """Whether the page was drawn with other adaptations than the version now used."""
    return request.form.get("_variant", "") != version.variant and request.form.get("_version") is not None


def grid_choices() -> list[tuple[str, str]] | None:
    """List the grids the person may file for, as (code, label); None when there are too many."""
    condition = g.scope.condition(GridNode.path)
    if condition is None:
        return []
    rows = list(GridNode.select(GridNode.code, GridNode.name, GridNode.path, GridNode.depth)
                .where(condition & GridNode.retired_at.is_null())
                .order_by(GridNode.path).limit(GRID_CHOICES + 1))
    if len(rows) > GRID_CHOICES:
        return None
    names = {r.code: r.name for r in rows}
    out = []
    for r in rows:
        chain = [names[c] for c in r.path.strip("/").split("/") if c in names]
        out.append((r.code, " · ".join(chain[-3:])))
    return out


def _default_grid() -> str | None:
    """The grid a worker most likely files for: the deepest node of their roles."""
    deepest = sorted(g.scope.grants, key=lambda grant: grant.path.count("/"), reverse=True)
    return deepest[0].code if deepest else None


def _posted_pairs():
    return [(k, v) for k, vs in request.form.lists() for v in vs]


def _store_uploads(version: FormVersion, data: dict) -> list[tuple[str, str]]:
    """Store the files posted with a plain (no-JavaScript) form and add them to their fields."""
    problems = []
    form = compiled(version)
    for name, files in request.files.lists():
        if not name.startswith("_upload/"):
            continue
        where = name[len("_upload"):]
        for upload in files:
            if not upload or not upload.filename:
                continue
            try:
                row = _store_one(upload, form, where)
            except Refusal as exc:
                problems.append((where, exc.message))
                continue
            _add_file(form, data, where, row.sha256)
    return problems


def _store_one(upload, form, where: str):
    path = tuple(int(p) if p.isdigit() else p for p in where.split("/")[1:])
    photo_only = form.ui_at(path).get("ui:widget") == "photo"
    content = upload.read(current_app.config["ATTACHMENT_MAX_BYTES"] + 1)
    return attachments.store(current_app.config["UPLOAD_DIR"], content, upload.filename, g.person,
                             photo_only, current_app.config["ATTACHMENT_MAX_BYTES"],
                             current_app.config["PHOTO_MAX_PIXELS"])


def _add_file(form, data: dict, where: str, sha: str) -> None:
    path = tuple(int(p) if p.isdigit() else p for p in where.split("/")[1:])
    schema = form.schema_at(path)
    holder = data
    for part in path[:-1]:
        holder = holder.setdefault(part, {}) if isinstance(holder, dict) else holder[part]
    if schema.get("type") == "array":
        values = holder.setdefault(path[-1], [])
        if sha not in values and len(values) < int(schema.get("maxItems", 50)):
            values.append(sha)
    else:
        holder[path[-1]] = sha


def _page(version: FormVersion, data: dict, *, sid: str, grid: str | None, errors=None, message=None,
          status=200, fragment=False, saved_at=None, focus=None):
    form = compiled(version)
    choices = grid_choices()
    context = Context(errors=errors or {}, grid_choices=choices, first_drawing=not fragment)
    tree = Renderer(form, context).tree(data)
    focus_row(tree, focus)
    shown = [w.name for w in tree.walk() if w.conditional]
    args = dict(version=version, definition=version.definition, tree=tree, sid=sid, grid=grid,
                grids=choices, shown=",".join(shown), message=message, saved_at=saved_at,
                grid_error=(errors or {}).get("/_grid"))
    template = "fill/_form.html" if fragment else "fill/new.html"
    return render_template(template, **args), status


def focus_row(tree, repeat_name: str | None) -> None:
    """Put the focus on the first field of a repeat's last row (the row just added)."""
    repeat = tree.find(repeat_name) if repeat_name else None
    if repeat is None or not repeat.children:
        return
    first = next((w for w in repeat.children[-1].walk() if w.name and not w.children
                  and w.widget not in ("group", "geolocation", "repeat")), None)
    if first is not None:
        for w in tree.walk():
            w.autofocus = w is first


def _error_map(errors) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in errors:
        out.setdefault(e.path, e.message)
    return out


# -- the fill page --------------------------------------------------------------------------

@bp.get("/forms/<key>/new")
@login_required
def new(key: str):
    """Show an empty form (with its defaults), or a draft to resume."""
    draft_id = request.args.get("draft")
    if draft_id:
        draft = Draft.get_or_none((Draft.id == draft_id) & (Draft.person == g.person.id))
        if draft is None:
            flash(_("这份草稿已提交或已删除。"), "error")
            return redirect(url_for("fill.mine"))
        version = FormVersion.get_by_id(draft.form_version_id)
        return _page(version, draft.data, sid=draft.id, grid=draft.grid_code, saved_at=draft.updated_at)
    grid = request.args.get("grid") or _default_grid()
    version = _version(key, grid)
    return _page(version, defaults(compiled(version)) or {}, sid=str(uuid.uuid4()), grid=grid)


@bp.post("/forms/<key>/new")
@login_required
def submit(key: str):
    """Submit the form; or, when a row button was pressed without JavaScript, redraw it."""
    grid = _posted_grid()
    version = _version(key, grid)
    form = compiled(version)
    sid = _sid()
    op = request.form.get("_op")
    converted = from_post(form, _posted_pairs(), keep_empty=bool(op), base=defaults(form) or {})
    data = converted.data
    problems = _store_uploads(version, data)
    htmx = bool(request.headers.get("HX-Request"))
    if op:
        if op != "render":
            data = apply_op(data, op, form)
        _save_draft(version, sid, grid, data)
        return _page(version, data, sid=sid, grid=grid, fragment=htmx, focus=_added_row(op))
    result = form.validate(data)
    errors = _error_map(converted.errors + result.errors)
    for where, message in problems:
        errors.setdefault(where, message)
    if _switched(version) and not errors:
        _save_draft(version, sid, grid, result.data)
        return _page(version, result.data, sid=sid, grid=grid, fragment=htmx,
                     message=_("所选网格使用本地调整后的表单，请核对后再提交。"))
    appeared = _newly_shown(form, result.data)
    if appeared and not errors:
        _save_draft(version, sid, grid, result.data)
        return _page(version, result.data, sid=sid, grid=grid, fragment=htmx,
                     message=_("根据您的选择，表单新增了需要填写的项目，请查看后再提交。"))
    node = node_by_code(grid) if grid else None
    if node is None or not g.scope.can_submit_at(node):
        errors["/_grid"] = _("请选择您负责的网格") if not grid else _(
            "网格 %(code)s 不存在、已撤销或不在您的管辖范围内", code=grid)
    if errors:
        _save_draft(version, sid, grid, result.data)
        return _invalid(version, result.data, sid, grid, errors, htmx)
    try:
        case, _created = cases.submit(g.person, version, node, result.data, sid)
    except Refusal as exc:
        if exc.status == 409:
            flash(exc.message, "error")
            return _invalid(version, result.data, str(uuid.uuid4()), grid, {}, htmx)
        return _invalid(version, result.data, sid, grid, _error_map(exc.errors), htmx)
    target = url_for("fill.view", sid=case.id, new=1)
    if htmx:
        return "", 200, {"HX-Redirect": target}
    return redirect(target, 303)


def _invalid(version, data, sid, grid, errors, htmx):
    message = _("有 %(n)s 处需要修改，请按红色提示修改后再提交。", n=len(errors)) if errors else None
    return _page(version, data, sid=sid, grid=grid, errors=errors, message=message, fragment=htmx,
                 status=200 if htmx else 422)


def _sid() -> str:
    try:
        return str(uuid.UUID(request.form.get("_id", "")))
    except ValueError:
        return str(uuid.uuid4())


def _newly_shown(form, data) -> list[str]:
    """Name conditional fields visible now that were not on the page the person saw."""
    before = set(filter(None, (request.form.get("_shown") or "").split(",")))
    tree = Renderer(form, Context()).tree(data)
    return [w.name for w in tree.walk() if w.conditional and w.name not in before]


@bp.post("/forms/<key>/render")
@login_required
def render(key: str):
    """Redraw the form after a row was added, removed or moved, or a condition's field changed."""
    grid = _posted_grid()
    version = _version(key, grid)
    form = compiled(version)
    data = from_post(form, _posted_pairs(), keep_empty=True, base=defaults(form) or {}).data
    op = request.form.get("_op")
    if op and op != "render":
        data = apply_op(data, op, form)
    return _page(version, data, sid=_sid(), grid=grid, fragment=True, focus=_added_row(op))


def _added_row(op: str | None) -> str | None:
    """After "add a row", the repeat whose new (last) row takes the focus."""
    return op[len("add:"):] if op and op.startswith("add:") else None


@bp.post("/forms/<key>/check")
@login_required
def check(key: str):
    """Check one field as the person leaves it, and redraw it with its message (or none)."""
    version = _version(key, _posted_grid())
    return check_field(compiled(version), urls_for(version))


def check_field(form, u: dict):
    """Redraw the posted field `_field` of a form with its own error, if any (fill pages and step forms)."""
    name = request.form.get("_field", "")
    converted = from_post(form, _posted_pairs(), keep_empty=True, base=defaults(form) or {})
    result = form.validate(converted.data)
    errors = {}
    for e in converted.errors + result.errors:
        if e.path == name:
            errors.setdefault(e.path, e.message)
    return _redraw_field(form, converted.data, name, Context(errors=errors, grid_choices=grid_choices()), u)


@bp.post("/forms/<key>/upload")
@login_required
def upload(key: str):
    """Store the files picked for a photo or file field and redraw the field with thumbnails."""
    version = _version(key, _posted_grid())
    return upload_field(compiled(version), urls_for(version))


def upload_field(form, u: dict):
    """Store the files posted for field `_field` and redraw it (fill pages and step forms)."""
    name = request.form.get("_field", "")
    data = from_post(form, _posted_pairs(), keep_empty=True, base=defaults(form) or {}).data
    errors = {}
    for upload_ in request.files.getlist("_upload" + name):
        if not upload_ or not upload_.filename:
            continue
        try:
            row = _store_one(upload_, form, name)
        except Refusal as exc:
            errors[name] = exc.message
            continue
        _add_file(form, data, name, row.sha256)
    return _redraw_field(form, data, name, Context(errors=errors), u)


def _redraw_field(form, data: dict, name: str, context: Context, u: dict):
    """Draw one field of the form (its wrapper, for htmx to swap), never taking the focus."""
    widget = Renderer(form, context).tree(data).find(name)
    if widget is None:
        return "", 204
    widget.autofocus = False
    return render_template("fill/_field.html", w=widget, u=u)


@bp.post("/forms/<key>/draft")
@login_required
def save_draft(key: str):
    """Save what has been typed so far as a draft (no validation: a draft may be half done)."""
    version = _version(key, _posted_grid())
    form = compiled(version)
    data = from_post(form, _posted_pairs(), keep_empty=True, base=defaults(form) or {}).data
    grid = (request.form.get("_grid") or "").strip().upper() or None
    sid = _sid()
    if Submission.select().where(Submission.id == sid).exists():
        return render_template("fill/_saved.html", submitted=True)
    saved = _save_draft(version, sid, grid, data)
    return render_template("fill/_saved.html", saved_at=saved)


def _save_draft(version: FormVersion, sid: str, grid: str | None, data: dict):
    """Create or update the person's draft with this id (never someone else's, never a submitted one)."""
    now = utcnow()
    grid = grid[:64] if grid else None
    with database.atomic():
        if Submission.select().where(Submission.id == sid).exists():
            return None
        updated = (Draft.update(data=data, grid_code=grid, form_version=version, updated_at=now)
                   .where((Draft.id == sid) & (Draft.person == g.person.id)).execute())
        if not updated and not Draft.select().where(Draft.id == sid).exists():
            Draft.create(id=sid, person=g.person.id, form=version.form.key, form_version=version,
                         grid_code=grid, data=data, created_at=now, updated_at=now)
    if Submission.select().where(Submission.id == sid).exists():
        # Submitted between our check and our write: the submission won, the draft goes.
        Draft.delete().where(Draft.id == sid).execute()
        return None
    return now


@bp.post("/drafts/<sid>/delete")
@login_required
def delete_draft(sid: str):
    """Throw a draft away."""
    Draft.delete().where((Draft.id == sid) & (Draft.person == g.person.id)).execute()
    flash(_("草稿已删除。"), "ok")
    return redirect(url_for("fill.mine"))


# -- attachments ------------------------------------------------------------------------------

@bp.get("/attachments/<sha>")
@login_required
def attachment(sha: str):
    """Serve a file to someone who uploaded it or may see a case that refers to it."""
    return _send(sha, thumb=False)


@bp.get("/attachments/<sha>/thumb")
@login_required
def thumbnail(sha: str):
    """Serve a photo's thumbnail (or the file itself when it has none)."""
    return _send(sha, thumb=True)


def _send(sha: str, thumb: bool):
    row = attachments.visible(g.scope, sha) if attachments.is_hash(sha) else None
    if row is None:
        abort(404, description=_("找不到这个附件，或您无权查看"))
    response = attachments.serve(current_app.config["UPLOAD_DIR"], row, thumb)
    if response is None:
        abort(404, description=_("附件文件已丢失，请联系管理员"))
    return response


# -- my submissions ---------------------------------------------------------------------------

@bp.get("/submissions")
@login_required
def mine():
    """List my drafts and my submissions, newest first, a page at a time."""
    drafts = list(Draft.select(Draft, FormVersion).join(FormVersion)
                  .where(Draft.person == g.person.id).order_by(Draft.updated_at.desc()).limit(100))
    before = request.args.get("before")
    query = (Submission.select(Submission.id, Submission.form, Submission.version, Submission.grid_code,
                               Submission.status, Submission.created_at, Submission.form_version)
             .where(Submission.created_by == g.person.id))
    if before:
        try:
            at, sid = cases.decode_cursor(before)
        except Refusal:
            abort(400)
        query = query.where((Submission.created_at < at)
                            | ((Submission.created_at == at) & (Submission.id < sid)))
    rows = list(query.order_by(Submission.created_at.desc(), Submission.id.desc()).limit(PAGE + 1))
    following = cases.encode_cursor(rows[PAGE - 1]) if len(rows) > PAGE else None
    titles = {v.form.key: v.form.title for v in latest_forms()}
    grids = {n.code: n.name for n in GridNode.select(GridNode.code, GridNode.name)
             .where(GridNode.code.in_({r.grid_code for r in rows} | {d.grid_code for d in drafts}))}
    return render_template("fill/mine.html", drafts=drafts, rows=rows[:PAGE], following=following,
                           titles=titles, grids=grids, summaries={d.id: _summary(d) for d in drafts})


def _summary(draft: Draft) -> str:
    """A few words that tell drafts of the same form apart: the first free texts typed (no codes, no IDs)."""
    form = compiled(FormVersion.get_by_id(draft.form_version_id))
    texts = []
    for name, value in (draft.data or {}).items():
        schema = form.schema_at((name,))
        if (isinstance(value, str) and 0 < len(value) <= 40 and schema.get("type") == "string"
                and not schema.get("format") and not schema.get("x-sensitive")
                and not any(k in schema for k in ("enum", "oneOf", "anyOf", "const"))):
            texts.append(value)
    return "，".join(texts[:2])


def _shown_case(sid: str, channel: str) -> dict:
    """A case the person may see, drawn read-only with its own form version (masked unless they need it)."""
    case = Submission.get_or_none(Submission.id == sid)
    if case is None or not g.scope.can_see_submission(case):
        abort(404, description=_("找不到这条记录，或它不在您的管辖范围内"))
    version = FormVersion.get_by_id(case.form_version_id)
    own = case.created_by_id == g.person.id
    reveal = own or g.scope.sees_sensitive_at(case.grid_path)
    if reveal and not own:
        cases.log_full_view(g.person, case, channel)
    data = case.data if reveal else mask_data(case.data, _sensitive(case))
    tree = Renderer(compiled(version), Context(readonly=True)).tree(data)
    files = {a.sha256: a for a in attachments.Attachment.select().where(
        attachments.Attachment.sha256.in_([sha for _, sha in attachments.references(compiled(version), case.data)]))}
    flow = FlowVersion.get_by_id(case.flow_version_id).definition if case.flow_version_id else None
    return dict(case=case, version=version, tree=tree, grid=GridNode.get_or_none(GridNode.id == case.grid_id),
                masked=not reveal, files=files, flow=flow, own=own, timeline=inbox.timeline(case, flow),
                overlay_text=_overlay_text(version))


@bp.get("/submissions/<sid>/print")
@login_required
def print_case(sid: str):
    """A case on A4 paper for the 台账: its data, its history and a place for signatures."""
    shown = _shown_case(sid, "print")
    author = Person.get_or_none(Person.id == shown["case"].created_by_id)
    return render_template("fill/print.html", **shown, author=author, printed_at=utcnow())


@bp.get("/submissions/<sid>")
@login_required
def view(sid: str):
    """Show one submission read-only, drawn with the form version it was made with."""
    shown = _shown_case(sid, "web")
    case, flow, own = shown["case"], shown["flow"], shown["own"]
    tasks = inbox.case_tasks(case, g.person.id, current_app.config["TIMEZONE"])
    state = case.flow_state or {}
    ended = case.status in ("closed", "withdrawn")
    worked = any(g.person.username in t["assignees"] for t in tasks) or inbox.worked_on(case, g.person.id)
    allowed = {
        "withdraw": own and flow is not None and not ended and not state.get("acted"),
        "reopen": ended and case.status != "withdrawn" and (g.scope.is_admin_at(case.grid_path) or worked),
    }
    diagram = flow_svg(flow, current=case.current_nodes or [], passed=state.get("passed") or []) if flow else None
    return render_template("fill/view.html", **shown, new=request.args.get("new"), tasks=tasks, allowed=allowed,
                           diagram=diagram)


def _overlay_text(version: FormVersion) -> str:
    """Name the adaptations a form version carries, e.g. 东街道第 2 版."""
    if not version.overlays:
        return ""
    names = {n.code: n.name for n in GridNode.select(GridNode.code, GridNode.name)
             .where(GridNode.code.in_([o["grid"] for o in version.overlays]))}
    return "、".join(_("%(g)s第 %(n)s 版", g=names.get(o["grid"], o["grid"]), n=o["version"])
                    for o in version.overlays)


def _sensitive(case: Submission):
    from ..definitions.versions import sensitive_for

    return sensitive_for(case.form_version_id)


@bp.get("/grids/pick")
@login_required
def pick_grid():
    """Suggest grids in scope whose name or code contains the text typed (for large scopes)."""
    text = (request.args.get("q") or "").strip()
    items = []
    if text:
        condition = g.scope.condition(GridNode.path)
        if condition is not None:
            items = list(GridNode.select(GridNode.code, GridNode.name)
                         .where(condition & GridNode.retired_at.is_null()
                                & (GridNode.name.contains(text) | GridNode.code.contains(text.upper())))
                         .order_by(GridNode.path).limit(20))
    return render_template("fill/_grid_options.html", items=items)


