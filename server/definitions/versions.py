"""Stored definition versions: publish by content hash, look up the latest or an exact version."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from peewee import fn

from ..db import database, sql
from ..models import Flow, FlowVersion, Form, FormVersion, Person
from ..validation import CompiledForm, compiled_form
from .check import check_sources
from .files import Problem, Source, read_sources

IGNORED_KEYS = ("$schema",)


def canonical(doc: dict) -> dict:
    """A definition as stored: without the editor's `$schema`, every field order stated in `ui:order`
    (PostgreSQL's jsonb does not keep the order keys were written in)."""
    from .builder import with_orders

    return with_orders({k: v for k, v in doc.items() if k not in IGNORED_KEYS})


def content_hash(doc: dict) -> str:
    """Hash a definition's meaning: canonical JSON, keys sorted."""
    text = json.dumps(canonical(doc), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Loaded:
    """What loading one definition did: its kind, key, version, and whether it was new."""

    kind: str
    key: str
    version: int
    created: bool


def _tables(kind: str):
    return (Form, FormVersion, FormVersion.form) if kind == "form" else (
        Flow, FlowVersion, FlowVersion.flow)


def publish(kind: str, doc: dict, source: str | None = None,
            by: Person | None = None) -> Loaded:
    """Store a definition as a new version unless the latest version has the same content."""
    head_model, version_model, owner_field = _tables(kind)
    digest = content_hash(doc)
    with database.atomic():
        head, _ = head_model.get_or_create(key=doc["key"], defaults={"title": doc["title"]})
        latest = (version_model.select().where((owner_field == head) & (version_model.variant == ""))
                  .order_by(version_model.version.desc()).first())
        if latest is not None and latest.content_hash == digest:
            return Loaded(kind, head.key, latest.version, False)
        number = latest.version + 1 if latest else 1
        version_model.create(**{owner_field.name: head}, version=number, content_hash=digest,
                             definition=canonical(doc), source=source, created_by=by)
        if head.title != doc["title"]:
            head.title = doc["title"]
            head.save()
        from .overlays import reapply

        reapply(kind, head.key, by)
    return Loaded(kind, head.key, number, True)


def known_keys() -> tuple[set[str], set[str]]:
    """Return the keys of the stored forms and flows."""
    return ({f.key for f in Form.select(Form.key)}, {f.key for f in Flow.select(Flow.key)})


def load_paths(paths: list[Path], by: Person | None = None) -> tuple[list[Loaded], list[Problem]]:
    """Check and load definition files; nothing is stored unless every file passes."""
    from ..grids import level_keys, role_keys

    sources, problems = read_sources(paths)
    forms, flows = known_keys()
    problems += check_sources(sources, forms, flows, levels=level_keys(), roles=role_keys())
    if problems:
        return [], problems
    # Flows first, so that a form never points at a flow that is not stored yet.
    ordered: list[Source] = sorted(sources, key=lambda s: (s.kind != "flow", str(s.path)))
    with database.atomic():
        loaded = [publish(s.kind, s.doc, str(s.path), by) for s in ordered]
    return loaded, []


_versions: dict[tuple, FormVersion] = {}


def latest_form(key: str) -> FormVersion | None:
    """Return the newest version of a form, or None.

    Versions are immutable, so each is read from the database once per process; only the id and
    hash of the newest one are looked up each time.
    """
    row = database.execute_sql(sql(
        'SELECT v.id, v.version, v.content_hash FROM "form_version" AS v JOIN "form" AS f ON f.id = v.form_id '
        "WHERE f.key = {p} AND v.variant = '' ORDER BY v.version DESC LIMIT 1"), (key,)).fetchone()
    if row is None:
        return None
    ident = (database.obj.database, key, *row)
    version = _versions.get(ident)
    if version is None:
        version = FormVersion.select(FormVersion, Form).join(Form).where(FormVersion.id == row[0]).get()
        _versions[ident] = version
    return version


def latest_flow(key: str) -> FlowVersion | None:
    """Return the newest published version of a flow, or None."""
    return (FlowVersion.select(FlowVersion, Flow).join(Flow)
            .where((Flow.key == key) & (FlowVersion.variant == "")).order_by(FlowVersion.version.desc()).first())


def form_version(key: str, version: int, variant: str = "") -> FormVersion | None:
    """Return one exact version of a form (a published one, or an adaptation of it), or None."""
    return (FormVersion.select(FormVersion, Form).join(Form)
            .where((Form.key == key) & (FormVersion.version == version) & (FormVersion.variant == variant)).first())


def latest_forms() -> list[FormVersion]:
    """Return the newest version of every form, by key."""
    return _latest(Form, FormVersion, FormVersion.form)


def latest_flows() -> list[FlowVersion]:
    """Return the newest version of every flow, by key."""
    return _latest(Flow, FlowVersion, FlowVersion.flow)


def _latest(head, version, owner) -> list:
    newest = (version.select(owner, fn.MAX(version.version).alias("top")).where(version.variant == "")
              .group_by(owner).alias("newest"))
    return list(version.select(version, head).join(head)
                .join(newest, on=((getattr(newest.c, owner.column_name) == owner) & (newest.c.top == version.version)))
                .where(version.variant == "")
                .order_by(head.key))


SCHEMA_POINTERS = {"form": "../docs/schemas/form.schema.json", "flow": "../docs/schemas/flow.schema.json"}


def export_definitions(target: Path) -> list[tuple[Path, bool]]:
    """Write the newest published form and flow definitions to target/forms and target/flows.

    Each file gets the editor's `$schema` pointer first and is written only when its content
    differs from what is there; returns (path, written) for every definition.
    """
    out = []
    for kind, versions, folder in (("form", latest_forms(), "forms"), ("flow", latest_flows(), "flows")):
        for version in versions:
            doc = {"$schema": SCHEMA_POINTERS[kind], **canonical(version.definition)}
            path = target / folder / f"{doc['key']}.json"
            text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
            same = path.exists() and _same_content(path, doc)
            if not same:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            out.append((path, not same))
    return out


def _same_content(path: Path, doc: dict) -> bool:
    try:
        return content_hash(json.loads(path.read_text(encoding="utf-8"))) == content_hash(doc)
    except (ValueError, OSError):
        return False


_sensitive: dict[tuple, tuple] = {}


def sensitive_for(form_version_id: int) -> tuple:
    """Return the sensitive field paths of a form version (read once per process: versions are immutable)."""
    from ..masking import sensitive_paths

    ident = (database.obj.database, form_version_id)
    if ident not in _sensitive:
        definition = FormVersion.select(FormVersion.definition).where(FormVersion.id == form_version_id).get()
        _sensitive[ident] = sensitive_paths(definition.definition["schema"])
    return _sensitive[ident]


def forget_versions() -> None:
    """Drop the per-process caches of versions, for a database emptied and refilled (tests, restores)."""
    from .. import store
    from .overlays import forget

    _versions.clear()
    _sensitive.clear()
    store.forget()
    forget()


def compiled(version: FormVersion) -> CompiledForm:
    """Return the compiled validator of a form version (compiled once per process)."""
    definition = version.definition
    return compiled_form(version.content_hash, definition["schema"], definition.get("ui"))
