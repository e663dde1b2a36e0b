"""The one place that decides what a person may see and do: the subtrees of their memberships."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from peewee import Expression

from .db import database, sql
from .grids import in_subtree
from .models import GridNode, Person

_SELECT = ('SELECT p.id, p.username, p.name, p.session_epoch, m.role, m.department, n.path, n.code, '
           'r.is_admin, r.sees_sensitive FROM {source} '
           'LEFT JOIN "membership" AS m ON m.person_id = p.id '
           'LEFT JOIN "grid_node" AS n ON n.id = m.node_id '
           'LEFT JOIN "role" AS r ON r."key" = m.role '
           'WHERE {where} AND p.active = {{p}}')
_BY_PERSON = _SELECT.format(source='"person" AS p', where="p.id = {p}")
_BY_TOKEN = _SELECT.format(
    source='"api_token" AS t JOIN "person" AS p ON p.id = t.person_id',
    where="t.token_hash = {p} AND t.revoked_at IS NULL")


@dataclass(frozen=True)
class Grant:
    """One membership as scope: the role, the subtree it covers, and what the role allows."""

    role: str
    path: str
    code: str
    department: str | None = None
    is_admin: bool = False
    sees_sensitive: bool = False


def _outermost(paths) -> list[str]:
    """Keep the paths not inside another of them."""
    ordered = sorted(set(paths), key=len)
    return [p for i, p in enumerate(ordered) if not any(p.startswith(q) for q in ordered[:i])]


class Scope:
    """What a person may see and do: the subtrees of their memberships.

    Every view and API endpoint asks this object; nothing else decides visibility.
    """

    def __init__(self, person: Person, grants: list[Grant]):
        self.person = person
        self.grants = grants
        self.paths: list[str] = _outermost(g.path for g in grants)
        self.admin_paths: list[str] = _outermost(g.path for g in grants if g.is_admin)

    def covers(self, path: str) -> bool:
        """Tell whether a node path lies inside the scope."""
        return any(path.startswith(p) for p in self.paths)

    def condition(self, field) -> Expression | None:
        """Return a query condition on a path column limiting rows to the scope (None: nothing)."""
        return _any_subtree(field, self.paths)

    def admin_condition(self, field) -> Expression | None:
        """Return a query condition limiting rows to the subtrees this person administers."""
        return _any_subtree(field, self.admin_paths)

    @property
    def is_admin(self) -> bool:
        """Tell whether the person administers any part of the tree."""
        return bool(self.admin_paths)

    def is_admin_at(self, path: str) -> bool:
        """Tell whether the person administers the node at this path (at it or above it)."""
        return any(path.startswith(p) for p in self.admin_paths)

    def is_root_admin(self) -> bool:
        """Tell whether the person administers a whole tree from its root."""
        return any(p.count("/") == 2 for p in self.admin_paths)

    def can_administer_person(self, membership_paths: list[str]) -> bool:
        """Tell whether the person may manage somebody holding memberships at these paths.

        All of them must lie in the subtrees this person administers; somebody without any
        membership is managed by administrators of a whole tree.
        """
        if not membership_paths:
            return self.is_root_admin()
        return all(self.is_admin_at(p) for p in membership_paths)

    def sees_sensitive_at(self, path: str) -> bool:
        """Tell whether a role held at or above the node needs sensitive fields in full."""
        return any(g.sees_sensitive and path.startswith(g.path) for g in self.grants)

    def departments(self) -> list[tuple[str, str]]:
        """Return the department units the person staffs, as (department key, node path)."""
        return [(g.department, g.path) for g in self.grants if g.department]

    def case_condition(self) -> Expression:
        """Return a condition on cases limiting them to what the person may see.

        A case is visible when it lies in one of the person's subtrees, or when it was put in
        their hands: a task of theirs (department staff serving the case, a fallback, a transfer,
        a signer) or a copy (抄送) sent to them.
        """
        from .models import CcEntry, Submission, Task, TaskAssignee

        mine = (Submission.id.in_(Task.select(Task.submission).join(TaskAssignee)
                                  .where(TaskAssignee.person == self.person.id))
                | Submission.id.in_(CcEntry.select(CcEntry.submission).where(CcEntry.person == self.person.id)))
        subtree = _any_subtree(Submission.grid_path, self.paths)
        return mine if subtree is None else subtree | mine

    def can_see_submission(self, submission) -> bool:
        """Tell whether a case lies in the scope, or was put in the person's hands (a task, a copy)."""
        if self.covers(submission.grid_path):
            return True
        from .models import CcEntry, Task, TaskAssignee

        return (Task.select().join(TaskAssignee).where((Task.submission == submission.id)
                                                       & (TaskAssignee.person == self.person.id)).exists()
                or CcEntry.select().where((CcEntry.submission == submission.id)
                                          & (CcEntry.person == self.person.id)).exists())

    def can_submit_at(self, node: GridNode) -> bool:
        """Tell whether the person may file a form for a grid node."""
        return self.covers(node.path) and node.retired_at is None

    def can_edit_submission(self, submission) -> bool:
        """Tell whether the person may edit a case's data: its author, or an administrator."""
        if not self.can_see_submission(submission):
            return False
        return submission.created_by_id == self.person.id or self.is_admin_at(submission.grid_path)


def _any_subtree(field, paths: list[str]) -> Expression | None:
    if not paths:
        return None
    return reduce(lambda a, b: a | b, (in_subtree(field, p) for p in paths))


def _scope_from_rows(rows) -> Scope | None:
    if not rows:
        return None
    pid, username, name, epoch = rows[0][:4]
    person = Person(id=pid, username=username, name=name, active=True, session_epoch=epoch)
    grants = [Grant(role, path, code, dept, bool(is_admin), bool(sensitive))
              for *_, role, dept, path, code, is_admin, sensitive in rows if role is not None]
    return Scope(person, grants)


def scope_for_person(person_id: int) -> Scope | None:
    """Return the scope of an active person, in one query, or None (unknown or deactivated).

    The person is read with the columns a request needs (id, username, name, session epoch).
    """
    return _scope_from_rows(database.execute_sql(sql(_BY_PERSON), (person_id, True)).fetchall())


def scope_for_token(raw: str) -> Scope | None:
    """Return the scope of the active person a live API token belongs to, in one query, or None."""
    from .auth import TOKEN_PREFIX, token_hash

    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    return _scope_from_rows(database.execute_sql(sql(_BY_TOKEN), (token_hash(raw), True)).fetchall())
