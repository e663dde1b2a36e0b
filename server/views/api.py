"""The JSON API under /api/v1: forms, submissions, grids; token auth; errors as JSON."""

from __future__ import annotations

import json
from datetime import date

from flask import Blueprint, current_app, g, jsonify, request

from .. import attachments, cases, inbox, lists, store
from ..definitions.overlays import effective
from ..definitions.versions import latest_form, latest_forms
from ..errors import Refusal
from ..grids import node_by_code
from ..models import GridNode, Submission, Task, TaskAssignee
from ..openapi import openapi_document
from ..scope import scope_for_token
from ..validation import FieldError

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PUBLIC = {"api.openapi"}


@bp.before_request
def authenticate():
    """Find the person behind the bearer token; refuse the request without one."""
    if request.endpoint in PUBLIC:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(401, "unauthorized", "缺少访问令牌：请在 Authorization 头中提供 Bearer 令牌")
    scope = scope_for_token(token.strip())
    if scope is None:
        raise Refusal(401, "unauthorized", "访问令牌无效、已撤销，或账号已停用")
    g.person = scope.person
    g.scope = scope


@bp.errorhandler(Refusal)
def refused(refusal: Refusal):
    response = jsonify(refusal.as_dict())
    response.status_code = refusal.status
    if refusal.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gridflow"'
    return response


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _too_deep(value, limit: int) -> bool:
    """Tell whether arrays and objects nest deeper than the limit (without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def json_body() -> dict:
    """Read the request body as a JSON object, refusing anything else with a clear error."""
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise Refusal(415, "unsupported_media_type",
                      "请求体须为 JSON，并设置 Content-Type: application/json")
    raw = request.get_data(cache=False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "bad_json", "请求体不是有效的 UTF-8 文本") from None
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise Refusal(400, "too_deep", "JSON 嵌套层数过多") from None
    except ValueError as exc:
        raise Refusal(400, "bad_json", f"请求体不是有效的 JSON：{exc}") from None
    if _too_deep(body, current_app.config["MAX_JSON_DEPTH"]):
        raise Refusal(400, "too_deep",
                      f"JSON 嵌套层数过多（最多 {current_app.config['MAX_JSON_DEPTH']} 层）")
    if not isinstance(body, dict):
        raise Refusal(400, "bad_json", "请求体须为 JSON 对象 {…}")
    return body


def _unknown_keys(body: dict, allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        errors = [FieldError(f"/{k}", f"不认识的字段「{k}」") for k in extra]
        raise Refusal(422, "invalid", "请求中有不认识的字段：" + "、".join(extra), errors)


def _tz() -> str:
    return current_app.config["TIMEZONE"]


# -- forms ------------------------------------------------------------------------------------

@bp.get("/forms")
def forms():
    """List the forms the caller may fill, newest version of each."""
    items = [
        {"key": v.form.key, "title": v.form.title, "version": v.version,
         "flow": v.definition.get("flow")}
        for v in latest_forms()
    ]
    return {"forms": items}


@bp.get("/forms/<key>")
def form(key: str):
    """Show the effective definition of a form for a grid."""
    if latest_form(key) is None:
        raise Refusal(404, "not_found", f"找不到表单 {key}")
    code = request.args.get("grid")
    node = None
    if code is not None:
        node = node_by_code(code)
        if node is None or not g.scope.covers(node.path):
            raise Refusal(404, "not_found", f"网格 {code} 不存在或不在您的管辖范围内")
    version = effective("form", key, node.path if node else None)
    d = version.definition
    return {"key": key, "title": d["title"], "version": version.version,
            "overlays": version.overlays or [],
            "description": d.get("description"), "schema": d["schema"], "ui": d.get("ui", {}),
            "flow": d.get("flow")}


@bp.post("/forms/<key>/submissions")
def submit(key: str):
    """File a submission; the same id and data again is a harmless retry."""
    version = latest_form(key)
    if version is None:
        raise Refusal(404, "not_found", f"找不到表单 {key}")
    body = json_body()
    _unknown_keys(body, {"id", "grid", "data"})
    sid = cases.parse_submission_id(body["id"]) if body.get("id") is not None else None
    code = body.get("grid")
    if not isinstance(code, str) or not code:
        raise Refusal(422, "invalid", "须提供网格编码 grid", [FieldError("/grid", "须提供网格编码 grid")])
    data = body.get("data")
    if not isinstance(data, dict):
        raise Refusal(422, "invalid", "须提供表单数据 data（JSON 对象）",
                      [FieldError("/data", "须提供表单数据 data（JSON 对象）")])
    node = node_by_code(code)
    if node is None:
        raise Refusal(422, "invalid", f"网格编码 {code} 不存在",
                      [FieldError("/grid", f"网格编码 {code} 不存在")])
    if node.retired_at is not None:
        raise Refusal(422, "invalid", f"网格 {node.name}（{code}）已撤销，不能再提交",
                      [FieldError("/grid", f"网格 {node.name}（{code}）已撤销，不能再提交")])
    if not g.scope.can_submit_at(node):
        raise Refusal(403, "forbidden", f"您无权在网格 {node.name}（{code}）提交")
    case, created = cases.submit(g.person, effective("form", key, node.path), node, data, sid)
    body = cases.case_json(case, _tz(), reveal=True)  # what the caller just sent
    if not created:
        return body, 200
    return body, 201, {"Location": f"/api/v1/submissions/{case.id}"}


# -- submissions ------------------------------------------------------------------------------

def _day(name: str) -> date | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Refusal(422, "invalid", f"{name} 应为日期，如 2024-05-01",
                      [FieldError(f"/{name}", f"{name} 应为日期，如 2024-05-01")]) from None


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return current_app.config["PAGE_SIZE"]
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 200:
        raise Refusal(422, "invalid", "limit 应为 1 到 200 之间的整数",
                      [FieldError("/limit", "limit 应为 1 到 200 之间的整数")])
    return int(raw)


@bp.get("/submissions")
def submissions():
    """List cases in the caller's scope with the case list's filters and order, by cursor."""
    from .reports import _version_for

    query = lists.parse(request.args, g.scope, _tz(), _version_for)
    items, following = lists.page(g.scope, query, _limit(), request.args.get("cursor"))
    return {"items": [cases.case_json(c, _tz()) for c in items],
            "next": following}


@bp.get("/stats")
def stats_():
    """The dashboard's figures for a node (default: the top of the caller's scope), a period and a form."""
    from .reports import compute

    return compute(request.args)


def _visible_case(sid: str) -> Submission:
    case = Submission.get_or_none(Submission.id == sid)
    if case is None or not g.scope.can_see_submission(case):
        raise Refusal(404, "not_found", "找不到这条记录，或它不在您的管辖范围内")
    return case


@bp.get("/submissions/<sid>")
def submission(sid: str):
    """Show one case with its tasks and history; a full view of sensitive fields is logged."""
    case = _visible_case(sid)
    reveal = g.scope.sees_sensitive_at(case.grid_path)
    if reveal:
        cases.log_full_view(g.person, case, "api")
    return cases.case_detail_json(case, _tz(), reveal, viewer=g.person.id)


@bp.put("/submissions/<sid>")
def edit_submission(sid: str):
    """Replace a case's data, given the revision the caller last saw."""
    case = _visible_case(sid)
    body = json_body()
    _unknown_keys(body, {"data", "revision"})
    if not g.scope.can_edit_submission(case):
        raise Refusal(403, "forbidden", "只有填报人或管理员可以修改这条记录")
    data = body.get("data")
    if not isinstance(data, dict):
        raise Refusal(422, "invalid", "须提供表单数据 data（JSON 对象）",
                      [FieldError("/data", "须提供表单数据 data（JSON 对象）")])
    reveal = g.scope.sees_sensitive_at(case.grid_path)
    case = cases.edit(g.person, case, data, body.get("revision"), revealed=reveal)
    return cases.case_json(case, _tz(), reveal)


# -- tasks ------------------------------------------------------------------------------------

@bp.get("/tasks")
def tasks():
    """The caller's tasks: `state=open` (default) or `done`; `overdue=1` for the overdue ones only."""
    which = request.args.get("state", "open")
    if which not in ("open", "done"):
        raise Refusal(422, "invalid", "state 只能是 open 或 done", [FieldError("/state", "state 只能是 open 或 done")])
    if request.args.get("overdue") in ("1", "true"):
        which = "overdue" if which == "open" else which
    rows = inbox.inbox(g.person.id, which, limit=_limit(), offset=request.args.get("offset", 0, type=int))
    return {"items": inbox.tasks_json(rows, g.person.id, _tz())}


@bp.post("/tasks/<int:task_id>/actions")
def task_action(task_id: int):
    """Act on a task: one of its actions, or return / transfer / add_signer / escalate / comment."""
    task = Task.get_or_none(Task.id == task_id)
    case = Submission.get_or_none(Submission.id == task.submission_id) if task else None
    if case is None or not g.scope.can_see_submission(case):
        raise Refusal(404, "not_found", "找不到这一步，或它不在您的管辖范围内")
    body = json_body()
    _unknown_keys(body, {"action", "data", "comment", "to"})
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise Refusal(422, "invalid", "须提供操作 action", [FieldError("/action", "须提供操作 action")])
    if task.state != "open":
        raise Refusal(409, "task_closed", "这一步已经办理或已被收回，请刷新后查看最新情况")
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise Refusal(422, "invalid", "意见 comment 须为文字", [FieldError("/comment", "意见 comment 须为文字")])
    case = store.act(g.person, case, action, _tz(), task=task, data=body.get("data"), comment=comment,
                     to=body.get("to"))
    reveal = g.scope.sees_sensitive_at(case.grid_path)
    return cases.case_detail_json(case, _tz(), reveal, viewer=g.person.id)


CASE_ACTIONS = {"withdraw", "comment", "urge", "reopen"}


@bp.post("/submissions/<sid>/actions")
def case_action(sid: str):
    """Act on a case as a whole: withdraw (the submitter), comment, urge a task, reopen a closed case."""
    case = _visible_case(sid)
    body = json_body()
    _unknown_keys(body, {"action", "comment", "task", "to"})
    action = body.get("action")
    if action not in CASE_ACTIONS:
        message = "action 只能是 " + "、".join(sorted(CASE_ACTIONS))
        raise Refusal(422, "invalid", message, [FieldError("/action", message)])
    task = None
    if action == "urge":
        task = Task.get_or_none((Task.id == body.get("task")) & (Task.submission == case.id)) \
            if isinstance(body.get("task"), int) else None
        if task is None or task.state != "open":
            raise Refusal(422, "invalid", "请指明要催办的、尚未办理的一步 task",
                          [FieldError("/task", "请指明要催办的、尚未办理的一步 task")])
    if action == "reopen" and not (g.scope.is_admin_at(case.grid_path) or _acted_on(case)):
        raise Refusal(403, "forbidden", "只有办理过这个案件的人或管理员可以重新办理")
    comment = body.get("comment") if isinstance(body.get("comment"), str) else None
    case = store.act(g.person, case, action, _tz(), task=task, comment=comment, to=body.get("to"))
    reveal = g.scope.sees_sensitive_at(case.grid_path)
    return cases.case_detail_json(case, _tz(), reveal, viewer=g.person.id)


def _acted_on(case: Submission) -> bool:
    return (TaskAssignee.select().join(Task).where((Task.submission == case.id)
                                                   & (TaskAssignee.person == g.person.id)).exists())


# -- attachments ------------------------------------------------------------------------------

@bp.post("/attachments")
def upload():
    """Store uploaded files (multipart field `file`, one or more); answer with their ids."""
    files = [f for f in request.files.getlist("file") if f and f.filename]
    if not files:
        raise Refusal(422, "invalid", "请用 multipart/form-data 上传文件，字段名为 file",
                      [FieldError("/file", "请选择要上传的文件")])
    photo_only = request.args.get("kind") == "photo"
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    rows, errors, refusals = [], [], []
    for i, f in enumerate(files):
        try:
            rows.append(attachments.store(current_app.config["UPLOAD_DIR"], f.read(limit + 1), f.filename,
                                          g.person, photo_only, limit, current_app.config["PHOTO_MAX_PIXELS"]))
        except Refusal as exc:
            refusals.append(exc)
            errors.append(FieldError(f"/file/{i}", exc.message))
    if len(refusals) == 1 and len(files) == 1:
        raise refusals[0]
    if errors:
        stored = "；其余文件已保存" if rows else ""
        raise Refusal(422, "invalid", f"有 {len(errors)} 个文件未能上传{stored}，请按提示处理后重新上传这些文件",
                      errors)
    return {"items": [attachments.as_json(r) for r in rows]}, 201


@bp.get("/attachments/<sha>")
def attachment(sha: str):
    """Download a file the caller uploaded or may see through a case."""
    row = attachments.visible(g.scope, sha) if attachments.is_hash(sha) else None
    if row is None:
        raise Refusal(404, "not_found", "找不到这个附件，或您无权查看")
    response = attachments.serve(current_app.config["UPLOAD_DIR"], row, request.args.get("thumb") == "1")
    if response is None:
        raise Refusal(404, "not_found", "附件文件已丢失，请联系管理员")
    return response


# -- grids ------------------------------------------------------------------------------------

@bp.get("/grids")
def grids():
    """List the children of a node in scope, or the top nodes of the caller's scope."""
    code = request.args.get("parent")
    if code:
        parent = node_by_code(code)
        if parent is None or not g.scope.covers(parent.path):
            raise Refusal(404, "not_found", f"网格 {code} 不存在或不在您的管辖范围内")
        query = GridNode.select().where(GridNode.parent == parent)
    elif g.scope.paths:
        query = GridNode.select().where(GridNode.path.in_(g.scope.paths))
    else:
        return {"items": []}
    query = query.where(GridNode.retired_at.is_null()).order_by(GridNode.code)
    return {"items": [cases.grid_json(n) for n in query]}


@bp.get("/grids/<code>")
def grid(code: str):
    """Show one node in scope."""
    node = node_by_code(code)
    if node is None or not g.scope.covers(node.path):
        raise Refusal(404, "not_found", f"网格 {code} 不存在或不在您的管辖范围内")
    return cases.grid_json(node)


@bp.get("/openapi.json")
def openapi():
    """Publish the OpenAPI document of this API."""
    return openapi_document()
