"""The officer's pages: the inbox (待办 / 已办 / 抄送我的 / 已超时) and acting on a task in place."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .. import inbox, store
from ..engine import actions_for
from ..engine.core import step_form
from ..errors import Refusal
from ..formdata import apply_op, from_post
from ..models import FlowVersion, GridNode, Submission, Task, utcnow
from ..rendering import Context, Renderer
from ..web import login_required
from .fill import _posted_pairs, check_field, upload_field

bp = Blueprint("tasks", __name__)

TABS = {"open": _l("待办"), "done": _l("已办"), "cc": _l("抄送我的"), "overdue": _l("已超时")}


@bp.app_template_global()
def task_counts() -> dict[str, int]:
    """The signed-in person's open, overdue and copied counts (for the menu and the home page)."""
    if g.get("person") is None:
        return {"open": 0, "overdue": 0, "cc": 0}
    if "task_counts" not in g:
        g.task_counts = inbox.counts(g.person.id)
    return g.task_counts


@bp.get("/tasks")
@login_required
def index():
    """The inbox: a tab of tasks (or copies), most urgent and newest first."""
    tab = request.args.get("tab", "open")
    if tab not in TABS:
        tab = "open"
    counts = inbox.counts(g.person.id)
    if tab == "cc":
        rows = [(None, case, cc) for cc, case in inbox.copies(g.person.id, limit=100)]
    else:
        rows = [(task, case, None) for task, case in inbox.inbox(g.person.id, tab, limit=100)]
    grids = {n.code: n.name for n in GridNode.select(GridNode.code, GridNode.name)
             .where(GridNode.code.in_({case.grid_code for _, case, _ in rows}))}
    from ..definitions.versions import latest_forms

    titles = {v.form.key: v.form.title for v in latest_forms()}
    return render_template("tasks/index.html", tab=tab, tabs=TABS, rows=rows, counts=counts, grids=grids,
                           titles=titles, now=utcnow())


# -- acting on a task ------------------------------------------------------------------------------

def _task(task_id: int) -> tuple[Task, Submission, dict, dict]:
    task = Task.get_or_none(Task.id == task_id)
    case = Submission.get_or_none(Submission.id == task.submission_id) if task else None
    if case is None or not g.scope.can_see_submission(case):
        abort(404, description=_("找不到这一步，或它不在您的管辖范围内"))
    flow = FlowVersion.get_by_id(case.flow_version_id).definition
    live = (case.flow_state or {}).get("tasks", {}).get(task.key)
    return task, case, flow, live


def _allowed(flow: dict, case: Submission, live: dict | None, key: str) -> dict:
    for a in actions_for(flow, case.flow_state, live, g.person.id) if live else []:
        if a["key"] == key:
            return a
    abort(409, description=_("这一步已经办理、已转给他人，或您不能做这个操作；请刷新后查看最新情况"))


def act_urls(task: Task, key: str) -> dict[str, str]:
    base = url_for("tasks.act", task_id=task.id, key=key)
    return {"submit": base, "render": base + "/form", "check": base + "/check", "upload": base + "/upload",
            "grids": url_for("fill.pick_grid"), "target": "#act-form"}


def _act_page(task, case, flow, live, action, data=None, errors=None, message=None, status=200):
    form = step_form(action)
    tree = Renderer(form, Context(errors=errors or {})).tree(data or {}) if form else None
    passed = [(n, flow["nodes"][n].get("title", n)) for n in (case.flow_state or {}).get("passed", [])
              if n in flow["nodes"]]
    args = dict(task=task, case=case, action=action, tree=tree, u=act_urls(task, action["key"]), errors=errors or {},
                message=message, passed=passed, form=request.form)
    template = "tasks/_act.html" if request.headers.get("HX-Request") else "tasks/act.html"
    return render_template(template, **args), status


@bp.get("/tasks/<int:task_id>/act/<key>")
@login_required
def act_form(task_id: int, key: str):
    """The form of one action, opened in place on the case page (or as a page without JavaScript)."""
    task, case, flow, live = _task(task_id)
    return _act_page(task, case, flow, live, _allowed(flow, case, live, key))


@bp.post("/tasks/<int:task_id>/act/<key>")
@login_required
def act(task_id: int, key: str):
    """Do the action; on a mistake, show the form again with the messages and what was typed."""
    task, case, flow, live, action, form = _step(task_id, key)
    data = from_post(form, _posted_pairs()).data if form else {}
    comment = (request.form.get("comment") or "").strip() or None
    to = _target(key)
    try:
        store.act(g.person, case, key, current_app.config["TIMEZONE"], task=task, data=data, comment=comment, to=to)
    except Refusal as exc:
        errors = {e.path: e.message for e in exc.errors}
        message = exc.message
        if exc.code == "comment_required":
            errors["/_comment"], message = exc.message, None  # shown beside the comment box only
        return _act_page(task, case, flow, live, action, data, errors, message,
                         status=200 if request.headers.get("HX-Request") else 422)
    flash(_("已办理：%(title)s", title=action["title"]), "ok")
    target = url_for("fill.view", sid=case.id)
    if request.headers.get("HX-Request"):
        return "", 200, {"HX-Redirect": target}
    return redirect(target, 303)


def _target(key: str):
    if key == "transfer":
        return (request.form.get("to") or "").strip() or None
    if key == "add_signer":
        return {"person": (request.form.get("to") or "").strip(), "position": request.form.get("position", "before")}
    if key == "return":
        return request.form.get("to") or "submitter"
    return None


def _step(task_id: int, key: str):
    """The task, its case and flow, the action the person may do on it, and the action's step form."""
    task, case, flow, live = _task(task_id)
    action = _allowed(flow, case, live, key)
    return task, case, flow, live, action, step_form(action)


@bp.post("/tasks/<int:task_id>/act/<key>/form")
@login_required
def act_redraw(task_id: int, key: str):
    """Redraw a step form after a row was added or a condition's field changed."""
    task, case, flow, live, action, form = _step(task_id, key)
    data = from_post(form, _posted_pairs(), keep_empty=True).data if form else {}
    op = request.form.get("_op")
    if form and op and op != "render":
        data = apply_op(data, op, form)
    return _act_page(task, case, flow, live, action, data)


@bp.post("/tasks/<int:task_id>/act/<key>/check")
@login_required
def act_check(task_id: int, key: str):
    """Check one field of a step form as the person leaves it."""
    task, *_, form = _step(task_id, key)
    return check_field(form, act_urls(task, key)) if form else ("", 204)


@bp.post("/tasks/<int:task_id>/act/<key>/upload")
@login_required
def act_upload(task_id: int, key: str):
    """Store photos picked in a step form (e.g. 处置后照片) and redraw the field."""
    task, *_, form = _step(task_id, key)
    return upload_field(form, act_urls(task, key)) if form else ("", 204)


# -- acting on a case as a whole ---------------------------------------------------------------------

@bp.post("/submissions/<sid>/do/<action>")
@login_required
def case_action(sid: str, action: str):
    """Withdraw (the submitter), comment, urge a task, or reopen a closed case."""
    case = Submission.get_or_none(Submission.id == sid)
    if case is None or not g.scope.can_see_submission(case):
        abort(404, description=_("找不到这条记录，或它不在您的管辖范围内"))
    if action not in ("withdraw", "comment", "urge", "reopen"):
        abort(404)
    task = None
    if action == "urge":
        task = Task.get_or_none((Task.id == request.form.get("task", type=int)) & (Task.submission == case.id))
        if task is None:
            abort(404)
    if action == "reopen" and not (g.scope.is_admin_at(case.grid_path) or _worked_on(case)):
        abort(403, description=_("只有办理过这个案件的人或管理员可以重新办理"))
    comment = (request.form.get("comment") or "").strip() or None
    try:
        store.act(g.person, case, action, current_app.config["TIMEZONE"], task=task, comment=comment)
        flash(str(DONE[action]), "ok")
    except Refusal as exc:
        flash(exc.message, "error")
    return redirect(url_for("fill.view", sid=case.id) + "#timeline", 303)


DONE = {"withdraw": _l("已撤回。"), "comment": _l("评论已发表。"), "urge": _l("已催办，办理人会在待办中看到提醒。"),
        "reopen": _l("已重新办理。")}


def _worked_on(case: Submission) -> bool:
    from ..models import TaskAssignee

    return (TaskAssignee.select().join(Task).where((Task.submission == case.id)
                                                   & (TaskAssignee.person == g.person.id)).exists())

