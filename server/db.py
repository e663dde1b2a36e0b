"""The database binding: one peewee proxy, opened from a URL, connections per request."""

from __future__ import annotations

import logging
from pathlib import Path

import peewee
from playhouse.db_url import connect
from playhouse.migrations import Runner

log = logging.getLogger(__name__)

database = peewee.DatabaseProxy()

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlite_url(path: str | Path) -> str:
    """Return the URL of a SQLite file."""
    return f"sqlite:///{Path(path).resolve()}"


def open_database(url: str, busy_timeout_ms: int = 10_000) -> peewee.Database:
    """Make a peewee database from a URL: SQLite with WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        pragmas = {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": busy_timeout_ms,
            "synchronous": "normal",
        }
        return connect(url, pragmas=pragmas, timeout=busy_timeout_ms / 1000)
    if url.startswith("postgres"):
        return connect(url)
    raise ValueError(f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]}")


def bind(db: peewee.Database) -> peewee.Database:
    """Point the shared proxy at a database."""
    database.initialize(db)
    return db


def is_postgres() -> bool:
    """Tell whether the bound database is PostgreSQL."""
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def migrate_schema() -> list[str]:
    """Create or upgrade the schema; return the names of the migrations applied."""
    from . import models  # noqa: F401  (registers the tables on the proxy)

    runner = Runner(database.obj, directory=str(MIGRATIONS_DIR))
    pending = [m.name for m in runner.status() if m.applied is None and m.path]
    runner.up()
    for name in pending:
        log.info("applied migration %s", name)
    return pending


def init_app(app) -> None:
    """Bind the app's database and open/close a connection around each request."""
    bind(open_database(app.config["DATABASE_URL"], app.config["SQLITE_BUSY_TIMEOUT"]))

    @app.before_request
    def _connect():
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(exc):
        if not database.is_closed():
            database.close()
