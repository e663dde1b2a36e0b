"""Signing in and out on the web: sessions, CSRF, throttling, passwords, deactivation, tokens."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from server.auth import FREE_FAILURES_PER_ACCOUNT, FREE_FAILURES_PER_ADDRESS
from server.models import ApiToken, AuditEntry, LoginFailure, Person

from .conftest import Web


@pytest.fixture
def worker(people):
    people.make("wgy", "grid_worker@G1")
    Person.update(phone="13800138000").where(Person.username == "wgy").execute()
    return people


def signed_in(client) -> bool:
    response = client.get("/")
    return response.status_code == 200 and "您好" in response.get_data(as_text=True)


def test_home_sends_a_stranger_to_the_login_page(client, tree):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/")


def test_login_page_is_chinese_and_has_the_fields(client, tree):
    page = client.get("/login").get_data(as_text=True)
    assert 'lang="zh-CN"' in page and "登录网格通" in page
    assert 'name="username"' in page and 'name="password"' in page and 'name="csrf_token"' in page


def test_sign_in_with_username_then_home_shows_the_person(web, worker):
    client = web.client()
    response = web.login(client, "wgy")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "网格员" in page and "东一社区第一网格" in page
    assert Person.get(Person.username == "wgy").last_login_at is not None


def test_sign_in_with_mobile_number(web, worker):
    client = web.client()
    assert web.login(client, "13800138000").status_code == 302
    assert signed_in(client)


def test_session_cookie_is_signed_http_only_secure_and_lax(web, worker):
    client = web.client()
    response = web.login(client, "wgy")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("gridflow_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in cookie
    assert "wgy" not in cookie and "secret-pass" not in cookie


@pytest.mark.parametrize("username, password", [("wgy", "wrong-pass"), ("nobody", "secret-pass"),
                                                ("13900000000", "secret-pass")])
def test_a_failed_sign_in_says_so_in_chinese_and_keeps_the_username(web, worker, username, password):
    client = web.client()
    response = web.login(client, username, password)
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "用户名或密码不正确" in page
    assert f'value="{username}"' in page
    assert not signed_in(client)


def test_sign_in_without_csrf_token_is_refused(client, worker):
    response = client.post("/login", data={"username": "wgy", "password": "secret-pass"})
    assert response.status_code == 400
    assert "刷新页面" in response.get_data(as_text=True)
    assert not signed_in(client)


@pytest.mark.parametrize("target, expected", [
    ("/account", "/account"),
    ("https://evil.example/", "/"),
    ("//evil.example/x", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
])
def test_after_sign_in_only_a_local_next_is_followed(web, worker, target, expected):
    response = web.login(web.client(), "wgy", next=target)
    assert response.status_code == 302 and response.headers["Location"] == expected


def test_logout_ends_the_session(web, worker):
    client = web.client("wgy")
    response = web.post(client, "/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not signed_in(client)


def test_logout_without_csrf_token_is_refused(web, worker):
    client = web.client("wgy")
    assert client.post("/logout").status_code == 400
    assert signed_in(client)


def from_address(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _fail(web, username: str, times: int, address: str = "127.0.0.1"):
    client = from_address(web.app, address)
    return [web.login(client, username, "wrong-pass").status_code for _ in range(times)]


def test_repeated_failures_slow_down_the_account_even_with_the_right_password(web, worker):
    assert _fail(web, "wgy", FREE_FAILURES_PER_ACCOUNT) == [401] * FREE_FAILURES_PER_ACCOUNT
    client = web.client()
    response = web.login(client, "wgy")  # right password, but too soon
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "秒后再试" in response.get_data(as_text=True)
    assert not signed_in(client)
    # The same account by its phone number is the same account.
    assert web.login(web.client(), "13800138000").status_code == 429


def age_failures(by: timedelta) -> None:
    """Make every recorded failure older, as if time had passed."""
    for failure in LoginFailure.select():
        LoginFailure.update(at=failure.at - by).where(LoginFailure.id == failure.id).execute()


def test_the_wait_ends_and_success_clears_the_account_failures(web, worker):
    _fail(web, "wgy", FREE_FAILURES_PER_ACCOUNT)
    age_failures(timedelta(minutes=5))  # the 30 s wait has passed
    client = web.client()
    assert web.login(client, "wgy").status_code == 302
    assert LoginFailure.select().where(LoginFailure.username == "wgy").count() == 0


def test_the_wait_doubles_with_each_further_failure(web, worker):
    _fail(web, "wgy", FREE_FAILURES_PER_ACCOUNT)
    age_failures(timedelta(seconds=31))
    assert _fail(web, "wgy", 1) == [401]  # allowed again, and wrong again
    response = web.login(web.client(), "wgy")
    assert response.status_code == 429 and 30 < int(response.headers["Retry-After"]) <= 60


def test_failures_from_one_address_slow_down_every_account_from_it(web, worker, people):
    people.make("other", "grid_worker@G2")
    for i in range(FREE_FAILURES_PER_ADDRESS):
        _fail(web, f"guess{i}", 1, address="10.9.8.7")
    there = from_address(web.app, "10.9.8.7")
    assert web.login(there, "other").status_code == 429
    elsewhere = from_address(web.app, "10.9.8.8")
    assert web.login(elsewhere, "other").status_code == 302


def test_a_deactivated_person_is_signed_out_at_once_and_their_tokens_stop(web, worker, people):
    people.make("boss", "admin@C1")
    session = web.client("wgy")
    assert signed_in(session)
    admin = web.client("boss")
    response = web.post(admin, "/admin/people/wgy/active", {"active": "0"}, page="/admin/people/wgy")
    assert response.status_code == 302
    assert not signed_in(session)
    api = web.app.test_client().get("/api/v1/grids", headers=people.headers("wgy"))
    assert api.status_code == 401
    refused = web.login(web.client(), "wgy")
    assert refused.status_code == 401 and "已停用" in refused.get_data(as_text=True)
    assert AuditEntry.get(AuditEntry.action == "person_deactivated").target == "wgy"
    web.post(admin, "/admin/people/wgy/active", {"active": "1"}, page="/admin/people/wgy")
    assert web.login(web.client(), "wgy").status_code == 302


def test_a_password_reset_by_an_administrator_ends_the_sessions(web, worker, people):
    people.make("boss", "admin@C1")
    session = web.client("wgy")
    admin = web.client("boss")
    response = web.post(admin, "/admin/people/wgy/password", {"password": "new-pass-123"},
                        page="/admin/people/wgy")
    assert response.status_code == 302
    assert not signed_in(session)
    assert web.login(web.client(), "wgy").status_code == 401
    assert web.login(web.client(), "wgy", "new-pass-123").status_code == 302


def test_a_weak_reset_password_is_refused(web, worker, people):
    people.make("boss", "admin@C1")
    admin = web.client("boss")
    response = web.post(admin, "/admin/people/wgy/password", {"password": "1234"}, page="/admin/people/wgy")
    assert response.status_code == 422 and "至少 8 位" in response.get_data(as_text=True)
    assert web.login(web.client(), "wgy").status_code == 302


def test_changing_ones_password_keeps_this_session_and_ends_the_others(web, worker):
    here, there = web.client("wgy"), web.client("wgy")
    response = web.post(here, "/account/password", {"current": "secret-pass", "new": "better-pass-9",
                                                    "again": "better-pass-9"})
    assert response.status_code == 302
    assert signed_in(here) and not signed_in(there)
    assert web.login(web.client(), "wgy", "better-pass-9").status_code == 302


@pytest.mark.parametrize("form, message", [
    ({"current": "wrong-pass", "new": "better-pass-9", "again": "better-pass-9"}, "当前密码不正确"),
    ({"current": "secret-pass", "new": "short", "again": "short"}, "至少 8 位"),
    ({"current": "secret-pass", "new": "better-pass-9", "again": "better-pass-8"}, "两次输入的新密码不一致"),
])
def test_a_bad_password_change_is_refused_and_changes_nothing(web, worker, form, message):
    client = web.client("wgy")
    response = web.post(client, "/account/password", form)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert web.login(web.client(), "wgy").status_code == 302


def test_an_api_token_made_on_the_web_is_shown_once_works_and_can_be_revoked(web, worker):
    client = web.client("wgy")
    page = web.post(client, "/account/tokens", {"name": "对接"}).get_data(as_text=True)
    token = re.search(r'id="new-token">(gf_[^<]+)<', page).group(1)
    assert not ApiToken.select().where(ApiToken.token_hash == token).exists()  # stored hashed
    api = web.app.test_client()
    assert api.get("/api/v1/grids", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    again = client.get("/account").get_data(as_text=True)
    assert token not in again and "对接" in again and token[:10] in again
    row = ApiToken.get(ApiToken.name == "对接")
    assert web.post(client, f"/account/tokens/{row.id}/revoke").status_code == 302
    assert api.get("/api/v1/grids", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_nobody_revokes_another_persons_token(web, worker, people):
    people.make("other", "grid_worker@G2")
    victim = ApiToken.get(ApiToken.person == Person.get(Person.username == "other").id)
    client = web.client("wgy")
    response = web.post(client, f"/account/tokens/{victim.id}/revoke")
    assert response.status_code == 302
    assert ApiToken.get_by_id(victim.id).revoked_at is None
    assert web.app.test_client().get("/api/v1/grids", headers=people.headers("other")).status_code == 200


def test_behind_a_trusted_proxy_failures_count_per_real_client(db_url, tmp_path, people):
    from server import create_app

    people.make("other", "grid_worker@G2")
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "t", "PROXIES": 1,
                      "INSTANCE_PATH": str(tmp_path / "proxied")})
    web = Web(app)
    for i in range(FREE_FAILURES_PER_ADDRESS):
        client = app.test_client()
        client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.5"
        web.login(client, f"guess{i}", "wrong-pass")
    assert LoginFailure.select().where(LoginFailure.address == "203.0.113.5").count() == FREE_FAILURES_PER_ADDRESS
    blocked, other = app.test_client(), app.test_client()
    blocked.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.5"
    other.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.6"
    assert web.login(blocked, "other").status_code == 429
    assert web.login(other, "other").status_code == 302


def test_deactivation_revokes_tokens_for_good(web, worker, people):
    people.make("boss", "admin@C1")
    admin = web.client("boss")
    web.post(admin, "/admin/people/wgy/active", {"active": "0"}, page="/admin/people/wgy")
    web.post(admin, "/admin/people/wgy/active", {"active": "1"}, page="/admin/people/wgy")
    assert web.app.test_client().get("/api/v1/grids", headers=people.headers("wgy")).status_code == 401
    assert ApiToken.select().where(ApiToken.revoked_at.is_null()).count() == 1  # boss's own
