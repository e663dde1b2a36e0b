"""The tables: grid tree, people, tokens, definition versions, submissions, events, attachments."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
)

from .db import database

dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def utcnow() -> datetime:
    """Return the current time as naive UTC, the form every timestamp is stored in."""
    return datetime.now(UTC).replace(tzinfo=None)


def Json(**kwargs) -> JSONField:  # noqa: N802 - reads like a field class
    """Make a JSON column that keeps Chinese text readable in the database."""
    return JSONField(dumps=dumps, **kwargs)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Level(BaseModel):
    """A level of the grid tree (市, 区, 街道 …); configuration, not code."""

    key = CharField(max_length=32, primary_key=True)
    name = CharField(max_length=64)
    depth = IntegerField(unique=True)


class Role(BaseModel):
    """A role a person holds at a grid node (网格员, 社区书记 …); configuration."""

    key = CharField(max_length=32, primary_key=True)
    name = CharField(max_length=64)
    is_admin = BooleanField(default=False)
    sees_sensitive = BooleanField(default=False)


class Department(BaseModel):
    """A kind of department (公安, 民政 …); a unit is this kind at a grid node, staffed by memberships."""

    key = CharField(max_length=32, primary_key=True)
    name = CharField(max_length=64)


class GridNode(BaseModel):
    """A node of the grid tree, with its materialised path of codes (`/root/…/self/`)."""

    code = CharField(max_length=64, unique=True)
    name = CharField(max_length=128)
    level = CharField(max_length=32)
    parent = ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    path = CharField(max_length=1024, index=True)
    depth = IntegerField()
    households = IntegerField(null=True)
    population = IntegerField(null=True)
    boundary = Json(null=True)
    retired_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)


class Person(BaseModel):
    """Somebody who signs in: a grid worker, an officer, an administrator."""

    username = CharField(max_length=64, unique=True)
    name = CharField(max_length=64)
    phone = CharField(max_length=20, null=True, unique=True)
    password_hash = CharField(max_length=256)
    active = BooleanField(default=True)
    session_epoch = IntegerField(default=0)
    last_login_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)


class Membership(BaseModel):
    """A person's role at a grid node; their scope is the subtrees of these nodes."""

    person = ForeignKeyField(Person, backref="memberships", on_delete="CASCADE")
    node = ForeignKeyField(GridNode, backref="memberships", on_delete="RESTRICT")
    role = CharField(max_length=32)
    department = CharField(max_length=64, null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("person", "node", "role", "department"), True),)


class LoginFailure(BaseModel):
    """A failed sign-in, kept for a while to slow down guessing per account and per address."""

    username = CharField(max_length=64)
    address = CharField(max_length=64)
    at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("username", "at"), False), (("address", "at"), False))


class AuditEntry(BaseModel):
    """An administrative change outside any case (people, tree, tokens): who, when, what."""

    at = DateTimeField(default=utcnow, index=True)
    actor = ForeignKeyField(Person, null=True, on_delete="SET NULL")
    action = CharField(max_length=32)
    target = CharField(max_length=128)
    detail = Json(null=True)


class ApiToken(BaseModel):
    """An API token, kept only as its SHA-256 hash; the token itself is shown once."""

    person = ForeignKeyField(Person, backref="tokens", on_delete="CASCADE")
    name = CharField(max_length=64, default="")
    token_hash = CharField(max_length=64, unique=True)
    prefix = CharField(max_length=16)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)


class Form(BaseModel):
    """A form, by key; its content lives in immutable versions."""

    key = CharField(max_length=64, unique=True)
    title = CharField(max_length=128)
    created_at = DateTimeField(default=utcnow)


class FormVersion(BaseModel):
    """One immutable published content of a form, identified by its content hash."""

    form = ForeignKeyField(Form, backref="versions", on_delete="CASCADE")
    version = IntegerField()
    content_hash = CharField(max_length=64)
    definition = Json()
    source = CharField(max_length=512, null=True)
    created_by = ForeignKeyField(Person, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)
    # '' for a published base version; for an effective (adapted) version, the overlays applied to
    # base version `version`, top down, as "GRID:N/GRID:N" (also listed in `overlays`).
    variant = CharField(max_length=512, default="")
    overlays = Json(null=True)

    class Meta:
        indexes = ((("form", "version", "variant"), True),)


class Flow(BaseModel):
    """A flow, by key; its content lives in immutable versions."""

    key = CharField(max_length=64, unique=True)
    title = CharField(max_length=128)
    created_at = DateTimeField(default=utcnow)


class FlowVersion(BaseModel):
    """One immutable published content of a flow, identified by its content hash."""

    flow = ForeignKeyField(Flow, backref="versions", on_delete="CASCADE")
    version = IntegerField()
    content_hash = CharField(max_length=64)
    definition = Json()
    source = CharField(max_length=512, null=True)
    created_by = ForeignKeyField(Person, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)
    # '' for a published base version; for an effective (adapted) version, the overlays applied to
    # base version `version`, top down, as "GRID:N/GRID:N" (also listed in `overlays`).
    variant = CharField(max_length=512, default="")
    overlays = Json(null=True)

    class Meta:
        indexes = ((("flow", "version", "variant"), True),)


class Submission(BaseModel):
    """A case: the form's data as JSON, plus the typed columns every case has."""

    id = CharField(max_length=36, primary_key=True)
    form = CharField(max_length=64)
    version = IntegerField()
    form_version = ForeignKeyField(FormVersion, on_delete="RESTRICT")
    grid = ForeignKeyField(GridNode, on_delete="RESTRICT")
    grid_code = CharField(max_length=64)
    grid_path = CharField(max_length=1024)
    status = CharField(max_length=32, default="submitted")
    current_nodes = Json(default=list)
    data = Json()
    search_text = TextField(default="")
    request_hash = CharField(max_length=64)
    revision = IntegerField(default=1)
    flow_version = ForeignKeyField(FlowVersion, null=True, on_delete="RESTRICT")
    flow_state = Json(null=True)
    outcome = CharField(max_length=32, null=True)
    created_by = ForeignKeyField(Person, backref="submissions", on_delete="RESTRICT")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    closed_at = DateTimeField(null=True)
    # Kept by the flow store for the figures: a task of the case passed its deadline (not on time),
    # and the newest follow-up rating (satisfied, basically_satisfied, unsatisfied).
    late = BooleanField(default=False)
    rating = CharField(max_length=32, null=True)

    class Meta:
        indexes = (
            # A subtree's cases in time order; also covers the figures of a small subtree.
            (("grid_path", "created_at", "form", "closed_at", "outcome", "late", "rating"), False),
            (("form", "grid_path", "created_at"), False),
            (("created_by", "created_at"), False),
            (("created_at", "id"), False),
            (("updated_at",), False),
            # Covers the figures of a period without reading the cases' data.
            (("created_at", "grid_path", "form", "closed_at", "outcome", "late", "rating"), False),
        )


class Event(BaseModel):
    """One append-only entry of a case's history: who, when, what, from which state, the diff."""

    submission = ForeignKeyField(Submission, backref="events", on_delete="CASCADE")
    at = DateTimeField(default=utcnow)
    actor = ForeignKeyField(Person, null=True, on_delete="SET NULL")
    kind = CharField(max_length=32)
    node = CharField(max_length=64, null=True)
    from_status = CharField(max_length=32, null=True)
    to_status = CharField(max_length=32, null=True)
    revision = IntegerField(null=True)
    comment = TextField(null=True)
    diff = Json(null=True)
    payload = Json(null=True)

    class Meta:
        indexes = ((("submission", "id"), False),)


class Attachment(BaseModel):
    """An uploaded file, stored on disk by its SHA-256, as uploaded by one person."""

    sha256 = CharField(max_length=64)
    uploaded_by = ForeignKeyField(Person, on_delete="RESTRICT")
    filename = CharField(max_length=255)
    content_type = CharField(max_length=128)
    size = IntegerField()
    width = IntegerField(null=True)
    height = IntegerField(null=True)
    thumb_sha256 = CharField(max_length=64, null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("sha256", "uploaded_by"), True),)


class CaseFile(BaseModel):
    """An attachment a case's data refers to: whoever may see the case may see the file."""

    submission = ForeignKeyField(Submission, backref="files", on_delete="CASCADE")
    sha256 = CharField(max_length=64, index=True)

    class Meta:
        indexes = ((("submission", "sha256"), True),)


class Task(BaseModel):
    """A step of a case waiting for people (or done): mirrors the open tasks of the flow state."""

    submission = ForeignKeyField(Submission, backref="tasks", on_delete="CASCADE")
    key = CharField(max_length=16)
    node = CharField(max_length=64)
    title = CharField(max_length=128)
    mode = CharField(max_length=16, default="any")
    state = CharField(max_length=16, default="open")  # open, done, returned, cancelled
    form = CharField(max_length=64)
    grid_path = CharField(max_length=1024)
    item = Json(null=True)
    due_at = DateTimeField(null=True)
    overdue = BooleanField(default=False)
    escalations = IntegerField(default=0)
    urged_at = DateTimeField(null=True)
    opened_at = DateTimeField(default=utcnow)
    closed_at = DateTimeField(null=True)
    closed_by = ForeignKeyField(Person, null=True, on_delete="SET NULL")
    action = CharField(max_length=64, null=True)

    class Meta:
        indexes = (
            (("submission", "key"), True),
            (("state", "due_at"), False),
            (("node", "state"), False),
        )


class TaskAssignee(BaseModel):
    """Who a task waits for now (active), and who acted on it: the inbox reads this table."""

    task = ForeignKeyField(Task, backref="assignees", on_delete="CASCADE")
    person = ForeignKeyField(Person, on_delete="CASCADE")
    active = BooleanField(default=True)
    acted_at = DateTimeField(null=True)

    class Meta:
        indexes = (
            (("task", "person"), True),
            (("person", "active"), False),
        )


class CcEntry(BaseModel):
    """A copy of a case sent to a person by a `cc` node (抄送), shown in their inbox."""

    submission = ForeignKeyField(Submission, on_delete="CASCADE")
    person = ForeignKeyField(Person, on_delete="CASCADE")
    node = CharField(max_length=64)
    at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("person", "at"), False),)


class CaseLink(BaseModel):
    """Two linked cases, e.g. a door-knocking visit and the incident it reported (`spawn`)."""

    source = ForeignKeyField(Submission, backref="links_out", on_delete="CASCADE")
    target = ForeignKeyField(Submission, backref="links_in", on_delete="CASCADE")
    kind = CharField(max_length=32, default="spawned")
    node = CharField(max_length=64, null=True)


class Draft(BaseModel):
    """A form being filled: saved as the person types, made a submission (same id) on submit."""

    id = CharField(max_length=36, primary_key=True)
    person = ForeignKeyField(Person, backref="drafts", on_delete="CASCADE")
    form = CharField(max_length=64)
    form_version = ForeignKeyField(FormVersion, on_delete="CASCADE")
    grid_code = CharField(max_length=64, null=True)
    data = Json()
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("person", "updated_at"), False),)


class Overlay(BaseModel):
    """One published version of a local adaptation (RFC 6902 patch) of a form or flow for a subtree."""

    kind = CharField(max_length=8)  # form, flow
    key = CharField(max_length=64)
    grid = ForeignKeyField(GridNode, on_delete="RESTRICT")
    version = IntegerField()
    patch = Json()
    base_version = IntegerField()
    note = CharField(max_length=256, default="")
    created_by = ForeignKeyField(Person, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "key", "grid", "version"), True),)


class Adaptation(BaseModel):
    """The state of a subtree's adaptation: its newest overlay, the effective version in use, a conflict."""

    kind = CharField(max_length=8)
    key = CharField(max_length=64)
    grid = ForeignKeyField(GridNode, on_delete="RESTRICT")
    overlay_version = IntegerField()
    effective = IntegerField(null=True)  # id of the FormVersion / FlowVersion row in use
    conflict = Json(null=True)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "key", "grid"), True),)


class DefinitionDraft(BaseModel):
    """An administrator's unpublished edit of a form or flow (scope '' = the template itself)."""

    kind = CharField(max_length=8)
    key = CharField(max_length=64)
    scope = CharField(max_length=64, default="")
    definition = Json()
    base = Json(null=True)  # what the draft was started from: its edits are re-applied on a newer one
    revision = IntegerField(default=1)
    tests = Json(default=list)
    updated_by = ForeignKeyField(Person, null=True, on_delete="SET NULL")
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "key", "scope"), True),)


class StatMonth(BaseModel):
    """The figures of the cases reported in one local month, of one form, in one node's subtree.

    Kept for nodes down to the community level and rebuilt for the months whose cases changed
    (by the sweeper, and by a dashboard that finds them older than the sweep interval).
    """

    month = CharField(max_length=7)  # YYYY-MM, local time
    form = CharField(max_length=64)
    node = IntegerField()  # grid_node id
    depth = IntegerField()
    reported = IntegerField(default=0)
    withdrawn = IntegerField(default=0)
    closed = IntegerField(default=0)
    on_time = IntegerField(default=0)
    handling_seconds = BigIntegerField(default=0)
    hours = Json(default=dict)  # {handling hours (rounded up): closed cases}
    rated = IntegerField(default=0)
    satisfied = IntegerField(default=0)
    resolved = IntegerField(default=0)

    class Meta:
        indexes = ((("node", "month", "form"), True), (("depth", "month"), False))


class StatRefresh(BaseModel):
    """When the monthly figures were last brought up to date (one row)."""

    name = CharField(max_length=32, primary_key=True)
    at = DateTimeField()


MODELS = (
    Level, Role, Department, GridNode, Person, Membership, LoginFailure, AuditEntry, ApiToken,
    Form, FormVersion, Flow, FlowVersion, Submission, Event, Attachment, CaseFile, Task, TaskAssignee, CcEntry,
    CaseLink, Draft, Overlay, Adaptation, DefinitionDraft, StatMonth, StatRefresh,
)
