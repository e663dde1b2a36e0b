"""Shared fixtures: an app on a real SQLite file or the real PostgreSQL, people, tokens, clients."""

from __future__ import annotations

import atexit
import functools
import os
from pathlib import Path

import peewee
import pytest

from server import ROOT, create_app
from server.auth import add_membership, create_person, create_token
from server.db import bind, database, migrate_schema, open_database, sqlite_url
from server.grids import create_node, seed_configuration
from server.models import MODELS

PG_URL = os.environ.get(
    "GRIDFLOW_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/gridflow_test")
IN_CI = os.environ.get("CI") == "true"
FAST_HASH = None


def need(reason: str):
    """Skip with a printed reason, or fail when running in CI where everything must run."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@functools.cache
def postgres_url() -> tuple[str | None, str | None]:
    """Return (URL of this run's own PostgreSQL database, None), or (None, why it cannot be had).

    Each test run makes its own database next to GRIDFLOW_TEST_POSTGRES_URL's, so runs in
    parallel never see each other's tables; it is dropped when the run ends.
    """
    try:
        admin = open_database(PG_URL)
        admin.connect()
    except peewee.OperationalError as exc:
        return None, f"PostgreSQL is not reachable at {PG_URL}: {str(exc).strip().splitlines()[0]}"
    base, _, name = PG_URL.rpartition("/")
    own = f"{name}_{os.getpid()}"
    admin.execute_sql(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)')
    admin.execute_sql(f'CREATE DATABASE "{own}"')
    admin.close()
    atexit.register(_drop_database, own)
    url = f"{base}/{own}"
    bind(open_database(url))
    migrate_schema()
    database.close()
    return url, None


def _drop_database(name: str) -> None:
    if not database.is_closed():
        database.close()
    admin = open_database(PG_URL)
    admin.execute_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _truncate_postgres() -> None:
    from server.definitions.versions import forget_versions

    tables = ", ".join(f'"{m._meta.table_name}"' for m in MODELS)
    database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    forget_versions()  # ids start again at 1: what the process remembers by id is stale


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, migrated database: a SQLite file under tmp_path, or the emptied PostgreSQL."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "gridflow.db")
        bind(open_database(url))
        migrate_schema()
    else:
        url, problem = postgres_url()
        if problem:
            need(problem)
        bind(open_database(url))
        _truncate_postgres()
    with database.atomic():
        seed_configuration()
    database.close()
    return url


@pytest.fixture
def app(db_url, tmp_path):
    """The application bound to the test database, with its own instance folder."""
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": db_url,
        "SECRET_KEY": "test-secret",
        "INSTANCE_PATH": str(tmp_path / "instance"),
    })
    with app.app_context():
        yield app
    if not database.is_closed():
        database.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# -- a small tree -----------------------------------------------------------------------------

TREE = [
    # code, name, level, parent
    ("C1", "示范市", "city", None),
    ("D1", "甲区", "district", "C1"),
    ("D2", "乙区", "district", "C1"),
    ("S1", "东街道", "street", "D1"),
    ("S2", "西街道", "street", "D2"),
    ("M1", "东一社区", "community", "S1"),
    ("M2", "西一社区", "community", "S2"),
    ("G1", "东一社区第一网格", "grid", "M1"),
    ("G2", "东一社区第二网格", "grid", "M1"),
    ("G3", "西一社区第一网格", "grid", "M2"),
]


@pytest.fixture
def tree(app) -> dict:
    """A city with two districts down to three grids; returns nodes by code."""
    nodes = {}
    with database.atomic():
        for code, name, level, parent in TREE:
            nodes[code] = create_node(code, name, level, nodes.get(parent))
    return nodes


@functools.cache
def _password_hash() -> str:
    from server.auth import hash_password

    return hash_password("secret-pass")


class People:
    """Make people with roles and tokens: `people.make("wgy", "grid_worker@G1")` → token.

    Department staff name their department: `"department_staff:civil_affairs@D1"`.
    """

    def __init__(self):
        self.tokens: dict[str, str] = {}

    def make(self, username: str, *grants: str) -> str:
        with database.atomic():
            person = create_person(username, "secret-pass", password_hash=_password_hash())
            for grant in grants:
                role, _, code = grant.partition("@")
                role, _, department = role.partition(":")
                add_membership(person, code, role, department or None)
            token = create_token(person, "test")
        self.tokens[username] = token
        return token

    def headers(self, username: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


@pytest.fixture
def people(tree) -> People:
    return People()


@pytest.fixture
def shipped(app):
    """Load the shipped templates from forms/ and flows/."""
    from server.definitions.versions import load_paths

    loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
    assert problems == []
    return loaded


@pytest.fixture
def visit_form(people):
    """Load tests/fixtures' visit form and its flow (the tree and people helper come with it)."""
    from server.definitions.versions import load_paths

    loaded, problems = load_paths([fixture_path("visit_form.json"), fixture_path("test_flow.json")])
    assert problems == []
    return loaded


def fixture_path(name: str) -> Path:
    return Path(__file__).parent / "fixtures" / name


# -- the web side -----------------------------------------------------------------------------

CSRF = __import__("re").compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    """Read a CSRF token from a page's form, as a browser would."""
    page = client.get(path)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


class Web:
    """Drive the web pages as a person: sign in through the form, post forms with their CSRF token."""

    def __init__(self, app):
        self.app = app

    def client(self, username: str | None = None, password: str = "secret-pass"):
        client = self.app.test_client()
        if username:
            response = self.login(client, username, password)
            assert response.status_code == 302, response.get_data(as_text=True)
        return client

    def login(self, client, username: str, password: str = "secret-pass", **extra):
        token = csrf_token(client, "/login")
        return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                           **extra})

    def post(self, client, path: str, data: dict | None = None, page: str | None = None, **kwargs):
        """Post a form from `page` (default: the account page, which every signed-in person can open)."""
        token = csrf_token(client, page or "/account")
        return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


@pytest.fixture
def web(app) -> Web:
    return Web(app)
