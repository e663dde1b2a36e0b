"""The engine's rules: entering nodes, resolving who works on a task, and every operation on a case.

A case's flow state is plain JSON (kept on the submission):

    {"tokens": {"k1": {"node": "triage", "parallel": null, "item": null}},
     "tasks": {"t1": {...open task...}}, "visits": {"triage": 1}, "passed": ["triage"],
     "parallels": {"p1": {"join": "dept_join", "expected": 3, "arrived": 0, "token": "k1"}},
     "facts": {...step-form data, latest first...}, "acted": 2, "seq": 5,
     "ended": {"node": "end_resolved", "outcome": "resolved"} | null, "status": "in_progress"}

A token is a position of the case in the graph (several during a parallel dispatch). A token
waits at a task node while its task is open; automatic nodes (branch, parallel, join, cc, spawn,
end) are passed through at once. Every function here returns a `Step`: the new state, which tasks
to write and to close, the events for the history, and what else the store must do (copies to
people, new linked cases). Refusals are `Refusal`s with Chinese messages; nothing is changed then.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..conditions import compile_condition
from ..errors import Refusal
from ..validation import compiled_form, make_validator

MAX_AUTOMATIC_STEPS = 500  # nodes passed without a task in one advance (a loop of branches is a mistake)
URGE_INTERVAL_SECONDS = 3600  # a task may be urged once an hour
RESUBMIT = "__resubmit"  # the pseudo-node of a case returned to its submitter
SIGNER_ACTIONS = [{"key": "agree", "title": "同意"}, {"key": "disagree", "title": "不同意", "comment": "required"}]
RESUBMIT_ACTIONS = [{"key": "resubmit", "title": "重新提交"}, {"key": "withdraw", "title": "撤回"}]
# Operations beyond a node's own actions, and who may use them (checked here or by the store).
OPERATIONS = ("return", "transfer", "add_signer", "withdraw", "urge", "comment", "escalate", "reopen")
OPERATION_TITLES = {"return": "退回", "transfer": "转交", "add_signer": "加签", "withdraw": "撤回",
                    "urge": "催办", "comment": "评论", "escalate": "上报上级", "reopen": "重新办理"}


@dataclass(frozen=True)
class Case:
    """What the engine knows of a case: its data, where it is, who filed it."""

    id: str
    data: dict
    grid_path: str
    submitter: int


class Directory(Protocol):
    """Who holds what, relative to a case's grid (the store answers from the database)."""

    def holders(self, spec: dict, case: Case, item: Any, facts: dict) -> list[int]:
        """Return the people an assignee spec names for this case (empty when nobody holds it)."""

    def up(self, spec: dict) -> dict | None:
        """Return the same spec one level higher, or None at the top."""

    def describe(self, spec: dict, item: Any) -> str:
        """Name a spec as a person reads it: 「城站社区的调解员」."""


@dataclass
class Env:
    """The world outside the state: who holds roles, the time, and how deadlines are counted."""

    directory: Directory
    now: datetime
    due: Callable[[datetime, dict], datetime]


@dataclass
class Step:
    """What an engine call decided: the new state and everything the store has to write."""

    state: dict
    events: list[dict] = field(default_factory=list)
    write: set[str] = field(default_factory=set)  # task keys to create or update from state["tasks"]
    closed: dict[str, dict] = field(default_factory=dict)  # task key → the task as closed, with "how"
    cc: list[dict] = field(default_factory=list)  # {"node", "people"}
    spawns: list[dict] = field(default_factory=list)  # {"node", "form", "data"}

    @property
    def status(self) -> str:
        return self.state["status"]


# -- entry points ---------------------------------------------------------------------------------

def start(flow: dict, case: Case, env: Env) -> Step:
    """Start a flow for a new case: pass the automatic nodes and open the first tasks."""
    state = {"tokens": {}, "tasks": {}, "visits": {}, "passed": [], "parallels": {}, "facts": {},
             "acted": 0, "seq": 0, "ended": None, "status": "in_progress"}
    run = _Run(flow, state, case, env)
    token = run.new_token(None, None)
    run.enter(flow["start"], token)
    return run.finish()


def act(flow: dict, state: dict, case: Case, env: Env, actor: int | None, action: str,
        task: str | None = None, data: dict | None = None, comment: str | None = None,
        to: Any = None) -> Step:
    """Do an action on a case: a node's own action on a task, or one of OPERATIONS."""
    run = _Run(flow, copy.deepcopy(state), case, env)
    comment = (comment or "").strip() or None
    own = run.state["tasks"].get(task or "")
    if own is not None and action in {a["key"] for a in run.own_actions(own)}:
        run.do(own, actor, action, data or {}, comment)  # a node's own action wins over an operation's name
        return run.finish()
    if action in ("withdraw", "urge", "comment", "reopen"):
        getattr(run, "op_" + action)(actor, comment, task, to)
        return run.finish()
    if run.state["ended"]:
        raise Refusal(409, "closed", "这个案件已经结束，不能再办理")
    current = run.task(task)
    if actor not in current["assignees"]:
        raise Refusal(403, "not_assignee", "这一步不由您办理")
    offered = {a["key"] for a in actions_for(flow, run.state, current, actor)}
    if action == "return" and len(run.state["tokens"]) != 1 and not current.get("signing"):
        raise Refusal(409, "parallel", "各部门正在并行办理，现在不能退回")
    if action not in offered:
        titles = "、".join(a["title"] for a in actions_for(flow, run.state, current, actor))
        raise Refusal(422, "bad_action", f"这一步现在不能做「{action}」；可以做的是：{titles}")
    getattr(run, "op_" + action)(actor, comment, current, to)
    return run.finish()


def tick(flow: dict, state: dict, case: Case, env: Env) -> Step:
    """Apply deadlines: mark overdue tasks and carry out their timeout actions."""
    run = _Run(flow, copy.deepcopy(state), case, env)
    for key, task in sorted(run.state["tasks"].items()):
        if key not in run.state["tasks"] or task.get("overdue") or not task.get("due_at"):
            continue
        if datetime.fromisoformat(task["due_at"]) > env.now:
            continue
        run.timeout(task)
    return run.finish()


def actions_for(flow: dict, state: dict, task: dict, actor: int) -> list[dict]:
    """List what a person may do on a task now: the node's actions and the operations that apply."""
    if state.get("ended") or actor not in task.get("assignees", []):
        return []
    node = flow["nodes"].get(task["node"], {})
    if task.get("signing"):
        own = SIGNER_ACTIONS
    elif task["node"] == RESUBMIT:
        own = RESUBMIT_ACTIONS
    else:
        own = node.get("actions", [])
    out = [{k: a[k] for k in ("key", "title", "form", "comment") if k in a} for a in own]
    if task.get("signing"):
        return out
    ops = ["comment", "transfer", "add_signer"]
    if task["node"] != RESUBMIT:
        ops.append("escalate")
        if len(state["tokens"]) == 1:
            ops.append("return")
    taken = {a["key"] for a in out}
    return out + [{"key": k, "title": OPERATION_TITLES[k], "operation": True} for k in ops if k not in taken]


# -- the run: one engine call ----------------------------------------------------------------------

class _Run:
    def __init__(self, flow: dict, state: dict, case: Case, env: Env):
        self.flow, self.state, self.case, self.env = flow, state, case, env
        self.step = Step(state)
        self.nodes = flow["nodes"]

    def finish(self) -> Step:
        self.state["status"] = self._status()
        return self.step

    def _status(self) -> str:
        if self.state["ended"]:
            return "withdrawn" if self.state["ended"].get("outcome") == "withdrawn" else "closed"
        if any(t["node"] == RESUBMIT for t in self.state["tasks"].values()):
            return "returned"
        return self.state.get("node_status") or "in_progress"

    def event(self, kind: str, node: str | None = None, actor: int | None = None, comment: str | None = None,
              **payload) -> None:
        self.step.events.append({"kind": kind, "node": node, "actor": actor, "comment": comment,
                                 "at": self.env.now.isoformat(), "payload": payload or None})

    def next_id(self, prefix: str) -> str:
        self.state["seq"] += 1
        return f"{prefix}{self.state['seq']}"

    def new_token(self, parallel: str | None, item: Any) -> str:
        key = self.next_id("k")
        self.state["tokens"][key] = {"node": None, "parallel": parallel, "item": item}
        return key

    def task(self, key: str | None) -> dict:
        task = self.state["tasks"].get(key or "")
        if task is None:
            raise Refusal(409, "task_closed", "这一步已经办理或已被收回，请刷新后查看最新情况")
        return task

    def view(self) -> dict:
        """The data conditions look at: the form's data with the step forms' data on top."""
        return {**self.case.data, **self.state["facts"]}

    # -- moving through the graph -------------------------------------------------------------

    def enter(self, node_key: str, token: str, steps: int = 0) -> None:
        """Move a token into a node and onwards through automatic nodes, until it waits or ends."""
        while True:
            steps += 1
            if steps > MAX_AUTOMATIC_STEPS:
                raise Refusal(500, "flow_loop", f"流程在节点 {node_key} 附近循环而没有任何待办，请管理员检查流程定义")
            if self.state["ended"]:
                return
            node = self.nodes.get(node_key)
            if node is None:
                raise Refusal(500, "flow_broken", f"流程引用了不存在的节点 {node_key}")
            if token in self.state["tokens"]:
                self.state["tokens"][token]["node"] = node_key
            kind = node["type"]
            if kind == "task":
                self.open_task(node_key, node, token)
                return
            if kind == "branch":
                node_key = self.choose(node_key, node)
            elif kind == "parallel":
                self.fan_out(node_key, node, token)
                return
            elif kind == "join":
                following = self.arrive(node_key, token)
                if following is None:
                    return
                node_key, token = following
            elif kind == "cc":
                people = self.resolve_all(node.get("to", []), token)
                if people:
                    self.step.cc.append({"node": node_key, "people": people})
                self.event("cc", node_key, people=people)
                node_key = node["next"]
            elif kind == "spawn":
                if node.get("when") is None or self.judge(node["when"]):
                    self.step.spawns.append({"node": node_key, "form": node["form"], "data": self.mapped(node)})
                node_key = node["next"]
            elif kind == "end":
                self.end(node_key, node.get("outcome", "resolved"))
                return
            else:
                raise Refusal(500, "flow_broken", f"节点 {node_key} 的类型 {kind} 无法办理")

    def choose(self, key: str, node: dict) -> str:
        for rule in node.get("conditions", []):
            if "when" in rule and not self.judge(rule["when"]):
                continue
            if "visits" in rule and not self.counted(rule["visits"]):
                continue
            self.event("branched", key, to=rule["to"])
            return rule["to"]
        self.event("branched", key, to=node["default"])
        return node["default"]

    def judge(self, condition: Any) -> bool:
        return predicate(condition)(self.view())

    def counted(self, rule: dict) -> bool:
        n = self.state["visits"].get(rule["node"], 0)
        checks = {"lt": n.__lt__, "lte": n.__le__, "gt": n.__gt__, "gte": n.__ge__, "eq": n.__eq__}
        return all(checks[k](v) for k, v in rule.items() if k in checks)

    def fan_out(self, key: str, node: dict, token: str) -> None:
        if "foreach" in node:
            items = pointer_get(self.view(), node["foreach"])
            unique = {json.dumps(i, sort_keys=True): i for i in (items if isinstance(items, list) else [])}
            starts = [(node["branch"], i) for i in unique.values()]
        else:
            starts = [(b, None) for b in node.get("branches", [])]
        parallel = self.next_id("p")
        self.state["parallels"][parallel] = {"join": node["join"], "expected": len(starts), "arrived": 0,
                                             "token": token}
        self.event("dispatched", key, branches=[{"node": n, "item": i} for n, i in starts])
        if not starts:
            self.state["parallels"].pop(parallel)
            self.enter(self.nodes[node["join"]]["next"], token)
            return
        outer = self.state["tokens"][token]
        outer["node"] = node["join"]  # the parent waits at the join
        for start_node, item in starts:
            child = self.new_token(parallel, item if item is not None else outer.get("item"))
            self.enter(start_node, child)

    def arrive(self, join_key: str, token: str) -> tuple[str, str] | None:
        info = self.state["tokens"].pop(token)
        parallel = self.state["parallels"].get(info.get("parallel") or "")
        if parallel is None:  # a join reached outside a dispatch: just go on
            self.state["tokens"][token] = info
            return self.nodes[join_key]["next"], token
        parallel["arrived"] += 1
        if parallel["arrived"] < parallel["expected"]:
            return None
        self.state["parallels"].pop(info["parallel"])
        self.event("joined", join_key)
        return self.nodes[join_key]["next"], parallel["token"]

    def end(self, key: str, outcome: str) -> None:
        for task_key in list(self.state["tasks"]):
            self.close(task_key, "cancelled")
        self.state["tokens"].clear()
        self.state["parallels"].clear()
        self.state["ended"] = {"node": key, "outcome": outcome}
        self.state["node_status"] = None
        self.event("ended", key, outcome=outcome)

    def mapped(self, node: dict) -> dict:
        out: dict = {}
        for target, source in (node.get("map") or {}).items():
            value = pointer_get(self.view(), source)
            if value is not None:
                pointer_set(out, target, copy.deepcopy(value))
        return out

    # -- tasks --------------------------------------------------------------------------------

    def open_task(self, key: str, node: dict, token: str) -> None:
        self.state["visits"][key] = self.state["visits"].get(key, 0) + 1
        item = self.state["tokens"][token].get("item")
        people, note, specs = self.assign(node.get("assignees", []), node.get("fallback"), item)
        task_key = self.next_id("t")
        mode = node.get("mode", "any")
        task = {"key": task_key, "node": key, "title": node.get("title", key), "token": token, "mode": mode,
                "people": people, "assignees": people[:1] if mode == "sequence" else list(people),
                "votes": {}, "opened_at": self.env.now.isoformat(), "item": item, "visit": self.state["visits"][key],
                "due_at": self.due(node), "overdue": False, "escalations": 0, "urged_at": None, "specs": specs}
        self.state["tasks"][task_key] = task
        self.step.write.add(task_key)
        if node.get("status"):
            self.state["node_status"] = node["status"]
        self.event("task_opened", key, task=task_key, assignees=task["assignees"], note=note,
                   due_at=task["due_at"], item=item)

    def due(self, node: dict) -> str | None:
        deadline = node.get("deadline")
        return self.env.due(self.env.now, deadline).isoformat() if deadline else None

    def assign(self, specs: list[dict], fallback: dict | None, item: Any
               ) -> tuple[list[int], str | None, list[dict]]:
        """Resolve assignees; when nobody holds them, the fallback, then the same roles higher up.

        Returns the people, a note for the history when they are not whom the node names, and the
        specs that found them (so that an escalation starts from there).
        """
        people = self.resolve_all(specs, None, item)
        if people:
            return people, None, list(specs)
        d = self.env.directory
        wanted = "、".join(d.describe(s, item) for s in specs) or "（未指定）"
        tried = [fallback] if fallback else []
        level_up = list(specs)
        for _ in range(8):
            level_up = [u for u in (d.up(s) for s in level_up) if u]
            tried.extend(level_up)
        for spec in tried:
            people = self.resolve_all([spec], None, item)
            if people:
                return people, f"无人担任{wanted}，改由{d.describe(spec, item)}办理", [spec]
        admin = {"role": "admin", "level": "*"}
        return self.resolve_all([admin], None, item), f"无人担任{wanted}，也找不到上级，改由管理员办理", [admin]

    def resolve_all(self, specs: list[dict], token: str | None, item: Any = None) -> list[int]:
        if token is not None:
            item = self.state["tokens"].get(token, {}).get("item")
        out: list[int] = []
        for spec in specs:
            if spec.get("submitter"):
                found = [self.case.submitter]
            else:
                found = self.env.directory.holders(spec, self.case, item, self.view())
            out.extend(p for p in found if p not in out)
        return out

    def close(self, key: str, how: str, actor: int | None = None, action: str | None = None) -> dict:
        task = self.state["tasks"].pop(key)
        closed = {**task, "how": how, "closed_by": actor, "action": action, "closed_at": self.env.now.isoformat()}
        self.step.closed[key] = closed
        self.step.write.discard(key)
        return closed

    def own_actions(self, task: dict) -> list[dict]:
        """The actions a task offers by itself: the node's, or a signer's, or a returned case's."""
        if task.get("signing"):
            return SIGNER_ACTIONS
        if task["node"] == RESUBMIT:
            return RESUBMIT_ACTIONS
        return self.nodes.get(task["node"], {}).get("actions", [])

    def node_action(self, task: dict, key: str) -> dict:
        actions = self.own_actions(task)
        for a in actions:
            if a["key"] == key:
                return a
        titles = "、".join(a["title"] for a in actions)
        raise Refusal(422, "bad_action", f"这一步没有「{key}」这个操作；可以做的是：{titles}")

    def do(self, task: dict, actor: int | None, key: str, data: dict, comment: str | None) -> None:
        """A person (or the system, actor None) takes one of the task's own actions."""
        if actor is not None and actor not in task["assignees"]:
            raise Refusal(403, "not_assignee", "这一步不由您办理")
        action = self.node_action(task, key)
        if action.get("comment") == "required" and not comment:
            raise Refusal(422, "comment_required", f"「{action['title']}」须填写意见",)
        data = self.step_data(action, data)
        self.state["acted"] += 1
        if not task.get("signing"):
            task["votes"][str(actor)] = key
        if actor is not None and actor in task["assignees"]:
            task.setdefault("acted", []).append(actor)
        self.event("acted", task["node"], actor, comment, task=task["key"], action=key, title=action["title"],
                   data=data or None)
        if task.get("signing"):
            self.signed(task, actor, key)
            return
        if task["node"] == RESUBMIT:
            self.close(task["key"], "done", actor, key)
            if key == "withdraw":
                self.end(RESUBMIT, "withdrawn")
            else:
                self.enter(task["back"], task["token"])
            return
        if data:
            self.state["facts"].update(data)
        if task.get("after") and actor is not None and not _rejects(action):
            signer = task["after"].pop(0)
            task["held"] = {"by": actor, "action": key}
            task["signing"] = {"for": actor, "position": "after"}
            task["assignees"] = [signer]
            self.step.write.add(task["key"])
            self.event("signer_turn", task["node"], None, None, task=task["key"], signer=signer)
            return
        self.decide(task, actor, key, action)

    def decide(self, task: dict, actor: int | None, key: str, action: dict) -> None:
        mode = task["mode"]
        if actor is not None and mode == "all" and not _rejects(action):
            waiting = [p for p in task["people"] if str(p) not in task["votes"]]
            if waiting:
                task["assignees"] = waiting
                self.step.write.add(task["key"])
                return
        if actor is not None and mode == "sequence" and not _rejects(action):
            position = task["people"].index(actor) if actor in task["people"] else len(task["people"])
            if position + 1 < len(task["people"]):
                task["assignees"] = [task["people"][position + 1]]
                self.step.write.add(task["key"])
                return
        self.complete(task, actor, key, action)

    def complete(self, task: dict, actor: int | None, key: str, action: dict) -> None:
        self.close(task["key"], "done", actor, key)
        if task["node"] not in self.state["passed"]:
            self.state["passed"].append(task["node"])
        if task.get("item") is not None:
            self.state.setdefault("items", {})[task["node"]] = task["item"]
        if action.get("status"):
            self.state["node_status"] = action["status"]
        self.enter(action["to"], task["token"])

    def signed(self, task: dict, actor: int | None, key: str) -> None:
        signing = task.pop("signing")
        owner = signing["for"]
        if signing["position"] == "before" or key == "disagree":
            task.pop("held", None)  # the owner decides again
            task["assignees"] = [owner]
            self.step.write.add(task["key"])
            return
        held = task.pop("held")
        if task.get("after"):
            task["held"] = held
            task["signing"] = {"for": owner, "position": "after"}
            task["assignees"] = [task["after"].pop(0)]
            self.step.write.add(task["key"])
            return
        self.decide(task, held["by"], held["action"], self.node_action(task, held["action"]))

    def step_data(self, action: dict, data: dict) -> dict:
        compiled = step_form(action)
        if compiled is None:
            return {}
        result = compiled.validate(data if isinstance(data, dict) else {})
        if not result.ok:
            raise Refusal(422, "invalid", "办理信息填写有误，请按提示修改", result.errors)
        return result.data

    # -- operations -------------------------------------------------------------------------------

    def op_comment(self, actor, comment, task, to) -> None:
        if not comment:
            raise Refusal(422, "comment_required", "请填写评论内容")
        self.event("commented", None, actor, comment)

    def op_urge(self, actor, comment, task, to) -> None:
        current = self.task(task)
        if current.get("urged_at"):
            since = (self.env.now - datetime.fromisoformat(current["urged_at"])).total_seconds()
            if since < URGE_INTERVAL_SECONDS:
                minutes = int((URGE_INTERVAL_SECONDS - since) // 60) + 1
                raise Refusal(429, "urged_recently", f"这一步刚催办过，请 {minutes} 分钟后再催")
        current["urged_at"] = self.env.now.isoformat()
        self.step.write.add(current["key"])
        self.event("urged", current["node"], actor, comment, task=current["key"], people=current["assignees"])

    def op_withdraw(self, actor, comment, task, to) -> None:
        if self.state["ended"]:
            raise Refusal(409, "closed", "这个案件已经结束，不能撤回")
        if actor != self.case.submitter:
            raise Refusal(403, "not_submitter", "只有填报人可以撤回")
        if self.state["acted"]:
            raise Refusal(409, "already_handled", "已经有人办理过这个案件，不能撤回；如需终止请联系办理人")
        self.event("withdrawn", None, actor, comment)
        self.end("withdrawn", "withdrawn")

    def op_reopen(self, actor, comment, task, to) -> None:
        ended = self.state["ended"]
        if not ended or ended.get("outcome") == "withdrawn":
            raise Refusal(409, "not_closed", "只有已办结的案件可以重新办理")
        target = to or next((n for n in reversed(self.state["passed"])
                             if self.nodes.get(n, {}).get("type") == "task"), None)
        if target not in self.nodes or self.nodes[target]["type"] != "task":
            raise Refusal(422, "bad_target", "请选择要重新办理的步骤")
        if not comment:
            raise Refusal(422, "comment_required", "请写明重新办理的原因")
        self.state["ended"] = None
        self.event("reopened", target, actor, comment, previous=ended)
        self.enter(target, self.new_token(None, None))

    def op_transfer(self, actor, comment, task, to) -> None:
        if not isinstance(to, int) or isinstance(to, bool):
            raise Refusal(422, "bad_target", "请选择转交给谁")
        if to in task["assignees"] or to in task["people"]:
            raise Refusal(422, "bad_target", "对方已经是这一步的办理人")
        task["assignees"] = [to if p == actor else p for p in task["assignees"]]
        task["people"] = [to if p == actor else p for p in task["people"]]
        self.step.write.add(task["key"])
        self.event("transferred", task["node"], actor, comment, task=task["key"], to=to)

    def op_add_signer(self, actor, comment, task, to) -> None:
        target = to.get("person") if isinstance(to, dict) else to
        position = to.get("position", "before") if isinstance(to, dict) else "before"
        if not isinstance(target, int) or isinstance(target, bool) or target == actor:
            raise Refusal(422, "bad_target", "请选择加签的人")
        if position not in ("before", "after"):
            raise Refusal(422, "bad_target", "加签位置只能是 before（在我之前）或 after（在我之后）")
        if position == "before":
            task["signing"] = {"for": actor, "position": "before"}
            task["assignees"] = [target]
        else:
            task.setdefault("after", []).append(target)
        self.step.write.add(task["key"])
        self.event("signer_added", task["node"], actor, comment, task=task["key"], signer=target, position=position)

    def op_escalate(self, actor, comment, task, to) -> None:
        if task["node"] == RESUBMIT:
            raise Refusal(422, "bad_action", "退回补充的步骤不能上报")
        if not self.escalate(task, actor, comment, reason="asked"):
            raise Refusal(422, "no_higher", "已经是最高一级，无法再上报")

    def escalate(self, task: dict, actor: int | None, comment: str | None, reason: str) -> bool:
        """Hand a task to the same role one level up (skipping empty levels), else to the node's fallback."""
        node = self.nodes[task["node"]]
        d = self.env.directory
        item = task.get("item")
        current = task.get("specs") or node.get("assignees", [])
        specs, people = self._higher(current, item)
        fallback = node.get("fallback")
        if not people and fallback and fallback not in current:
            specs = [fallback]
            people = self.resolve_all(specs, None, item)
            if not people:
                specs, people = self._higher(specs, item)
        if not people:
            return False
        task["specs"] = specs
        task["escalations"] += 1
        task["people"] = people
        task["assignees"] = people[:1] if task["mode"] == "sequence" else list(people)
        task["votes"] = {}
        task["overdue"] = False
        task["due_at"] = self.due(node)
        self.step.write.add(task["key"])
        self.event("escalated", task["node"], actor, comment, task=task["key"], reason=reason,
                   to=people, level="、".join(d.describe(s, item) for s in specs))
        return True

    def _higher(self, specs: list[dict], item) -> tuple[list[dict], list[int]]:
        """Go up level by level from specs until someone holds them: (the specs reached, the people)."""
        d = self.env.directory
        while True:
            specs = [u for u in (d.up(s) for s in specs) if u]
            if not specs:
                return [], []
            people = self.resolve_all(specs, None, item)
            if people:
                return specs, people

    def op_return(self, actor, comment, task, to) -> None:
        if len(self.state["tokens"]) != 1:
            raise Refusal(409, "parallel", "各部门正在并行办理，现在不能退回")
        if not comment:
            raise Refusal(422, "comment_required", "退回须写明理由")
        self.state["acted"] += 1
        self.close(task["key"], "returned", actor, "return")
        if to in (None, "submitter"):
            self.event("returned", task["node"], actor, comment, task=task["key"], to="submitter")
            key = self.next_id("t")
            self.state["tasks"][key] = {
                "key": key, "node": RESUBMIT, "title": "补充材料后重新提交", "token": task["token"], "mode": "any",
                "people": [self.case.submitter], "assignees": [self.case.submitter], "votes": {},
                "opened_at": self.env.now.isoformat(), "item": None, "visit": 1,
                "due_at": self.due(self.nodes[task["node"]]),  # as long as the step that returned it
                "overdue": False, "escalations": 0, "urged_at": None, "back": task["node"]}
            self.step.write.add(key)
            return
        if to not in self.state["passed"] or self.nodes.get(to, {}).get("type") != "task":
            raise Refusal(422, "bad_target", "只能退回给填报人，或已经办理过的步骤")
        self.event("returned", task["node"], actor, comment, task=task["key"], to=to)
        item = self.state.get("items", {}).get(to)
        if item is not None:
            self.state["tokens"][task["token"]]["item"] = item  # e.g. back to one department's step
        self.enter(to, task["token"])

    def timeout(self, task: dict) -> None:
        node = self.nodes.get(task["node"], {})
        task["overdue"] = True
        self.step.write.add(task["key"])
        self.event("overdue", task["node"], None, None, task=task["key"], due_at=task["due_at"])
        action = (node.get("on_timeout") or {}).get("action", "remind")
        if action == "escalate":
            if not self.escalate(task, None, None, reason="timeout"):
                self.event("reminded", task["node"], task=task["key"], people=task["assignees"])
        elif action == "auto" and not task.get("signing") and not task.get("held"):
            key = node["on_timeout"].get("auto_action")
            saved = copy.deepcopy(self.state), len(self.step.events)
            try:
                self.event("auto_action", task["node"], task=task["key"], action=key)
                self.do(task, None, key, {}, "超时自动办理")
            except Refusal as exc:
                # The automatic action cannot be done (a step form to fill, a signer pending): remind.
                self.state.clear()
                self.state.update(saved[0])
                self.step.state = self.state
                del self.step.events[saved[1]:]
                current = self.state["tasks"][task["key"]]
                self.step.write.add(current["key"])
                self.event("reminded", current["node"], task=current["key"], people=current["assignees"],
                           note=f"无法自动办理：{exc.message}")
        else:
            self.event("reminded", task["node"], task=task["key"], people=task["assignees"])


_predicates: dict[str, Callable[[Any], bool]] = {}


def predicate(condition: Any) -> Callable[[Any], bool]:
    """A branch condition compiled once per process (definitions are immutable once published)."""
    key = json.dumps(condition, sort_keys=True, ensure_ascii=False)
    test = _predicates.get(key)
    if test is None:
        if len(_predicates) > 10_000:
            _predicates.clear()
        test = _predicates[key] = compile_condition(condition, lambda schema: make_validator(schema).is_valid)
    return test


def step_form(action: dict):
    """The compiled step form of an action (validated like a form), or None when it has none."""
    form = action.get("form")
    if not form:
        return None
    digest = hashlib.sha256(json.dumps(form, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return compiled_form("step:" + digest, form["schema"], form.get("ui"))


def _rejects(action: dict) -> bool:
    """Tell whether an action is a rejection: it ends a 会签 or 依次审批 at once."""
    return action.get("kind") == "reject" or action["key"] in ("reject", "disagree")


def pointer_get(data: Any, pointer: str) -> Any:
    """Read a JSON Pointer (`/a/0/b`) from data; None when it is not there."""
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return None
    return data


def pointer_set(data: dict, pointer: str, value: Any) -> None:
    """Write a value at a JSON Pointer of object keys, making objects on the way."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    data[parts[-1]] = value
