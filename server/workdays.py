"""Deadlines: ISO 8601 durations counted in calendar days or in China's working days.

Working days follow the statutory holidays and make-up workdays (调休) published each year, through
the chinese-calendar package. For a year it does not know yet (the State Council publishes the next
year's plan in the autumn), Monday to Friday count as working days and a warning is logged once.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

DURATION = re.compile(r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?)?")
_warned: set[int] = set()


def parse_duration(text: str) -> tuple[int, timedelta]:
    """Split an ISO 8601 duration into whole days and the rest: `P1DT4H` → (1, 4 hours)."""
    match = DURATION.fullmatch(text or "")
    if not match or text in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    days = int(match["w"] or 0) * 7 + int(match["d"] or 0)
    return days, timedelta(hours=int(match["h"] or 0), minutes=int(match["m"] or 0))


def is_workday(day: date) -> bool:
    """Tell whether a day is a working day in mainland China."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        if day.year not in _warned:
            _warned.add(day.year)
            log.warning("no holiday data for %s: counting Monday to Friday as working days", day.year)
        return day.weekday() < 5


def add_workdays(start: datetime, days: int, zone: ZoneInfo) -> datetime:
    """Return the end (23:59:59 local) of the Nth working day after the start's day (the start day not counted).

    "10 个工作日内办结" counted from the day after the task arrived: a task opened on Friday with one
    working day is due on Monday night; opened on a Saturday of a holiday week, on the first working
    day after the holiday.
    """
    if days <= 0:
        return start
    day = start.astimezone(zone).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_workday(day):
            counted += 1
    return datetime.combine(day, time(23, 59, 59), zone).astimezone(start.tzinfo)


def due(start: datetime, deadline: dict, zone: ZoneInfo) -> datetime:
    """When a task with this deadline, opened at `start`, falls due."""
    days, rest = parse_duration(deadline["duration"])
    if deadline.get("calendar", "calendar") == "working":
        return add_workdays(start, days, zone) + rest
    return start + timedelta(days=days) + rest
