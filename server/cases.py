"""Cases in the database: submit, edit with a revision check, list with filters, as JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import jsonpatch
from peewee import JOIN, IntegrityError

from . import attachments, store
from .db import database, first, insert_row
from .definitions.versions import compiled, sensitive_for
from .errors import Refusal
from .grids import ancestor_codes, in_subtree
from .masking import (
    MaskedValueError,
    has_sensitive_values,
    mask_data,
    mask_patch,
    restore_masked,
    without_sensitive,
)
from .models import Draft, Event, FormVersion, GridNode, Person, Submission, Task, utcnow
from .scope import Scope, scope_for_person
from .validation import FieldError, formatted_values, pointer


def request_hash(form: str, grid: str, data) -> str:
    """Fingerprint what a client sent, to tell a retry from a different submission."""
    text = json.dumps({"form": form, "grid": grid, "data": data}, ensure_ascii=False,
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


STALE = "这份记录已被他人修改，请刷新后在最新版本上修改"


def search_text(data, sensitive=()) -> str:
    """Collect the values (not the field names) of a case's data, one per line, for text search.

    Sensitive values are left out: a search must not confirm an ID or phone number that the
    searcher is shown masked.
    """
    values: list[str] = []
    stack = [without_sensitive(data, sensitive)]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str):
            values.append(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            values.append(str(item))
    return "\n".join(values)


def parse_submission_id(raw) -> str:
    """Return a client-chosen submission id in canonical form, or refuse it."""
    try:
        return str(uuid.UUID(str(raw)))
    except (ValueError, AttributeError, TypeError):
        message = "提交编号 id 须为 UUID，如 1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        raise Refusal(422, "invalid", message, [FieldError("/id", message)]) from None


def submit(person: Person, version: FormVersion, node: GridNode, data, sid: str | None = None,
           now: datetime | None = None) -> tuple[Submission, bool]:
    """Validate and store a submission with its first event, once per id.

    Returns the case and whether it was created now. The same id with the same content is
    the same submission (a retry); the same id with other content is a conflict. `now` (naive
    UTC) files it at another time: the demo's history does, requests never do.
    """
    fingerprint = request_hash(version.form.key, node.code, data)
    result = compiled(version).validate(data)
    if not result.ok:
        # A retry of a submission stored under an older version of the form is still a retry.
        existing = sid and first(Submission, 'SELECT * FROM "submission" WHERE id = {p}', sid)
        if existing:
            return _replay(existing, person, fingerprint), False
        raise Refusal(422, "invalid", "表单填写有误，请按提示修改", result.errors)
    check_references(person, compiled(version), result.data)
    sid = sid or str(uuid.uuid4())
    now = now or utcnow()
    fields = dict(
        id=sid, form=version.form.key, version=version.version, form_version=version, grid=node,
        grid_code=node.code, grid_path=node.path, status="submitted", current_nodes=[],
        data=result.data, search_text=search_text(result.data, sensitive_for(version.id)),
        request_hash=fingerprint, revision=1, late=False,
        created_by=person, created_at=now, updated_at=now,
    )
    # The flow's first step is worked out before the insert, so that the case is written once.
    started = store.first_step(Submission(**fields), version.definition, store.zone())
    if started is not None:
        fields.update(started.fields)
    try:
        with database.atomic():
            insert_row(Submission, fields)
            insert_row(Event, dict(submission=sid, at=now, actor=person, kind="submitted",
                                   to_status="submitted", revision=1,
                                   payload={"form_version": version.version,
                                            **({"overlays": version.overlays} if version.overlays else {})}))
            if started is not None:
                store.write_started(Submission(**fields), started)
            attachments.link(compiled(version), sid, result.data)
            Draft.delete().where((Draft.id == sid) & (Draft.person == person.id)).execute()
    except IntegrityError:
        # The id is taken: a retry, a double tap racing the first, or a conflict.
        existing = Submission.get_or_none(Submission.id == sid)
        if existing is None:
            raise
        return _replay(existing, person, fingerprint), False
    return Submission(**fields), True


MISSING_FILE = "「{title}」中的附件不存在或不是您上传的，请重新上传"
NOT_A_PHOTO = "「{title}」只能放照片，请删去其中的文件"


def check_references(person: Person, form, data, case_id: str | None = None) -> None:
    """Refuse data that names attachments the person did not upload, or grids outside their scope."""
    errors = [FieldError(pointer(path), MISSING_FILE.format(title=form.title_at(_owner(path))))
              for path, _sha in attachments.unknown(person, form, data, case_id)]
    errors += [FieldError(pointer(path), NOT_A_PHOTO.format(title=form.title_at(_owner(path))))
               for path, _sha in attachments.not_photos(form, data)]
    codes = formatted_values(form, data, "grid-code")
    if codes:
        scope = scope_for_person(person.id)
        nodes = {n.code: n for n in GridNode.select().where(GridNode.code.in_({c for _, c in codes}))}
        for path, code in codes:
            node = nodes.get(code)
            if node is None or scope is None or not scope.covers(node.path) or node.retired_at is not None:
                errors.append(FieldError(pointer(path), f"「{form.title_at(path)}」：网格 {code} 不存在、"
                                                        "已撤销或不在您的管辖范围内"))
    if errors:
        raise Refusal(422, "invalid", "表单填写有误，请按提示修改", errors)


def _owner(path: tuple) -> tuple:
    """Name an attachment by its field, not by its position in the list."""
    return path[:-1] if path and isinstance(path[-1], int) else path


def _replay(existing: Submission, person: Person, fingerprint: str) -> Submission:
    if existing.request_hash != fingerprint or existing.created_by_id != person.id:
        raise Refusal(409, "conflict", "该提交编号已用于另一份内容不同的提交，请使用新的编号")
    return existing


def edit(person: Person, case: Submission, data, revision, revealed: bool = True) -> Submission:
    """Replace a case's data if the caller has the current revision; keep the old in history.

    An editor who was shown sensitive fields masked sends them back masked: those values are
    kept as stored, never overwritten with the mask.
    """
    if not isinstance(revision, int) or isinstance(revision, bool):
        raise Refusal(422, "invalid", "须提供当前版本号 revision（整数）",
                        [FieldError("/revision", "须提供当前版本号 revision（整数）")])
    if revision != case.revision:
        raise Refusal(409, "stale", STALE)
    if not revealed:
        try:
            data = restore_masked(data, case.data, sensitive_for(case.form_version_id))
        except MaskedValueError as exc:
            message = ("被遮盖的敏感信息对不上原来的值（同一行里其他内容也改了，或是新加的行）。"
                       "请只改没有敏感信息的内容，或请有权查看敏感信息的人员修改")
            raise Refusal(422, "masked_value", message, [FieldError(str(exc), message)]) from None
    result = compiled(case.form_version).validate(data)
    if not result.ok:
        raise Refusal(422, "invalid", "表单填写有误，请按提示修改", result.errors)
    if result.data == case.data:
        return case  # nothing changed: no new revision, no event
    check_references(person, compiled(case.form_version), result.data, case.id)
    now = utcnow()
    with database.atomic():
        changed = (Submission.update(data=result.data,
                                     search_text=search_text(result.data, sensitive_for(case.form_version_id)),
                                     revision=Submission.revision + 1, updated_at=now)
                   .where((Submission.id == case.id) & (Submission.revision == revision))
                   .execute())
        if changed != 1:
            raise Refusal(409, "stale", STALE)
        Event.create(submission=case, at=now, actor=person, kind="edited",
                     from_status=case.status, to_status=case.status, revision=revision + 1,
                     diff=jsonpatch.make_patch(case.data, result.data).patch,
                     payload={"previous_revision": revision, "previous_data": case.data})
        attachments.link(compiled(case.form_version), case.id, result.data)
    return Submission.get_by_id(case.id)


@dataclass
class Filters:
    """What a case list is narrowed to."""

    form: str | None = None
    grid: GridNode | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


def local_day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """Return the UTC start and end of a local calendar day."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time.min, zone).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    return start, start + timedelta(days=1)


def encode_cursor(case: Submission) -> str:
    """Make an opaque cursor pointing just after a case in the list order."""
    raw = json.dumps([case.created_at.isoformat(), case.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Read a cursor back; refuse one that was not made by us."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, sid = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        return datetime.fromisoformat(at), str(sid)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise Refusal(400, "bad_cursor", "分页游标 cursor 无效，请从第一页重新开始") from None


def list_cases(scope: Scope, filters: Filters, limit: int, cursor: str | None = None
               ) -> tuple[list[Submission], str | None]:
    """Return a page of cases in the scope, newest first, and the cursor of the next page."""
    where = scope.case_condition()
    query = (Submission.select(Submission, Person)
             .join(Person, on=(Submission.created_by == Person.id)).where(where))
    if filters.form:
        query = query.where(Submission.form == filters.form)
    if filters.grid is not None:
        query = query.where(in_subtree(Submission.grid_path, filters.grid.path))
    if filters.status:
        query = query.where(Submission.status == filters.status)
    if filters.since:
        query = query.where(Submission.created_at >= filters.since)
    if filters.until:
        query = query.where(Submission.created_at < filters.until)
    if filters.q:
        query = query.where(Submission.search_text.contains(filters.q))
    if cursor:
        at, sid = decode_cursor(cursor)
        query = query.where((Submission.created_at < at)
                            | ((Submission.created_at == at) & (Submission.id < sid)))
    rows = list(query.order_by(Submission.created_at.desc(), Submission.id.desc())
                .limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more and rows else None


def iso(value: datetime | None, tz: str) -> str | None:
    """Show a stored UTC time in the local zone, ISO 8601 with its offset."""
    if value is None:
        return None
    return value.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).isoformat()


def shown_data(case: Submission, reveal: bool):
    """Return a case's data as a viewer may see it: sensitive fields masked unless revealed."""
    return case.data if reveal else mask_data(case.data, sensitive_for(case.form_version_id))


def log_full_view(person: Person, case: Submission, channel: str) -> bool:
    """Record that somebody saw a case's sensitive fields in full; tell whether there were any."""
    if not has_sensitive_values(case.data, sensitive_for(case.form_version_id)):
        return False
    Event.create(submission=case, actor=person, kind="sensitive_viewed", from_status=case.status,
                 to_status=case.status, revision=case.revision, payload={"channel": channel})
    return True


def case_json(case: Submission, tz: str, reveal: bool = False) -> dict:
    """Describe a case as the API shows it (sensitive fields masked unless `reveal`)."""
    return {
        "id": case.id,
        "form": case.form,
        "version": case.version,
        "grid": case.grid_code,
        "status": case.status,
        "data": shown_data(case, reveal),
        "created_by": case.created_by.username,
        "created_at": iso(case.created_at, tz),
        "updated_at": iso(case.updated_at, tz),
        "revision": case.revision,
    }


def case_detail_json(case: Submission, tz: str, reveal: bool = False, viewer: int | None = None) -> dict:
    """Describe one case with its tasks and full history (masked like its data unless `reveal`)."""
    from .inbox import case_tasks

    events = (Event.select(Event, Person).join(Person, on=(Event.actor == Person.id),
                                               join_type=JOIN.LEFT_OUTER)
              .where(Event.submission == case).order_by(Event.id))
    paths = () if reveal else sensitive_for(case.form_version_id)
    events = list(events)
    names = _usernames(events)
    body = case_json(case, tz, reveal)
    body["outcome"] = case.outcome
    body["overlays"] = case.form_version.overlays or []
    body["tasks"] = case_tasks(case, viewer, tz) if viewer is not None else []
    body["history"] = [
        {
            "at": iso(e.at, tz),
            "actor": e.actor.username if e.actor_id else None,
            "kind": e.kind,
            "node": e.node,
            "comment": e.comment,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "revision": e.revision,
            "diff": mask_patch(e.diff, paths),
            **_flow_details(e, names),
        }
        for e in events
    ]
    return body


FLOW_DETAILS = ("task", "action", "title", "to", "outcome", "reason", "note", "people", "assignees", "due_at",
                "signer", "position", "item", "form", "case", "level", "errors")


PEOPLE_DETAILS = ("people", "assignees", "to", "signer")


def _usernames(events: list) -> dict[int, str]:
    """The usernames of the people flow events name by id."""
    ids: set[int] = set()
    for e in events:
        for key in PEOPLE_DETAILS:
            value = (e.payload or {}).get(key)
            values = value if isinstance(value, list) else [value]
            ids |= {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
    if not ids:
        return {}
    return {p.id: p.username for p in Person.select(Person.id, Person.username).where(Person.id.in_(ids))}


def _flow_details(event: Event, names: dict[int, str]) -> dict:
    """What a flow event adds to the history: which task, which action, to whom, with which step data."""
    payload = event.payload or {}
    out = {k: payload[k] for k in FLOW_DETAILS if k in payload}
    for key in PEOPLE_DETAILS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [names.get(v, v) if isinstance(v, int) else v for v in value]
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = names.get(value, value)
    if payload.get("data"):
        out["data"] = payload["data"]
    return out


def grid_json(node: GridNode) -> dict:
    """Describe a grid node as the API shows it."""
    ancestors = ancestor_codes(node)
    return {
        "code": node.code,
        "name": node.name,
        "level": node.level,
        "parent": ancestors[-1] if ancestors else None,
        "path": ancestors,
        "households": node.households,
        "population": node.population,
    }


def move_open_cases(person: Person, source: GridNode, target: GridNode) -> int:
    """Move the open cases of a subtree to another node (before retiring it); each move is an event."""
    if target.retired_at is not None:
        raise Refusal(422, "invalid", f"网格 {target.name} 已撤销，不能接收案件")
    if target.path.startswith(source.path):
        raise Refusal(422, "invalid", f"{target.name} 在 {source.name} 之下，撤销时会一并撤销，请选择其他网格")
    now = utcnow()
    moved = 0
    with database.atomic():
        query = Submission.select().where(in_subtree(Submission.grid_path, source.path)
                                          & Submission.closed_at.is_null())
        for case in query:
            Submission.update(grid=target.id, grid_code=target.code, grid_path=target.path,
                              updated_at=now).where(Submission.id == case.id).execute()
            Task.update(grid_path=target.path).where(Task.submission == case.id).execute()
            Event.create(submission=case, at=now, actor=person, kind="moved", from_status=case.status,
                         to_status=case.status, revision=case.revision,
                         payload={"from": case.grid_code, "to": target.code})
            moved += 1
    return moved
