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
    """Make a pooled peewee database from a URL: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL.

    A request takes a connection from the pool and gives it back at its end. Reusing connections
    spares PostgreSQL its connection set-up and SQLite the WAL checkpoint that closing the last
    connection to a file forces.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"DATABASE_URL must look like scheme://…, got {url!r}")
    if scheme in ("sqlite", "sqlite+pool"):
        pragmas = {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": busy_timeout_ms,
            "synchronous": "normal",
        }
        return connect(f"sqlite+pool://{rest}", pragmas=pragmas, timeout=busy_timeout_ms / 1000,
                       check_same_thread=False,
                       max_connections=32, stale_timeout=300)
    if scheme in ("postgres", "postgresql", "postgres+pool", "postgresql+pool"):
        return connect(f"postgresql+pool://{rest}", max_connections=32, stale_timeout=300)
    raise ValueError(f"unsupported DATABASE_URL scheme: {scheme}")


def bind(db: peewee.Database) -> peewee.Database:
    """Point the shared proxy at a database, closing the pooled connections of the previous one."""
    previous = database.obj
    if previous is not None and previous is not db and hasattr(previous, "close_all"):
        previous.close_all()
    database.initialize(db)
    return db


def is_postgres() -> bool:
    """Tell whether the bound database is PostgreSQL."""
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def sql(template: str) -> str:
    """Fill `{p}` with the bound database's parameter mark, for hand-written hot-path queries.

    peewee builds SQL anew for every query, which costs more than running it on the hot paths
    (every API request looks up a token, a scope, a form and a grid); these few lookups are
    written once as plain SQL that runs unchanged on SQLite and PostgreSQL.
    """
    return template.replace("{p}", database.param)


def first(model, template: str, *params):
    """Run a hand-written SELECT of one model's columns and return the first row as a model."""
    for row in model.raw(sql(template), *params):
        return row
    return None


_insert_sql: dict[tuple, str] = {}


def insert_row(model, values: dict) -> None:
    """Insert one row given field values, with SQL built once per model and column set.

    The hot-path counterpart of `model.insert(**values).execute()`: values go through each
    field's own conversion; JSON goes in as text through `json(?)` on SQLite and as jsonb on
    PostgreSQL, exactly as peewee stores it.
    """
    fields = [model._meta.fields[name] for name in values]
    postgres = is_postgres()
    key = (model, tuple(values), postgres)
    text = _insert_sql.get(key)
    if text is None:
        marks = [
            "json({p})" if isinstance(f, peewee.JSONField) and not postgres else "{p}" for f in fields
        ]
        columns = ", ".join(f'"{f.column_name}"' for f in fields)
        text = _insert_sql[key] = sql(
            f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({", ".join(marks)})')
    params = []
    for field, value in zip(fields, values.values(), strict=True):
        if isinstance(field, peewee.JSONField) and not postgres:
            params.append(None if value is None else field._dumps(value))
        elif isinstance(field, peewee.ForeignKeyField):
            params.append(value.id if isinstance(value, peewee.Model) else value)
        else:
            params.append(field.db_value(value))
    database.execute_sql(text, params)


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
