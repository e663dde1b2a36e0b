"""Signing in and out, and one's own account: password and API tokens."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for

from .. import auth
from ..grids import GridError, department_names, level_names, role_names
from ..models import ApiToken, GridNode, Membership, Person
from ..web import login_required, safe_next, start_session

bp = Blueprint("account", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form; sign in with a username (or mobile number) and password."""
    next_url = request.values.get("next", "")
    if request.method == "GET":
        if g.scope is not None:
            return redirect(safe_next(next_url))
        return render_template("account/login.html", next=next_url, username="")
    username = request.form.get("username", "")
    try:
        person = auth.sign_in(username, request.form.get("password", ""), request.remote_addr or "")
    except auth.SignInRefused as refused:
        status = 429 if refused.wait else 401
        headers = {"Retry-After": str(refused.wait)} if refused.wait else {}
        return render_template("account/login.html", next=next_url, username=username,
                               error=refused.message), status, headers
    start_session(person)
    return redirect(safe_next(next_url))


@bp.post("/logout")
def logout():
    """Sign out of this browser."""
    session.clear()
    flash("您已退出登录", "info")
    return redirect(url_for("account.login"))


def _memberships(person_id: int) -> list[Membership]:
    return list(Membership.select(Membership, GridNode).join(GridNode)
                .where(Membership.person == person_id).order_by(GridNode.path))


@bp.get("/account")
@login_required
def index(new_token: str | None = None, errors: dict | None = None, status: int = 200):
    """Show one's roles, the password form and one's API tokens."""
    tokens = list(ApiToken.select().where(ApiToken.person == g.person.id).order_by(ApiToken.id.desc()))
    return render_template("account/index.html", memberships=_memberships(g.person.id), tokens=tokens,
                           new_token=new_token, errors=errors or {}, roles=role_names(),
                           levels=level_names(), departments=department_names()), status


@bp.post("/account/password")
@login_required
def password():
    """Change one's own password; other sessions of this person end, this one continues."""
    new, again = request.form.get("new", ""), request.form.get("again", "")
    if new != again:
        return index(errors={"again": "两次输入的新密码不一致"}, status=422)
    try:
        auth.change_password(g.person, request.form.get("current", ""), new)
    except GridError as exc:
        field = "current" if "当前密码" in str(exc) else "new"
        return index(errors={field: str(exc)}, status=422)
    start_session(Person.get_by_id(g.person.id))
    flash("密码已修改。其他设备上的登录已失效。", "ok")
    return redirect(url_for("account.index"))


@bp.post("/account/tokens")
@login_required
def create_token():
    """Make an API token and show it once."""
    name = request.form.get("name", "").strip() or "网页创建"
    raw = auth.create_token(g.person, name)
    auth.audit(g.person, "token_created", g.person.username, name=name)
    return index(new_token=raw)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    """Revoke one of one's tokens; it stops working at once."""
    if auth.revoke_token(g.person, token_id):
        auth.audit(g.person, "token_revoked", g.person.username, token=token_id)
        flash("令牌已撤销", "ok")
    else:
        flash("找不到这个令牌，或它已被撤销", "error")
    return redirect(url_for("account.index"))
