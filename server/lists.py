"""Case lists: typed and form-field filters read from a query string, sorting, keyset pages, columns."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from peewee import Case, Cast, fn

from .cases import local_day_bounds
from .definitions.versions import compiled
from .errors import Refusal
from .grids import in_subtree, node_by_code
from .models import FormVersion, GridNode, Person, Submission, Task, TaskAssignee, utcnow
from .rendering import choose_widget, options_of, type_of
from .scope import Scope
from .validation import FieldError, show_value

STATUSES = ("submitted", "in_progress", "returned", "closed", "withdrawn", "rejected")
OUTCOMES = ("resolved", "unresolved", "rejected", "withdrawn")
SORTS = {
    "-created_at": (Submission.created_at, True),
    "created_at": (Submission.created_at, False),
    "-updated_at": (Submission.updated_at, True),
    "updated_at": (Submission.updated_at, False),
}
SORT_LABELS = {"-created_at": "上报时间（新→旧）", "created_at": "上报时间（旧→新）",
               "-updated_at": "最近办理（新→旧）", "updated_at": "最近办理（旧→新）"}
SKIPPED_WIDGETS = {"file", "photo", "signature", "location", "repeat"}
MAX_FIELD_DEPTH = 4


@dataclass(frozen=True)
class FieldSpec:
    """A field of a form that a list can filter on and show: where it is, what it is, its choices."""

    path: tuple[str, ...]
    title: str
    kind: str  # choice, choices, text, number, date, datetime, bool
    options: tuple[tuple[Any, str], ...] = ()
    sensitive: bool = False

    @property
    def name(self) -> str:
        """The field's name in a query string (`f.` + its dotted path)."""
        return "f." + ".".join(self.path)

    def label(self, value: Any) -> str:
        """Show a stored value as a person reads it: option labels, 是/否, lists joined by 、."""
        if value is None or value == "" or value == []:
            return ""
        labels = dict((show_value(v), t) for v, t in self.options)
        if isinstance(value, list):
            return "、".join(labels.get(show_value(v), show_value(v)) for v in value)
        if isinstance(value, bool):
            return "是" if value else "否"
        if self.kind == "datetime" and isinstance(value, str):
            from .store import zone

            moment = local_moment(value, zone())
            return f"{moment:%Y-%m-%d %H:%M}" if moment else value
        return labels.get(show_value(value), show_value(value))


def ordered_names(schema: dict, ui: dict) -> list[str]:
    """The property names of an object schema in the form's order."""
    from .rendering import ordered

    return ordered(list((schema.get("properties") or {}).keys()), ui.get("ui:order"))


def form_fields(version: FormVersion) -> list[FieldSpec]:
    """The fields of a form version a list can filter on, in the form's order (groups flattened).

    Repeating groups, attachments and locations are left out; sensitive fields are listed but
    marked (they are shown masked and never filtered on).
    """
    form = compiled(version)
    out: list[FieldSpec] = []

    def walk(path: tuple[str, ...], depth: int) -> None:
        schema = form.schema_at(path) if path else form.resolve(form.schema)
        ui = form.ui_at(path) if path else form.ui
        for name in ordered_names(schema, ui):
            here = path + (name,)
            sub, sub_ui = form.schema_at(here), form.ui_at(here)
            if type_of(sub) == "object":
                if choose_widget(sub, sub_ui) == "group" and depth < MAX_FIELD_DEPTH:
                    walk(here, depth + 1)
                continue
            spec = spec_for(here, form.title_at(here), sub, sub_ui)
            if spec is not None:
                out.append(spec)

    walk((), 0)
    return out


def spec_for(path: tuple[str, ...], title: str, schema: dict, ui: dict) -> FieldSpec | None:
    """Describe one leaf field for lists and exports (None: attachments, locations, repeats, objects)."""
    kind = type_of(schema)
    if choose_widget(schema, ui) in SKIPPED_WIDGETS or schema.get("format") == "attachment" or kind == "object":
        return None
    sensitive = schema.get("x-sensitive") is True
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        options = options_of(items, ui.get("items") or {})
        return FieldSpec(path, title, "choices", tuple(options), sensitive) if options else None
    options = options_of(schema, ui)
    if kind == "boolean":
        return FieldSpec(path, title, "bool", tuple(options or ((True, "是"), (False, "否"))), sensitive)
    if options:
        return FieldSpec(path, title, "choice", tuple(options), sensitive)
    if kind in ("integer", "number"):
        return FieldSpec(path, title, "number", (), sensitive)
    if kind == "string" and schema.get("format") == "date":
        return FieldSpec(path, title, "date", (), sensitive)
    if kind == "string" and schema.get("format") == "date-time":
        return FieldSpec(path, title, "datetime", (), sensitive)
    if kind == "string":
        return FieldSpec(path, title, "text", (), sensitive)
    return None


def columns(version: FormVersion, fields: list[FieldSpec] | None = None) -> list[FieldSpec]:
    """The form's own columns of a case list: its `ui:columns`, else its first four fields."""
    fields = fields if fields is not None else form_fields(version)
    by_name = {".".join(f.path): f for f in fields}
    chosen = (version.definition.get("ui") or {}).get("ui:columns")
    if isinstance(chosen, list) and chosen:
        return [by_name[c] for c in chosen if isinstance(c, str) and c in by_name]
    return fields[:4]


def value_at(data: Any, path: tuple[str, ...]) -> Any:
    """The value at a path of a case's data (None where it is missing)."""
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


# -- filters ---------------------------------------------------------------------------------------

@dataclass
class FieldFilter:
    """One condition on a form field: equal to one of `values`, within [low, high], or containing text."""

    spec: FieldSpec
    values: list = field(default_factory=list)
    low: Any = None
    high: Any = None
    has: str | None = None


@dataclass
class ListQuery:
    """What a case list is narrowed to and how it is ordered; read from a query string."""

    form: str | None = None
    version: FormVersion | None = None
    grid: GridNode | None = None
    statuses: list[str] = field(default_factory=list)
    outcome: str | None = None
    step: str | None = None
    assignee: Person | None = None
    since: datetime | None = None
    until: datetime | None = None
    closed_since: datetime | None = None
    closed_until: datetime | None = None
    overdue: bool = False
    q: str | None = None
    fields: list[FieldFilter] = field(default_factory=list)
    sort: str = "-created_at"
    described: list[tuple[str, str]] = field(default_factory=list)  # (what, value) for people
    args: list[tuple[str, str]] = field(default_factory=list)  # the filter parameters, for links

    def describe(self) -> str:
        """Say the filters in words, for an export's header row."""
        return "；".join(f"{k}：{v}" for k, v in self.described) or "全部"


TYPED = ("form", "grid", "status", "outcome", "step", "assignee", "from", "to", "closed_from", "closed_to",
         "overdue", "q", "sort")


def _bad(name: str, message: str) -> Refusal:
    return Refusal(422, "invalid", message, [FieldError(f"/{name}", message)])


def _day(args, name: str) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(name, f"{name} 应为日期，如 2024-05-01") from None


def parse(args, scope: Scope, tz: str, version_for=None) -> ListQuery:
    """Read a list's filters from query arguments (a MultiDict); refuse bad ones in Chinese.

    `version_for(form_key, grid)` gives the form version whose fields the `f.…` filters name;
    without a form, field filters are refused.
    """
    query = ListQuery()
    keep = query.args.append

    form = (args.get("form") or "").strip()
    code = (args.get("grid") or "").strip()
    if code:
        node = node_by_code(code)
        if node is None or not scope.covers(node.path):
            raise _bad("grid", f"网格 {code} 不存在或不在您的管辖范围内")
        query.grid = node
        keep(("grid", code))
        query.described.append(("网格", node.name))
    if form:
        version = version_for(form, query.grid) if version_for else None
        query.form, query.version = form, version
        keep(("form", form))
        query.described.append(("表单", version.definition.get("title", form) if version else form))
    statuses = [s for s in args.getlist("status") if s]
    for s in statuses:  # flows may name their own statuses: an unknown one simply matches nothing
        keep(("status", s))
    query.statuses = statuses
    if statuses:
        from .inbox import STATUS_LABELS

        query.described.append(("状态", "、".join(str(STATUS_LABELS.get(s, s)) for s in statuses)))
    outcome = (args.get("outcome") or "").strip()
    if outcome:
        if outcome not in OUTCOMES:
            raise _bad("outcome", f"结果 {outcome} 无效，可选：{'、'.join(OUTCOMES)}")
        query.outcome = outcome
        keep(("outcome", outcome))
        from .inbox import OUTCOMES as NAMES

        query.described.append(("结果", str(NAMES[outcome])))
    step = (args.get("step") or "").strip()
    if step:
        query.step = step
        keep(("step", step))
        query.described.append(("当前环节", step))
    assignee = (args.get("assignee") or "").strip()
    if assignee:
        person = Person.get_or_none(Person.username == assignee)
        if person is None:
            raise _bad("assignee", f"没有用户 {assignee}")
        query.assignee = person
        keep(("assignee", assignee))
        query.described.append(("经办人", person.name))
    _dates(args, query, tz)
    if args.get("overdue") in ("1", "true", "on"):
        query.overdue = True
        keep(("overdue", "1"))
        query.described.append(("超期", "是"))
    q = (args.get("q") or "").strip()
    if q:
        query.q = q
        keep(("q", q))
        query.described.append(("关键词", q))
    sort = args.get("sort") or "-created_at"
    if sort not in SORTS:
        raise _bad("sort", f"排序 {sort} 无效，可选：{'、'.join(SORTS)}")
    query.sort = sort
    if sort != "-created_at":
        keep(("sort", sort))
    query.fields = _field_filters(args, query)
    return query


def _dates(args, query: ListQuery, tz: str) -> None:
    for low, high, what in (("from", "to", "上报日期"), ("closed_from", "closed_to", "办结日期")):
        start, end = _day(args, low), _day(args, high)
        if start and end and end < start:
            raise _bad(high, f"{what}的结束日期早于开始日期")
        if start:
            bound = local_day_bounds(start, tz)[0]
            if low == "from":
                query.since = bound
            else:
                query.closed_since = bound
            query.args.append((low, start.isoformat()))
        if end:
            bound = local_day_bounds(end, tz)[1]
            if high == "to":
                query.until = bound
            else:
                query.closed_until = bound
            query.args.append((high, end.isoformat()))
        if start or end:
            query.described.append((what, f"{start or '…'} 至 {end or '…'}"))


def _field_filters(args, query: ListQuery) -> list[FieldFilter]:
    names = sorted({k for k in args.keys() if k.startswith("f.")})
    if not names:
        return []
    if query.version is None:
        message = f"没有表单 {query.form}" if query.form else "按表单内容筛选时须先选定表单（form）"
        raise _bad(names[0], message)
    specs = {f.name: f for f in form_fields(query.version)}
    found: dict[str, FieldFilter] = {}
    for name in names:
        raw = [v.strip() for v in args.getlist(name) if v.strip()]
        if not raw:
            continue
        base, _, op = name.rpartition(".")
        if name in specs:
            base, op = name, "eq"
        spec = specs.get(base)
        if spec is None or op not in ("eq", "min", "max", "has"):
            raise _bad(name, f"表单中没有可筛选的字段 {name[2:]}")
        if spec.sensitive:
            raise _bad(name, f"「{spec.title}」是敏感信息，不能按它筛选")
        ff = found.setdefault(base, FieldFilter(spec))
        _read_op(ff, spec, op, raw, name)
        query.args += [(name, v) for v in raw]
    for ff in found.values():
        query.described.append((ff.spec.title, _say(ff)))
    return list(found.values())


def _read_op(ff: FieldFilter, spec: FieldSpec, op: str, raw: list[str], name: str) -> None:
    if op == "has":
        if spec.kind != "text":
            raise _bad(name, f"「{spec.title}」不能按“包含”筛选")
        ff.has = raw[0]
        return
    if op in ("min", "max"):
        if spec.kind not in ("number", "date", "datetime"):
            raise _bad(name, f"「{spec.title}」不能按范围筛选")
        value = _typed(spec, raw[0], name)
        if op == "min":
            ff.low = value
        else:
            ff.high = value
        if ff.low is not None and ff.high is not None and ff.high < ff.low:
            raise _bad(name, f"「{spec.title}」的上限小于下限")
        return
    if spec.kind in ("number", "date", "datetime"):
        value = _typed(spec, raw[0], name)
        ff.low = ff.high = value
        return
    if spec.kind in ("choice", "choices", "bool"):
        known = {_param(v): v for v, _ in spec.options}
        for r in raw:
            if r not in known:
                raise _bad(name, f"「{spec.title}」没有选项 {r}")
            ff.values.append(known[r])
        return
    ff.values += raw


def _param(value: Any) -> str:
    """How a choice is written in a query string (`true`/`false` for yes/no)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return show_value(value)


def _typed(spec: FieldSpec, raw: str, name: str) -> Any:
    if spec.kind == "number":
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise _bad(name, f"「{spec.title}」应填数字")
        return int(value) if value.is_integer() else value
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _bad(name, f"「{spec.title}」应为日期，如 2024-05-01") from None


def _say(ff: FieldFilter) -> str:
    if ff.has:
        return f"包含“{ff.has}”"
    if ff.values:
        return ("包含其一：" if ff.spec.kind == "choices" else "") + "、".join(ff.spec.label(v) for v in ff.values)
    if ff.low is not None and ff.low == ff.high:
        return str(ff.low)
    if ff.high is None:
        return f"不小于 {ff.low}"
    if ff.low is None:
        return f"不大于 {ff.high}"
    return f"{ff.low} 至 {ff.high}"


# -- the query ---------------------------------------------------------------------------------------

def condition(scope: Scope, query: ListQuery, now: datetime | None = None):
    """The WHERE condition of a list: the viewer's scope and every filter."""
    where = scope.case_condition()
    if query.form:
        where &= Submission.form == query.form
    if query.grid is not None:
        where &= in_subtree(Submission.grid_path, query.grid.path)
    if query.statuses:
        where &= Submission.status.in_(query.statuses)
    if query.outcome:
        where &= Submission.outcome == query.outcome
    if query.step:
        where &= Submission.id.in_(Task.select(Task.submission)
                                   .where((Task.node == query.step) & (Task.state == "open")))
    if query.assignee is not None:
        where &= Submission.id.in_(
            Task.select(Task.submission).join(TaskAssignee)
            .where((TaskAssignee.person == query.assignee.id) & TaskAssignee.active & (Task.state == "open")))
    if query.overdue:
        where &= Submission.id.in_(Task.select(Task.submission)
                                   .where((Task.state == "open") & (Task.due_at < (now or utcnow()))))
    for column, value, op in ((Submission.created_at, query.since, ">="), (Submission.created_at, query.until, "<"),
                              (Submission.closed_at, query.closed_since, ">="),
                              (Submission.closed_at, query.closed_until, "<")):
        if value is not None:
            where &= (column >= value) if op == ">=" else (column < value)
    if query.q:
        where &= Submission.search_text.contains(query.q)
    for ff in query.fields:
        where &= _field_condition(ff)
    return where


def _field_condition(ff: FieldFilter):
    spec = ff.spec
    at = Submission.data.path(*spec.path)
    if ff.has is not None:
        return fn.instr(at.as_text(), ff.has) > 0 if not _pg() else fn.strpos(at.as_text(), ff.has) > 0
    if spec.kind == "choices":
        found = None
        for value in ff.values:
            one = at.contains([value])
            found = one if found is None else found | one
        return found
    if spec.kind in ("date", "datetime"):
        text = at.as_text() if spec.kind == "date" else _local_text(at.as_text())
        cond = None
        if ff.low is not None:
            cond = text >= ff.low.isoformat()
        if ff.high is not None:
            upper = text < (ff.high + timedelta(days=1)).isoformat()
            cond = upper if cond is None else cond & upper
        return cond
    if spec.kind == "number":
        number = at.as_float()
        cond = None
        if ff.low is not None:
            cond = number >= ff.low
        if ff.high is not None:
            cond = (number <= ff.high) if cond is None else cond & (number <= ff.high)
        return cond
    if spec.kind == "text":
        return at.as_text().in_(ff.values)
    if len(ff.values) == 1:
        return at == ff.values[0]
    return at.in_(ff.values)


def _local_text(text):
    """A stored date-time as local `YYYY-MM-DDTHH:MM:SS` text: one written with an offset (or Z) is
    converted to the configured zone; one written without is local already (the fill page's)."""
    from .store import zone

    tz = zone()
    if _pg():
        aware = text.regexp(r"(Z|[+-][0-9][0-9]:?[0-9][0-9])$")
        local = fn.to_char(fn.timezone(tz, Cast(text, "timestamptz")), 'YYYY-MM-DD"T"HH24:MI:SS')
        return Case(None, [(aware, local)], text)
    hours = datetime(2000, 1, 1, tzinfo=ZoneInfo(tz)).utcoffset().total_seconds() / 3600
    aware = (fn.length(text) > 16) & ((fn.substr(text, -1) == "Z") | fn.substr(text, -6, 1).in_(["+", "-"]))
    return Case(None, [(aware, fn.strftime("%Y-%m-%dT%H:%M:%S", text, f"{hours:+g} hours"))], text)


def local_moment(value: str, tz: str) -> datetime | None:
    """A stored date-time as a naive local datetime (converted from its offset when it has one)."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(tz))
    return moment.replace(tzinfo=None)


def _pg() -> bool:
    from .db import is_postgres

    return is_postgres()


def encode_cursor(sort: str, case: Submission) -> str:
    """Make an opaque cursor pointing just after a case in a list's order."""
    column, _ = SORTS[sort]
    value = getattr(case, column.name)
    raw = json.dumps([sort, value.isoformat(), case.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> tuple[datetime, str]:
    """Read a cursor back; refuse one that was not made by us for this order."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, at, sid = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if made_for != sort:
            raise ValueError(made_for)
        return datetime.fromisoformat(at), str(sid)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise Refusal(400, "bad_cursor", "分页游标 cursor 无效，请从第一页重新开始") from None


def ordered_query(scope: Scope, query: ListQuery, cursor: str | None = None, now: datetime | None = None):
    """The SELECT of a list in its order, from a cursor on, with each case's author."""
    column, descending = SORTS[query.sort]
    select = (Submission.select(Submission, Person)
              .join(Person, on=(Submission.created_by == Person.id))
              .where(condition(scope, query, now)))
    if cursor:
        at, sid = decode_cursor(query.sort, cursor)
        if descending:
            select = select.where((column < at) | ((column == at) & (Submission.id < sid)))
        else:
            select = select.where((column > at) | ((column == at) & (Submission.id > sid)))
    if descending:
        return select.order_by(column.desc(), Submission.id.desc())
    return select.order_by(column, Submission.id)


def page(scope: Scope, query: ListQuery, limit: int, cursor: str | None = None,
         now: datetime | None = None) -> tuple[list[Submission], str | None]:
    """One page of a list and the cursor of the next one (None on the last page)."""
    rows = list(ordered_query(scope, query, cursor, now).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(query.sort, rows[-1]) if more and rows else None


def each(scope: Scope, query: ListQuery, size: int = 500):
    """Every case of a list in its order, read a keyset page at a time: memory holds one page."""
    cursor = None
    while True:
        rows, cursor = page(scope, query, size, cursor)
        yield from rows
        rows = None  # let the page go before the next one is read
        if cursor is None:
            return


def current_steps(case_ids: list[str]) -> dict[str, list[tuple[str, list[str]]]]:
    """The open steps of cases, with who holds each (names): {case: [(title, [names])]}."""
    out: dict[str, list[tuple[str, list[str]]]] = {c: [] for c in case_ids}
    if not case_ids:
        return out
    tasks = list(Task.select(Task.id, Task.submission, Task.title)
                 .where(Task.submission.in_(case_ids) & (Task.state == "open")).order_by(Task.id))
    names: dict[int, list[str]] = {t.id: [] for t in tasks}
    if tasks:
        for row in (TaskAssignee.select(TaskAssignee.task, Person.name).join(Person)
                    .where(TaskAssignee.task.in_(list(names)) & TaskAssignee.active).order_by(Person.name)):
            names[row.task_id].append(row.person.name)
    for t in tasks:
        out[t.submission_id].append((t.title, names[t.id]))
    return out


def overdue_ids(case_ids: list[str], now: datetime | None = None) -> set[str]:
    """Which of these cases have an open step past its deadline."""
    if not case_ids:
        return set()
    return {t.submission_id for t in Task.select(Task.submission)
            .where(Task.submission.in_(case_ids) & (Task.state == "open") & (Task.due_at < (now or utcnow())))}
