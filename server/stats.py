"""The figures officials read: reported, 办结率, on-time rate, handling time, 满意率, mediation success, overdue.

Every figure counts the cases *reported* in a period (a cohort) within one grid node's subtree.
Whole months are read from `stat_month` (kept for nodes down to the community level and
rebuilt for the months whose cases changed); the rest of a period is computed from the cases.
Both give the same sums, so a figure never depends on where it was read from. docs/reports.md
defines each figure.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from peewee import OP, SQL, Expression, IntegrityError, fn

from .db import database, is_postgres
from .grids import in_subtree
from .models import GridNode, Level, StatMonth, StatRefresh, Submission, Task, utcnow

log = logging.getLogger(__name__)

SATISFIED = ("satisfied", "basically_satisfied")
PERIODS = ("week", "month", "quarter", "year", "custom")
ROLLUP_LEVEL = "community"  # monthly figures are kept for nodes down to this level
DAY_TREND_LIMIT = 62  # periods up to this many days trend by day, longer ones by month


def settings() -> tuple[str, tuple[str, ...], int]:
    """The time zone, the mediation forms and the sweep interval of the running app."""
    from flask import current_app

    config = current_app.config
    mediation = tuple(f.strip() for f in str(config.get("MEDIATION_FORMS", "")).split(",") if f.strip())
    return config.get("TIMEZONE", "Asia/Shanghai"), mediation, int(config.get("SWEEP_SECONDS", 60) or 0)


# -- a bag of sums ---------------------------------------------------------------------------------

@dataclass
class Sums:
    """The additive parts of the figures; everything shown is computed from these."""

    reported: int = 0
    withdrawn: int = 0
    closed: int = 0
    on_time: int = 0
    handling_seconds: int = 0
    hours: Counter = field(default_factory=Counter)
    rated: int = 0
    satisfied: int = 0
    resolved: int = 0
    mediation_closed: int = 0
    mediation_resolved: int = 0
    overdue_now: int = 0

    def add(self, other: Sums) -> None:
        """Add another bag into this one."""
        for name in ("reported", "withdrawn", "closed", "on_time", "handling_seconds", "rated", "satisfied",
                     "resolved", "mediation_closed", "mediation_resolved", "overdue_now"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.hours.update(other.hours)

    def figures(self) -> dict:
        """The figures as the dashboard and the API show them (rates 0–1, None without a base)."""
        open_base = self.reported - self.withdrawn
        return {
            "reported": self.reported,
            "withdrawn": self.withdrawn,
            "closed": self.closed,
            "closure_rate": _rate(self.closed, open_base),
            "on_time": self.on_time,
            "on_time_rate": _rate(self.on_time, self.closed),
            "avg_handling_hours": round(self.handling_seconds / self.closed / 3600, 2) if self.closed else None,
            "p90_handling_hours": percentile(self.hours, 0.9),
            "rated": self.rated,
            "satisfied": self.satisfied,
            "satisfaction_rate": _rate(self.satisfied, self.rated),
            "mediation_closed": self.mediation_closed,
            "mediation_resolved": self.mediation_resolved,
            "mediation_success_rate": _rate(self.mediation_resolved, self.mediation_closed),
            "overdue_now": self.overdue_now,
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def percentile(hours: Counter, q: float) -> int | None:
    """The nearest-rank percentile of a histogram {value: count}: the smallest value with ≥ q of the counts."""
    total = sum(hours.values())
    if not total:
        return None
    rank = -(-int(q * total * 1_000_000) // 1_000_000)  # ceil(q × total) without float surprises
    rank = max(rank, 1)
    seen = 0
    for value in sorted(hours):
        seen += hours[value]
        if seen >= rank:
            return int(value)
    return int(max(hours))


# -- periods ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A span of local days [start, end) and how it is called."""

    kind: str
    start: date
    end: date

    @property
    def label(self) -> str:
        """The period as people say it (2026年11月, 2026年第4季度 …)."""
        if self.kind == "year":
            return f"{self.start.year}年"
        if self.kind == "quarter":
            return f"{self.start.year}年第{(self.start.month - 1) // 3 + 1}季度"
        if self.kind == "month":
            return f"{self.start.year}年{self.start.month}月"
        last = self.end - timedelta(days=1)
        return f"{self.start.isoformat()} 至 {last.isoformat()}"

    @property
    def by_day(self) -> bool:
        """Whether the trend of this period is drawn by day (short periods) rather than by month."""
        return (self.end - self.start).days <= DAY_TREND_LIMIT

    def shifted(self, steps: int) -> Period:
        """The period as many periods earlier (negative) or later, for 上一期 / 下一期 links."""
        if self.kind == "custom":
            days = (self.end - self.start).days * steps
            return Period("custom", self.start + timedelta(days=days), self.end + timedelta(days=days))
        if self.kind == "week":
            return period("week", self.start + timedelta(weeks=steps))
        months = {"month": 1, "quarter": 3, "year": 12}[self.kind] * steps
        return period(self.kind, _add_months(self.start, months))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period(kind: str, at: date, until: date | None = None) -> Period:
    """The period of a kind containing a day (custom: from `at` to `until`, both included)."""
    if kind == "week":
        start = at - timedelta(days=at.weekday())
        return Period(kind, start, start + timedelta(days=7))
    if kind == "month":
        start = at.replace(day=1)
        return Period(kind, start, _add_months(start, 1))
    if kind == "quarter":
        start = date(at.year, (at.month - 1) // 3 * 3 + 1, 1)
        return Period(kind, start, _add_months(start, 3))
    if kind == "year":
        return Period(kind, date(at.year, 1, 1), date(at.year + 1, 1, 1))
    if kind == "custom":
        return Period(kind, at, (until or at) + timedelta(days=1))
    raise ValueError(kind)


def local_today(tz: str) -> date:
    """Today's date where the people are."""
    return datetime.now(ZoneInfo(tz)).date()


def utc_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC moments at which two local days begin."""
    zone, utc = ZoneInfo(tz), ZoneInfo("UTC")

    def moment(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(utc).replace(tzinfo=None)

    return moment(start), moment(end)


def _months(start: date, end: date) -> tuple[date, list[str], date]:
    """Split [start, end) into a head of days, whole months (YYYY-MM) and a tail of days."""
    first = start if start.day == 1 else _add_months(start.replace(day=1), 1)
    last = end.replace(day=1)
    if first >= last:
        return end, [], end
    months = []
    day = first
    while day < last:
        months.append(day.strftime("%Y-%m"))
        day = _add_months(day, 1)
    return first, months, last


# -- reading the cases --------------------------------------------------------------------------------

def _local(what: str, hours: float):
    """A SQL expression for the local day (`day`) or month (`month`) of created_at."""
    if is_postgres():
        pattern = "YYYY-MM-DD" if what == "day" else "YYYY-MM"
        return SQL(f"to_char(created_at + interval '{hours:g} hours', '{pattern}')")
    pattern = "%Y-%m-%d" if what == "day" else "%Y-%m"
    return SQL(f"strftime('{pattern}', created_at, '{hours:+g} hours')")


def _offset_hours(tz: str, day: date) -> float:
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz))
    return moment.utcoffset().total_seconds() / 3600


def _child(prefix_length: int):
    """A SQL expression for the path of the child node a case's grid lies under (below a prefix)."""
    n = int(prefix_length)
    if is_postgres():
        return SQL(f"substr(grid_path, 1, {n} + strpos(substr(grid_path, {n + 1}), '/'))")
    return SQL(f"substr(grid_path, 1, {n} + instr(substr(grid_path, {n + 1}), '/'))")


CLOSED = "(closed_at IS NOT NULL AND (outcome IS NULL OR outcome <> 'withdrawn'))"


def _sums_columns(mediation: tuple[str, ...]):
    on_time = "NOT late" if is_postgres() else "late = 0"
    med = ", ".join("'" + m.replace("'", "''") + "'" for m in mediation) or "''"

    def total(condition: str, value: str = "1"):
        return fn.SUM(SQL(f"CASE WHEN {condition} THEN {value} ELSE 0 END"))

    return [
        fn.COUNT(SQL("*")),
        total("outcome = 'withdrawn'"),
        total(CLOSED),
        total(f"{CLOSED} AND {on_time}"),
        total(CLOSED, _hs_text()),
        total("rating IS NOT NULL"),
        total("rating IN ('satisfied', 'basically_satisfied')"),
        total(f"{CLOSED} AND outcome = 'resolved'"),
        total(f"{CLOSED} AND form IN ({med})"),
        total(f"{CLOSED} AND outcome = 'resolved' AND form IN ({med})"),
    ]


def _hs_text() -> str:
    if is_postgres():
        return "CAST(EXTRACT(EPOCH FROM (closed_at - created_at)) AS BIGINT)"
    return "CAST(ROUND((julianday(closed_at) - julianday(created_at)) * 86400) AS INTEGER)"


def _hours_text() -> str:
    return f"(({_hs_text()}) + 3599) / 3600"


def _from_row(values) -> Sums:
    r, w, c, o, h, rated, sat, res, mc, mr = (int(v or 0) for v in values)
    return Sums(reported=r, withdrawn=w, closed=c, on_time=o, handling_seconds=h, rated=rated, satisfied=sat,
                resolved=res, mediation_closed=mc, mediation_resolved=mr)


WIDE = 3  # paths with at most this many slashes (all, a city, a district) hold a large share of the cases


def _cases_where(path: str, since: datetime, until: datetime, form: str | None):
    subtree = in_subtree(Submission.grid_path, path)
    if path.count("/") <= WIDE and not is_postgres():
        # SQLite cannot tell how much of the table a path prefix holds; for a city or a district the
        # time range is the narrower condition, so the path is kept out of the index choice (`+`).
        subtree = Expression(SQL('+"grid_path"'), OP.LIKE, path + "*")
    where = (Submission.created_at >= since) & (Submission.created_at < until) & subtree
    if form:
        where &= Submission.form == form
    return where


def raw_sums(path: str, since: datetime, until: datetime, form: str | None, mediation: tuple[str, ...],
             group: list, hist: bool = True) -> dict[tuple, Sums]:
    """Sums of the cases reported in [since, until) under a path, grouped by SQL expressions.

    With `hist`, each group also gets its histogram of handling hours (for the 90th percentile).
    """
    out: dict[tuple, Sums] = {}
    where = _cases_where(path, since, until, form)
    query = Submission.select(*group, *_sums_columns(mediation)).where(where)
    if group:
        query = query.group_by(*group)
    for row in query.tuples():
        out[tuple(row[:len(group)])] = _from_row(row[len(group):])
    if hist:
        hours = SQL(_hours_text())
        for row in (Submission.select(*group, hours, fn.COUNT(SQL("*")))
                    .where(where & SQL(CLOSED)).group_by(*group, hours).tuples()):
            out.setdefault(tuple(row[:len(group)]), Sums()).hours[int(row[-2])] += int(row[-1])
    return out


# -- the monthly figures -----------------------------------------------------------------------------------

def rollup_depth() -> int:
    """The depth down to which monthly figures are kept (the community level, else the deepest level)."""
    level = Level.get_or_none(Level.key == ROLLUP_LEVEL)
    if level is not None:
        return level.depth
    return Level.select(fn.MAX(Level.depth)).scalar() or 0


def rebuild_month(month: str, tz: str, mediation: tuple[str, ...], depth: int | None = None) -> int:
    """Recompute one local month's figures for every kept node; return the rows written."""
    depth = rollup_depth() if depth is None else depth
    year, mon = (int(x) for x in month.split("-"))
    start = date(year, mon, 1)
    since, until = utc_bounds(start, _add_months(start, 1), tz)
    nodes = {n.path: (n.id, n.depth) for n in GridNode.select(GridNode.id, GridNode.path, GridNode.depth)
             .where(GridNode.depth <= depth)}
    leaves = raw_sums("/", since, until, None, mediation, [Submission.grid_path, Submission.form])
    rows: dict[tuple[int, str], tuple[int, Sums]] = {}
    for (path, form), sums in leaves.items():
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:i]) + "/"
            node = nodes.get(prefix)
            if node is None:
                continue
            entry = rows.setdefault((node[0], form), (node[1], Sums()))
            entry[1].add(sums)
    with database.atomic():
        StatMonth.delete().where(StatMonth.month == month).execute()
        batch = [dict(month=month, form=form, node=node, depth=d, reported=s.reported, withdrawn=s.withdrawn,
                      closed=s.closed, on_time=s.on_time, handling_seconds=s.handling_seconds,
                      hours={str(k): v for k, v in sorted(s.hours.items())}, rated=s.rated,
                      satisfied=s.satisfied, resolved=s.resolved)
                 for (node, form), (d, s) in rows.items()]
        for i in range(0, len(batch), 500):
            StatMonth.insert_many(batch[i:i + 500]).execute()
    return len(rows)


def _month_of(moment: datetime, tz: str) -> str:
    return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).strftime("%Y-%m")


def refresh(tz: str, mediation: tuple[str, ...], now: datetime | None = None) -> list[str]:
    """Rebuild the months whose cases changed since the last refresh (all months the first time)."""
    now = now or utcnow()
    mark = StatRefresh.get_or_none(StatRefresh.name == "stat_month")
    started = now - timedelta(seconds=5)  # a case written while we read is caught next time
    if mark is None:
        query = Submission.select(fn.MIN(Submission.created_at), fn.MAX(Submission.created_at))
        low, high = query.scalar(as_tuple=True)
        months = []
        if low is not None:
            day = date.fromisoformat(_month_of(low, tz) + "-01")
            end = date.fromisoformat(_month_of(high, tz) + "-01")
            while day <= end:
                months.append(day.strftime("%Y-%m"))
                day = _add_months(day, 1)
    else:
        changed = (Submission.select(Submission.created_at).where(Submission.updated_at > mark.at).tuples())
        months = sorted({_month_of(row[0], tz) for row in changed})
    depth = rollup_depth()
    for month in months:
        try:
            rebuild_month(month, tz, mediation, depth)
        except IntegrityError:  # another process rebuilt it at the same moment
            log.info("stat_month %s rebuilt elsewhere meanwhile", month)
    (StatRefresh.insert(name="stat_month", at=started)
     .on_conflict(conflict_target=[StatRefresh.name], update={StatRefresh.at: started}).execute())
    return months


def rebuild(tz: str = "Asia/Shanghai", mediation: tuple[str, ...] = ("dispute_mediation",)) -> list[str]:
    """Rebuild every month's figures from scratch (after a bulk load)."""
    StatRefresh.delete().execute()
    StatMonth.delete().execute()
    return refresh(tz, mediation)


def ensure_fresh(tz: str, mediation: tuple[str, ...], max_age_seconds: int, now: datetime | None = None) -> datetime:
    """Refresh the monthly figures if they are older than `max_age_seconds`; return their time."""
    now = now or utcnow()
    mark = StatRefresh.get_or_none(StatRefresh.name == "stat_month")
    if mark is None or (now - mark.at).total_seconds() > max_age_seconds:
        refresh(tz, mediation, now)
        mark = StatRefresh.get(StatRefresh.name == "stat_month")
    return mark.at


def _rollup_rows(node_ids: list[int], months: list[str], form: str | None):
    query = StatMonth.select().where(StatMonth.node.in_(node_ids) & StatMonth.month.in_(months))
    if form:
        query = query.where(StatMonth.form == form)
    return query


def _rollup_sums(row: StatMonth, mediation: tuple[str, ...]) -> Sums:
    med = row.form in mediation
    return Sums(reported=row.reported, withdrawn=row.withdrawn, closed=row.closed, on_time=row.on_time,
                handling_seconds=row.handling_seconds, hours=Counter({int(k): v for k, v in (row.hours or {}).items()}),
                rated=row.rated, satisfied=row.satisfied, resolved=row.resolved,
                mediation_closed=row.closed if med else 0, mediation_resolved=row.resolved if med else 0)


# -- the dashboard ----------------------------------------------------------------------------------------------

@dataclass
class Board:
    """Everything a dashboard shows for one node, period and (optional) form."""

    node: GridNode
    period: Period
    form: str | None
    totals: Sums
    by_form: dict[str, Sums]
    by_child: dict[str, Sums]  # child path (or the node's own path: cases filed at the node itself)
    trend: dict[str, Sums]  # local day or month → sums
    as_of: datetime | None = None


def board(node: GridNode, per: Period, form: str | None, tz: str, mediation: tuple[str, ...],
          now: datetime | None = None) -> Board:
    """Compute a dashboard: whole months from the monthly figures where kept, the rest from the cases."""
    now = now or utcnow()
    depth = rollup_depth()
    head_end, months, tail_start = _months(per.start, per.end)
    use_rollup = bool(months) and node.depth < depth
    if not use_rollup:
        head_end, months, tail_start = per.end, [], per.end
    totals, by_form, by_child, trend = Sums(), defaultdict(Sums), defaultdict(Sums), defaultdict(Sums)
    child = _child(len(node.path))
    offset = _offset_hours(tz, per.start)
    spans = [(per.start, head_end), (tail_start, per.end)] if months else [(per.start, per.end)]
    for start, end in spans:
        if start >= end:
            continue
        since, until = utc_bounds(start, end, tz)
        bucket = _local("day" if per.by_day else "month", offset)
        # One pass gives every breakdown: (child, form, day or month) groups folded four ways.
        for (child_path, form_key, key), sums in raw_sums(node.path, since, until, form, mediation,
                                                          [child, Submission.form, bucket]).items():
            totals.add(sums)
            by_form[form_key].add(sums)
            by_child[child_path].add(sums)
            trend[key].add(sums)
    if months:
        children = {c.id: c.path for c in GridNode.select(GridNode.id, GridNode.path)
                    .where(GridNode.parent == node.id)}
        own: dict[str, Sums] = defaultdict(Sums)
        for row in _rollup_rows([node.id, *children], months, form):
            sums = _rollup_sums(row, mediation)
            if row.node == node.id:
                totals.add(sums)
                by_form[row.form].add(sums)
                own[row.form].add(sums)
                if not per.by_day:
                    trend[row.month].add(sums)
            else:
                by_child[children[row.node]].add(sums)
                own[row.form].add(_negated(sums))
        for sums in own.values():  # cases filed at the node itself, not under any child
            if sums.reported:
                by_child[node.path].add(sums)
        if per.by_day:  # a short period made of whole months still trends by day
            since, until = utc_bounds(head_end, tail_start, tz)
            bucket = _local("day", offset)
            for (key,), sums in raw_sums(node.path, since, until, form, mediation, [bucket]).items():
                trend[key].add(sums)
    _overdue(node, form, now, totals, by_form, by_child, len(node.path))
    for key in buckets(per):  # every day or month of the period has a point, zero if nothing happened
        trend.setdefault(key, Sums())
    return Board(node, per, form, totals, dict(by_form), dict(by_child), dict(sorted(trend.items())))


def buckets(per: Period) -> list[str]:
    """The trend's points of a period: its local days (short periods) or months."""
    out = []
    day = per.start
    while day < per.end:
        if per.by_day:
            out.append(day.isoformat())
            day += timedelta(days=1)
        else:
            out.append(day.strftime("%Y-%m"))
            day = _add_months(day.replace(day=1), 1)
    return out


def _negated(s: Sums) -> Sums:
    return Sums(reported=-s.reported, withdrawn=-s.withdrawn, closed=-s.closed, on_time=-s.on_time,
                handling_seconds=-s.handling_seconds, hours=Counter({k: -v for k, v in s.hours.items()}),
                rated=-s.rated, satisfied=-s.satisfied, resolved=-s.resolved,
                mediation_closed=-s.mediation_closed, mediation_resolved=-s.mediation_resolved)


def _overdue(node: GridNode, form: str | None, now: datetime, totals: Sums, by_form, by_child, prefix: int) -> None:
    """Count the open cases with a step past its deadline now, by form and by child node."""
    where = ((Task.state == "open") & (Task.due_at < now) & in_subtree(Task.grid_path, node.path))
    if form:
        where &= Task.form == form
    rows = (Task.select(Task.form, _child(prefix), fn.COUNT(Task.submission.distinct()))
            .where(where).group_by(Task.form, _child(prefix)).tuples())
    for form_key, child_path, n in rows:
        totals.overdue_now += n
        by_form[form_key].overdue_now += n
        by_child[child_path].overdue_now += n
