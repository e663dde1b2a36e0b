"""Township adaptations: RFC 6902 overlays on a template, stacked top down, re-applied on new bases."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jsonpatch
import jsonpointer

from ..db import database, sql
from ..models import Adaptation, Flow, FlowVersion, Form, FormVersion, GridNode, Overlay, Person, utcnow


class Conflict(Exception):
    """An overlay that does not apply to its parent definition any more, with a readable reason."""

    def __init__(self, message: str, op: dict | None = None, index: int | None = None):
        super().__init__(message)
        self.message = message
        self.op = op
        self.index = index

    def as_dict(self) -> dict:
        return {"message": self.message, "op": self.op, "index": self.index}


class Refused(ValueError):
    """An adaptation that breaks a rule of overlays (the messages say which, in Chinese)."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


# -- pure: making and applying patches ----------------------------------------------------------

def _is_index(part: str) -> bool:
    return part.isdigit() or part == "-"


def _resolve(doc: Any, path: str) -> Any:
    return jsonpointer.resolve_pointer(doc, path)


def _lists(doc: Any, at: str = "") -> dict[str, list]:
    """Every `ui:order` and `required` list of a definition by pointer (they are re-stated whole)."""
    out: dict[str, list] = {}
    if isinstance(doc, dict):
        for key, value in doc.items():
            here = f"{at}/{jsonpointer.escape(key)}"
            if key in ("ui:order", "required") and isinstance(value, list):
                out[here] = value
            else:
                out.update(_lists(value, here))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.update(_lists(value, f"{at}/{i}"))
    return out


def _without_lists(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _without_lists(v) for k, v in doc.items()
                if not (k in ("ui:order", "required") and isinstance(v, list))}
    if isinstance(doc, list):
        return [_without_lists(v) for v in doc]
    return doc


def _identity(element: Any) -> tuple[str, Any]:
    """What identifies a list element for a guard: an option by its code, anything else whole."""
    if isinstance(element, dict) and "const" in element:
        return "/const", element["const"]
    if isinstance(element, dict) and "key" in element:
        return "/key", element["key"]
    return "", element


def make_overlay(parent: dict, edited: dict) -> list[dict]:
    """The patch from a parent definition to its adapted copy, made to survive a changed base.

    - An operation inside a list element (an option, an action) is guarded by a `test` of that
      element's identity (its code), so a reordered base conflicts instead of relabelling the
      wrong option; an element appended at the end is added with `-`.
    - `ui:order` lists are re-stated whole (`ui:order` names missing from a new base are dropped
      when applied, new base fields come last); `required` gains only appended names (an overlay
      never makes a field optional).
    """
    ops: list[dict] = []
    current = copy.deepcopy(_without_lists(parent))
    for op in jsonpatch.make_patch(current, _without_lists(edited)).patch:
        parts = op["path"].split("/")
        for i in range(1, len(parts)):
            if not parts[i].isdigit():
                continue
            holder = "/".join(parts[:i])
            try:
                array = _resolve(current, holder)
            except jsonpointer.JsonPointerException:
                continue
            index = int(parts[i])
            if op["op"] == "add" and i == len(parts) - 1:
                if isinstance(array, list) and index == len(array):
                    op = {**op, "path": holder + "/-"}
                continue
            if isinstance(array, list) and index < len(array):
                suffix, value = _identity(array[index])
                ops.append({"op": "test", "path": f"{holder}/{index}{suffix}", "value": value})
        if op["op"] in ("move", "copy"):
            ops.append({"op": "test", "path": op["from"], "value": _resolve(current, op["from"])})
        ops.append(op)
        current = jsonpatch.apply_patch(current, [op])
    before, after = _lists(parent), _lists(edited)
    for where, names in after.items():
        old = before.get(where)
        if where.endswith("/ui:order"):
            if old != names:
                ops.append({"op": "replace" if old is not None else "add", "path": where, "value": names})
        elif old is None:
            ops.append({"op": "add", "path": where, "value": names})
        else:
            ops.extend({"op": "add", "path": where + "/-", "value": n} for n in names if n not in old)
    return ops


def normalise_orders(doc: dict) -> dict:
    """Keep every `ui:order` true to its fields: names a base removed dropped, fields it added last."""
    def walk(schema: Any, ui: Any) -> None:
        if not isinstance(schema, dict) or not isinstance(ui, dict):
            return
        if schema.get("type") == "array":
            walk(schema.get("items"), ui.get("items"))
            return
        names = list((schema.get("properties") or {}).keys())
        if isinstance(ui.get("ui:order"), list):
            kept = [n for n in ui["ui:order"] if n in names or n == "*"]
            if "*" not in kept:
                kept += [n for n in names if n not in kept]
            ui["ui:order"] = kept
        for name in names:
            walk(schema["properties"][name], ui.get(name))

    if isinstance(doc.get("schema"), dict):
        walk(doc["schema"], doc.get("ui"))
    for node in (doc.get("nodes") or {}).values():
        for form in [node.get("form")] + [a.get("form") for a in node.get("actions") or [] if isinstance(a, dict)]:
            if isinstance(form, dict):
                walk(form.get("schema"), form.get("ui"))
    return doc


def _container(doc: Any, path: str) -> tuple[Any, str]:
    parent, _, last = path.rpartition("/")
    return _resolve(doc, parent), jsonpointer.unescape(last)


def apply_overlay(doc: dict, ops: list[dict], names: dict | None = None) -> dict:
    """Apply an overlay's operations to a definition; raise Conflict naming the first that fails.

    `names` is a definition to take field and step titles from for the message (the one the
    overlay last applied to: a field the new base removed is named there).
    """
    out = copy.deepcopy(doc)
    names = names or doc
    for index, op in enumerate(ops):
        try:
            if op["op"] == "add":
                holder, name = _container(out, op["path"])
                if isinstance(holder, list) and name == "-" and op["path"].endswith("/required/-") \
                        and op["value"] in holder:
                    continue  # the base made it required too
                if (isinstance(holder, dict) and name in holder and holder[name] != op["value"]
                        and name not in ("ui:order", "required")):
                    raise Conflict(_collision(names, op), op, index)
            out = jsonpatch.apply_patch(out, [op])
        except Conflict:
            raise
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, KeyError, IndexError,
                TypeError) as exc:
            raise Conflict(describe_failure(names, op), op, index) from exc
    return normalise_orders(out)


def apply_partly(doc: dict, ops: list[dict], names: dict | None = None) -> tuple[dict, list[Conflict]]:
    """Apply what still applies of an overlay (a test and the operation it guards go together)."""
    out, conflicts, skip = copy.deepcopy(doc), [], False
    for index, op in enumerate(ops):
        if skip:
            skip = False
            continue
        try:
            out = apply_overlay(out, [op], names or doc)
        except Conflict as exc:
            conflicts.append(Conflict(exc.message, op, index))
            skip = op["op"] == "test"
    return out, conflicts


def _where(doc: dict, path: str) -> str:
    """Name the field, option or step a pointer lies in, as a person would."""
    parts = [jsonpointer.unescape(p) for p in path.split("/")[1:]]
    if parts[:1] == ["nodes"] and len(parts) > 1:
        node = doc.get("nodes", {}).get(parts[1])
        title = node.get("title") if isinstance(node, dict) else None
        return f"步骤「{title or parts[1]}」"
    if parts[:1] == ["ui"] and len(parts) > 1:
        parts = ["schema", "properties", *[p for p in parts[1:] if p != "items"]]
    names = []
    schema: Any = doc.get("schema", {})
    i = 1
    while i < len(parts) - 1 and parts[i] in ("properties", "items"):
        if parts[i] == "items":
            schema = schema.get("items", {}) if isinstance(schema, dict) else {}
            i += 1
            continue
        name = parts[i + 1]
        schema = (schema.get("properties", {}) if isinstance(schema, dict) else {}).get(name, {})
        names.append((schema.get("title") if isinstance(schema, dict) else None) or name)
        i += 2
    if names:
        return "字段「" + " › ".join(names) + "」"
    return "定义的 " + path


def describe_failure(doc: dict, op: dict) -> str:
    """Say in Chinese why an operation no longer applies to a definition."""
    where = _where(doc, op.get("path", ""))
    if op["op"] == "test":
        return f"{where}在上级新版本中已变化（选项或顺序不同），本地调整需要重新核对"
    if op["op"] in ("replace", "remove", "move", "copy"):
        return f"{where}在上级新版本中已删除或改名，本地的修改无法套用"
    return f"{where}所在的位置在上级新版本中已不存在，本地新增的内容无法套用"


def _collision(doc: dict, op: dict) -> str:
    return f"上级新版本也新增了{_where(doc, op['path'])}，与本地新增的内容重名"


# -- pure: what an overlay may do -------------------------------------------------------------

def _fields(schema: Any, at: tuple = ()) -> dict[tuple, tuple[dict, bool]]:
    """Every field of a schema by path: (its schema, whether it is required)."""
    out: dict[tuple, tuple[dict, bool]] = {}
    if not isinstance(schema, dict):
        return out
    required = set(schema.get("required") or [])
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        out[(*at, name)] = (sub, name in required)
        out.update(_fields(sub, (*at, name)))
        if isinstance(sub.get("items"), dict):
            out.update(_fields(sub["items"], (*at, name, "*")))
    return out


def _options(schema: dict) -> set:
    values = set()
    for holder in (schema, schema.get("items") if isinstance(schema.get("items"), dict) else {}):
        values |= {repr(v) for v in holder.get("enum") or []}
        values |= {repr(o.get("const")) for o in holder.get("oneOf") or holder.get("anyOf") or []
                   if isinstance(o, dict) and "const" in o}
    return values


def overlay_problems(kind: str, parent: dict, edited: dict) -> list[str]:
    """What an adaptation may not do to the definition above it, in Chinese (empty: allowed).

    Townships relabel, add fields and options, hide optional fields, make fields required, change
    deadlines and add steps; they do not remove what the city relies on (required fields,
    options, steps), change a field's type, or point the form at another flow.
    """
    problems = []
    if edited.get("key") != parent.get("key"):
        problems.append("不能修改表单或流程的标识")
    if kind == "form":
        if edited.get("flow") != parent.get("flow"):
            problems.append("不能更换表单所走的流程")
        before, after = _fields(parent.get("schema")), _fields(edited.get("schema"))
        for path, (schema, required) in before.items():
            title = schema.get("title") or path[-1]
            if path not in after:
                if required:
                    problems.append(f"必填字段「{title}」不能隐藏（上级要求填写）")
                continue
            new = after[path][0]
            if new.get("type") != schema.get("type") or new.get("format") != schema.get("format"):
                problems.append(f"不能修改字段「{title}」的类型")
            if required and not after[path][1]:
                problems.append(f"字段「{title}」是上级规定的必填项，不能改为选填")
            if _options(schema) - _options(new):
                problems.append(f"不能删除字段「{title}」的上级选项（可以新增选项或改名称）")
    else:
        for node in (parent.get("nodes") or {}):
            if node not in (edited.get("nodes") or {}):
                problems.append(f"不能删除上级流程中的步骤「{parent['nodes'][node].get('title') or node}」")
    return problems


# -- stored: effective definitions ------------------------------------------------------------

def _tables(kind: str):
    return (Form, FormVersion, FormVersion.form) if kind == "form" else (Flow, FlowVersion, FlowVersion.flow)


def ancestor_paths(path: str) -> list[str]:
    """The materialised paths of a node and its ancestors, root first."""
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def effective_id(kind: str, key: str, grid_path: str, strictly_above: bool = False) -> int | None:
    """The id of the effective version in use for a grid (the deepest adaptation above it), or None."""
    paths = ancestor_paths(grid_path)
    if strictly_above:
        paths = paths[:-1]
    if not paths:
        return None
    marks = ", ".join(["{p}"] * len(paths))
    row = database.execute_sql(sql(
        'SELECT a.effective FROM "adaptation" AS a JOIN "grid_node" AS n ON n.id = a.grid_id '
        "WHERE a.kind = {p} AND a.key = {p} AND a.effective IS NOT NULL AND n.path IN (" + marks + ") "
        "ORDER BY n.depth DESC LIMIT 1"), (kind, key, *paths)).fetchone()
    return row[0] if row else None


_rows: dict[tuple, Any] = {}


def _row(kind: str, ident: int):
    """An effective version row by id (immutable: read once per process)."""
    _, model, owner = _tables(kind)
    cache_key = (database.obj.database, kind, ident)
    if cache_key not in _rows:
        head = owner.rel_model
        _rows[cache_key] = model.select(model, head).join(head).where(model.id == ident).get()
    return _rows[cache_key]


def effective(kind: str, key: str, grid_path: str | None):
    """The version a grid uses: its deepest adapted ancestor's effective version, else the newest base."""
    from .versions import latest_flow, latest_form

    ident = effective_id(kind, key, grid_path) if grid_path else None
    if ident is not None:
        return _row(kind, ident)
    return latest_form(key) if kind == "form" else latest_flow(key)


def parent_of(kind: str, key: str, grid: GridNode):
    """The version an adaptation at `grid` is made on: the effective version just above it."""
    from .versions import latest_flow, latest_form

    ident = effective_id(kind, key, grid.path, strictly_above=True)
    if ident is not None:
        return _row(kind, ident)
    return latest_form(key) if kind == "form" else latest_flow(key)


def _materialise(kind: str, parent, grid: GridNode, number: int, doc: dict, by: Person | None):
    """Store (or find) the effective version made of `parent` plus one more overlay."""
    from .versions import canonical, content_hash

    head_model, model, owner = _tables(kind)
    variant = "/".join(filter(None, [parent.variant, f"{grid.code}:{number}"]))
    overlays = [*(parent.overlays or []), {"grid": grid.code, "version": number}]
    head = getattr(parent, owner.name)
    found = model.get_or_none((owner == head) & (model.version == parent.version) & (model.variant == variant))
    if found is not None:
        return found
    return model.create(**{owner.name: head}, version=parent.version, variant=variant, overlays=overlays,
                        content_hash=content_hash(doc), definition=canonical(doc), created_by=by)


def _definition_problems(kind: str, doc: dict) -> list[str]:
    from .drafts import problems

    return [f"{p.pointer or '/'}：{p.message}" for p in problems(kind, doc)]


def publish_overlay(kind: str, key: str, grid: GridNode, edited: dict, by: Person | None,
                    note: str = "") -> Overlay:
    """Store an adaptation of the definition above `grid` as a new overlay version and use it.

    Refused (with every reason) when it breaks an overlay rule or the adapted definition does not
    pass the checks; the grid's subtree switches to it at once, deeper adaptations re-applied.
    """
    parent = parent_of(kind, key, grid)
    if parent is None:
        raise Refused([f"找不到{'表单' if kind == 'form' else '流程'} {key}"])
    problems = overlay_problems(kind, parent.definition, edited) + _definition_problems(kind, edited)
    patch = make_overlay(parent.definition, edited)
    if not patch and not problems:
        problems.append("与上级版本相比没有改动")
    if problems:
        raise Refused(problems)
    with database.atomic():
        last = (Overlay.select().where((Overlay.kind == kind) & (Overlay.key == key) & (Overlay.grid == grid))
                .order_by(Overlay.version.desc()).first())
        number = last.version + 1 if last else 1
        overlay = Overlay.create(kind=kind, key=key, grid=grid, version=number, patch=patch,
                                 base_version=parent.version, note=note, created_by=by)
        row = _materialise(kind, parent, grid, number, apply_overlay(parent.definition, patch), by)
        adaptation = Adaptation.get_or_none((Adaptation.kind == kind) & (Adaptation.key == key)
                                            & (Adaptation.grid == grid))
        if adaptation is None:
            Adaptation.create(kind=kind, key=key, grid=grid, overlay_version=number, effective=row.id)
        else:
            adaptation.overlay_version, adaptation.effective, adaptation.conflict = number, row.id, None
            adaptation.updated_at = utcnow()
            adaptation.save()
        reapply(kind, key, by, below=grid)
    return overlay


def withdraw(kind: str, key: str, grid: GridNode, by: Person | None) -> bool:
    """Stop adapting (the subtree uses the definition above again); the overlay versions stay on record."""
    with database.atomic():
        gone = Adaptation.delete().where((Adaptation.kind == kind) & (Adaptation.key == key)
                                         & (Adaptation.grid == grid)).execute()
        if gone:
            reapply(kind, key, by, below=grid)
    return bool(gone)


@dataclass
class Reapplied:
    """What re-applying one adaptation did: its grid, whether it applies, and the conflict if not."""

    grid: str
    ok: bool
    conflict: dict | None


def reapply(kind: str, key: str, by: Person | None = None, below: GridNode | None = None) -> list[Reapplied]:
    """Re-apply every adaptation of a definition (or those strictly below a grid), top down.

    One that applies gets a new effective version; one that does not keeps its last working
    effective version and records the conflict for its owner. Nothing is dropped.
    """
    query = (Adaptation.select(Adaptation, GridNode).join(GridNode)
             .where((Adaptation.kind == kind) & (Adaptation.key == key)).order_by(GridNode.depth, GridNode.path))
    if below is not None:
        query = query.where(GridNode.path.startswith(below.path) & (GridNode.id != below.id))
    out = []
    for adaptation in query:
        grid = adaptation.grid
        overlay = Overlay.get((Overlay.kind == kind) & (Overlay.key == key) & (Overlay.grid == grid)
                              & (Overlay.version == adaptation.overlay_version))
        parent = parent_of(kind, key, grid)
        known = _row(kind, adaptation.effective).definition if adaptation.effective else None
        try:
            doc = apply_overlay(parent.definition, overlay.patch, known)
            problems = _definition_problems(kind, doc)
            if problems:
                raise Conflict("套用后的定义未通过检查：" + "；".join(problems[:3]))
        except Conflict as exc:
            adaptation.conflict = {**exc.as_dict(), "base_version": parent.version, "variant": parent.variant}
            out.append(Reapplied(grid.code, False, adaptation.conflict))
        else:
            row = _materialise(kind, parent, grid, overlay.version, doc, by)
            adaptation.effective, adaptation.conflict = row.id, None
            out.append(Reapplied(grid.code, True, None))
        adaptation.updated_at = utcnow()
        adaptation.save()
    return out


def adaptations(kind: str, key: str, within: list[str] | None = None) -> list[Adaptation]:
    """The adaptations of a definition, top down; `within` limits them to subtrees (materialised paths)."""
    query = (Adaptation.select(Adaptation, GridNode).join(GridNode)
             .where((Adaptation.kind == kind) & (Adaptation.key == key)).order_by(GridNode.depth, GridNode.path))
    rows = list(query)
    if within is not None:
        rows = [a for a in rows if any(a.grid.path.startswith(p) for p in within)]
    return rows


def conflicts(within: list[str] | None = None) -> list[Adaptation]:
    """Adaptations whose newest overlay does not apply to the definition above them now."""
    rows = list(Adaptation.select(Adaptation, GridNode).join(GridNode).where(Adaptation.conflict.is_null(False))
                .order_by(GridNode.path))
    if within is not None:
        rows = [a for a in rows if any(a.grid.path.startswith(p) for p in within)]
    return rows


def forget() -> None:
    """Drop the per-process cache of effective versions (a database emptied and refilled)."""
    _rows.clear()
