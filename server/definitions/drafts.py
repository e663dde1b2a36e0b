"""Unpublished edits of forms and flows: one draft per definition and scope, published as a version."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..db import database
from ..models import DefinitionDraft, GridNode, Person, Submission, utcnow
from . import overlays
from .builder import with_orders
from .files import Source


class Stale(Exception):
    """The draft changed since the page was drawn (another tab or another administrator)."""


def find(kind: str, key: str, scope: str = "") -> DefinitionDraft | None:
    """The draft of a definition for a scope ('' = the template itself), or None."""
    return DefinitionDraft.get_or_none((DefinitionDraft.kind == kind) & (DefinitionDraft.key == key)
                                       & (DefinitionDraft.scope == scope))


def start(kind: str, key: str, doc: dict, by: Person | None, scope: str = "") -> DefinitionDraft:
    """The draft of a definition, made from `doc` when there is none yet."""
    draft = find(kind, key, scope)
    if draft is None:
        draft = DefinitionDraft.create(kind=kind, key=key, scope=scope, definition=with_orders(doc),
                                       base=with_orders(doc), updated_by=by)
    return draft


def save(draft: DefinitionDraft, doc: dict, by: Person | None, revision: int | None = None) -> DefinitionDraft:
    """Store a new content of a draft; a stale revision (when given) is refused."""
    query = DefinitionDraft.update(definition=with_orders(doc), revision=DefinitionDraft.revision + 1, updated_by=by,
                                   updated_at=utcnow()).where(DefinitionDraft.id == draft.id)
    if revision is not None:
        query = query.where(DefinitionDraft.revision == revision)
    if not query.execute():
        raise Stale()
    return DefinitionDraft.get_by_id(draft.id)


def add_test(draft: DefinitionDraft, data: dict) -> int:
    """Keep a test submission made on the draft's preview (discarded on publish); returns their number."""
    tests = [*(draft.tests or []), data][-20:]
    DefinitionDraft.update(tests=tests).where(DefinitionDraft.id == draft.id).execute()
    return len(tests)


def discard(draft: DefinitionDraft) -> None:
    """Drop a draft with its test submissions."""
    draft.delete_instance()


def problems(kind: str, doc: dict) -> list:
    """What `gridflow check` says about a definition not stored yet (meta-schema and semantic checks)."""
    from pathlib import Path

    from ..grids import level_keys, role_keys
    from .check import check_sources
    from .versions import known_keys

    forms, flows = known_keys()
    (forms if kind == "form" else flows).discard(doc.get("key"))
    source = Source(path=Path(f"{kind}:{doc.get('key', '')}"), kind=kind, doc=doc)
    return check_sources([source], forms, flows, levels=level_keys(), roles=role_keys())


@dataclass
class Impact:
    """A risky change and how many stored submissions it touches."""

    text: str
    count: int


def impacts(key: str, old: dict, new: dict, limit: int = 200_000) -> list[Impact]:
    """Risky changes (removed fields or options, changed types) with the submissions each touches."""
    from .diff import affected, form_changes

    changes = [c for c in form_changes(old, new) if c.risk]
    if not changes:
        return []
    datas = (s.data for s in Submission.select(Submission.data).where(Submission.form == key).limit(limit)
             .iterator())
    counts = affected(changes, datas)
    return [Impact(c.text, counts.get(c, 0)) for c in changes]


def rebased(draft: DefinitionDraft, current: dict | None) -> dict:
    """The draft's edits on the definition it would start from now (a newer version may have come
    since it was opened): the edits are re-applied as a patch, never undoing the newer version."""
    from .versions import content_hash

    if current is None or draft.base is None or content_hash(current) == content_hash(draft.base):
        return draft.definition
    try:
        return overlays.apply_overlay(current, overlays.make_overlay(draft.base, draft.definition),
                                      names=draft.definition)
    except overlays.Conflict as exc:
        raise overlays.Refused([f"草稿打开后又发布了新版本，草稿中的修改无法自动合并：{exc.message}。"
                                "请放弃草稿后重新修改"]) from exc


def publish(draft: DefinitionDraft, by: Person | None, current: dict | None = None) -> tuple[str, int]:
    """Publish a draft: a new base version (scope '') or a new overlay version; the draft is dropped.

    `current` is what the draft would start from now; edits made on an older one are re-applied
    to it. Returns (what, version number); refusals raise overlays.Refused with the reasons.
    """
    from .versions import publish as publish_version

    doc = rebased(draft, current)
    found = problems(draft.kind, doc)
    if found:
        raise overlays.Refused([f"{p.pointer or '/'}：{p.message}" for p in found])
    with database.atomic():
        if draft.scope:
            grid = GridNode.get(GridNode.code == draft.scope)
            overlay = overlays.publish_overlay(draft.kind, draft.key, grid, doc, by)
            number = overlay.version
            what = "overlay"
        else:
            loaded = publish_version(draft.kind, doc, source="web", by=by)
            if not loaded.created:
                raise overlays.Refused(["与已发布的最新版本相同，没有可发布的改动"])
            number, what = loaded.version, "version"
        draft.delete_instance()
    return what, number


def text_of(doc: dict) -> str:
    """A definition as the JSON view shows it."""
    return json.dumps(doc, ensure_ascii=False, indent=2)
