"""Settings: one declared table of names, defaults and help, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One setting: its environment variable, Flask config key, default and help text."""

    env: str
    key: str
    default: Any
    help: str
    type: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL", "DATABASE_URL", None,
        "Database URL. Unset: a SQLite file `gridflow.db` in the instance folder. "
        "`postgresql://user:password@host/dbname` for PostgreSQL.",
    ),
    Setting(
        "GRIDFLOW_INSTANCE_PATH", "INSTANCE_PATH", None,
        "Folder for the SQLite database, the secret key and uploads. Unset: `instance/` "
        "beside the source tree.",
    ),
    Setting(
        "GRIDFLOW_SECRET_KEY", "SECRET_KEY", None,
        "Key that signs session cookies and CSRF tokens. Unset: a random key is made "
        "once and kept in the instance folder (`secret_key`).",
    ),
    Setting(
        "GRIDFLOW_MAX_BODY_BYTES", "MAX_CONTENT_LENGTH", 1_000_000,
        "Largest request body accepted, in bytes; larger bodies get 413.", int,
    ),
    Setting(
        "GRIDFLOW_MAX_JSON_DEPTH", "MAX_JSON_DEPTH", 32,
        "Deepest nesting of arrays and objects accepted in a JSON body; deeper gets 400.", int,
    ),
    Setting(
        "GRIDFLOW_PAGE_SIZE", "PAGE_SIZE", 50,
        "Default number of items per page in API lists (a client may ask for up to 200).", int,
    ),
    Setting(
        "GRIDFLOW_SQLITE_BUSY_TIMEOUT", "SQLITE_BUSY_TIMEOUT", 10_000,
        "Milliseconds a SQLite writer waits for a lock before giving up.", int,
    ),
    Setting(
        "GRIDFLOW_UPLOAD_DIR", "UPLOAD_DIR", None,
        "Folder for attachments, stored by content hash. Unset: `uploads/` in the instance folder.",
    ),
    Setting(
        "GRIDFLOW_ATTACHMENT_MAX_BYTES", "ATTACHMENT_MAX_BYTES", 10_000_000,
        "Largest attachment accepted, in bytes, before photos are re-encoded.", int,
    ),
    Setting(
        "GRIDFLOW_PHOTO_MAX_PIXELS", "PHOTO_MAX_PIXELS", 2560,
        "Longest side of a stored photo, in pixels; larger photos are scaled down.", int,
    ),
    Setting(
        "GRIDFLOW_SWEEP_SECONDS", "SWEEP_SECONDS", 60,
        "Seconds between deadline sweeps inside each server process; 0 turns the timer off.", int,
    ),
    Setting(
        "GRIDFLOW_MEDIATION_FORMS", "MEDIATION_FORMS", "dispute_mediation",
        "Forms whose cases count for the mediation success rate (调解成功率), separated by `,`.",
    ),
    Setting(
        "GRIDFLOW_DEFINITIONS", "DEFINITIONS", "forms:flows",
        "Folders `gridflow load` reads when given no path, separated by `:`.",
    ),
    Setting(
        "GRIDFLOW_TIMEZONE", "TIMEZONE", "Asia/Shanghai",
        "Time zone for dates people enter and read (API `from`/`to` filters, shown times).",
    ),
    Setting(
        "GRIDFLOW_SECURE_COOKIES", "SESSION_COOKIE_SECURE", 1,
        "1: the session cookie is sent only over HTTPS (browsers also accept it on "
        "http://localhost and 127.0.0.1). 0: allow plain HTTP, e.g. trying the demo from a phone on a LAN.",
        int,
    ),
    Setting(
        "GRIDFLOW_PROXIES", "PROXIES", 0,
        "Number of reverse proxies in front of gridflow whose X-Forwarded-For/-Proto headers are trusted "
        "(0: none, the peer address is the client). Sign-in throttling per address needs the real client.",
        int,
    ),
    Setting(
        "GRIDFLOW_SESSION_HOURS", "SESSION_HOURS", 12,
        "Hours a web sign-in lasts without activity before the person must sign in again.", int,
    ),
    Setting(
        "GRIDFLOW_WORKERS", "WORKERS", 2,
        "Worker processes started by `gridflow serve` (gunicorn).", int,
    ),
    Setting(
        "GRIDFLOW_THREADS", "THREADS", 4,
        "Threads per worker process started by `gridflow serve`.", int,
    ),
)


def _convert(setting: Setting, raw: str) -> Any:
    """Turn an environment string into the setting's type, with a clear error."""
    if setting.type is int:
        try:
            return int(raw)
        except ValueError as exc:
            raise ValueError(f"{setting.env} must be an integer, got {raw!r}") from exc
    return raw


def settings_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the Flask config keys of every setting, from the environment or defaults."""
    environ = os.environ if environ is None else environ
    config = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        config[setting.key] = setting.default if raw in (None, "") else _convert(setting, raw)
    return config
