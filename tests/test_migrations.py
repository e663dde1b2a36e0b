"""The migrations make exactly the models' schema on both backends, once; SQLite pragmas hold per request."""

from __future__ import annotations

import pytest
from peewee import IntegrityError
from playhouse.schema_diff import diff_models

from server.db import MIGRATIONS_DIR, bind, database, migrate_schema, open_database, sqlite_url
from server.models import MODELS, Membership, Person

TABLES = sorted(m._meta.table_name for m in MODELS)
REF_SCHEMA = "gridflow_model_ref"


def test_migrated_schema_has_no_diff_from_the_models(db_url):
    database.connect(reuse_if_open=True)
    diff = diff_models(database.obj, list(MODELS))
    assert not diff, str(diff)


def _delete_rules(db, table: str, schema: str | None) -> list[tuple[str, str]]:
    if schema is None:
        rows = db.execute_sql(f'PRAGMA foreign_key_list("{table}")').fetchall()
        return sorted((row[3], row[6].upper()) for row in rows)
    rows = db.execute_sql(
        "SELECT kcu.column_name, rc.delete_rule FROM information_schema.referential_constraints rc "
        "JOIN information_schema.key_column_usage kcu ON rc.constraint_name = kcu.constraint_name "
        "AND rc.constraint_schema = kcu.constraint_schema "
        "WHERE kcu.table_schema = %s AND kcu.table_name = %s", (schema, table)).fetchall()
    return sorted((column, rule.upper()) for column, rule in rows)


def _shape(db, schema: str | None = None) -> dict:
    """Describe the model tables as the database sees them: columns, indexes, foreign keys."""
    shape = {}
    for table in TABLES:
        columns = {c.name: (c.data_type.lower(), c.null, c.primary_key, c.default)
                   for c in db.get_columns(table, schema)}
        indexes = sorted((i.name, tuple(i.columns), i.unique) for i in db.get_indexes(table, schema))
        keys = sorted((f.column, f.dest_table, f.dest_column) for f in db.get_foreign_keys(table, schema))
        shape[table] = {"columns": columns, "indexes": indexes, "foreign_keys": keys,
                        "on_delete": _delete_rules(db, table, schema)}
    return shape


@pytest.fixture
def reference(db_url, tmp_path):
    """The schema peewee itself creates from the models, in a separate SQLite file or PostgreSQL schema."""
    if db_url.startswith("sqlite"):
        ref, schema = open_database(sqlite_url(tmp_path / "reference.db")), None
        ref.connect()
    else:
        ref, schema = open_database(db_url), REF_SCHEMA
        ref.connect()
        ref.execute_sql(f'DROP SCHEMA IF EXISTS "{REF_SCHEMA}" CASCADE')
        ref.execute_sql(f'CREATE SCHEMA "{REF_SCHEMA}"')
        ref.execute_sql(f'SET search_path TO "{REF_SCHEMA}"')
    try:
        with ref.bind_ctx(MODELS):
            ref.create_tables(MODELS)
        yield _shape(ref, schema)
    finally:
        if schema:
            ref.execute_sql(f'DROP SCHEMA IF EXISTS "{REF_SCHEMA}" CASCADE')
        ref.close()


def test_migrated_schema_is_exactly_what_the_models_create(db_url, reference):
    database.connect(reuse_if_open=True)
    schema = None
    if not db_url.startswith("sqlite"):
        schema = database.execute_sql("SELECT current_schema()").fetchone()[0]
        assert schema != REF_SCHEMA
    migrated = _shape(database.obj, schema)
    assert set(migrated) == set(reference) == set(TABLES)
    differences = [
        (table, aspect, migrated[table][aspect], reference[table][aspect])
        for table in TABLES for aspect in ("columns", "foreign_keys", "on_delete")
        if migrated[table][aspect] != reference[table][aspect]
    ] + [
        (table, "indexes", unnamed(migrated[table]), unnamed(reference[table]))
        for table in TABLES if unnamed(migrated[table]) != unnamed(reference[table])
    ]
    assert differences == []


def unnamed(shape: dict) -> list[tuple]:
    """The indexes of a table by what they index, whatever they are called."""
    return sorted((columns, unique) for _, columns, unique in shape["indexes"])


def test_migrated_index_names_are_the_models_index_names(db_url, reference):
    # Later migrations drop or rebuild indexes by the name peewee derives from the models.
    database.connect(reuse_if_open=True)
    schema = None if db_url.startswith("sqlite") else database.execute_sql("SELECT current_schema()").fetchone()[0]
    migrated = _shape(database.obj, schema)
    differences = {table: (sorted(i[0] for i in migrated[table]["indexes"]),
                           sorted(i[0] for i in reference[table]["indexes"]))
                   for table in TABLES if migrated[table]["indexes"] != reference[table]["indexes"]}
    assert differences == {}


def test_migrate_schema_is_idempotent(db_url):
    database.connect(reuse_if_open=True)
    before = sorted(database.get_tables())
    assert migrate_schema() == []
    assert migrate_schema() == []
    assert sorted(database.get_tables()) == before
    assert not diff_models(database.obj, list(MODELS))


def test_migrate_schema_on_an_empty_database_applies_every_migration_once(tmp_path):
    bind(open_database(sqlite_url(tmp_path / "empty.db")))
    try:
        database.connect()
        assert not set(TABLES) & set(database.get_tables())
        applied = migrate_schema()
        files = sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py"))
        assert files and applied == files
        assert set(TABLES) <= set(database.get_tables())
        assert migrate_schema() == []
        assert not diff_models(database.obj, list(MODELS))
    finally:
        database.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_pragmas_hold_on_a_request_connection(app, client):
    def pragmas():
        return {name: database.execute_sql(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "foreign_keys", "busy_timeout")}

    app.add_url_rule("/_test/pragmas", "test_pragmas", pragmas)
    database.close()
    response = client.get("/_test/pragmas")
    assert response.status_code == 200
    seen = response.get_json()
    assert seen["journal_mode"].lower() == "wal"
    assert seen["foreign_keys"] == 1
    assert seen["busy_timeout"] == app.config["SQLITE_BUSY_TIMEOUT"] > 0
    assert database.is_closed()  # the request's connection was closed after it


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_enforces_foreign_keys(app):
    person = Person.create(username="p1", name="p1", password_hash="x")
    with pytest.raises(IntegrityError), database.atomic():
        Membership.create(person=person, node=987654, role="admin")
    assert Membership.select().count() == 0

