"""Tasks as people see them: the inbox lists (待办 / 已办 / 抄送我的 / 已超时) and tasks as JSON."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from peewee import JOIN

from . import engine
from .cases import iso
from .models import CcEntry, FlowVersion, Person, Submission, Task, TaskAssignee

LISTS = ("open", "done", "cc", "overdue")


def _flows(version_ids: set[int]) -> dict[int, dict]:
    return {v.id: v.definition for v in FlowVersion.select(FlowVersion.id, FlowVersion.definition)
            .where(FlowVersion.id.in_(version_ids))} if version_ids else {}


def assignees_of(task_ids: list[int]) -> dict[int, list[str]]:
    """Who each task waits for now, by username."""
    out: dict[int, list[str]] = {t: [] for t in task_ids}
    if not task_ids:
        return out
    rows = (TaskAssignee.select(TaskAssignee.task, Person.username).join(Person)
            .where(TaskAssignee.task.in_(task_ids) & TaskAssignee.active).order_by(Person.username))
    for row in rows:
        out[row.task_id].append(row.person.username)
    return out


def task_json(task: Task, case: Submission, flow: dict | None, viewer: int, tz: str,
              assignees: list[str]) -> dict:
    """Describe a task; `actions` lists what the viewer may do on it now, with step-form schemas."""
    state = case.flow_state or {}
    live = (state.get("tasks") or {}).get(task.key)
    actions = []
    if flow is not None and live is not None and task.state == "open":
        for a in engine.actions_for(flow, state, live, viewer):
            item = {"key": a["key"], "title": a["title"]}
            if a.get("form"):
                item["schema"] = a["form"]["schema"]
                if a["form"].get("ui"):
                    item["ui"] = a["form"]["ui"]
            if a.get("comment"):
                item["comment"] = a["comment"]
            if a.get("operation"):
                item["operation"] = True
            actions.append(item)
    return {"id": task.id, "case": case.id, "form": case.form, "grid": case.grid_code, "node": task.node,
            "title": task.title, "state": task.state, "mode": task.mode, "assignees": assignees,
            "item": task.item, "opened_at": iso(task.opened_at, tz), "due_at": iso(task.due_at, tz),
            "overdue": bool(task.overdue), "closed_at": iso(task.closed_at, tz), "action": task.action,
            "actions": actions}


def case_tasks(case: Submission, viewer: int, tz: str) -> list[dict]:
    """The tasks of one case, open first, as JSON."""
    tasks = list(Task.select().where(Task.submission == case.id).order_by(Task.state != "open", Task.id))
    flow = FlowVersion.get_by_id(case.flow_version_id).definition if case.flow_version_id else None
    names = assignees_of([t.id for t in tasks])
    return [task_json(t, case, flow, viewer, tz, names[t.id]) for t in tasks]


def inbox(person_id: int, which: str, limit: int = 50, offset: int = 0) -> list[tuple[Task, Submission]]:
    """A person's tasks: open (待办), done (已办), overdue (已超时) — most urgent and newest first."""
    query = (Task.select(Task, Submission).join(Submission)
             .switch(Task).join(TaskAssignee, on=(TaskAssignee.task == Task.id))
             .where(TaskAssignee.person == person_id))
    if which == "open":
        query = query.where(TaskAssignee.active & (Task.state == "open")).order_by(
            Task.overdue.desc(), Task.due_at.is_null(), Task.due_at, Task.opened_at.desc())
    elif which == "overdue":
        query = query.where(TaskAssignee.active & (Task.state == "open") & Task.overdue).order_by(Task.due_at)
    else:
        query = query.where(TaskAssignee.acted_at.is_null(False)).order_by(TaskAssignee.acted_at.desc())
    return [(t, t.submission) for t in query.limit(limit).offset(offset)]


def copies(person_id: int, limit: int = 50) -> list[tuple[CcEntry, Submission]]:
    """Cases copied to a person (抄送我的), newest first."""
    rows = (CcEntry.select(CcEntry, Submission).join(Submission, JOIN.INNER)
            .where(CcEntry.person == person_id).order_by(CcEntry.at.desc()).limit(limit))
    return [(c, c.submission) for c in rows]


def counts(person_id: int) -> dict[str, int]:
    """How many tasks are open and overdue for a person, for the home page."""
    base = (TaskAssignee.select().join(Task)
            .where((TaskAssignee.person == person_id) & TaskAssignee.active & (Task.state == "open")))
    return {"open": base.count(), "overdue": base.where(Task.overdue).count(),
            "cc": CcEntry.select().where(CcEntry.person == person_id).count()}


KINDS = {
    "submitted": _l("提交"),
    "edited": _l("修改内容"),
    "task_opened": _l("转入"),
    "acted": _l("办理"),
    "branched": _l("自动判断"),
    "cc": _l("抄送"),
    "dispatched": _l("分派部门"),
    "joined": _l("各部门办理完毕"),
    "ended": _l("结束"),
    "returned": _l("退回"),
    "transferred": _l("转交"),
    "signer_added": _l("加签"),
    "signer_turn": _l("等待加签人意见"),
    "urged": _l("催办"),
    "commented": _l("评论"),
    "escalated": _l("上报上级"),
    "overdue": _l("超时"),
    "reminded": _l("超时提醒"),
    "withdrawn": _l("撤回"),
    "reopened": _l("重新办理"),
    "spawned": _l("生成关联案件"),
    "spawned_from": _l("由关联案件生成"),
    "spawn_failed": _l("未能生成关联案件"),
    "auto_action": _l("超时自动办理"),
    "sensitive_viewed": _l("查看了完整的敏感信息"),
    "moved": _l("移交网格"),
}
STATUS_LABELS = {"submitted": _l("已提交"), "in_progress": _l("办理中"), "returned": _l("已退回"),
                 "closed": _l("已办结"), "withdrawn": _l("已撤回"), "rejected": _l("未通过")}
OUTCOMES = {"resolved": _l("办结"), "unresolved": _l("未化解"), "rejected": _l("不予受理"), "withdrawn": _l("已撤回")}
QUIET = {"branched"}  # automatic steps people do not need to read


def worked_on(case: Submission, person_id: int) -> bool:
    """Tell whether a person had (or has) a task of this case."""
    return (TaskAssignee.select().join(Task).where((Task.submission == case.id)
                                                   & (TaskAssignee.person == person_id)).exists())


def timeline(case: Submission, flow: dict | None) -> list[dict]:
    """The case's history as people read it: when, who, what, the comment and the details."""
    from .models import Event

    events = list(Event.select().where(Event.submission == case.id).order_by(Event.id))
    ids = {e.actor_id for e in events if e.actor_id}
    for e in events:
        for key in ("assignees", "people", "to", "signer"):
            value = (e.payload or {}).get(key)
            ids |= {v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int)}
    names = {p.id: p.name for p in Person.select(Person.id, Person.name).where(Person.id.in_(ids))} if ids else {}
    nodes = (flow or {}).get("nodes", {})
    out = []
    for e in events:
        if e.kind in QUIET:
            continue
        p = e.payload or {}
        detail = []
        if p.get("title"):
            detail.append(p["title"])
        for key in ("assignees", "people", "to", "signer"):
            value = p.get(key)
            people = [names.get(v, str(v)) for v in (value if isinstance(value, list) else [value])
                      if isinstance(v, int)]
            if people:
                detail.append(str(_l("、")).join(people))
        if isinstance(p.get("to"), str) and p["to"] in nodes:
            detail.append(nodes[p["to"]].get("title", p["to"]))
        if p.get("outcome"):
            detail.append(str(OUTCOMES.get(p["outcome"], p["outcome"])))
        if p.get("note"):
            detail.append(p["note"])
        if p.get("item"):
            detail.append(str(p["item"]))
        if e.kind == "overdue" or p.get("reason") == "timeout":
            detail.append(str(_l("督办")))
        out.append({"at": e.at, "who": names.get(e.actor_id, str(_l("系统"))) if e.actor_id else str(_l("系统")),
                    "kind": e.kind, "label": str(KINDS.get(e.kind, e.kind)),
                    "node": nodes.get(e.node, {}).get("title") if e.node else None,
                    "comment": e.comment, "detail": str(_l("；")).join(detail),
                    "data": _step_data(nodes.get(e.node, {}), p.get("action"), p.get("data"))})
    return out


def _step_data(node: dict, action_key: str | None, data: dict | None) -> list[tuple[str, str]]:
    """Step-form data as (field title, value as read): option labels, 是/否, lists joined."""
    if not data:
        return []
    from .rendering import options_of
    from .validation import show_value

    action = next((a for a in node.get("actions", []) if a.get("key") == action_key), {})
    props = ((action.get("form") or {}).get("schema") or {}).get("properties") or {}
    out = []
    for name, value in data.items():
        schema = props.get(name) or {}
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        labels = dict((str(v), t) for v, t in (options_of(schema, {}) or options_of(items, {}) or []))
        if schema.get("format") == "attachment" or items.get("format") == "attachment":
            shown = str(_l("%(n)s 个附件", n=len(value) if isinstance(value, list) else 1))
        elif isinstance(value, list):
            shown = str(_l("、")).join(labels.get(str(v), show_value(v)) for v in value)
        else:
            shown = labels.get(str(value), show_value(value))
        out.append((schema.get("title") or name, shown))
    return out


def tasks_json(rows: list[tuple[Task, Submission]], viewer: int, tz: str) -> list[dict]:
    flows = _flows({s.flow_version_id for _, s in rows if s.flow_version_id})
    names = assignees_of([t.id for t, _ in rows])
    return [task_json(t, s, flows.get(s.flow_version_id), viewer, tz, names[t.id]) for t, s in rows]
