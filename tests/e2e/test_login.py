"""Signing in and out in a real browser at phone size (390×844, zh-CN)."""

from __future__ import annotations

import re

import pytest

from server.models import LoginFailure

from .conftest import PHONE, screenshot, scroll_width, sign_in

pytestmark = pytest.mark.e2e

MIN_TOUCH = 44  # CSS pixels: the smallest comfortable touch target


def fill_login(page, login: str, password: str) -> None:
    page.get_by_label("用户名或手机号").fill(login)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录", exact=True).click()


def test_login_page_fits_a_phone_with_big_touch_targets(live_server, staff, phone):
    from playwright.sync_api import expect

    phone.goto(live_server + "/login")
    expect(phone.get_by_role("heading", name="登录网格通")).to_be_visible()
    expect(phone).to_have_title(re.compile("登录"))
    username = phone.get_by_label("用户名或手机号")
    expect(username).to_be_focused()
    expect(username).to_have_attribute("autocomplete", "username")
    expect(phone.get_by_label("密码", exact=True)).to_have_attribute("type", "password")
    button = phone.get_by_role("button", name="登录", exact=True)
    box = button.bounding_box()
    assert box is not None and box["height"] >= MIN_TOUCH, f"the login button is {box} high"
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    for field in (username, phone.get_by_label("密码", exact=True)):
        assert field.bounding_box()["height"] >= MIN_TOUCH
    assert scroll_width(phone) <= PHONE["width"], "the login page scrolls sideways on a phone"
    screenshot(phone, "login-390x844")


def test_sign_in_with_username_shows_the_person_on_home(live_server, staff, phone):
    from playwright.sync_api import expect

    phone.goto(live_server + "/login")
    fill_login(phone, "wgy", "secret-pass")
    expect(phone).to_have_url(live_server + "/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("您好，王网格")
    expect(phone.locator("header.top")).to_contain_text("王网格")
    assert scroll_width(phone) <= PHONE["width"], "the home page scrolls sideways on a phone"
    screenshot(phone, "login-signed-in-home-390x844")


def test_wrong_password_keeps_the_username_and_says_so_in_chinese(live_server, staff, phone):
    from playwright.sync_api import expect

    phone.goto(live_server + "/login")
    fill_login(phone, "wgy", "not-the-password")
    alert = phone.get_by_role("alert")
    expect(alert).to_have_text("用户名或密码不正确")
    expect(phone).to_have_url(re.compile(r"/login$"))
    expect(phone.get_by_label("用户名或手机号")).to_have_value("wgy")
    password = phone.get_by_label("密码", exact=True)
    expect(password).to_have_value("")  # the password is never sent back
    expect(password).to_be_focused()
    expect(phone.get_by_role("button", name="退出")).to_have_count(0)
    assert LoginFailure.select().where(LoginFailure.username == "wgy").count() == 1
    assert scroll_width(phone) <= PHONE["width"], "the failed login page scrolls sideways on a phone"
    screenshot(phone, "login-failed-390x844")
    # still not signed in
    phone.goto(live_server + "/")
    expect(phone).to_have_url(re.compile(r"/login\?next=/$"))


def test_sign_in_with_the_mobile_number(live_server, staff, phone):
    from playwright.sync_api import expect

    phone.goto(live_server + "/login")
    fill_login(phone, "13800138000", "secret-pass")
    expect(phone).to_have_url(live_server + "/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("您好，王网格")


def test_logout_from_the_header_returns_to_the_login_page(live_server, staff, phone):
    from playwright.sync_api import expect

    sign_in(phone, live_server, "wgy")
    logout = phone.locator("header.top").get_by_role("button", name="退出")
    expect(logout).to_be_visible()
    logout.click()
    expect(phone).to_have_url(re.compile(r"/login$"))
    expect(phone.get_by_role("heading", name="登录网格通")).to_be_visible()
    expect(phone.get_by_role("status")).to_have_text("您已退出登录")
    expect(phone.get_by_role("button", name="退出")).to_have_count(0)
    screenshot(phone, "logout-390x844")
    phone.goto(live_server + "/")
    expect(phone).to_have_url(re.compile(r"/login\?next=/$"))
    expect(phone.get_by_label("用户名或手机号")).to_have_value("")
