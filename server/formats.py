"""String formats checked in form data: dates, times, e-mail, mobile, ID card, grid code, file."""

from __future__ import annotations

import re
from datetime import date, datetime

from jsonschema import FormatChecker

# Patterns are matched whole (fullmatch) and ASCII-only: no trailing newline, no full-width digits.
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?",
                     re.IGNORECASE | re.ASCII)
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")
ID_CARD_RE = re.compile(r"[0-9]{17}[0-9X]")
GRID_CODE_RE = re.compile(r"[0-9A-Z][0-9A-Z-]{0,63}")
ATTACHMENT_RE = re.compile(r"[0-9a-f]{64}")

ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CARD_CHECK = "10X98765432"


def is_date(value: str) -> bool:
    """Tell whether a string is a calendar date, YYYY-MM-DD."""
    if not DATE_RE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_time(value: str) -> bool:
    """Tell whether a string is a time of day: HH:MM, HH:MM:SS, optional fraction and offset."""
    match = TIME_RE.fullmatch(value)
    if not match:
        return False
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    return hour < 24 and minute < 60 and second < 60


def is_date_time(value: str) -> bool:
    """Tell whether a string is a date and time (RFC 3339; a missing offset means local time)."""
    day, sep, clock = value.partition("T") if "T" in value else value.partition("t")
    if not sep or not is_date(day) or not is_time(clock):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return False
    return True


def is_email(value: str) -> bool:
    """Tell whether a string looks like an e-mail address."""
    return bool(EMAIL_RE.fullmatch(value)) and len(value) <= 254


def is_cn_mobile(value: str) -> bool:
    """Tell whether a string is an 11-digit mainland China mobile number."""
    return bool(MOBILE_RE.fullmatch(value))


def id_card_check_char(first17: str) -> str:
    """Return the GB 11643 check character for the first 17 digits of an ID-card number."""
    total = sum(int(d) * w for d, w in zip(first17, ID_CARD_WEIGHTS, strict=True))
    return ID_CARD_CHECK[total % 11]


def is_cn_id_card(value: str) -> bool:
    """Tell whether a string is an 18-character ID number with a real birth date and checksum."""
    if not ID_CARD_RE.fullmatch(value):
        return False
    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if birth.year < 1800 or birth > date.today():
        return False
    return id_card_check_char(value[:17]) == value[17]


def is_grid_code(value: str) -> bool:
    """Tell whether a string is shaped like a grid code: digits, capital letters and hyphens."""
    return bool(GRID_CODE_RE.fullmatch(value))


def is_config_key(value: str) -> bool:
    """Tell whether a text can key a level, role or department: `community`, `street_officer`."""
    return bool(_CONFIG_KEY.fullmatch(value))


_CONFIG_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)


def is_attachment(value: str) -> bool:
    """Tell whether a string is an attachment reference: the SHA-256 of the file, in hex."""
    return bool(ATTACHMENT_RE.fullmatch(value))


CHECKS = {
    "date": is_date,
    "time": is_time,
    "date-time": is_date_time,
    "email": is_email,
    "cn-mobile": is_cn_mobile,
    "cn-id-card": is_cn_id_card,
    "grid-code": is_grid_code,
    "attachment": is_attachment,
}


def format_checker() -> FormatChecker:
    """Build the format checker holding exactly our formats (strings only; other types pass)."""
    checker = FormatChecker(formats=())
    for name, check in CHECKS.items():
        checker.checks(name)(_strings_only(check))
    return checker


def _strings_only(check):
    def wrapped(value):
        return check(value) if isinstance(value, str) else True

    return wrapped
