"""The flow engine (server/engine): node types, task modes, operations, assignment, deadlines, the shipped flows.

The engine is pure, so everything here runs on dicts: a fake directory over a dict of memberships, small inline
flows, and the four flows shipped in flows/. No database, no Flask.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import ROOT
from server.engine import OPERATIONS, Case, Env, Step, act, actions_for, start, tick
from server.engine.core import RESUBMIT
from server.errors import Refusal
from server.validation import CompiledForm

# -- the world: a grid chain, people, a directory -------------------------------------------------

LEVELS = ("city", "district", "street", "community", "grid")  # top first
LEVEL_NAMES = {"city": "市", "district": "区", "street": "街道", "community": "社区", "grid": "网格"}
ROLE_NAMES = {"grid_leader": "网格长", "grid_worker": "网格员", "community_secretary": "社区书记",
              "mediator": "调解员", "street_officer": "街道干部", "department_staff": "部门人员", "admin": "管理员"}
DEPARTMENTS = ("public_security", "justice", "health", "civil_affairs", "market_regulation", "urban_management",
               "education")
GRID_PATH = "/C1/D1/S1/M1/G1"
SUBMITTER = 1
ADMIN = 99
T0 = datetime(2026, 3, 2, 9, 0)


class FakeDirectory:
    """Who holds what, from a dict: "role@level", "role:department@level" or "person:name" → person ids.

    All cases sit in the one grid chain city > district > street > community > grid, so a level names
    exactly one grid node. Level "*" looks for the nearest holder, from the grid up (the admin fallback).
    """

    def __init__(self, members: dict[str, list[int]]):
        self.members = members

    def holders(self, spec: dict, case: Case, item: Any, facts: dict) -> list[int]:
        assert case.grid_path == GRID_PATH
        if "person" in spec:
            return list(self.members.get("person:" + spec["person"], []))
        dept = spec.get("department")
        if dept == "$item":
            dept = item if isinstance(item, str) else None
        elif isinstance(dept, str) and dept.startswith("/"):
            value: Any = facts
            for part in dept.split("/")[1:]:
                value = value.get(part) if isinstance(value, dict) else None
            dept = value if isinstance(value, str) else None
        if spec.get("department") and dept is None:
            return []
        role = spec.get("role") or "department_staff"
        name = f"{role}:{dept}" if dept else role
        levels = reversed(LEVELS) if spec.get("level") == "*" else [spec.get("level")]
        for level in levels:
            if self.members.get(f"{name}@{level}"):
                return list(self.members[f"{name}@{level}"])
        return []

    def up(self, spec: dict) -> dict | None:
        level = spec.get("level")
        if level not in LEVELS or level == LEVELS[0]:
            return None
        return {**spec, "level": LEVELS[LEVELS.index(level) - 1]}

    def describe(self, spec: dict, item: Any) -> str:
        if spec.get("submitter"):
            return "填报人"
        if "person" in spec:
            return f"指定人员 {spec['person']}"
        dept = spec.get("department")
        dept = item if dept == "$item" else dept
        where = LEVEL_NAMES.get(spec.get("level"), "各级")
        role = ROLE_NAMES.get(spec.get("role") or "department_staff", spec.get("role"))
        return f"{where}{dept if isinstance(dept, str) and not dept.startswith('/') else ''}的{role}"


# The demo city: everyone the shipped flows need, one or a few people each.
CITY = {
    "grid_leader@grid": [11], "grid_worker@grid": [12],
    "community_secretary@community": [21], "mediator@community": [22, 23, 24],
    "street_officer@street": [31], "mediator@street": [32], "mediator@district": [51], "mediator@city": [61],
    **{f"department_staff:{d}@street": [40 + i] for i, d in enumerate(DEPARTMENTS)},
    "admin@city": [ADMIN],
}
DEPT_STAFF = {d: 40 + i for i, d in enumerate(DEPARTMENTS)}


def due(start_at: datetime, deadline: dict) -> datetime:
    """Deadlines in calendar days and hours (the working-day calendar is not the engine's business)."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?)?", deadline["duration"])
    assert m, deadline
    return start_at + timedelta(days=int(m[1] or 0), hours=int(m[2] or 0))


def make_env(members: dict | None = None, now: datetime = T0) -> Env:
    return Env(FakeDirectory(CITY if members is None else members), now, due)


def make_case(data: dict | None = None, submitter: int = SUBMITTER) -> Case:
    return Case("case-1", data or {}, GRID_PATH, submitter)


CASE = make_case()
ENV = make_env()

# -- inline flows --------------------------------------------------------------------------------

MEDIATORS = {"role": "mediator", "level": "community"}


def flow(nodes: dict, start_at: str = "a") -> dict:
    return {"key": "test_flow", "title": "测试流程", "start": start_at, "nodes": nodes}


def task_node(assignees: list | None = None, actions: list | None = None, **extra) -> dict:
    return {"type": "task", "title": extra.pop("title", "办理"), "assignees": assignees or [MEDIATORS],
            "actions": actions or [action("done", "end")], **extra}


def action(key: str, to: str, title: str | None = None, **extra) -> dict:
    return {"key": key, "title": title or {"done": "办结", "ok": "同意", "reject": "驳回"}.get(key, key),
            "to": to, **extra}


def end(outcome: str = "resolved") -> dict:
    return {"type": "end", "title": "结束", "outcome": outcome}


def simple_flow(mode: str = "any", **extra) -> dict:
    """One task a → end (ok) or rejected (reject)."""
    return flow({"a": task_node(actions=[action("ok", "end"), action("reject", "rejected", comment="required")],
                                mode=mode, **extra),
                 "end": end(), "rejected": end("rejected")})


# -- calling the engine, checking purity ---------------------------------------------------------

def do(flw: dict, state: dict, actor: int | None, name: str, task: str | None = None, *,
       case: Case = CASE, env: Env = ENV, **kw) -> Step:
    """Act, and check the caller's state and flow were left exactly as they were."""
    before, flow_before = copy.deepcopy(state), copy.deepcopy(flw)
    step = act(flw, state, case, env, actor, name, task=task, **kw)
    assert state == before, "the engine changed the caller's state"
    assert flw == flow_before, "the engine changed the flow definition"
    return step


def refused(flw: dict, state: dict, actor: int | None, name: str, task: str | None = None, *,
            status: int, code: str, case: Case = CASE, env: Env = ENV, **kw) -> Refusal:
    """Act expecting a refusal with this status and code; nothing may have changed."""
    before = copy.deepcopy(state)
    with pytest.raises(Refusal) as info:
        act(flw, state, case, env, actor, name, task=task, **kw)
    assert state == before, "a refusal changed the caller's state"
    assert (info.value.status, info.value.code) == (status, code), info.value.message
    assert info.value.message and re.search(r"[\u4e00-\u9fff]", info.value.message), "message not in Chinese"
    return info.value


def tasks_at(state: dict, node: str | None = None) -> list[dict]:
    return [t for _, t in sorted(state["tasks"].items()) if node is None or t["node"] == node]


def only(state: dict, node: str | None = None) -> dict:
    found = tasks_at(state, node)
    assert len(found) == 1, [(t["node"], t["assignees"]) for t in state["tasks"].values()]
    if node is not None:
        assert len(state["tasks"]) == 1, [t["node"] for t in state["tasks"].values()]
    return found[0]


def kinds(step: Step) -> list[str]:
    return [e["kind"] for e in step.events]


def events(step: Step, kind: str) -> list[dict]:
    return [e for e in step.events if e["kind"] == kind]


def keys(actions: list[dict]) -> list[str]:
    return [a["key"] for a in actions]


# == node types ====================================================================================

def test_task_node_opens_a_task_for_its_assignees():
    f = flow({"a": task_node(status="mediating", deadline={"duration": "P2D"}), "end": end()})
    step = start(f, CASE, ENV)
    t = only(step.state, "a")
    assert t["assignees"] == [22, 23, 24] and t["people"] == [22, 23, 24]
    assert t["due_at"] == (T0 + timedelta(days=2)).isoformat()
    assert step.write == {t["key"]} and not step.closed
    assert step.state["visits"] == {"a": 1}
    assert step.status == "mediating"  # the node's status shows while the case waits there
    opened = events(step, "task_opened")
    assert len(opened) == 1 and opened[0]["node"] == "a"
    assert opened[0]["payload"]["assignees"] == [22, 23, 24] and opened[0]["payload"]["note"] is None
    token = step.state["tokens"][t["token"]]
    assert token["node"] == "a"


def test_action_status_is_shown_after_the_action():
    f = flow({"a": task_node(actions=[action("done", "b", status="checking")]), "b": task_node(), "end": end()})
    st0 = start(f, CASE, ENV).state
    step = do(f, st0, 22, "done", only(st0)["key"])
    assert only(step.state)["node"] == "b" and step.status == "checking"


def branch_flow() -> dict:
    return flow({
        "check": {"type": "branch", "conditions": [
            {"when": {"properties": {"amount": {"exclusiveMinimum": 100}}, "required": ["amount"]}, "to": "big"},
            {"when": {"properties": {"amount": {"exclusiveMinimum": 10}}, "required": ["amount"]}, "to": "medium"},
        ], "default": "small"},
        "big": task_node(title="大"), "medium": task_node(title="中"), "small": task_node(title="小"), "end": end(),
    }, start_at="check")


@pytest.mark.parametrize(("amount", "node"), [(500, "big"), (101, "big"), (100, "medium"), (11, "medium"),
                                               (10, "small"), (None, "small")])
def test_branch_takes_the_first_condition_that_holds_else_the_default(amount, node):
    case = make_case({} if amount is None else {"amount": amount})
    step = start(branch_flow(), case, ENV)
    assert only(step.state)["node"] == node
    assert events(step, "branched")[0]["payload"] == {"to": node}


def test_branch_sees_step_form_data_and_it_is_kept_in_facts():
    form = {"schema": {"type": "object", "properties": {"result": {"type": "string", "enum": ["fixed", "open"]}},
                       "required": ["result"]}}
    f = flow({
        "a": task_node(actions=[action("done", "check", form=form)]),
        "check": {"type": "branch", "conditions": [
            {"when": {"properties": {"result": {"const": "fixed"}}, "required": ["result"]}, "to": "end"}],
            "default": "a"},
        "end": end(),
    })
    st0 = start(f, CASE, ENV).state
    bad = refused(f, st0, 22, "done", only(st0)["key"], data={"result": "maybe"}, status=422, code="invalid")
    assert [e.path for e in bad.errors] == ["/result"] and bad.errors[0].message
    missing = refused(f, st0, 22, "done", only(st0)["key"], data={}, status=422, code="invalid")
    assert [e.path for e in missing.errors] == ["/result"]
    step = do(f, st0, 22, "done", only(st0)["key"], data={"result": "open"})
    assert step.state["facts"] == {"result": "open"}
    assert only(step.state)["node"] == "a" and step.state["visits"]["a"] == 2
    acted = events(step, "acted")[0]
    assert acted["payload"]["data"] == {"result": "open"} and acted["actor"] == 22
    step = do(f, step.state, 22, "done", only(step.state)["key"], data={"result": "fixed"})
    assert step.state["facts"] == {"result": "fixed"}  # the latest step data wins
    assert step.state["ended"] == {"node": "end", "outcome": "resolved"}


def visits_flow() -> dict:
    return flow({
        "a": task_node(actions=[action("again", "loop")]),
        "loop": {"type": "branch", "conditions": [
            {"when": {"properties": {"stop": {"const": True}}, "required": ["stop"]},
             "visits": {"node": "a", "gte": 2}, "to": "stopped"},
            {"visits": {"node": "a", "lt": 3}, "to": "a"}],
            "default": "b"},
        "b": task_node(title="上一级"),
        "stopped": end("unresolved"),
        "end": end(),
    })


def test_branch_visits_bound_a_loop():
    f = visits_flow()
    state = start(f, CASE, ENV).state
    seen = []
    for _ in range(3):
        state = do(f, state, 22, "again", only(state)["key"]).state
        seen.append(only(state)["node"])
    assert seen == ["a", "a", "b"]  # visited a 3 times: lt 3 no longer holds
    assert state["visits"] == {"a": 3, "b": 1}
    assert only(state)["visit"] == 1


@pytest.mark.parametrize(("stop", "rounds", "outcome"), [(True, 1, None), (True, 2, "unresolved"),
                                                         (False, 2, None)])
def test_branch_condition_with_when_and_visits_needs_both(stop, rounds, outcome):
    f = visits_flow()
    state = start(f, make_case({"stop": stop}), ENV).state
    for _ in range(rounds):
        state = do(f, state, 22, "again", only(state)["key"], case=make_case({"stop": stop})).state
    assert (state["ended"] or {}).get("outcome") == outcome
    if outcome is None:
        assert only(state)["node"] == "a"


def parallel_flow(**dispatch) -> dict:
    dispatch = dispatch or {"branches": ["x", "y"]}
    return flow({
        "fan": {"type": "parallel", "join": "join", **dispatch},
        "x": task_node([{"role": "mediator", "level": "street"}], [action("done", "join")], title="X"),
        "y": task_node([{"role": "street_officer", "level": "street"}], [action("done", "join")], title="Y"),
        "dept": task_node([{"role": "department_staff", "department": "$item", "level": "street"}],
                          [action("done", "join")], title="部门办理"),
        "join": {"type": "join", "next": "after"},
        "after": task_node([{"role": "community_secretary", "level": "community"}], title="汇总"),
        "end": end(),
    }, start_at="fan")


def test_parallel_fixed_branches_join_waits_for_all():
    f = parallel_flow()
    step = start(f, CASE, ENV)
    x, y = tasks_at(step.state, "x")[0], tasks_at(step.state, "y")[0]
    assert len(step.state["tasks"]) == 2 and x["assignees"] == [32] and y["assignees"] == [31]
    assert events(step, "dispatched")[0]["payload"]["branches"] == [{"node": "x", "item": None},
                                                                    {"node": "y", "item": None}]
    assert len(step.state["tokens"]) == 3  # the parent waits at the join, one token per branch
    step = do(f, step.state, 32, "done", x["key"])
    assert [t["node"] for t in tasks_at(step.state)] == ["y"], "the join must wait for every branch"
    assert "joined" not in kinds(step)
    step = do(f, step.state, 31, "done", y["key"])
    assert only(step.state)["node"] == "after" and "joined" in kinds(step)
    assert len(step.state["tokens"]) == 1 and step.state["parallels"] == {}


def test_parallel_foreach_opens_one_task_per_item_assigned_by_department():
    f = parallel_flow(foreach="/depts", branch="dept")
    case = make_case({"depts": ["justice", "health", "justice", "education"]})
    step = start(f, case, ENV)
    opened = tasks_at(step.state, "dept")
    assert [(t["item"], t["assignees"]) for t in opened] == [
        ("justice", [DEPT_STAFF["justice"]]), ("health", [DEPT_STAFF["health"]]),
        ("education", [DEPT_STAFF["education"]])]  # one per distinct item
    assert [e["payload"]["item"] for e in events(step, "task_opened")] == ["justice", "health", "education"]
    state = step.state
    for t in opened[:-1]:
        state = do(f, state, t["assignees"][0], "done", t["key"], case=case).state
        assert tasks_at(state, "after") == []
    state = do(f, state, opened[-1]["assignees"][0], "done", opened[-1]["key"], case=case).state
    assert only(state)["node"] == "after"


def test_parallel_foreach_reads_the_list_from_step_data():
    depts = {"type": "array", "items": {"enum": list(DEPARTMENTS)}}
    form = {"schema": {"type": "object", "properties": {"depts": depts}, "required": ["depts"]}}
    f = parallel_flow(foreach="/depts", branch="dept")
    f["nodes"]["pick"] = task_node(actions=[action("go", "fan", form=form)])
    f["start"] = "pick"
    st0 = start(f, CASE, ENV).state
    step = do(f, st0, 22, "go", only(st0)["key"], data={"depts": ["health", "civil_affairs"]})
    assert sorted(t["item"] for t in tasks_at(step.state, "dept")) == ["civil_affairs", "health"]


@pytest.mark.parametrize("data", [{"depts": []}, {}, {"depts": "justice"}])
def test_parallel_foreach_over_nothing_goes_straight_past_the_join(data):
    f = parallel_flow(foreach="/depts", branch="dept")
    step = start(f, make_case(data), ENV)
    assert only(step.state)["node"] == "after"
    assert events(step, "dispatched")[0]["payload"]["branches"] == []
    assert step.state["parallels"] == {} and len(step.state["tokens"]) == 1


def test_cc_notifies_without_blocking():
    f = flow({"cc": {"type": "cc", "to": [{"role": "community_secretary", "level": "community"},
                                          {"department": "public_security", "level": "street"},
                                          {"role": "community_secretary", "level": "community"}],
                     "next": "a"},
              "a": task_node(), "end": end()}, start_at="cc")
    step = start(f, CASE, ENV)
    assert step.cc == [{"node": "cc", "people": [21, DEPT_STAFF["public_security"]]}]
    assert events(step, "cc")[0]["payload"] == {"people": [21, DEPT_STAFF["public_security"]]}
    assert only(step.state)["node"] == "a"


def spawn_flow(**extra) -> dict:
    return flow({"s": {"type": "spawn", "form": "incident_report", "next": "end",
                       "map": {"/category": "/issue_type", "/where/lat": "/location/lat", "/photos": "/photos"},
                       **extra},
                 "end": end()}, start_at="s")


def test_spawn_maps_data_by_json_pointers():
    case = make_case({"issue_type": "fire_safety", "location": {"lat": 30.1, "lng": 120.2}})
    step = start(spawn_flow(), case, ENV)
    assert step.spawns == [{"node": "s", "form": "incident_report",
                            "data": {"category": "fire_safety", "where": {"lat": 30.1}}}]  # absent: left out
    assert step.status == "closed"


@pytest.mark.parametrize(("report", "spawned"), [(True, 1), (False, 0)])
def test_spawn_only_when_its_condition_holds(report, spawned):
    f = spawn_flow(when={"properties": {"report": {"const": True}}, "required": ["report"]})
    step = start(f, make_case({"report": report, "issue_type": "other"}), ENV)
    assert len(step.spawns) == spawned
    assert step.state["ended"]["node"] == "end"


def test_end_cancels_every_open_task():
    f = parallel_flow()
    f["nodes"]["x"]["actions"].append(action("stop", "stopped"))
    f["nodes"]["stopped"] = end("rejected")
    st0 = start(f, CASE, ENV).state
    x, y = tasks_at(st0, "x")[0], tasks_at(st0, "y")[0]
    step = do(f, st0, 32, "stop", x["key"])
    assert step.state["tasks"] == {} and step.state["tokens"] == {} and step.state["parallels"] == {}
    assert step.closed[x["key"]]["how"] == "done" and step.closed[y["key"]]["how"] == "cancelled"
    assert step.state["ended"] == {"node": "stopped", "outcome": "rejected"}
    assert step.status == "closed" and events(step, "ended")[0]["payload"] == {"outcome": "rejected"}


@pytest.mark.parametrize(("outcome", "status"), [("resolved", "closed"), ("rejected", "closed"),
                                                 ("withdrawn", "withdrawn")])
def test_end_outcome_decides_the_status(outcome, status):
    f = flow({"a": task_node(actions=[action("done", "e")]), "e": end(outcome)})
    st0 = start(f, CASE, ENV).state
    step = do(f, st0, 22, "done", only(st0)["key"])
    assert step.status == status and step.state["ended"] == {"node": "e", "outcome": outcome}


def test_a_broken_flow_is_refused_not_looped():
    looping = flow({"b": {"type": "branch", "conditions": [], "default": "b"}}, start_at="b")
    with pytest.raises(Refusal) as info:
        start(looping, CASE, ENV)
    assert (info.value.status, info.value.code) == (500, "flow_loop")
    dangling = flow({"a": task_node(actions=[action("done", "missing")])})
    state = start(dangling, CASE, ENV).state
    refused(dangling, state, 22, "done", only(state)["key"], status=500, code="flow_broken")


# == modes ==========================================================================================

def test_mode_any_first_to_act_decides():
    f = simple_flow("any")
    st0 = start(f, CASE, ENV).state
    t = only(st0)
    step = do(f, st0, 23, "ok", t["key"])
    assert step.state["ended"]["outcome"] == "resolved" and step.closed[t["key"]]["closed_by"] == 23
    refused(f, step.state, 22, "ok", t["key"], status=409, code="closed")  # the case has ended meanwhile


def test_mode_any_late_second_action_on_a_running_case_is_refused():
    f = flow({"a": task_node(actions=[action("ok", "b")]), "b": task_node(), "end": end()})
    st0 = start(f, CASE, ENV).state
    t = only(st0)
    state = do(f, st0, 22, "ok", t["key"]).state
    refused(f, state, 23, "ok", t["key"], status=409, code="task_closed")


def test_mode_all_everyone_must_agree():
    f = simple_flow("all")
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    step = do(f, state, 23, "ok", t)
    assert step.state["tasks"][t]["assignees"] == [22, 24] and t in step.write and not step.closed
    refused(f, step.state, 23, "ok", t, status=403, code="not_assignee")  # already voted
    step = do(f, step.state, 22, "ok", t)
    assert step.state["tasks"][t]["assignees"] == [24]
    step = do(f, step.state, 24, "ok", t)
    assert step.state["ended"]["outcome"] == "resolved" and step.closed[t]["how"] == "done"


def test_mode_all_one_rejection_rejects_at_once():
    f = simple_flow("all")
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    state = do(f, state, 22, "ok", t).state
    step = do(f, state, 24, "reject", t, comment="不同意")
    assert step.state["ended"]["outcome"] == "rejected" and step.state["tasks"] == {}


def test_mode_sequence_one_at_a_time_in_order():
    f = simple_flow("sequence")
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    assert state["tasks"][t]["assignees"] == [22] and state["tasks"][t]["people"] == [22, 23, 24]
    refused(f, state, 23, "ok", t, status=403, code="not_assignee")
    assert keys(actions_for(f, state, state["tasks"][t], 23)) == []
    state = do(f, state, 22, "ok", t).state
    assert state["tasks"][t]["assignees"] == [23]
    state = do(f, state, 23, "ok", t).state
    assert state["tasks"][t]["assignees"] == [24]
    step = do(f, state, 24, "ok", t)
    assert step.state["ended"]["outcome"] == "resolved"


def test_mode_sequence_rejection_ends_early():
    f = simple_flow("sequence")
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    state = do(f, state, 22, "ok", t).state
    step = do(f, state, 23, "reject", t, comment="材料不全")
    assert step.state["ended"]["outcome"] == "rejected" and step.closed[t]["closed_by"] == 23


# == node actions and their checks =========================================================================

def test_unknown_action_lists_the_available_ones():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    r = refused(f, state, 22, "approve", only(state)["key"], status=422, code="bad_action")
    assert "approve" in r.message and "同意" in r.message and "驳回" in r.message


def test_only_an_assignee_may_act():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    t = only(state)
    refused(f, state, 31, "ok", t["key"], status=403, code="not_assignee")
    assert actions_for(f, state, t, 31) == []
    for op, to in [("transfer", 32), ("escalate", None), ("add_signer", 32)]:
        refused(f, state, 31, op, t["key"], to=to, comment="x", status=403, code="not_assignee")


@pytest.mark.parametrize("comment", [None, "", "   "])
def test_a_required_comment_must_be_written(comment):
    f = simple_flow()
    state = start(f, CASE, ENV).state
    r = refused(f, state, 22, "reject", only(state)["key"], comment=comment, status=422, code="comment_required")
    assert "驳回" in r.message
    step = do(f, state, 22, "reject", only(state)["key"], comment=" 不符合条件 ")
    assert events(step, "acted")[0]["comment"] == "不符合条件"


def test_actions_for_lists_node_actions_then_operations():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    listed = actions_for(f, state, only(state), 22)
    assert keys(listed) == ["ok", "reject", "comment", "transfer", "add_signer", "escalate", "return"]
    assert listed[1]["comment"] == "required" and all(a.get("operation") for a in listed[2:])
    assert {a["key"] for a in listed if a.get("operation")} <= set(OPERATIONS)


def test_a_task_key_that_never_existed_is_refused():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    refused(f, state, 22, "ok", "t999", status=409, code="task_closed")
    refused(f, state, 22, "ok", None, status=409, code="task_closed")


# == operations ===================================================================================

def two_step_flow() -> dict:
    """a (mediators) → b (street officer) → c (city mediator) → end."""
    return flow({"a": task_node(actions=[action("ok", "b")]),
                 "b": task_node([{"role": "street_officer", "level": "street"}], [action("ok", "c")]),
                 "c": task_node([{"role": "mediator", "level": "city"}], [action("ok", "end")]),
                 "end": end()})


def test_return_to_the_submitter_and_resubmit():
    f = two_step_flow()
    state = do(f, start(f, CASE, ENV).state, 22, "ok", only(start(f, CASE, ENV).state)["key"]).state
    b = only(state, "b")
    refused(f, state, 31, "return", b["key"], to="submitter", status=422, code="comment_required")
    step = do(f, state, 31, "return", b["key"], to="submitter", comment="请补充照片")
    assert step.status == "returned"
    assert step.closed[b["key"]]["how"] == "returned"
    back = only(step.state, RESUBMIT)
    assert back["assignees"] == [SUBMITTER]
    assert keys(actions_for(f, step.state, back, SUBMITTER))[:2] == ["resubmit", "withdraw"]
    assert "return" not in keys(actions_for(f, step.state, back, SUBMITTER))
    assert "escalate" not in keys(actions_for(f, step.state, back, SUBMITTER))
    refused(f, step.state, 31, "resubmit", back["key"], status=403, code="not_assignee")
    step = do(f, step.state, SUBMITTER, "resubmit", back["key"], comment="已补充")
    again = only(step.state, "b")  # back to the node that returned it
    assert again["assignees"] == [31] and again["visit"] == 2 and step.status == "in_progress"


def test_withdraw_from_a_returned_case():
    f = two_step_flow()
    state = start(f, CASE, ENV).state
    state = do(f, state, 22, "return", only(state)["key"], to="submitter", comment="请补充").state
    back = only(state, RESUBMIT)
    step = do(f, state, SUBMITTER, "withdraw", back["key"])
    assert step.status == "withdrawn" and step.state["tasks"] == {}


def test_return_to_a_node_already_passed():
    f = two_step_flow()
    state = start(f, CASE, ENV).state
    state = do(f, state, 22, "ok", only(state)["key"]).state
    state = do(f, state, 31, "ok", only(state)["key"]).state
    c = only(state, "c")
    refused(f, state, 61, "return", c["key"], to="end", comment="x", status=422, code="bad_target")
    refused(f, state, 61, "return", c["key"], to="c", comment="x", status=422, code="bad_target")  # not passed
    refused(f, state, 61, "return", c["key"], to="nowhere", comment="x", status=422, code="bad_target")
    step = do(f, state, 61, "return", c["key"], to="a", comment="重新调解")
    a = only(step.state, "a")
    assert a["assignees"] == [22, 23, 24] and a["visit"] == 2 and step.closed[c["key"]]["how"] == "returned"
    assert events(step, "returned")[0]["payload"]["to"] == "a"


def test_return_is_refused_during_a_parallel_dispatch():
    f = parallel_flow()
    f["nodes"]["pre"] = task_node(actions=[action("go", "fan")])
    f["start"] = "pre"
    state = start(f, CASE, ENV).state
    state = do(f, state, 22, "go", only(state)["key"]).state
    x = tasks_at(state, "x")[0]
    assert "return" not in keys(actions_for(f, state, x, 32))
    refused(f, state, 32, "return", x["key"], to="submitter", comment="退回", status=409, code="parallel")
    refused(f, state, 32, "return", x["key"], to="pre", comment="退回", status=409, code="parallel")


def test_return_to_a_parallel_branch_step_keeps_its_department():
    d = Driver("incident_loop", {"urgency": "normal"})
    d.act("triage", "to_street", comment="多部门")
    d.act("street_whistle", "whistle", data={"whistle_departments": ["justice"]})
    d.act("dept_handling", "done", data=HANDLED)
    try:
        step = do(d.flow, d.state, 11, "return", d.at("close_confirm")["key"], to="dept_handling",
                  comment="部门重办", case=d.case)
    except Refusal as r:
        assert r.status == 422
        return
    assert only(step.state, "dept_handling")["assignees"] == [DEPT_STAFF["justice"]]


def test_transfer_replaces_the_assignee():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    refused(f, state, 22, "transfer", t, to=23, status=422, code="bad_target")  # already an assignee
    refused(f, state, 22, "transfer", t, to=None, status=422, code="bad_target")
    refused(f, state, 22, "transfer", t, to="someone", status=422, code="bad_target")
    step = do(f, state, 22, "transfer", t, to=70, comment="我出差")
    assert step.state["tasks"][t]["assignees"] == [70, 23, 24] and t in step.write
    assert events(step, "transferred")[0]["payload"] == {"task": t, "to": 70}
    refused(f, step.state, 22, "ok", t, status=403, code="not_assignee")
    assert do(f, step.state, 70, "ok", t).state["ended"]["outcome"] == "resolved"


def test_transfer_within_a_sequence_does_not_loop():
    f = simple_flow("sequence")
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    try:
        state = do(f, state, 22, "transfer", t, to=23).state
    except Refusal:
        return  # refusing the transfer is fine too
    for _ in range(4):
        if t not in state["tasks"]:
            break
        state = do(f, state, state["tasks"][t]["assignees"][0], "ok", t).state
    assert t not in state["tasks"] and state["ended"]["outcome"] == "resolved"


def test_add_signer_before():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    refused(f, state, 22, "add_signer", t, to=22, status=422, code="bad_target")
    refused(f, state, 22, "add_signer", t, to={"person": 70, "position": "middle"}, status=422, code="bad_target")
    step = do(f, state, 22, "add_signer", t, to=70)
    assert step.state["tasks"][t]["assignees"] == [70]
    assert events(step, "signer_added")[0]["payload"]["position"] == "before"
    assert keys(actions_for(f, step.state, step.state["tasks"][t], 70)) == ["agree", "disagree"]
    refused(f, step.state, 22, "ok", t, status=403, code="not_assignee")
    refused(f, step.state, 70, "ok", t, status=422, code="bad_action")
    step = do(f, step.state, 70, "agree", t, comment="同意")
    assert step.state["tasks"][t]["assignees"] == [22] and not step.state["ended"]
    assert keys(actions_for(f, step.state, step.state["tasks"][t], 22))[:2] == ["ok", "reject"]
    assert do(f, step.state, 22, "ok", t).state["ended"]["outcome"] == "resolved"


def test_add_signer_after_holds_the_owners_action_until_the_signer_agrees():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    state = do(f, state, 22, "add_signer", t, to={"person": 70, "position": "after"}).state
    assert state["tasks"][t]["assignees"] == [22, 23, 24]  # the owner goes first
    step = do(f, state, 22, "ok", t)
    assert t in step.state["tasks"] and not step.state["ended"], "the owner's action must be held"
    assert step.state["tasks"][t]["assignees"] == [70] and "signer_turn" in kinds(step)
    refused(f, step.state, 70, "disagree", t, status=422, code="comment_required")
    step = do(f, step.state, 70, "agree", t)
    assert step.state["ended"] == {"node": "end", "outcome": "resolved"}
    assert step.closed[t]["action"] == "ok"


def test_add_signer_after_disagreeing_hands_it_back():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    state = do(f, state, 22, "add_signer", t, to={"person": 70, "position": "after"}).state
    state = do(f, state, 22, "ok", t).state
    step = do(f, state, 70, "disagree", t, comment="金额不对")
    assert step.state["tasks"][t]["assignees"] == [22] and not step.state["ended"]
    assert "held" not in step.state["tasks"][t]
    step = do(f, step.state, 22, "reject", t, comment="改为驳回")
    assert step.state["ended"]["outcome"] == "rejected"


def test_a_signer_can_only_agree_or_disagree():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    state = do(f, state, 22, "add_signer", t, to=70).state
    assert keys(actions_for(f, state, state["tasks"][t], 70)) == ["agree", "disagree"]
    for name, to in [("return", "submitter"), ("escalate", None)]:
        with pytest.raises(Refusal) as info:
            act(f, state, CASE, ENV, 70, name, task=t, to=to, comment="由加签人办理")
        assert info.value.status in (403, 422)


def test_return_is_refused_on_the_resubmit_task():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    state = do(f, state, 22, "return", only(state)["key"], to="submitter", comment="补充").state
    back = only(state, RESUBMIT)["key"]
    try:
        state = do(f, state, SUBMITTER, "return", back, to="submitter", comment="再退").state
    except Refusal as r:
        assert r.status in (403, 409, 422)
        return
    step = do(f, state, SUBMITTER, "resubmit", only(state, RESUBMIT)["key"])  # if accepted, still workable
    assert only(step.state)["node"] == "a"


def test_countersign_signer_who_is_a_co_assignee_still_has_to_vote():
    f = simple_flow("all")
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    try:
        state = do(f, state, 22, "add_signer", t, to=23).state
    except Refusal as r:
        assert r.status == 422
        return
    state = do(f, state, 23, "agree", t).state
    state = do(f, state, 22, "ok", t).state
    state = do(f, state, 24, "ok", t).state
    assert t in state["tasks"] and state["tasks"][t]["assignees"] == [23], "23 never took the node's action"


def test_withdraw_only_by_the_submitter_before_anyone_acted():
    f = two_step_flow()
    state = start(f, CASE, ENV).state
    refused(f, state, 22, "withdraw", status=403, code="not_submitter")
    step = do(f, state, SUBMITTER, "withdraw", comment="填错了")
    assert step.status == "withdrawn" and step.state["tasks"] == {}
    assert step.closed[only(state)["key"]]["how"] == "cancelled"
    assert kinds(step)[:2] == ["withdrawn", "ended"]
    refused(f, step.state, SUBMITTER, "withdraw", status=409, code="closed")
    acted = do(f, state, 22, "ok", only(state)["key"]).state
    refused(f, acted, SUBMITTER, "withdraw", status=409, code="already_handled")


def test_urge_is_rate_limited():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    step = do(f, state, SUBMITTER, "urge", t)
    assert events(step, "urged")[0]["payload"]["people"] == [22, 23, 24]
    assert step.state["tasks"][t]["urged_at"] == T0.isoformat() and t in step.write
    later = make_env(now=T0 + timedelta(minutes=59))
    r = refused(f, step.state, SUBMITTER, "urge", t, env=later, status=429, code="urged_recently")
    assert "分钟" in r.message
    step = do(f, step.state, SUBMITTER, "urge", t, env=make_env(now=T0 + timedelta(hours=1)))
    assert "urged" in kinds(step)
    refused(f, state, SUBMITTER, "urge", "t999", status=409, code="task_closed")


def test_comment_needs_text_and_changes_nothing_else():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    refused(f, state, 31, "comment", status=422, code="comment_required")
    refused(f, state, 31, "comment", comment="  ", status=422, code="comment_required")
    step = do(f, state, 31, "comment", comment="请尽快处理")
    assert kinds(step) == ["commented"] and step.events[0]["comment"] == "请尽快处理"
    assert step.state["tasks"] == state["tasks"] and not step.write and not step.closed


def test_escalate_moves_the_same_role_one_level_up():
    members = {**CITY, "mediator@district": [51]}
    env = make_env(members, now=T0 + timedelta(hours=5))
    f = simple_flow(deadline={"duration": "P3D"})
    state = start(f, CASE, make_env(members)).state
    t = only(state)["key"]
    step = do(f, state, 22, "escalate", t, comment="需街道协调", env=env)
    task = step.state["tasks"][t]
    assert task["assignees"] == [32] and task["escalations"] == 1
    assert task["due_at"] == (T0 + timedelta(hours=5, days=3)).isoformat()
    ev = events(step, "escalated")[0]
    assert ev["payload"]["to"] == [32] and ev["payload"]["reason"] == "asked"
    assert ev["payload"]["level"] == "街道的调解员"
    state = do(f, step.state, 32, "escalate", t, env=env).state
    assert state["tasks"][t]["assignees"] == [51]
    state = do(f, state, 51, "escalate", t, env=env).state
    assert state["tasks"][t]["assignees"] == [61]
    refused(f, state, 61, "escalate", t, env=env, status=422, code="no_higher")


def test_escalate_past_an_empty_level_then_at_the_top_is_refused():
    members = {k: v for k, v in CITY.items() if k != "mediator@district"}
    f = simple_flow()
    state = start(f, CASE, make_env(members)).state
    t = only(state)["key"]
    state = do(f, state, 22, "escalate", t, env=make_env(members)).state
    state = do(f, state, 32, "escalate", t, env=make_env(members)).state
    assert state["tasks"][t]["assignees"] == [61]  # district has no mediator: straight to the city
    refused(f, state, 61, "escalate", t, env=make_env(members), status=422, code="no_higher")


def test_escalate_at_the_top_or_from_the_submitter_is_refused():
    f = flow({"a": task_node([{"role": "mediator", "level": "city"}]), "end": end()})
    state = start(f, CASE, ENV).state
    refused(f, state, 61, "escalate", only(state)["key"], status=422, code="no_higher")
    g = flow({"a": task_node([{"submitter": True}]), "end": end()})
    state = start(g, CASE, ENV).state
    assert only(state)["assignees"] == [SUBMITTER]
    refused(g, state, SUBMITTER, "escalate", only(state)["key"], status=422, code="no_higher")


def test_reopen_a_closed_case():
    f = two_step_flow()
    state = start(f, CASE, ENV).state
    refused(f, state, 31, "reopen", comment="x", status=409, code="not_closed")
    for actor in (22, 31, 61):
        state = do(f, state, actor, "ok", only(state)["key"]).state
    assert state["ended"]["outcome"] == "resolved"
    refused(f, state, 31, "reopen", status=422, code="comment_required")
    refused(f, state, 31, "reopen", to="end", comment="x", status=422, code="bad_target")
    step = do(f, state, 31, "reopen", comment="群众不满意")
    assert only(step.state)["node"] == "c" and step.status == "in_progress" and step.state["ended"] is None
    assert events(step, "reopened")[0]["payload"]["previous"] == {"node": "end", "outcome": "resolved"}
    step = do(f, state, 31, "reopen", to="a", comment="从头再办")
    assert only(step.state)["node"] == "a" and step.state["visits"]["a"] == 2


def test_reopen_refuses_a_withdrawn_case():
    f = two_step_flow()
    state = do(f, start(f, CASE, ENV).state, SUBMITTER, "withdraw").state
    refused(f, state, 31, "reopen", to="a", comment="x", status=409, code="not_closed")


def test_actions_on_an_ended_case_are_refused():
    f = simple_flow()
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    state = do(f, state, 22, "ok", t).state
    for name in ("ok", "transfer", "escalate", "return"):
        refused(f, state, 22, name, t, to=70, comment="x", status=409, code="closed")
    assert actions_for(f, state, {"node": "a", "assignees": [22]}, 22) == []


# == node actions named like operations (the shipped flows use return / withdraw / reopen) =================

@pytest.mark.parametrize("name", ["return", "withdraw", "reopen", "escalate"])
def test_a_node_action_named_like_an_operation_is_the_nodes_own(name):
    f = flow({"a": task_node([{"submitter": True}], [action(name, "b", title="节点自己的动作", comment="required")]),
              "b": task_node(), "end": end()})
    state = start(f, CASE, ENV).state
    step = do(f, state, SUBMITTER, name, only(state)["key"], comment="理由")
    assert only(step.state)["node"] == "b"


# == assignment fallback ===========================================================================

def note_of(step: Step) -> str | None:
    return events(step, "task_opened")[-1]["payload"]["note"]


def test_assignment_uses_the_fallback_when_nobody_holds_the_role():
    members = {k: v for k, v in CITY.items() if k != "mediator@community"}
    f = flow({"a": task_node(fallback={"role": "community_secretary", "level": "community"}), "end": end()})
    step = start(f, CASE, make_env(members))
    assert only(step.state)["assignees"] == [21]
    assert note_of(step) == "无人担任社区的调解员，改由社区的社区书记办理"


def test_assignment_goes_one_level_up_without_a_fallback():
    members = {k: v for k, v in CITY.items() if k != "mediator@community"}
    f = flow({"a": task_node(fallback={"role": "volunteer", "level": "community"}), "end": end()})
    step = start(f, CASE, make_env(members))
    assert only(step.state)["assignees"] == [32]
    assert note_of(step) == "无人担任社区的调解员，改由街道的调解员办理"


def test_assignment_falls_back_to_the_administrators():
    members = {"admin@city": [ADMIN], "mediator@grid": [5]}  # below the community does not count
    f = flow({"a": task_node(), "end": end()})
    step = start(f, CASE, make_env(members))
    assert only(step.state)["assignees"] == [ADMIN]
    assert note_of(step) == "无人担任社区的调解员，也找不到上级，改由管理员办理"


def test_assignment_by_department_pointer_and_person():
    f = flow({"a": task_node([{"role": "department_staff", "department": "/dept", "level": "street"},
                              {"person": "chen"}]), "end": end()})
    step = start(f, make_case({"dept": "health"}), make_env({**CITY, "person:chen": [77]}))
    assert only(step.state)["assignees"] == [DEPT_STAFF["health"], 77] and note_of(step) is None


@pytest.mark.parametrize("level", ["community", "street", "district", "city"])
@pytest.mark.parametrize("spec", [MEDIATORS, {"role": "department_staff", "department": "$item", "level": "community"}])
def test_a_task_is_never_left_without_an_assignee(level, spec):
    holder = "mediator" if "department" not in spec else "department_staff:justice"
    members = {f"{holder}@{level}": [7]}
    f = flow({"fan": {"type": "parallel", "foreach": "/items", "branch": "a", "join": "j"},
              "a": task_node([spec], [action("done", "j")]), "j": {"type": "join", "next": "end"}, "end": end()},
             start_at="fan")
    step = start(f, make_case({"items": ["justice"]}), make_env(members))
    assert only(step.state)["assignees"] == [7]
    assert (note_of(step) is None) == (level == "community")
    nobody = start(f, make_case({"items": ["justice"]}), make_env({"admin@district": [8]}))
    assert only(nobody.state)["assignees"] == [8]


# == deadlines ======================================================================================

def deadline_flow(on_timeout: dict | None) -> dict:
    extra = {"deadline": {"duration": "P2D"}}
    if on_timeout is not None:
        extra["on_timeout"] = on_timeout
    return simple_flow(**extra)


def test_tick_leaves_a_task_not_yet_due_alone():
    f = deadline_flow({"action": "remind"})
    state = start(f, CASE, ENV).state
    step = tick(f, state, CASE, make_env(now=T0 + timedelta(days=2) - timedelta(seconds=1)))
    assert step.events == [] and step.state == state and not step.write


@pytest.mark.parametrize("on_timeout", [{"action": "remind"}, None])
def test_tick_marks_overdue_and_reminds(on_timeout):
    f = deadline_flow(on_timeout)
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    before = copy.deepcopy(state)
    later = make_env(now=T0 + timedelta(days=2))
    step = tick(f, state, CASE, later)
    assert state == before
    assert step.state["tasks"][t]["overdue"] is True and t in step.write
    assert kinds(step) == ["overdue", "reminded"]
    assert events(step, "reminded")[0]["payload"]["people"] == [22, 23, 24]
    again = tick(f, step.state, CASE, make_env(now=T0 + timedelta(days=5)))
    assert again.events == [] and again.state == step.state  # a timeout is applied once


def test_tick_escalates_and_resets_the_deadline():
    f = deadline_flow({"action": "escalate"})
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    now = T0 + timedelta(days=3)
    step = tick(f, state, CASE, make_env(now=now))
    task = step.state["tasks"][t]
    assert task["assignees"] == [32] and task["overdue"] is False
    assert task["due_at"] == (now + timedelta(days=2)).isoformat()
    assert kinds(step) == ["overdue", "escalated"]
    assert events(step, "escalated")[0]["actor"] is None
    assert events(step, "escalated")[0]["payload"]["reason"] == "timeout"
    assert tick(f, step.state, CASE, make_env(now=now)).events == []  # not due again yet
    step = tick(f, step.state, CASE, make_env(now=now + timedelta(days=2)))
    assert step.state["tasks"][t]["assignees"] == [51]


def test_tick_escalate_at_the_top_only_reminds():
    f = flow({"a": task_node([{"role": "mediator", "level": "city"}], deadline={"duration": "PT4H"},
                             on_timeout={"action": "escalate"}), "end": end()})
    state = start(f, CASE, ENV).state
    step = tick(f, state, CASE, make_env(now=T0 + timedelta(hours=5)))
    assert kinds(step) == ["overdue", "reminded"] and only(step.state)["assignees"] == [61]


def test_tick_auto_action_is_done_by_the_system():
    f = deadline_flow({"action": "auto", "auto_action": "ok"})
    state = start(f, CASE, ENV).state
    t = only(state)["key"]
    step = tick(f, state, CASE, make_env(now=T0 + timedelta(days=2)))
    assert kinds(step)[:3] == ["overdue", "auto_action", "acted"]
    acted = events(step, "acted")[0]
    assert acted["actor"] is None and acted["payload"]["action"] == "ok"
    assert step.closed[t]["closed_by"] is None and step.state["ended"]["outcome"] == "resolved"
    assert tick(f, step.state, CASE, make_env(now=T0 + timedelta(days=9))).events == []


def test_tick_auto_action_in_a_countersign_completes_the_task():
    f = deadline_flow({"action": "auto", "auto_action": "ok"})
    f["nodes"]["a"]["mode"] = "all"
    state = start(f, CASE, ENV).state
    state = do(f, state, 22, "ok", only(state)["key"]).state
    step = tick(f, state, CASE, make_env(now=T0 + timedelta(days=2)))
    assert step.state["ended"]["outcome"] == "resolved"


def test_tick_never_raises_on_a_task_waiting_for_a_signer():
    f = deadline_flow({"action": "auto", "auto_action": "ok"})
    state = start(f, CASE, ENV).state
    state = do(f, state, 22, "add_signer", only(state)["key"], to=70).state
    step = tick(f, state, CASE, make_env(now=T0 + timedelta(days=3)))
    assert "overdue" in kinds(step)


# == a running case keeps its flow version ===============================================================

def test_a_running_case_works_with_the_flow_it_started_with():
    v1 = flow({"a": task_node(actions=[action("ok", "end")]), "end": end()})
    v2 = copy.deepcopy(v1)  # a "new version": ok now leads to a second check
    v2["nodes"]["a"]["actions"] = [action("ok", "check")]
    v2["nodes"]["check"] = task_node([{"role": "street_officer", "level": "street"}])
    state = start(v1, CASE, ENV).state
    assert "test_flow" not in json.dumps(state) and "nodes" not in state  # the state holds no definition
    t = only(state)["key"]
    assert do(v1, state, 22, "ok", t).state["ended"]["outcome"] == "resolved"
    assert only(do(v2, state, 22, "ok", t).state)["node"] == "check"  # whichever the caller passes


# == the shipped flows ==================================================================================

def shipped(key: str) -> dict:
    return json.loads((ROOT / "flows" / f"{key}.json").read_text(encoding="utf-8"))


FLOWS = {key: shipped(key) for key in ("incident_loop", "mediation_321", "resource_request", "visit_followup")}

HANDLED = {"handling_result": "已清理完毕，现场恢复"}
SATISFIED = {"visit_method": "phone", "satisfaction": "satisfied"}
UNSATISFIED = {"visit_method": "door", "satisfaction": "unsatisfied", "unsatisfied_reasons": ["not_solved"]}
MEDIATION_FAIL = {"mediation_date": "2026-03-02", "mediator_name": "王调解", "mediation_method": "on_site",
                  "mediation_result": "fail", "fail_reason": "双方分歧较大"}
MEDIATION_SUCCESS = {"mediation_date": "2026-03-05", "mediator_name": "李调解", "mediation_result": "success",
                     "agreement_type": "oral", "agreement": "赔偿两千元，互相道歉"}
CITY_FAIL = {**MEDIATION_FAIL, "referral_path": "litigation"}
FOLLOWED_UP = {"followup_date": "2026-03-20", "followup_method": "phone", "performance": "fulfilled",
               "satisfaction": "satisfied"}
DELIVERED = {"delivered_on": "2026-03-10", "delivery_notes": "已送达社区", "delivered_amount": 3000}
EVALUATED = {"received_as_requested": True, "satisfaction": "satisfied"}


class Driver:
    """Drive one case of a shipped flow through the engine, one action at a time."""

    def __init__(self, key: str, data: dict, members: dict | None = None):
        self.flow = FLOWS[key]
        self.case = make_case(data)
        self.env = make_env(members)
        self.last = start(self.flow, self.case, self.env)
        self.state = self.last.state

    def at(self, node: str) -> dict:
        return only(self.state, node)

    def act(self, node: str, name: str, actor: int | None = None, **kw) -> Step:
        t = self.at(node) if actor is None else next(t for t in tasks_at(self.state, node) if actor in t["assignees"])
        who = actor if actor is not None else t["assignees"][0]
        self.last = do(self.flow, self.state, who, name, t["key"], case=self.case, env=self.env, **kw)
        self.state = self.last.state
        return self.last


def test_incident_critical_is_copied_to_community_and_street():
    d = Driver("incident_loop", {"urgency": "critical"})
    assert d.last.cc == [{"node": "cc_critical", "people": [21, 31]}]
    assert d.at("triage")["assignees"] == [11]
    normal = Driver("incident_loop", {"urgency": "urgent"})
    assert normal.last.cc == [] and normal.at("triage")["assignees"] == [11]


def test_incident_whistle_to_three_departments_and_reopen_after_an_unsatisfied_visit():
    d = Driver("incident_loop", {"urgency": "urgent"})
    refused(d.flow, d.state, 11, "to_street", d.at("triage")["key"], case=d.case, status=422, code="comment_required")
    d.act("triage", "to_street", comment="涉及多个部门")
    assert d.at("street_whistle")["assignees"] == [31]
    refused(d.flow, d.state, 31, "whistle", d.at("street_whistle")["key"], case=d.case,
            data={"whistle_departments": []}, status=422, code="invalid")
    d.act("street_whistle", "whistle", data={"whistle_departments": ["public_security", "justice", "health"],
                                             "whistle_requirements": "三日内到场"})
    depts = tasks_at(d.state, "dept_handling")
    assert sorted((t["item"], tuple(t["assignees"])) for t in depts) == sorted(
        (x, (DEPT_STAFF[x],)) for x in ("public_security", "justice", "health"))
    assert "return" not in keys(actions_for(d.flow, d.state, depts[0], depts[0]["assignees"][0]))
    d.act("dept_handling", "done", actor=DEPT_STAFF["justice"], data=HANDLED)
    d.act("dept_handling", "not_responsible", actor=DEPT_STAFF["health"], comment="不属卫健职责")
    assert tasks_at(d.state, "close_confirm") == []
    d.act("dept_handling", "done", actor=DEPT_STAFF["public_security"], data=HANDLED)
    assert d.at("close_confirm")["assignees"] == [11]
    d.act("close_confirm", "confirm")
    assert d.at("return_visit")["assignees"] == [12]
    d.act("return_visit", "submit", data=UNSATISFIED)
    assert d.at("street_whistle")["visit"] == 2  # reopen_route: it went to the street before
    d.act("street_whistle", "done", data=HANDLED)
    d.act("close_confirm", "confirm")
    d.act("return_visit", "submit", data=SATISFIED)
    assert d.state["ended"] == {"node": "end_resolved", "outcome": "resolved"} and d.last.status == "closed"
    assert d.state["facts"]["satisfaction"] == "satisfied"


def test_incident_three_unsatisfied_visits_go_to_review():
    d = Driver("incident_loop", {"urgency": "normal"})
    d.act("triage", "handle_in_grid")
    for round_ in range(3):
        assert d.at("grid_handling")["visit"] == round_ + 1
        d.act("grid_handling", "done", data=HANDLED)
        d.act("close_confirm", "confirm")
        d.act("return_visit", "submit", data=UNSATISFIED)
    assert d.at("unsatisfied_review")["assignees"] == [21]
    assert d.state["visits"]["return_visit"] == 3
    d.act("unsatisfied_review", "close", comment="已向群众解释说明")
    assert d.state["ended"] == {"node": "end_unresolved", "outcome": "unresolved"}


def test_incident_review_can_continue_handling():
    d = Driver("incident_loop", {"urgency": "normal"})
    d.act("triage", "to_community")
    for _ in range(3):
        d.act("community_handling", "done", data=HANDLED)
        d.act("close_confirm", "confirm")
        d.act("return_visit", "submit", data=UNSATISFIED)
    d.act("unsatisfied_review", "reopen", comment="继续督办")
    assert d.at("community_handling")["visit"] == 4


def test_incident_confirm_redo_goes_back_to_the_handling_level():
    d = Driver("incident_loop", {"urgency": "normal"})
    d.act("triage", "to_community")
    d.act("community_handling", "done", data=HANDLED)
    d.act("close_confirm", "redo", comment="现场仍有垃圾")
    assert d.at("community_handling")["visit"] == 2
    d.act("community_handling", "back_to_grid", comment="网格处理即可")
    assert d.at("grid_handling")["assignees"] == [12]


def test_incident_triage_overdue_is_handled_once_and_keeps_an_assignee():
    d = Driver("incident_loop", {"urgency": "normal"})
    assert d.at("triage")["due_at"] == (T0 + timedelta(days=1)).isoformat()
    now = make_env(now=T0 + timedelta(days=1, hours=1))
    step = tick(d.flow, d.state, d.case, now)
    assert kinds(step)[0] == "overdue" and kinds(step)[1] in ("escalated", "reminded")
    assert only(step.state, "triage")["assignees"], "never left without an assignee"
    assert tick(d.flow, step.state, d.case, now).events == []


def test_mediation_321_all_failing_ends_unresolved():
    d = Driver("mediation_321", {"risk_level": "low"})
    for n in range(1, 4):
        assert d.at("community_mediation")["visit"] == n
        d.act("community_mediation", "record", data=MEDIATION_FAIL)
    for n in range(1, 3):
        assert d.at("street_mediation")["visit"] == n and d.at("street_mediation")["assignees"] == [32]
        d.act("street_mediation", "record", data=MEDIATION_FAIL)
    assert d.at("city_mediation")["assignees"] == [61]
    refused(d.flow, d.state, 61, "record", d.at("city_mediation")["key"], case=d.case, data=MEDIATION_FAIL,
            status=422, code="invalid")  # the city has to name the referral path
    d.act("city_mediation", "record", data=CITY_FAIL)
    assert d.state["ended"] == {"node": "end_unresolved", "outcome": "unresolved"} and d.last.status == "closed"
    assert d.state["visits"] == {"community_mediation": 3, "street_mediation": 2, "city_mediation": 1}


def test_mediation_success_at_street_goes_to_follow_up():
    d = Driver("mediation_321", {"risk_level": "high"})
    assert d.last.cc == [{"node": "cc_high_risk", "people": [31, DEPT_STAFF["public_security"]]}]
    for _ in range(3):
        d.act("community_mediation", "record", data=MEDIATION_FAIL)
    d.act("street_mediation", "record", data=MEDIATION_SUCCESS)
    assert d.at("follow_up")["assignees"] == [22, 23, 24]
    assert "fail_reason" not in events(d.last, "acted")[0]["payload"]["data"]
    d.act("follow_up", "done", data=FOLLOWED_UP)
    assert d.state["ended"] == {"node": "end_resolved", "outcome": "resolved"}


def test_mediation_hidden_fields_are_dropped_from_step_data():
    d = Driver("mediation_321", {})
    d.act("community_mediation", "record", data={**MEDIATION_SUCCESS, "fail_reason": "不该保留"})
    assert "fail_reason" not in d.state["facts"] and d.state["facts"]["agreement"] == MEDIATION_SUCCESS["agreement"]
    assert d.at("follow_up")


def test_mediation_terminate_needs_a_comment():
    d = Driver("mediation_321", {})
    data = {"terminate_reason": "litigation_started", "referral_path": "litigation"}
    refused(d.flow, d.state, 22, "terminate", d.at("community_mediation")["key"], case=d.case, data=data,
            status=422, code="comment_required")
    d.act("community_mediation", "terminate", data=data, comment="已起诉")
    assert d.state["ended"]["outcome"] == "unresolved"


@pytest.mark.parametrize(("amount", "approver"), [(8000, "street_approval"), (5000.01, "street_approval"),
                                                  (5000, "delivery"), (300, "delivery")])
def test_resource_request_amount_decides_the_route(amount, approver):
    d = Driver("resource_request", {"amount": amount})
    d.act("community_review", "approve", data={"provider_department": "justice"})
    assert d.at(approver)
    if approver == "street_approval":
        assert d.at("street_approval")["assignees"] == [31]
        d.act("street_approval", "approve", data={"provider_department": "health", "approved_amount": 4500})
        assert d.at("delivery")["assignees"] == [DEPT_STAFF["health"]]  # the latest choice counts
    else:
        assert d.at("delivery")["assignees"] == [DEPT_STAFF["justice"]]
    d.act("delivery", "delivered", data=DELIVERED)
    step = d.act("evaluation", "submit", data=EVALUATED)
    assert step.cc == [{"node": "cc_office", "people": [31]}]
    assert d.state["ended"] == {"node": "end_done", "outcome": "resolved"}


def test_resource_request_delivery_falls_back_when_the_department_has_nobody():
    members = {k: v for k, v in CITY.items() if k != "department_staff:education@street"}
    d = Driver("resource_request", {"amount": 100}, members)
    d.act("community_review", "approve", data={"provider_department": "education"})
    assert d.at("delivery")["assignees"] == [31]
    assert "无人担任" in events(d.last, "task_opened")[0]["payload"]["note"]
    d.act("delivery", "cannot_provide", comment="无此资源")
    assert d.at("street_approval")["assignees"] == [31]


def test_resource_request_returned_to_the_submitter_and_resubmitted():
    d = Driver("resource_request", {"amount": 100})
    refused(d.flow, d.state, 21, "return", d.at("community_review")["key"], case=d.case, to="submitter",
            status=422, code="comment_required")
    d.act("community_review", "return", to="submitter", comment="请补充预算明细")
    back = only(d.state)
    assert back["assignees"] == [SUBMITTER] and back["node"] in ("supplement", RESUBMIT)
    assert "resubmit" in keys(actions_for(d.flow, d.state, back, SUBMITTER))
    d.act(back["node"], "resubmit")
    assert d.at("community_review")["visit"] == 2 and d.last.status == "in_progress"


def test_resource_request_return_goes_to_the_supplement_step():
    d = Driver("resource_request", {"amount": 100})
    d.act("community_review", "return", comment="请补充预算明细")
    assert d.at("supplement")["assignees"] == [SUBMITTER]
    d.act("supplement", "resubmit")
    assert d.at("community_review")["visit"] == 2


def test_resource_request_withdraw_from_supplement():
    d = Driver("resource_request", {"amount": 100})
    d.act("community_review", "return", comment="请补充")
    back = only(d.state)
    step = do(d.flow, d.state, SUBMITTER, "withdraw", back["key"], case=d.case)
    assert step.status == "withdrawn" and step.state["ended"]["node"] in ("end_withdrawn", RESUBMIT)


def test_resource_request_street_can_reject():
    d = Driver("resource_request", {"amount": 9000})
    d.act("community_review", "approve", data={"provider_department": "civil_affairs"})
    d.act("street_approval", "reject", comment="超出预算")
    assert d.state["ended"] == {"node": "end_rejected", "outcome": "rejected"}


VISIT_WITH_ISSUE = {
    "has_issue": True, "need_report": True, "issue_type": "fire_safety", "issue_description": "楼道堆放杂物",
    "issue_urgency": "urgent", "visited_at": "2026-03-01T10:00:00+08:00",
    "location": {"lat": 30.25, "lng": 120.16}, "issue_photos": ["att-1"], "topics": ["policy"],
}


def test_visit_with_an_issue_spawns_an_incident_report():
    d = Driver("visit_followup", VISIT_WITH_ISSUE)
    assert d.last.spawns == [{"node": "spawn_incident", "form": "incident_report", "data": {
        "category": "fire_safety", "description": "楼道堆放杂物", "urgency": "urgent",
        "occurred_at": "2026-03-01T10:00:00+08:00", "location": {"lat": 30.25, "lng": 120.16},
        "photos": ["att-1"]}}]
    assert d.state["tasks"] == {} and d.state["ended"] == {"node": "end_reported", "outcome": "resolved"}
    assert d.last.status == "closed" and d.last.cc == []


@pytest.mark.parametrize("data", [{"has_issue": False}, {"has_issue": True, "need_report": False}, {}])
def test_visit_without_an_issue_ends_at_once(data):
    d = Driver("visit_followup", data)
    assert d.last.spawns == [] and d.state["tasks"] == {} and not d.last.write
    assert d.state["ended"] == {"node": "end_done", "outcome": "resolved"} and d.last.status == "closed"


def test_visit_with_poverty_risk_is_copied_to_the_community():
    d = Driver("visit_followup", {"topics": ["poverty_monitoring"], "poverty_risk_found": True, "has_issue": False})
    assert d.last.cc == [{"node": "cc_poverty", "people": [21]}]
    assert d.state["ended"]["node"] == "end_done"


# == property: random walks through the shipped flows keep the invariants ====================================

PEOPLE_POOL = (SUBMITTER, 11, 12, 21, 22, 31, 32, 40, 41, 61, 70, 71, ADMIN)
DATE = st.sampled_from(["2026-03-02", "2026-04-15"])
TEXT = st.sampled_from(["已处理完毕", "现场核实无误", "双方仍有分歧"])


def step_data(node: str, name: str, draw) -> dict:
    """Valid step-form data for a shipped flow's action (every action with a form is listed)."""
    if name == "done" and node == "follow_up":
        return {**FOLLOWED_UP, "followup_date": draw(DATE)}
    if name == "done":
        return {"handling_result": draw(TEXT)}
    if name == "whistle":
        return {"whistle_departments": draw(st.lists(st.sampled_from(DEPARTMENTS), min_size=1, max_size=3,
                                                     unique=True))}
    if name == "submit" and node == "return_visit":
        satisfaction = draw(st.sampled_from(["satisfied", "basically_satisfied", "unsatisfied"]))
        out = {"visit_method": draw(st.sampled_from(["phone", "door"])), "satisfaction": satisfaction}
        if satisfaction == "unsatisfied":
            out["unsatisfied_reasons"] = draw(st.lists(st.sampled_from(["not_solved", "too_slow", "attitude"]),
                                                       min_size=1, unique=True))
        return out
    if name == "record":
        if draw(st.booleans()):
            return {**MEDIATION_SUCCESS, "mediation_date": draw(DATE)}
        return {**MEDIATION_FAIL, "referral_path": "arbitration"} if node == "city_mediation" else MEDIATION_FAIL
    if name == "terminate":
        return {"terminate_reason": draw(st.sampled_from(["withdrawn", "refused", "other"])),
                "referral_path": draw(st.sampled_from(["litigation", "petition"]))}
    if name == "approve":
        out = {"provider_department": draw(st.sampled_from(DEPARTMENTS))}
        if node == "street_approval":
            out["approved_amount"] = draw(st.sampled_from([0, 1200.5, 8000]))
        return out
    if name == "delivered":
        return {**DELIVERED, "delivered_on": draw(DATE)}
    if name == "submit" and node == "evaluation":
        return {"received_as_requested": draw(st.booleans()),
                "satisfaction": draw(st.sampled_from(["satisfied", "unsatisfied"]))}
    return {}


_COMPILED: dict[tuple, CompiledForm] = {}


@settings(max_examples=15, deadline=None, database=None, derandomize=True)
@given(data=st.data())
def test_the_walks_step_data_is_valid_for_every_shipped_step_form(data):
    for key, f in FLOWS.items():
        for node_key, node in f["nodes"].items():
            for a in node.get("actions", []):
                if "form" not in a:
                    continue
                form = _COMPILED.setdefault((key, node_key, a["key"]),
                                            CompiledForm(a["form"]["schema"], a["form"].get("ui")))
                produced = step_data(node_key, a["key"], data.draw)
                result = form.validate(produced)
                assert produced and result.ok, (key, node_key, a["key"], result.errors)


CASE_DATA = {
    "incident_loop": st.fixed_dictionaries({"urgency": st.sampled_from(["normal", "urgent", "critical"]),
                                            "category": st.just("other")}),
    "mediation_321": st.fixed_dictionaries({"risk_level": st.sampled_from(["low", "medium", "high"])}),
    "resource_request": st.fixed_dictionaries({"amount": st.sampled_from([100, 5000, 5000.01, 20000])}),
    "visit_followup": st.fixed_dictionaries({
        "has_issue": st.booleans(), "need_report": st.booleans(), "issue_type": st.just("other"),
        "topics": st.sampled_from([[], ["poverty_monitoring"]]), "poverty_risk_found": st.booleans()}),
}


def check_invariants(f: dict, state: dict, step: Step) -> None:
    ended = state["ended"]
    assert step.state is state and (ended is not None) == (state["status"] in ("closed", "withdrawn"))
    if ended:
        assert state["tasks"] == {} and state["tokens"] == {} and state["parallels"] == {}
        assert (state["status"] == "withdrawn") == (ended["outcome"] == "withdrawn")
        return
    assert state["tasks"], "a running case without an open task"
    returned = any(t["node"] == RESUBMIT for t in state["tasks"].values())
    assert (state["status"] == "returned") == returned
    waiting = {t["token"] for t in state["tasks"].values()}
    parents = {p["token"]: p for p in state["parallels"].values()}
    for key, t in state["tasks"].items():
        assert t["key"] == key
        assert t["assignees"], f"task {t['node']} has nobody"
        assert len(set(t["assignees"])) == len(t["assignees"])
        assert t["token"] in state["tokens"], f"task {t['node']} belongs to no token"
        assert t["node"] == RESUBMIT or f["nodes"][t["node"]]["type"] == "task"
    for key, token in state["tokens"].items():
        if key in waiting:
            continue
        assert key in parents, f"token {key} at {token['node']} waits at nothing"
        assert token["node"] == parents[key]["join"] and f["nodes"][token["node"]]["type"] == "join"
    for p in state["parallels"].values():
        assert 0 <= p["arrived"] < p["expected"]
    for key in step.write:
        assert key in state["tasks"]
    for key, closed in step.closed.items():
        assert key not in state["tasks"] and closed["how"] in ("done", "cancelled", "returned")


def operation_input(name: str, task: dict, actor: int, state: dict, draw) -> dict:
    if name == "transfer":
        others = [p for p in PEOPLE_POOL if p not in task["assignees"]]
        return {"to": draw(st.sampled_from(others)), "comment": "转交"}
    if name == "add_signer":
        person = draw(st.sampled_from([p for p in PEOPLE_POOL if p != actor]))
        return {"to": {"person": person, "position": draw(st.sampled_from(["before", "after"]))}}
    if name == "return":
        targets = ["submitter"] + [n for n in state["passed"]]
        return {"to": draw(st.sampled_from(targets)), "comment": "退回重办"}
    return {"comment": "请尽快"}


@pytest.mark.parametrize("flow_key", sorted(FLOWS))
@settings(max_examples=100, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_walks_keep_the_invariants(flow_key, data):
    f = FLOWS[flow_key]
    flow_before = copy.deepcopy(f)
    dropped = data.draw(st.sets(st.sampled_from(sorted(CITY)), max_size=4), label="nobody holds")
    members = {k: v for k, v in CITY.items() if k not in dropped or k == "admin@city"}
    case = make_case(data.draw(CASE_DATA[flow_key], label="case data"))
    now = T0
    step = start(f, case, make_env(members, now))
    state = step.state
    check_invariants(f, state, step)
    for _ in range(60):
        env = make_env(members, now)
        if state["ended"]:
            if not data.draw(st.booleans(), label="reopen?"):
                break
            call = {"actor": 21, "name": "reopen", "task": None, "comment": "群众不满意，重新办理"}
        else:
            what = data.draw(st.sampled_from(["act"] * 6 + ["tick", "urge", "withdraw"]), label="what")
            if what == "tick":
                now += timedelta(hours=data.draw(st.sampled_from([1, 30, 24 * 12]), label="hours"))
                before = copy.deepcopy(state)
                step = tick(f, state, case, make_env(members, now))
                assert state == before
                state = step.state
                check_invariants(f, state, step)
                continue
            t = data.draw(st.sampled_from(sorted(state["tasks"])), label="task")
            task = state["tasks"][t]
            if what in ("urge", "withdraw"):
                call = {"actor": SUBMITTER, "name": what, "task": t, "comment": None}
            else:
                actor = data.draw(st.sampled_from(task["assignees"]), label="actor")
                offered = actions_for(f, state, task, actor)
                assert offered, "an assignee with nothing to do"
                chosen = data.draw(st.sampled_from(offered), label="action")
                call = {"actor": actor, "name": chosen["key"], "task": t, "comment": "意见"}
                if chosen.get("operation"):
                    call.update(operation_input(chosen["key"], task, actor, state, data.draw))
                elif chosen.get("form"):
                    call["data"] = step_data(task["node"], chosen["key"], data.draw)
                    assert call["data"], f"no step data for {task['node']}/{chosen['key']}"
        kw = {k: v for k, v in call.items() if k not in ("actor", "name")}
        before = copy.deepcopy(state)
        try:
            step = act(f, state, case, env, call["actor"], call["name"], **kw)
        except Refusal as r:
            assert state == before, "a refusal changed the state"
            assert r.status in (403, 409, 422, 429), (r.status, r.code, r.message)
            if state["ended"]:
                break
            continue
        assert state == before, "the engine changed the caller's state"
        check_invariants(f, step.state, step)
        for closed_key, closed in step.closed.items():
            if call["name"] in OPERATIONS or closed["how"] == "cancelled":
                continue
            with pytest.raises(Refusal) as again:
                act(f, step.state, case, env, call["actor"], call["name"], task=closed_key,
                    data=call.get("data"), comment="意见")
            assert again.value.status == 409
            assert again.value.code == ("closed" if step.state["ended"] else "task_closed")
        state = step.state
    assert f == flow_before, "the engine changed the shipped flow"
