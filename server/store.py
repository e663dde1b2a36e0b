"""Running flows against the database: start a case's flow, act on tasks, sweep deadlines.

The engine (server/engine) decides; this module reads what it needs, calls it, and writes the
result — the case's flow state and status, its tasks and who they wait for, its events, copies
(抄送) and linked cases — in one transaction, with the case's revision checked so that two people
acting at once cannot both succeed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from peewee import fn

from . import engine, stats
from .db import database, sql
from .errors import Refusal
from .models import (
    CaseLink,
    CcEntry,
    Department,
    Event,
    FlowVersion,
    GridNode,
    Level,
    Person,
    Role,
    Submission,
    Task,
    TaskAssignee,
    utcnow,
)
from .workdays import due

log = logging.getLogger(__name__)

STALE = "这个案件刚刚被他人办理或修改，请刷新后查看最新情况"


HOLDERS = ('SELECT m.person_id FROM "membership" AS m JOIN "person" AS p ON p.id = m.person_id '
           "WHERE m.node_id = {p} AND m.role = {p} AND p.active = {p}")
_nodes: dict[tuple, GridNode] = {}  # (database, code) → the node's id, code and level


def forget() -> None:
    """Drop what this module remembers by id, for a database emptied and refilled (tests, restores)."""
    _nodes.clear()
    _flow_versions.clear()


class DbDirectory:
    """Who holds a role at a level above a case's grid, read from memberships (engine.Directory)."""

    def __init__(self):
        self._chain: dict[str, list[GridNode]] = {}

    @functools.cached_property
    def levels(self) -> dict[str, Level]:
        return {lv.key: lv for lv in Level.select()}

    @functools.cached_property
    def by_depth(self) -> list[Level]:
        return sorted(self.levels.values(), key=lambda lv: lv.depth)

    @functools.cached_property
    def roles(self) -> dict[str, str]:
        return {r.key: r.name for r in Role.select(Role.key, Role.name)}

    @functools.cached_property
    def departments(self) -> dict[str, str]:
        return {d.key: d.name for d in Department.select(Department.key, Department.name)}

    def chain(self, grid_path: str) -> list[GridNode]:
        """The case's grid and its ancestors, root first (a node's id and level never change: cached)."""
        if grid_path not in self._chain:
            codes = grid_path.strip("/").split("/")
            db = database.obj.database
            missing = [c for c in codes if (db, c) not in _nodes]
            if missing:
                for n in GridNode.select(GridNode.id, GridNode.code, GridNode.level).where(GridNode.code.in_(missing)):
                    _nodes[(db, n.code)] = n
            self._chain[grid_path] = [_nodes[(db, c)] for c in codes if (db, c) in _nodes]
        return self._chain[grid_path]

    def _department(self, spec: dict, item: Any, facts: dict) -> str | None:
        dept = spec.get("department")
        if dept == "$item":
            return item if isinstance(item, str) else None
        if isinstance(dept, str) and dept.startswith("/"):
            value = engine.core.pointer_get(facts, dept)
            return value if isinstance(value, str) else None
        return dept

    def holders(self, spec: dict, case: engine.Case, item: Any, facts: dict) -> list[int]:
        if "person" in spec or "chosen" in spec:
            username = spec.get("person") or engine.core.pointer_get(facts, spec["chosen"])
            person = Person.get_or_none((Person.username == username) & Person.active) if isinstance(
                username, str) else None
            return [person.id] if person else []
        role = spec.get("role") or ("department_staff" if spec.get("department") else None)
        chain = self.chain(case.grid_path)
        if spec.get("level") == "*":
            nodes = list(reversed(chain))  # nearest first
        else:
            nodes = [n for n in chain if n.level == spec.get("level")]
        department = self._department(spec, item, facts) if spec.get("department") else None
        if spec.get("department") and department is None:
            return []
        for node in nodes:
            text = HOLDERS + (" AND m.department = {p}" if department else "")
            params = (node.id, role, True) + ((department,) if department else ())
            people = sorted({row[0] for row in database.execute_sql(sql(text), params)})
            if people:
                return people
        return []

    def up(self, spec: dict) -> dict | None:
        level = self.levels.get(spec.get("level"))
        if level is None:
            return None
        higher = [lv for lv in self.by_depth if lv.depth < level.depth]
        return {**spec, "level": higher[-1].key} if higher else None

    def describe(self, spec: dict, item: Any) -> str:
        if spec.get("submitter"):
            return "填报人"
        if "person" in spec:
            return f"指定人员 {spec['person']}"
        if "chosen" in spec:
            return "填报人选定的人员"
        level = self.levels.get(spec.get("level"))
        where = level.name if level else "各级"
        dept = spec.get("department")
        if dept == "$item":
            dept = item
        dept_name = self.departments.get(dept, dept) if isinstance(dept, str) and not dept.startswith("/") else None
        role = self.roles.get(spec.get("role") or "department_staff", spec.get("role"))
        return f"{where}{dept_name or ''}的{role}" if dept_name else f"{where}的{role}"


def zone() -> str:
    """The configured time zone (deadlines count local days), outside requests too."""
    from flask import current_app, has_app_context

    return current_app.config.get("TIMEZONE", "Asia/Shanghai") if has_app_context() else "Asia/Shanghai"


def aware(moment: datetime) -> datetime:
    """A time with its zone: the database keeps naive UTC, the engine works with aware times."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def stored(moment: datetime | None) -> datetime | None:
    """A time as the database keeps it: naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment is not None and moment.tzinfo else moment


def environment(zone: str, now: datetime | None = None) -> engine.Env:
    """The engine's view of the world: the directory, the time (aware), and the working-day calendar."""
    tz = ZoneInfo(zone)
    return engine.Env(DbDirectory(), aware(now or utcnow()),
                      lambda start, deadline: due(aware(start), deadline, tz).astimezone(UTC))


def case_view(case: Submission) -> engine.Case:
    return engine.Case(case.id, case.data or {}, case.grid_path, case.created_by_id)


_flow_versions: dict[tuple, FlowVersion] = {}


def flow_for(form_definition: dict, grid_path: str | None = None) -> FlowVersion | None:
    """The version of the flow a form names that a grid uses now (a running case keeps its own).

    That is the grid's adapted flow when a township adapted it, else the newest published one.
    Versions are immutable: each is read once per process; only the id in use is looked up.
    """
    from .definitions.overlays import effective_id

    key = form_definition.get("flow")
    if not key:
        return None
    adapted = effective_id("flow", key, grid_path) if grid_path else None
    if adapted is not None:
        ident = (database.obj.database, adapted)
        if ident not in _flow_versions:
            _flow_versions[ident] = FlowVersion.get_by_id(adapted)
        return _flow_versions[ident]
    row = database.execute_sql(sql(
        'SELECT v.id FROM "flow_version" AS v JOIN "flow" AS f ON f.id = v.flow_id '
        "WHERE f.key = {p} AND v.variant = '' ORDER BY v.version DESC LIMIT 1"), (key,)).fetchone()
    if row is None:
        return None
    ident = (database.obj.database, row[0])
    if ident not in _flow_versions:
        _flow_versions[ident] = FlowVersion.get_by_id(row[0])
    return _flow_versions[ident]


# -- starting -------------------------------------------------------------------------------------

@dataclass
class Started:
    """A new case's first step, worked out before the case is inserted."""

    step: engine.Step
    env: engine.Env
    fields: dict


def first_step(case: Submission, definition: dict, zone: str) -> Started | None:
    """Work out where a new case's flow starts: its state and status go into the case's insert."""
    version = flow_for(definition, case.grid_path)
    if version is None:
        return None
    env = environment(zone, case.created_at)
    step = engine.start(version.definition, case_view(case), env)
    state = step.state
    fields = {"flow_version": version.id, "flow_state": state, "status": step.status,
              "outcome": (state.get("ended") or {}).get("outcome"),
              "current_nodes": sorted({t["node"] for t in state["tasks"].values()})}
    if step.status in ("closed", "withdrawn"):
        fields["closed_at"] = stored(env.now)
    return Started(step, env, fields)


def write_started(case: Submission, started: Started) -> None:
    """Write the rest of a new case's first step (tasks, events, copies, linked cases), case already in."""
    _write_rest(case, started.step, started.env, previous_status="submitted", actor=None,
                revision=case.revision)


# -- acting ---------------------------------------------------------------------------------------

def act(person: Person, case: Submission, action: str, zone: str, task: Task | None = None,
        data: Any = None, comment: str | None = None, to: Any = None, now: datetime | None = None) -> Submission:
    """Do an action on a case as a person, once: a stale revision is refused with 409.

    `now` acts at another time (the demo's history plays cases through the past); requests never pass it.
    """
    if case.flow_version_id is None or case.flow_state is None:
        raise Refusal(409, "no_flow", "这张表单没有办理流程")
    flow = FlowVersion.get_by_id(case.flow_version_id).definition
    env = environment(zone, now)
    to = _people(to)
    _check_target(case, action, to)
    step = engine.act(flow, case.flow_state, case_view(case), env, person.id, action,
                      task.key if task is not None else None, data if isinstance(data, dict) else {}, comment, to)
    with database.atomic():
        _write(case, step, env, previous_status=case.status, actor=person.id)
    return Submission.get_by_id(case.id)


def _check_target(case: Submission, action: str, to: Any) -> None:
    """A task is handed (转交, 加签) only to someone who serves the case's grid."""
    if action not in ("transfer", "add_signer"):
        return
    target = to.get("person") if isinstance(to, dict) else to
    if not isinstance(target, int):
        return
    from .scope import scope_for_person

    scope = scope_for_person(target)
    if scope is None or not scope.covers(case.grid_path):
        raise Refusal(422, "bad_target", "对方不负责这个案件所在的网格，不能交给他办理")


def _people(to: Any) -> Any:
    """Turn usernames in an action's `to` into person ids (the engine knows people by id)."""
    def one(username: Any) -> Any:
        if not isinstance(username, str):
            return username
        person = Person.get_or_none((Person.username == username) & Person.active)
        if person is None:
            raise Refusal(422, "bad_target", f"找不到人员 {username}（或已停用）")
        return person.id

    if isinstance(to, dict) and "person" in to:
        return {**to, "person": one(to["person"])}
    if isinstance(to, str) and to != "submitter" and not Person.select().where(Person.username == to).exists():
        return to  # a node key (return to a step already passed)
    return one(to) if isinstance(to, str) and to != "submitter" else to


# -- deadlines ------------------------------------------------------------------------------------

def sweep(zone: str, now: datetime | None = None, limit: int = 500) -> int:
    """Apply the deadlines that have passed; return how many cases changed.

    Safe from several processes at once: each case is written with its revision checked, so a
    timeout is applied by exactly one of them; the others find the case changed and skip it.
    """
    now = aware(now or utcnow())
    ids = [row.submission_id for row in Task.select(Task.submission).distinct()
           .where((Task.state == "open") & (Task.overdue == False) & (Task.due_at <= stored(now)))  # noqa: E712
           .limit(limit)]
    changed = 0
    for sid in ids:
        case = Submission.get_or_none(Submission.id == sid)
        if case is None or case.flow_state is None:
            continue
        env = environment(zone, now)
        step = engine.tick(FlowVersion.get_by_id(case.flow_version_id).definition, case.flow_state,
                           case_view(case), env)
        if not step.events:
            continue
        try:
            with database.atomic():
                _write(case, step, env, previous_status=case.status, actor=None)
            changed += 1
        except Refusal:
            log.info("sweep: case %s changed meanwhile, left to the next run", sid)
    return changed


# -- writing a step ---------------------------------------------------------------------------------

def _write(case: Submission, step: engine.Step, env: engine.Env, previous_status: str, actor: int | None) -> None:
    """Write what the engine decided, in the caller's transaction."""
    now = stored(env.now)
    state = step.state
    outcome = (state.get("ended") or {}).get("outcome")
    revision = case.revision + 1
    fields = {Submission.flow_state: state, Submission.status: step.status, Submission.outcome: outcome,
              Submission.current_nodes: sorted({t["node"] for t in state["tasks"].values()}),
              Submission.updated_at: now, Submission.revision: revision,
              Submission.flow_version: case.flow_version_id}
    if not case.late and _late(case, step, now):
        fields[Submission.late] = True
    rating = _rating(step)
    if rating is not None:
        fields[Submission.rating] = rating
    if step.status in ("closed", "withdrawn") and previous_status not in ("closed", "withdrawn"):
        fields[Submission.closed_at] = now
    elif step.status not in ("closed", "withdrawn"):
        fields[Submission.closed_at] = None
    updated = (Submission.update(fields)
               .where((Submission.id == case.id) & (Submission.revision == case.revision)).execute())
    if updated != 1:
        raise Refusal(409, "stale", STALE)
    _write_rest(case, step, env, previous_status, actor, revision)


RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")


def _late(case: Submission, step: engine.Step, now: datetime) -> bool:
    """Tell whether a step makes the case late: a task went overdue, or was closed after its deadline."""
    if any(t.get("overdue") for t in step.state["tasks"].values()):
        return True
    if any(e["kind"] == "overdue" for e in step.events):  # escalation clears the flag in the same step
        return True
    before = (case.flow_state or {}).get("tasks") or {}
    return any(_moment(before[key].get("due_at")) < now for key in step.closed
               if key in before and before[key].get("due_at"))


def _rating(step: engine.Step) -> str | None:
    """The newest follow-up rating in a step's data: a step-form field `satisfaction` (满意率)."""
    rating = None
    for event in step.events:
        data = (event["payload"] or {}).get("data")
        if isinstance(data, dict) and data.get("satisfaction") in RATINGS:
            rating = data["satisfaction"]
    return rating


def _write_rest(case: Submission, step: engine.Step, env: engine.Env, previous_status: str,
                actor: int | None, revision: int) -> None:
    """Write a step's tasks, copies, events and linked cases (the case's own row is written)."""
    now = stored(env.now)
    state = step.state
    for key, closed in step.closed.items():
        (Task.update(state=closed["how"], closed_at=now, closed_by=closed.get("closed_by"),
                     action=closed.get("action"))
         .where((Task.submission == case.id) & (Task.key == key)).execute())
        TaskAssignee.update(active=False).where(TaskAssignee.task.in_(
            Task.select(Task.id).where((Task.submission == case.id) & (Task.key == key)))).execute()
    for key in sorted(step.write):
        _write_task(case, state["tasks"][key])
    for copy_ in step.cc:
        CcEntry.insert_many([{"submission": case.id, "person": p, "node": copy_["node"], "at": now}
                             for p in copy_["people"]]).execute()
    if step.events:
        last = len(step.events) - 1
        Event.insert_many([
            {"submission": case.id, "at": now, "actor": e["actor"], "kind": e["kind"], "node": e["node"],
             "comment": e["comment"], "from_status": previous_status,
             "to_status": step.status if i == last else previous_status, "revision": revision,
             "payload": e["payload"]}
            for i, e in enumerate(step.events)]).execute()
    for spawn in step.spawns:
        _spawn(case, spawn, now)
    if actor is not None:
        _mark_acted(case, step, actor, now)


def _write_task(case: Submission, task: dict) -> None:
    row = Task.get_or_none((Task.submission == case.id) & (Task.key == task["key"]))
    values = dict(node=task["node"], title=task["title"], mode=task["mode"], state="open", form=case.form,
                  grid_path=case.grid_path, item=task.get("item"),
                  due_at=_moment(task.get("due_at")), overdue=bool(task.get("overdue")),
                  escalations=task.get("escalations", 0), urged_at=_moment(task.get("urged_at")))
    if row is None:
        row = Task.create(submission=case.id, key=task["key"], opened_at=_moment(task["opened_at"]), **values)
    else:
        Task.update(**values).where(Task.id == row.id).execute()
    active = set(task["assignees"])
    have = {a.person_id: a for a in TaskAssignee.select().where(TaskAssignee.task == row.id)}
    for pid, a in have.items():
        if a.active != (pid in active):
            TaskAssignee.update(active=pid in active).where(TaskAssignee.id == a.id).execute()
    new = [{"task": row.id, "person": pid, "active": True} for pid in active if pid not in have]
    if new:
        TaskAssignee.insert_many(new).execute()


def _moment(text: str | None) -> datetime | None:
    return stored(aware(datetime.fromisoformat(text))) if text else None


def _mark_acted(case: Submission, step: engine.Step, actor: int, now: datetime) -> None:
    """Remember that the person acted on these tasks, for their 已办 list."""
    keys = {e["payload"]["task"] for e in step.events
            if e["actor"] == actor and e["payload"] and "task" in e["payload"]}
    if not keys:
        return
    for row in Task.select(Task.id).where((Task.submission == case.id) & Task.key.in_(keys)):
        updated = (TaskAssignee.update(acted_at=now)
                   .where((TaskAssignee.task == row.id) & (TaskAssignee.person == actor)).execute())
        if not updated:
            TaskAssignee.create(task=row.id, person=actor, active=False, acted_at=now)


def _spawn(case: Submission, spawn: dict, now: datetime) -> None:
    """Start a linked case of another form from this one's data (e.g. a visit's issue → an incident)."""
    from . import cases
    from .definitions.overlays import effective

    node = GridNode.get_by_id(case.grid_id)
    version = effective("form", spawn["form"], node.path)
    submitter = Person.get_by_id(case.created_by_id)
    try:
        if version is None:
            raise Refusal(422, "invalid", f"找不到表单 {spawn['form']}")
        child, _ = cases.submit(submitter, version, node, spawn["data"], now=now)
    except Refusal as exc:
        Event.create(submission=case.id, at=now, kind="spawn_failed", node=spawn["node"],
                     comment=exc.message, payload={"form": spawn["form"],
                                                   "errors": [e.as_dict() for e in exc.errors]})
        return
    CaseLink.create(source=case.id, target=child.id, kind="spawned", node=spawn["node"])
    Event.create(submission=case.id, at=now, kind="spawned", node=spawn["node"],
                 payload={"form": spawn["form"], "case": child.id})
    Event.create(submission=child.id, at=now, kind="spawned_from", node=spawn["node"],
                 payload={"form": case.form, "case": case.id})


def start_timer(app) -> threading.Thread | None:
    """Sweep deadlines every GRIDFLOW_SWEEP_SECONDS in a background thread of this process (0: never)."""
    interval = app.config.get("SWEEP_SECONDS", 60)
    if not interval:
        return None

    def loop():
        while True:
            time.sleep(interval)
            try:
                with app.app_context():
                    sweep(app.config["TIMEZONE"])
                    stats.refresh(*stats.settings()[:2])
            except Exception:  # noqa: BLE001 - keep the timer alive; the next round retries
                log.exception("deadline sweep failed")
            finally:
                if not database.is_closed():
                    database.close()

    thread = threading.Thread(target=loop, name="gridflow-sweep", daemon=True)
    thread.start()
    return thread


def open_task_count(person_id: int) -> int:
    """How many open tasks wait for a person (for the home page)."""
    return (TaskAssignee.select(fn.COUNT(TaskAssignee.id)).join(Task)
            .where((TaskAssignee.person == person_id) & TaskAssignee.active & (Task.state == "open")).scalar())
