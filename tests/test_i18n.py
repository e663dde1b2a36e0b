"""The UI speaks zh_CN through flask-babel: every template string is a gettext message."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from babel.messages.extract import extract_from_dir
from flask_babel import get_locale, get_timezone

from server import ROOT

CJK = re.compile(r"[\u3400-\u9fff\uff01-\uff5e\u3000-\u303f]")
# Chinese is allowed inside a gettext call, a Jinja comment, or an expression that passes data through.
ALLOWED = re.compile(r"_\(\s*(\"[^\"]*\"|'[^']*')|\{#.*?#\}", re.S)


def templates():
    return sorted((ROOT / "templates").rglob("*.html"))


@pytest.mark.parametrize("path", templates(), ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_no_template_holds_chinese_outside_gettext(path):
    text = ALLOWED.sub("", path.read_text(encoding="utf-8"))
    stray = [line.strip() for line in text.splitlines() if CJK.search(line)]
    assert stray == [], f"wrap these in _(): {stray}"


@pytest.mark.parametrize("path", sorted((ROOT / "static").glob("*.js")), ids=lambda p: p.name)
def test_our_scripts_take_their_words_from_the_page(path):
    """Scripts hold no Chinese: messages come translated from the template (fill-messages)."""
    code = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
    assert not CJK.search(code), [line for line in code.splitlines() if CJK.search(line)]


def test_messages_extract_with_the_project_babel_config():
    found = {message for _, _, message, *_ in extract_from_dir(
        ROOT, method_map=[("templates/**.html", "jinja2")], options_map={"templates/**.html": {}})}
    assert {"登录网格通", "用户名或手机号", "撤销该网格及其下级"} <= found
    assert (ROOT / "babel.cfg").exists()


def test_requests_run_in_zh_cn_and_the_configured_zone(app):
    with app.test_request_context("/"):
        assert (get_locale().language, get_locale().territory) == ("zh", "CN")
        assert str(get_timezone()) == "Asia/Shanghai"
        rendered = app.jinja_env.filters["localtime"](datetime(2026, 11, 23, 2, 30))
        assert rendered == "2026-11-23 10:30"
