"""Sensitive fields (`x-sensitive`): where they are in a form, and how their values are masked."""

from __future__ import annotations

import copy
from typing import Any

from .validation import resolve_local

MASK = "***"

Paths = tuple[tuple[tuple[str, ...], str | None], ...]


def sensitive_paths(schema: dict) -> Paths:
    """Return the paths of sensitive fields (`*` for any array item) with their formats."""
    found: list[tuple[tuple[str, ...], str | None]] = []

    def walk(node: Any, path: tuple[str, ...], depth: int) -> None:
        node = resolve_local(schema, node)
        if not node or depth > 32:
            return
        if node.get("x-sensitive") is True and path:
            found.append((path, node.get("format")))
            return
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, path + (name,), depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + ("*",), depth + 1)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or []:
                walk(sub, path, depth + 1)
        for key in ("if", "then", "else"):
            if isinstance(node.get(key), dict):
                walk(node[key], path, depth + 1)

    walk(schema, (), 0)
    return tuple(dict.fromkeys(found))


def mask_value(value: Any, fmt: str | None = None) -> Any:
    """Mask one value: ID numbers keep 4 + 4 characters, mobiles 3 + 4, anything else is hidden."""
    if value is None:
        return None
    if isinstance(value, str) and fmt == "cn-id-card" and len(value) > 8:
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    if isinstance(value, str) and fmt == "cn-mobile" and len(value) == 11:
        return value[:3] + "****" + value[-4:]
    return MASK


def _mask_at(data: Any, path: tuple[str, ...], fmt: str | None, change=mask_value) -> Any:
    """Mask the values found at a path inside data (changed in place where possible)."""
    if not path:
        return change(data, fmt)
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(data, list):
        for i, item in enumerate(data):
            data[i] = _mask_at(item, rest, fmt, change)
    elif isinstance(data, dict) and head in data:
        data[head] = _mask_at(data[head], rest, fmt, change)
    return data


def _change_all(data: Any, paths: Paths, change) -> Any:
    """Return a copy of data with `change(value, format)` applied to every sensitive value."""
    if not paths:
        return data
    changed = copy.deepcopy(data)
    for path, fmt in paths:
        changed = _mask_at(changed, path, fmt, change)
    return changed


def mask_data(data: Any, paths: Paths) -> Any:
    """Return a copy of a case's data with its sensitive fields masked."""
    return _change_all(data, paths, mask_value)


def without_sensitive(data: Any, paths: Paths) -> Any:
    """Return a copy of data with the sensitive values removed (what text search may index)."""
    return _change_all(data, paths, lambda value, fmt: None)


def _matches(pointer_parts: list[str], path: tuple[str, ...]) -> tuple[str, ...] | None:
    """Tell whether a JSON Pointer lies at, inside or above a sensitive path; return the rest of the path.

    A pointer above it names a container holding a sensitive field, e.g. a whole member row.
    """
    for part, want in zip(pointer_parts, path, strict=False):
        if want != "*" and part != want:
            return None
    return path[len(pointer_parts):]


def mask_patch(ops: list | None, paths: Paths) -> list | None:
    """Return a copy of a JSON Patch with the sensitive values it carries masked."""
    if not ops or not paths:
        return ops
    masked = []
    for op in ops:
        op = dict(op)
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path", "")).split("/")[1:]]
        for path, fmt in paths:
            rest = _matches(parts, path)
            if rest is not None and "value" in op:
                op["value"] = _mask_at(copy.deepcopy(op["value"]), rest, fmt)
        masked.append(op)
    return masked


def has_sensitive_values(data: Any, paths: Paths) -> bool:
    """Tell whether any sensitive field holds a value in this data."""
    return bool(paths) and mask_data(data, paths) != data


class MaskedValueError(ValueError):
    """An edit sent a masked value that cannot be traced back to the value it hides."""

    def __init__(self, path: tuple):
        super().__init__("/" + "/".join(str(p) for p in path))
        self.path = path


def looks_masked(value: Any, fmt: str | None) -> bool:
    """Tell whether a value is what masking shows instead of a real value."""
    return value == MASK or (isinstance(value, str) and "*" in value and fmt in ("cn-id-card", "cn-mobile"))


_ABSENT = object()


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def _set(data: dict, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _restore(new: Any, old: Any, paths: Paths, at: tuple) -> Any:
    """Put stored values back where `new` holds their masks; `old` is _ABSENT for a new row."""
    rows: dict[tuple, list] = {}
    for path, fmt in paths:
        if "*" in path:
            cut = path.index("*")
            rows.setdefault(path[:cut], []).append((path[cut + 1:], fmt))
            continue
        value = _get(new, path)
        if value is _ABSENT:
            continue
        before = _get(old, path) if old is not _ABSENT else _ABSENT
        if before is not _ABSENT and value == mask_value(before, fmt):
            if path:
                _set(new, path, copy.deepcopy(before))
            else:
                new = copy.deepcopy(before)
        elif looks_masked(value, fmt):
            raise MaskedValueError(at + path)
    for prefix, inner in rows.items():
        items = _get(new, prefix)
        if not isinstance(items, list):
            continue
        stored = _get(old, prefix) if old is not _ABSENT else _ABSENT
        stored = stored if isinstance(stored, list) else []
        used: set[int] = set()
        for i, item in enumerate(items):
            # A row is the stored row it shows unchanged (rows may have moved, been added or removed).
            match = next((j for j, row in enumerate(stored)
                          if j not in used and mask_data(row, tuple(inner)) == item), None)
            if match is not None:
                used.add(match)
                items[i] = copy.deepcopy(stored[match])
            else:
                items[i] = _restore(item, _ABSENT, tuple(inner), at + prefix + (i,))
    return new


def restore_masked(new: Any, old: Any, paths: Paths) -> Any:
    """Put back stored values where an edit sent a sensitive field still masked (unchanged).

    A repeat row counts as unchanged when it equals a stored row as masked, wherever it now
    stands. A masked value that matches no stored value (say, in a row also edited) cannot be
    restored and raises MaskedValueError: storing the mask would destroy the real value.
    """
    if not paths:
        return new
    return _restore(copy.deepcopy(new), old, paths, ())
