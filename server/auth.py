"""Credentials: passwords, signing in with throttling, API tokens, and account changes."""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import datetime, timedelta

from werkzeug.security import check_password_hash, generate_password_hash

from .db import database, first
from .formats import is_cn_mobile
from .grids import GridError, node_by_code
from .models import ApiToken, AuditEntry, Department, LoginFailure, Membership, Person, Role, utcnow

TOKEN_PREFIX = "gf_"
MIN_PASSWORD_LENGTH = 8

# Signing in is slowed down, not locked: a few free failures, then a doubling wait.
FAILURE_WINDOW = timedelta(minutes=15)
FREE_FAILURES_PER_ACCOUNT = 5
FREE_FAILURES_PER_ADDRESS = 20
FIRST_DELAY_SECONDS = 30
MAX_DELAY_SECONDS = 15 * 60

_DUMMY_HASH = generate_password_hash("not a password of anybody")


def hash_password(password: str) -> str:
    """Hash a password with scrypt (werkzeug's current default)."""
    return generate_password_hash(password)


def verify_password(person: Person, password: str) -> bool:
    """Tell whether a password is the person's."""
    return bool(person.password_hash) and check_password_hash(person.password_hash, password)


def password_problem(password: str, username: str = "") -> str | None:
    """Say what is wrong with a new password, in Chinese, or None when it will do."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 位"
    if password.isdigit() and len(set(password)) <= 2:
        return "密码过于简单，请不要使用重复的数字"
    if username and password.lower() == username.lower():
        return "密码不能与用户名相同"
    return None


def create_person(username: str, password: str, name: str | None = None,
                  phone: str | None = None, password_hash: str | None = None) -> Person:
    """Create a person; `password_hash` lets a caller reuse one hash for many demo accounts."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise GridError("用户名不能为空、不能含空格，且不超过 64 个字符")
    if Person.select().where(Person.username == username).exists():
        raise GridError(f"用户名 {username} 已存在")
    phone = (phone or "").strip() or None
    _check_phone(phone)
    name = (name or "").strip() or username
    _check_name(name)
    return Person.create(username=username, name=name, phone=phone,
                         password_hash=password_hash or hash_password(password))


def _check_name(name: str) -> None:
    if len(name) > 64:
        raise GridError("姓名不能超过 64 个字")


def _check_phone(phone: str | None, person: Person | None = None) -> None:
    if phone is None:
        return
    if not is_cn_mobile(phone):
        raise GridError(f"手机号 {phone} 不正确：应为 11 位中国大陆手机号")
    taken = Person.select().where(Person.phone == phone)
    if person is not None:
        taken = taken.where(Person.id != person.id)
    if taken.exists():
        raise GridError(f"手机号 {phone} 已被其他账号使用")


def update_person(person: Person, name: str, phone: str | None) -> Person:
    """Change a person's display name and phone."""
    phone = (phone or "").strip() or None
    _check_phone(phone, person)
    _check_name(name.strip())
    person.name = name.strip() or person.username
    person.phone = phone
    person.save(only=[Person.name, Person.phone])
    return person


def add_membership(person: Person, code: str, role: str,
                   department: str | None = None) -> Membership:
    """Give a person a role at a grid node (by code); department staff name their department."""
    node = node_by_code(code)
    if node is None:
        raise GridError(f"网格编码 {code} 不存在")
    if node.retired_at is not None:
        raise GridError(f"网格 {node.name}（{code}）已撤销")
    if not Role.select().where(Role.key == role).exists():
        raise GridError(f"角色 {role} 未配置")
    department = department or None
    if role == "department_staff" and department is None:
        raise GridError("部门人员须指明所属部门")
    if department is not None:
        if role != "department_staff":
            raise GridError("只有部门人员可以指明部门")
        if not Department.select().where(Department.key == department).exists():
            raise GridError(f"部门 {department} 未配置")
    membership, _ = Membership.get_or_create(person=person, node=node, role=role,
                                             department=department)
    return membership


def token_hash(raw: str) -> str:
    """Hash an API token for storage and lookup."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(person: Person, name: str = "") -> str:
    """Make an API token for a person; return the token itself (it is stored only hashed)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.create(person=person, name=name[:64], token_hash=token_hash(raw), prefix=raw[:10])
    return raw


def revoke_token(person: Person, token_id: int) -> bool:
    """Revoke one of a person's live tokens; tell whether there was one to revoke."""
    return bool(ApiToken.update(revoked_at=utcnow()).where(
        (ApiToken.id == token_id) & (ApiToken.person == person.id) & ApiToken.revoked_at.is_null()).execute())


def person_for_token(raw: str) -> Person | None:
    """Return the active person a live token belongs to, or None."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    return first(Person, 'SELECT p.* FROM "person" AS p JOIN "api_token" AS t ON t.person_id = p.id '
                         "WHERE t.token_hash = {p} AND t.revoked_at IS NULL AND p.active = {p}",
                 token_hash(raw), True)


class SignInRefused(Exception):
    """Signing in failed; the message is for the person, `wait` the seconds before trying again."""

    def __init__(self, message: str, wait: int = 0):
        super().__init__(message)
        self.message = message
        self.wait = wait


def _delay(failures: list[datetime], free: int, now: datetime) -> float:
    """Seconds still to wait after these failures (newest first) when more than `free` happened."""
    if len(failures) < free:
        return 0
    delay = min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (len(failures) - free))
    return (failures[0] + timedelta(seconds=delay) - now).total_seconds()


def sign_in_wait(account: str, address: str, now: datetime | None = None) -> int:
    """Return how many seconds this account or address must wait before the next attempt."""
    now = now or utcnow()
    since = now - FAILURE_WINDOW
    by_account = [f.at for f in LoginFailure.select(LoginFailure.at).where(
        (LoginFailure.username == account) & (LoginFailure.at > since)).order_by(LoginFailure.at.desc())]
    by_address = [f.at for f in LoginFailure.select(LoginFailure.at).where(
        (LoginFailure.address == address) & (LoginFailure.at > since)).order_by(LoginFailure.at.desc())]
    wait = max(_delay(by_account, FREE_FAILURES_PER_ACCOUNT, now),
               _delay(by_address, FREE_FAILURES_PER_ADDRESS, now))
    return max(0, math.ceil(wait))


def find_login(login: str) -> Person | None:
    """Return the person a login names: a username, or an 11-digit mobile number."""
    login = login.strip()
    person = Person.get_or_none(Person.username == login)
    if person is None and is_cn_mobile(login):
        person = Person.get_or_none(Person.phone == login)
    return person


def sign_in(login: str, password: str, address: str) -> Person:
    """Check a login and password, slowing down repeated failures per account and per address."""
    login = (login or "").strip()[:64]
    address = (address or "unknown")[:64]
    if not login or not password:
        raise SignInRefused("请输入用户名（或手机号）和密码")
    person = find_login(login)
    account = person.username if person else login
    wait = sign_in_wait(account, address)
    if wait:
        raise SignInRefused(f"登录失败次数过多，请 {wait} 秒后再试", wait)
    if person is None:
        check_password_hash(_DUMMY_HASH, password)  # same time whether the account exists or not
    if person is None or not verify_password(person, password):
        LoginFailure.create(username=account, address=address)
        raise SignInRefused("用户名或密码不正确")
    if not person.active:
        raise SignInRefused("该账号已停用，请联系管理员")
    with database.atomic():
        LoginFailure.delete().where(LoginFailure.username == account).execute()
        LoginFailure.delete().where(LoginFailure.at < utcnow() - FAILURE_WINDOW).execute()
        Person.update(last_login_at=utcnow()).where(Person.id == person.id).execute()
    return person


def audit(actor: Person | None, action: str, target: str, **detail) -> None:
    """Record an administrative change outside any case."""
    AuditEntry.create(actor=actor.id if actor else None, action=action, target=target[:128],
                      detail=detail or None)


def change_password(person: Person, current: str, new: str) -> None:
    """Change one's own password; other sessions of the person end."""
    full = Person.get_by_id(person.id)
    if not verify_password(full, current):
        raise GridError("当前密码不正确")
    problem = password_problem(new, full.username)
    if problem:
        raise GridError(problem)
    Person.update(password_hash=hash_password(new), session_epoch=Person.session_epoch + 1).where(
        Person.id == person.id).execute()
    audit(person, "password_changed", full.username)


def reset_password(actor: Person, person: Person, new: str) -> None:
    """Set somebody's password as an administrator; their sessions end and their API tokens are revoked."""
    problem = password_problem(new, person.username)
    if problem:
        raise GridError(problem)
    Person.update(password_hash=hash_password(new), session_epoch=Person.session_epoch + 1).where(
        Person.id == person.id).execute()
    revoked = _revoke_all(person)
    audit(actor, "password_reset", person.username, tokens_revoked=revoked)


def _revoke_all(person: Person) -> int:
    """Revoke every live token of a person (a reset or a deactivation may follow a leak)."""
    return ApiToken.update(revoked_at=utcnow()).where(
        (ApiToken.person == person.id) & ApiToken.revoked_at.is_null()).execute()


def set_active(actor: Person, person: Person, active: bool) -> None:
    """Deactivate (or reactivate) a person; a deactivated person's sessions end and tokens are revoked."""
    if actor.id == person.id and not active:
        raise GridError("不能停用自己的账号")
    Person.update(active=active, session_epoch=Person.session_epoch + 1).where(Person.id == person.id).execute()
    revoked = 0 if active else _revoke_all(person)  # reactivation never revives old tokens
    audit(actor, "person_activated" if active else "person_deactivated", person.username, tokens_revoked=revoked)
