"""People, passwords, API tokens, and the one place that decides what a person may see."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import reduce

from peewee import Expression
from werkzeug.security import check_password_hash, generate_password_hash

from .db import database, first, sql
from .grids import GridError, in_subtree, node_by_code
from .models import ApiToken, GridNode, Membership, Person, Role

TOKEN_PREFIX = "gf_"


def hash_password(password: str) -> str:
    """Hash a password with scrypt (werkzeug's current default)."""
    return generate_password_hash(password)


def verify_password(person: Person, password: str) -> bool:
    """Tell whether a password is the person's."""
    return bool(person.password_hash) and check_password_hash(person.password_hash, password)


def create_person(username: str, password: str, name: str | None = None,
                  phone: str | None = None, password_hash: str | None = None) -> Person:
    """Create a person; `password_hash` lets a caller reuse one hash for many demo accounts."""
    if Person.select().where(Person.username == username).exists():
        raise GridError(f"用户名 {username} 已存在")
    return Person.create(username=username, name=name or username, phone=phone,
                         password_hash=password_hash or hash_password(password))


def add_membership(person: Person, code: str, role: str,
                   department: str | None = None) -> Membership:
    """Give a person a role at a grid node (by code)."""
    node = node_by_code(code)
    if node is None:
        raise GridError(f"网格编码 {code} 不存在")
    if not Role.select().where(Role.key == role).exists():
        raise GridError(f"角色 {role} 未配置")
    membership, _ = Membership.get_or_create(person=person, node=node, role=role,
                                             department=department)
    return membership


def token_hash(raw: str) -> str:
    """Hash an API token for storage and lookup."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(person: Person, name: str = "") -> str:
    """Make an API token for a person; return the token itself (it is stored only hashed)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.create(person=person, name=name, token_hash=token_hash(raw), prefix=raw[:10])
    return raw


def person_for_token(raw: str) -> Person | None:
    """Return the active person a live token belongs to, or None."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    return first(Person, 'SELECT p.* FROM "person" AS p JOIN "api_token" AS t ON t.person_id = p.id '
                         "WHERE t.token_hash = {p} AND t.revoked_at IS NULL AND p.active = {p}",
                 token_hash(raw), True)


def scope_for_token(raw: str) -> Scope | None:
    """Return the scope of the active person a live token belongs to, in one query, or None.

    The person is read with the columns a request needs (id, username, name, active).
    """
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    rows = database.execute_sql(sql(
        'SELECT p.id, p.username, p.name, m.role, m.department, n.path, n.code FROM "api_token" AS t '
        'JOIN "person" AS p ON p.id = t.person_id LEFT JOIN "membership" AS m ON m.person_id = p.id '
        'LEFT JOIN "grid_node" AS n ON n.id = m.node_id '
        "WHERE t.token_hash = {p} AND t.revoked_at IS NULL AND p.active = {p}"),
        (token_hash(raw), True)).fetchall()
    if not rows:
        return None
    person = Person(id=rows[0][0], username=rows[0][1], name=rows[0][2], active=True)
    grants = [Grant(role, path, code, dept) for *_, role, dept, path, code in rows if role is not None]
    return Scope(person, grants)


@dataclass(frozen=True)
class Grant:
    """One membership as scope: the role and the path of the subtree it covers."""

    role: str
    path: str
    code: str
    department: str | None


class Scope:
    """What a person may see: the subtrees of their memberships.

    Every view and API endpoint asks this object; nothing else decides visibility.
    """

    def __init__(self, person: Person, grants: list[Grant]):
        self.person = person
        self.grants = grants
        paths = sorted({g.path for g in grants}, key=len)
        self.paths: list[str] = [p for i, p in enumerate(paths)
                                 if not any(p.startswith(q) for q in paths[:i])]

    def covers(self, path: str) -> bool:
        """Tell whether a node path lies inside the scope."""
        return any(path.startswith(p) for p in self.paths)

    def condition(self, field) -> Expression | None:
        """Return a query condition on a path column limiting rows to the scope (None: nothing)."""
        if not self.paths:
            return None
        return reduce(lambda a, b: a | b, (in_subtree(field, p) for p in self.paths))

    def roles_at(self, path: str) -> set[str]:
        """Return the roles the person holds at a node or above it."""
        return {g.role for g in self.grants if path.startswith(g.path)}

    def is_admin_at(self, path: str) -> bool:
        """Tell whether the person administers the node at this path."""
        return "admin" in self.roles_at(path)

    def can_see_submission(self, submission) -> bool:
        """Tell whether a case lies in the scope."""
        return self.covers(submission.grid_path)

    def can_submit_at(self, node: GridNode) -> bool:
        """Tell whether the person may file a form for a grid node."""
        return self.covers(node.path) and node.retired_at is None

    def can_edit_submission(self, submission) -> bool:
        """Tell whether the person may edit a case's data: its author, or an administrator."""
        if not self.can_see_submission(submission):
            return False
        return submission.created_by_id == self.person.id or self.is_admin_at(submission.grid_path)

