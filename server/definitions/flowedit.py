"""The flow editor's model: a node's settings as plain rows, to and from the flow definition."""

from __future__ import annotations

import copy
import re
from typing import Any

from .builder import BuildError, build_condition, parse_condition

NODE_TYPES: dict[str, str] = {
    "task": "办理步骤", "branch": "判断（分支）", "parallel": "并行分派", "join": "汇合",
    "cc": "抄送", "spawn": "派生新案件", "end": "结束",
}
MODES = {"any": "或签（一人办理即可）", "all": "会签（每人都要同意）", "sequence": "依次审批"}
WHO = {"role": "某级的某职务", "department": "某级的部门", "submitter": "提交人", "person": "指定人员",
       "chosen": "表单里选的人"}
TIMEOUTS = {"": "不处理", "remind": "提醒", "escalate": "督办并上报上一级", "auto": "自动办理"}
ACTION_KINDS = {"": "普通", "approve": "同意", "reject": "否决（会签/依次审批时立即结束）"}
COMMENTS = {"": "不需要", "optional": "可填", "required": "必填"}
OUTCOMES = {"resolved": "办结", "rejected": "不予受理", "unresolved": "未解决", "referred": "转其他途径",
            "withdrawn": "撤回"}
UNITS = {"D": "天", "H": "小时", "W": "周"}
NODE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(\d+)H)?$")


def new_node_id(flow: dict, kind: str) -> str:
    """A node id not used yet: task_1, branch_2…"""
    n = 1
    while f"{kind}_{n}" in (flow.get("nodes") or {}):
        n += 1
    return f"{kind}_{n}"


def skeleton(kind: str, title: str, end: str | None) -> dict:
    """A new node of a type, pointing at `end` (the flow's first end) where it needs a next step."""
    if kind not in NODE_TYPES:
        raise BuildError(f"未知的步骤类型 {kind}")
    there = end or "end"
    node: dict[str, Any] = {"type": kind, "title": title}
    if kind == "task":
        node.update(assignees=[{"role": "grid_leader", "level": "grid"}], mode="any",
                    actions=[{"key": "done", "title": "办结", "to": there}])
    elif kind == "branch":
        node.update(conditions=[], default=there)
    elif kind == "parallel":
        node.update(branches=[there], join=there)
    elif kind in ("join", "cc", "spawn"):
        node["next"] = there
        if kind == "cc":
            node["to"] = [{"role": "community_secretary", "level": "community"}]
        if kind == "spawn":
            node["form"] = "incident_report"
    else:
        node["outcome"] = "resolved"
    return node


def first_end(flow: dict) -> str | None:
    return next((k for k, n in (flow.get("nodes") or {}).items() if n.get("type") == "end"), None)


def add_node(flow: dict, kind: str, title: str | None = None, after: str | None = None) -> tuple[dict, str]:
    """Add a node; with `after`, insert it between that node and where it went (an added step)."""
    if kind not in NODE_TYPES:
        raise BuildError(f"未知的步骤类型 {kind}")
    out = copy.deepcopy(flow)
    nodes = out.setdefault("nodes", {})
    ident = new_node_id(out, kind)
    node = skeleton(kind, title or NODE_TYPES[kind], first_end(out))
    if after:
        if after not in nodes:
            raise BuildError(f"找不到步骤 {after}")
        before = nodes[after]
        target = _first_target(before)
        if target is not None:
            _retarget(node, target)
            _point(before, target, ident)
    nodes[ident] = node
    return out, ident


def _first_target(node: dict) -> str | None:
    from .flows import edges

    found = edges(node)
    return found[0][1] if found else None


def _retarget(node: dict, target: str) -> None:
    """Send a new node's way out to `target`."""
    if node["type"] == "task":
        for action in node["actions"]:
            action["to"] = target
    elif node["type"] == "branch":
        node["default"] = target
    elif "next" in node:
        node["next"] = target


def _point(node: dict, old: str, new: str) -> None:
    """Make every way out of a node that led to `old` lead to `new`."""
    for action in node.get("actions") or []:
        if action.get("to") == old:
            action["to"] = new
    for cond in node.get("conditions") or []:
        if cond.get("to") == old:
            cond["to"] = new
    for key in ("default", "next", "join", "branch"):
        if node.get(key) == old:
            node[key] = new
    if isinstance(node.get("branches"), list):
        node["branches"] = [new if b == old else b for b in node["branches"]]


def remove_node(flow: dict, ident: str) -> dict:
    """Remove a node; what pointed at it points where it went (a removed step is skipped over)."""
    out = copy.deepcopy(flow)
    nodes = out.get("nodes") or {}
    if ident not in nodes:
        raise BuildError(f"找不到步骤 {ident}")
    if len(nodes) == 1:
        raise BuildError("流程至少要有一个步骤")
    onward = _first_target(nodes[ident])
    del nodes[ident]
    for node in nodes.values():
        if onward and onward != ident:
            _point(node, ident, onward)
    if out.get("start") == ident:
        out["start"] = onward if onward in nodes else next(iter(nodes))
    return out


# -- assignees ----------------------------------------------------------------------------------

def who_row(spec: dict) -> dict:
    """An assignee spec as a row: who (role, department, submitter, person, chosen) and its details."""
    if "department" in spec:
        return {"who": "department", "value": spec["department"], "level": spec.get("level", ""),
                "role": spec.get("role", "")}
    for who in ("role", "person", "chosen"):
        if who in spec:
            return {"who": who, "value": spec[who], "level": spec.get("level", ""), "role": ""}
    return {"who": "submitter", "value": "", "level": "", "role": ""}


def who_spec(row: dict) -> dict | None:
    """A row back into an assignee spec (None for an empty row)."""
    who, value, level = row.get("who"), (row.get("value") or "").strip(), (row.get("level") or "").strip()
    if who == "submitter":
        return {"submitter": True}
    if who not in WHO or not value:
        return None
    spec: dict[str, Any] = {who: value}
    if who == "department" and row.get("role"):
        spec = {"role": row["role"], **spec}
    if who in ("role", "department") and level:
        spec["level"] = level
    return spec


# -- deadlines ----------------------------------------------------------------------------------

def deadline_row(deadline: dict | None) -> dict:
    """A deadline as (amount, unit, working days?); an unusual duration comes back whole."""
    if not deadline:
        return {"amount": "", "unit": "D", "working": False, "raw": ""}
    match = DURATION.match(deadline.get("duration", ""))
    working = deadline.get("calendar") == "working"
    if match:
        weeks, days, hours = match.groups()
        filled = [(v, u) for v, u in ((weeks, "W"), (days, "D"), (hours, "H")) if v]
        if len(filled) == 1:
            return {"amount": filled[0][0], "unit": filled[0][1], "working": working, "raw": ""}
    return {"amount": "", "unit": "D", "working": working, "raw": deadline.get("duration", "")}


def deadline_of(row: dict) -> dict | None:
    """A deadline row back into {"duration", "calendar"} (None: no deadline)."""
    amount = str(row.get("amount") or "").strip()
    raw = (row.get("raw") or "").strip()
    if not amount and not raw:
        return None
    if amount:
        if not amount.isdigit() or int(amount) == 0:
            raise BuildError("期限应是大于 0 的整数")
        unit = row.get("unit") if row.get("unit") in UNITS else "D"
        duration = f"PT{amount}H" if unit == "H" else f"P{amount}{unit}"
    else:
        duration = raw
    out = {"duration": duration}
    if row.get("working"):
        out["calendar"] = "working"
    return out


# -- a node's settings --------------------------------------------------------------------------

def node_settings(flow: dict, ident: str) -> dict:
    """A node's settings as the editor's panel shows them."""
    node = (flow.get("nodes") or {}).get(ident)
    if node is None:
        raise BuildError(f"找不到步骤 {ident}")
    out: dict[str, Any] = {"id": ident, "type": node.get("type"), "title": node.get("title", ""),
                           "description": node.get("description", "")}
    kind = node.get("type")
    if kind == "task":
        out.update(
            assignees=[who_row(s) for s in node.get("assignees") or []], mode=node.get("mode", "any"),
            fallback=who_row(node["fallback"]) if node.get("fallback") else None,
            deadline=deadline_row(node.get("deadline")),
            timeout=(node.get("on_timeout") or {}).get("action", ""),
            auto_action=(node.get("on_timeout") or {}).get("auto_action", ""), status=node.get("status", ""),
            actions=[{"key": a.get("key", ""), "title": a.get("title", ""), "to": a.get("to", ""),
                      "kind": a.get("kind", ""), "comment": a.get("comment", ""),
                      "fields": len(((a.get("form") or {}).get("schema") or {}).get("properties") or {})}
                     for a in node.get("actions") or []])
    elif kind == "branch":
        out.update(conditions=[_condition_row(c) for c in node.get("conditions") or []],
                   default=node.get("default", ""))
    elif kind == "parallel":
        out.update(branches=list(node.get("branches") or []), foreach=node.get("foreach", ""),
                   branch=node.get("branch", ""), join=node.get("join", ""))
    elif kind in ("join", "cc", "spawn"):
        out["next"] = node.get("next", "")
        if kind == "cc":
            out["to"] = [who_row(s) for s in node.get("to") or []]
        if kind == "spawn":
            out["form"] = node.get("form", "")
    elif kind == "end":
        out["outcome"] = node.get("outcome", "resolved")
    return out


def _condition_row(cond: dict) -> dict:
    row: dict[str, Any] = {"to": cond.get("to", ""), "when": None, "visits": None}
    if "when" in cond:
        row["when"] = parse_condition(cond["when"])
    if "visits" in cond:
        v = cond["visits"]
        row["visits"] = {"node": v.get("node", ""), "cmp": "lt" if "lt" in v else "gte",
                         "count": v.get("lt", v.get("gte", ""))}
    return row


def apply_node(flow: dict, ident: str, new: dict, fields_form: dict | None = None) -> dict:
    """Write a node's settings back; `fields_form` gives the fields conditions may look at."""
    out = copy.deepcopy(flow)
    nodes = out.get("nodes") or {}
    node = nodes.get(ident)
    if node is None:
        raise BuildError(f"找不到步骤 {ident}")
    title = (new.get("title") or "").strip()
    if not title:
        raise BuildError("步骤名称不能为空")
    node["title"] = title
    _put(node, "description", (new.get("description") or "").strip())
    kind = node.get("type")
    targets = set(nodes)
    if kind == "task":
        _task(node, new, targets)
    elif kind == "branch":
        conditions = []
        for row in new.get("conditions") or []:
            cond: dict[str, Any] = {}
            if row.get("when"):
                when = build_condition(fields_form or {}, row["when"])
                if when is not None:
                    cond["when"] = when
            if row.get("visits") and row["visits"].get("node"):
                v = row["visits"]
                count = str(v.get("count", "")).strip()
                if not count.isdigit():
                    raise BuildError("次数应是整数")
                cond["visits"] = {"node": v["node"], ("lt" if v.get("cmp") == "lt" else "gte"): int(count)}
            cond["to"] = _target(row.get("to"), targets)
            conditions.append(cond)
        node["conditions"] = conditions
        node["default"] = _target(new.get("default"), targets)
    elif kind == "parallel":
        foreach = (new.get("foreach") or "").strip()
        for key in ("branches", "foreach", "branch"):
            node.pop(key, None)
        if foreach:
            node["foreach"] = foreach if foreach.startswith("/") else "/" + foreach
            node["branch"] = _target(new.get("branch"), targets)
        else:
            branches = [_target(b, targets) for b in new.get("branches") or [] if b]
            if not branches:
                raise BuildError("并行分派至少要有一个分支")
            node["branches"] = branches
        node["join"] = _target(new.get("join"), targets)
    elif kind in ("join", "cc", "spawn"):
        node["next"] = _target(new.get("next"), targets)
        if kind == "cc":
            to = [s for s in (who_spec(r) for r in new.get("to") or []) if s]
            if not to:
                raise BuildError("抄送至少要有一个对象")
            node["to"] = to
        if kind == "spawn" and new.get("form"):
            node["form"] = new["form"]
    elif kind == "end":
        outcome = (new.get("outcome") or "").strip()
        if not re.match(r"^[a-z][a-z_]{0,31}$", outcome):
            raise BuildError("结果代码只能用小写英文字母和下划线")
        node["outcome"] = outcome
    return out


def _task(node: dict, new: dict, targets: set[str]) -> None:
    assignees = [s for s in (who_spec(r) for r in new.get("assignees") or []) if s]
    if not assignees:
        raise BuildError("办理步骤至少要有一个办理人")
    node["assignees"] = assignees
    node["mode"] = new.get("mode") if new.get("mode") in MODES else "any"
    fallback = who_spec(new["fallback"]) if new.get("fallback") else None
    _put(node, "fallback", fallback)
    _put(node, "deadline", deadline_of(new.get("deadline") or {}))
    timeout = new.get("timeout") or ""
    if timeout in ("remind", "escalate", "auto"):
        on_timeout = {"action": timeout}
        if timeout == "auto":
            keys = [(a.get("key") or "") for a in new.get("actions") or []] or [a["key"] for a in node["actions"]]
            chosen = new.get("auto_action") or next((k for k in keys if k), None)
            if not chosen:
                raise BuildError("超时自动办理时，请选择自动执行的操作")
            on_timeout["auto_action"] = chosen
        node["on_timeout"] = on_timeout
    else:
        node.pop("on_timeout", None)
    _put(node, "status", (new.get("status") or "").strip())
    old = {a.get("key"): a for a in node.get("actions") or []}
    actions, seen = [], set()
    for i, row in enumerate(new.get("actions") or []):
        title = (row.get("title") or "").strip()
        if not title:
            continue
        key = (row.get("key") or "").strip() or _action_key(seen | set(old), i)
        if not NODE_ID.match(key):
            raise BuildError(f"操作标识 {key} 只能用小写英文字母、数字和下划线")
        if key in seen:
            raise BuildError(f"操作标识 {key} 重复")
        seen.add(key)
        action = {k: v for k, v in (old.get(key) or {}).items() if k == "form"}
        action.update(key=key, title=title, to=_target(row.get("to"), targets))
        if row.get("kind") in ("approve", "reject"):
            action["kind"] = row["kind"]
        if row.get("comment") in ("optional", "required"):
            action["comment"] = row["comment"]
        actions.append(action)
    if not actions:
        raise BuildError("办理步骤至少要有一个操作（如“办结”）")
    node["actions"] = actions


def _action_key(taken: set, i: int) -> str:
    n = i + 1
    while f"action_{n}" in taken:
        n += 1
    return f"action_{n}"


def _target(value: Any, targets: set[str]) -> str:
    if value not in targets:
        raise BuildError(f"去向 {value or '（未选）'} 不是本流程的步骤")
    return value


def _put(d: dict, key: str, value: Any) -> None:
    if value in (None, "", [], {}):
        d.pop(key, None)
    else:
        d[key] = value
