"""The home page in a real browser at phone size: only for people who have signed in."""

from __future__ import annotations

import re

import pytest

from server import ROOT
from server.definitions.versions import load_paths

from .conftest import PHONE, screenshot, scroll_width, sign_in

pytestmark = pytest.mark.e2e


def test_a_stranger_is_sent_from_home_to_the_login_page(live_server, staff, phone):
    from playwright.sync_api import expect

    phone.goto(live_server + "/")
    expect(phone).to_have_url(re.compile(r"/login\?next=/$"))
    assert phone.locator("html").get_attribute("lang") == "zh-CN"
    expect(phone.get_by_role("heading", name="登录网格通")).to_be_visible()
    expect(phone.get_by_role("button", name="退出")).to_have_count(0)


def test_home_greets_the_person_with_roles_and_forms_in_chinese_at_phone_width(live_app, live_server, staff, phone):
    from playwright.sync_api import expect

    with live_app.app_context():
        loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
    assert problems == [] and loaded
    phone.goto(live_server + "/")
    expect(phone).to_have_url(re.compile(r"/login"))
    phone.get_by_label("用户名或手机号").fill("wgy")
    phone.get_by_label("密码", exact=True).fill("secret-pass")
    phone.get_by_role("button", name="登录", exact=True).click()
    expect(phone).to_have_url(live_server + "/")  # back where the stranger first went
    assert phone.locator("html").get_attribute("lang") == "zh-CN"
    expect(phone.get_by_role("heading", level=1)).to_have_text("您好，王网格")
    roles = phone.locator("section.card", has=phone.get_by_role("heading", name="我的职务"))
    expect(roles.locator("li")).to_have_text([re.compile(r"网格员\s*·\s*东一社区第一网格")])
    expect(phone.locator("header.top .who")).to_have_text("王网格")
    items = phone.locator("ul.forms li strong")
    expect(items).to_have_count(4)
    assert set(items.all_inner_texts()) == {"敲门行动·入户走访", "事件上报", "矛盾纠纷登记", "资源需求申报"}
    # a grid worker administers nothing: no way into the admin pages
    expect(phone.get_by_role("link", name="管理")).to_have_count(0)
    expect(phone.get_by_role("link", name="进入管理")).to_have_count(0)
    assert scroll_width(phone) <= PHONE["width"], "the home page scrolls sideways on a phone"
    assert screenshot(phone, "home-390x844").stat().st_size > 1000


def test_an_administrator_sees_the_way_into_the_admin_pages(live_server, staff, phone):
    from playwright.sync_api import expect

    sign_in(phone, live_server, "qu_admin")
    expect(phone.get_by_role("heading", level=1)).to_have_text("您好，甲区管理员")
    expect(phone.locator("ul.plain li").first).to_contain_text("管理员 · 甲区")
    expect(phone.locator("header.top").get_by_role("link", name="管理", exact=True)).to_be_visible()
    expect(phone.get_by_role("link", name="进入管理")).to_be_visible()
    assert scroll_width(phone) <= PHONE["width"], "the administrator's home page scrolls sideways on a phone"
    screenshot(phone, "home-admin-390x844")
