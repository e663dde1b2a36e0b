"""The web side: signed-cookie sessions, CSRF, the zh_CN locale, and the guards pages use."""

from __future__ import annotations

import functools
from datetime import timedelta
from urllib.parse import urlsplit

from flask import abort, g, redirect, request, session, url_for
from flask_babel import Babel, format_datetime
from flask_wtf.csrf import CSRFError, CSRFProtect

from .scope import scope_for_person

csrf = CSRFProtect()
babel = Babel()

# Requests that never carry a web session: the token-authenticated API, health, static files.
SESSIONLESS = ("/api/", "/healthz", "/static/")


def init_app(app) -> None:
    """Configure sessions, CSRF and the locale, and load the signed-in person on each request."""
    app.config["SESSION_COOKIE_NAME"] = "gridflow_session"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config.get("SESSION_COOKIE_SECURE", 1))
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config.get("SESSION_HOURS", 12))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh_CN")
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]
    # Before CSRF reads the form: workbook uploads may be larger than API bodies.
    app.before_request(_upload_limits)
    csrf.init_app(app)
    if app.config.get("PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = app.config["PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    babel.init_app(app, locale_selector=lambda: "zh_CN")
    app.before_request(load_session)
    app.jinja_env.filters["localtime"] = localtime

    @app.errorhandler(CSRFError)
    def csrf_failed(exc):
        from .errors_http import error_page

        app.logger.info("CSRF refused on %s: %s", request.path, exc.description)
        return error_page(400, "页面已过期或来源不明，请刷新页面后重试")


# Endpoints that accept larger bodies than MAX_CONTENT_LENGTH, in bytes.
UPLOAD_LIMITS = {"admin.import_upload": 20_000_000, "fill.submit": 100_000_000, "fill.upload": 100_000_000,
                 "tasks.act": 100_000_000, "tasks.act_upload": 100_000_000, "api.upload": 100_000_000}


def _upload_limits() -> None:
    limit = UPLOAD_LIMITS.get(request.endpoint or "")
    if limit:
        request.max_content_length = limit


def localtime(value) -> str:
    """Show a stored UTC time in the configured zone, as 2024-05-01 14:30."""
    return format_datetime(value, "yyyy-MM-dd HH:mm") if value else ""


def load_session() -> None:
    """Put the signed-in person's scope on `g`, or None; a stale session is dropped."""
    g.scope = g.person = None
    # g outlives a request when an app context was pushed around it (tests, scripts): flask-wtf's
    # cached token must follow this request's session, not an earlier one.
    g.pop("csrf_token", None)
    if request.path.startswith(SESSIONLESS):
        return
    pid = session.get("pid")
    if pid is None:
        return
    scope = scope_for_person(pid)
    if scope is None or scope.person.session_epoch != session.get("epoch"):
        # Deactivated, password reset, or signed out elsewhere: this cookie stops working now.
        session.clear()
        return
    g.scope, g.person = scope, scope.person


def start_session(person) -> None:
    """Sign a person in: a fresh session (no fixation) bound to their session epoch."""
    session.clear()
    session.permanent = True
    session["pid"] = person.id
    session["epoch"] = person.session_epoch


def safe_next(target: str | None) -> str:
    """Return a same-site path to go to after signing in, or the home page."""
    if not target:
        return url_for("pages.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.home")
    return target


def login_required(view):
    """Send people who are not signed in to the login page, then back."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.scope is None:
            target = request.full_path if request.query_string else request.path
            login = url_for("account.login", next=target)
            if request.headers.get("HX-Request"):
                return "", 204, {"HX-Redirect": login}
            return redirect(login)
        return view(*args, **kwargs)

    return wrapped


def admin_required(view):
    """Allow administrators of some part of the tree only (each action checks the exact node)."""

    @functools.wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not g.scope.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
