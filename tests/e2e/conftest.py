"""Browser fixtures: a live gridflow server on a real SQLite file, and headless Debian Chromium."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from server import create_app
from server.auth import add_membership, create_person
from server.db import bind, database, migrate_schema, open_database, sqlite_url
from server.grids import create_node, seed_configuration

from ..conftest import TREE, _password_hash, need

CHROMIUM = os.environ.get("GRIDFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
PASSWORD = "secret-pass"
# username: (name, phone, grants "role@code" or "role:department@code")
STAFF = {
    "shi_admin": ("市管理员", None, ["admin@C1"]),
    "qu_admin": ("甲区管理员", None, ["admin@D1"]),
    "wgy": ("王网格", "13800138000", ["grid_worker@G1"]),
}


@pytest.fixture
def live_app(tmp_path):
    """The application on its own migrated SQLite file."""
    url = sqlite_url(tmp_path / "e2e.db")
    bind(open_database(url))
    migrate_schema()
    with database.atomic():
        seed_configuration()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "e2e", "INSTANCE_PATH": str(tmp_path / "instance")})
    return app


@pytest.fixture
def live_server(live_app):
    """Serve the app on a free port of 127.0.0.1 in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def staff(live_app) -> dict:
    """The test tree (C1 down to G1–G3) and STAFF on the live server's database; returns nodes by code."""
    nodes = {}
    with database.atomic():
        for code, name, level, parent in TREE:
            nodes[code] = create_node(code, name, level, nodes.get(parent))
        for username, (name, phone, grants) in STAFF.items():
            person = create_person(username, PASSWORD, name=name, phone=phone, password_hash=_password_hash())
            for grant in grants:
                role, _, code = grant.partition("@")
                role, _, department = role.partition(":")
                add_membership(person, code, role, department or None)
    database.close()
    return nodes


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from Debian, driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        need(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser):
    """A page the size of a phone (390×844), in Chinese."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a screenshot as a test artefact under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, base_url: str, login: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait until the home page greets the person."""
    from playwright.sync_api import expect

    page.goto(base_url + "/login")
    page.get_by_label("用户名或手机号").fill(login)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("您好", timeout=10_000)


def scroll_width(page) -> int:
    """How wide the page is, in CSS pixels: more than the viewport means it scrolls sideways."""
    return page.evaluate("document.documentElement.scrollWidth")
