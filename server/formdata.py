"""A form-encoded post → typed JSON, led by the form's schema (one function: `from_post`).

Inputs are named by JSON Pointer (`/members/0/name`). The schema, not the post, decides what is
read: names the schema does not know are ignored, so the post cannot make the data deeper or wider
than the form. Rows of a repeating group come out in the order the page posted them, whatever
their numbers. A value that cannot be converted is kept as the text the person typed, so the
validator names the problem and the page shows the text again.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .rendering import html_value, is_attachment_list, options_of, type_of
from .validation import CompiledForm, FieldError, pointer

MAX_DEPTH = 32  # segments of an input name; deeper names are ignored
MAX_ROWS = 1000  # rows of one repeating group read from a post
MAX_VALUES = 1000  # values of one checkbox list read from a post
ROW = re.compile(r"\d{1,6}")
INTEGER = re.compile(r"[+-]?\d+")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
TRUE = {"true", "1", "on", "yes", "是"}
FALSE = {"false", "0", "off", "no", "否"}
NORMALISED_FORMATS = {"cn-mobile", "cn-id-card", "date", "date-time", "time", "grid-code"}
BAD_TEXT = "「{title}」含有无法识别的字符，请重新输入"


class _Node:
    """Posted values under one name prefix: its own values and its children, in posting order."""

    __slots__ = ("values", "children")

    def __init__(self):
        self.values: list[str] = []
        self.children: dict[str, _Node] = {}


@dataclass
class Converted:
    """The typed data, and problems found while converting (text that could not be decoded)."""

    data: dict
    errors: list[FieldError] = field(default_factory=list)


def _trie(pairs) -> _Node:
    root = _Node()
    for name, value in pairs:
        if not isinstance(name, str) or not name.startswith("/") or not isinstance(value, str):
            continue
        parts = name[1:].split("/")
        if len(parts) > MAX_DEPTH:
            continue
        node = root
        for raw in parts:
            part = raw.replace("~1", "/").replace("~0", "~")
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node()
            node = child
        node.values.append(value)
    return root


def from_post(form: CompiledForm, pairs, keep_empty: bool = False, base: dict | None = None) -> Converted:
    """Turn posted (name, value) pairs into the form's data.

    Empty optional fields are left out. With `keep_empty`, empty rows of repeating groups stay
    (the page is being redrawn, not submitted). Read-only fields take their value from `base`
    (the stored data, or the defaults of a new form), never from the post.
    """
    out = Converted({})
    reader = _Reader(form, out, keep_empty)
    data = reader.value(form.resolve(form.schema), form.ui, (), _trie(pairs))
    out.data = data if isinstance(data, dict) else {}
    for path, default in reader.readonly:
        kept = _get_any(base or {}, path)
        _put_at(out.data, path, kept if kept is not None else default)
    return out


class _Reader:
    def __init__(self, form: CompiledForm, out: Converted, keep_empty: bool):
        self.form, self.out, self.keep_empty = form, out, keep_empty
        self.readonly: list[tuple] = []

    def value(self, schema: dict, ui: dict, path: tuple, node: _Node | None) -> Any:
        schema = self.form.resolve(schema)
        ui = ui if isinstance(ui, dict) else {}
        if path and (ui.get("ui:readonly") or ui.get("ui:disabled") or schema.get("readOnly")):
            self.readonly.append((path, schema.get("default")))
            return None
        kind = type_of(schema)
        if kind == "object":
            return self.object(schema, ui, path, node)
        if kind == "array":
            return self.array(schema, ui, path, node)
        if node is None:
            return None
        text = next((v for v in node.values if v.strip()), None)
        if text is None:
            return None
        return self.scalar(schema, ui, path, text)

    def object(self, schema: dict, ui: dict, path: tuple, node: _Node | None) -> dict | None:
        result = {}
        props = schema.get("properties") or {}
        for name, sub in props.items():
            child = node.children.get(name) if node is not None else None
            sub_ui = ui.get(name) if isinstance(ui.get(name), dict) else {}
            value = self.value(sub, sub_ui, path + (name,), child)
            if value is not None:
                result[name] = value
        if not path:
            return result
        return result if result or (self.keep_empty and node is not None and node.children) else None

    def array(self, schema: dict, ui: dict, path: tuple, node: _Node | None) -> list | None:
        if node is None:
            return None
        items = self.form.resolve(schema.get("items") or {})
        items_ui = ui.get("items") if isinstance(ui.get("items"), dict) else {}
        if options_of(items, items_ui) or is_attachment_list(schema):
            values = [v for v in node.values[:MAX_VALUES] if v.strip()]
            picked, seen = [], set()
            for i, v in enumerate(values):
                value = self.scalar(items, items_ui, path + (i,), v)
                key = json.dumps(value, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    picked.append(value)
            return picked or None
        rows = []
        for token, child in list(node.children.items())[:MAX_ROWS]:
            if not ROW.fullmatch(token):
                continue
            row = self.value(items, items_ui, path + (len(rows),), child)
            if row is None and type_of(items) == "object" and self.keep_empty:
                row = {}
            if row is None and not self.keep_empty:
                continue
            rows.append(row)
        return rows or None

    def scalar(self, schema: dict, ui: dict, path: tuple, text: str) -> Any:
        if "\ufffd" in text:
            self.out.errors.append(FieldError(pointer(path), BAD_TEXT.format(title=self.form.title_at(path))))
        choices = options_of(schema, ui)
        kind = type_of(schema)
        if choices is not None:
            for value, _label in choices:
                if html_value(value) == text:
                    return value
            if kind == "boolean":
                return _boolean(text)
            return text
        if kind == "integer":
            return _integer(text)
        if kind == "number":
            return _number(text)
        if kind == "boolean":
            return _boolean(text)
        if schema.get("format") in NORMALISED_FORMATS:
            text = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
            if schema.get("format") == "cn-id-card":
                text = text.upper()
            if schema.get("format") == "date-time" and len(text) == 16:
                text += ":00"
            return text
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text.strip()


GROUPED = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d{1,4}(,\d{4})+)(\.\d+)?")
MAX_DIGITS = 64


def _clean_number(text: str) -> str:
    """Normalise a typed number: half-width, trimmed, group separators (1,000 or 1,0000) removed."""
    clean = unicodedata.normalize("NFKC", text).strip()
    if "," in clean and GROUPED.fullmatch(clean):
        clean = clean.replace(",", "")
    return clean


def _integer(text: str) -> Any:
    clean = _clean_number(text)
    if len(clean) <= MAX_DIGITS and INTEGER.fullmatch(clean):
        return int(clean)
    number = _number(clean)
    if isinstance(number, int):
        return number
    return text.strip()


def _number(text: str) -> Any:
    clean = _clean_number(text)
    if len(clean) > MAX_DIGITS or not NUMBER.fullmatch(clean):
        return text.strip()
    try:
        value = Decimal(clean)
        if not -340 < value.adjusted() < 309:
            return text.strip()
        if value == value.to_integral_value() and abs(value) < 10**15:
            return int(value)
        result = float(value)
    except ArithmeticError:
        return text.strip()
    return result if result not in (float("inf"), float("-inf")) else text.strip()


def _boolean(text: str) -> Any:
    clean = text.strip().lower()
    if clean in TRUE:
        return True
    if clean in FALSE:
        return False
    return text.strip()


def _put_at(data: dict, path: tuple, value: Any) -> None:
    """Set (or with None, remove) a value at a path of keys and row numbers, making groups as needed.

    A row that is not there is not made: a read-only field only goes into rows that exist.
    """
    here: Any = data
    for part, following in zip(path[:-1], path[1:], strict=True):
        if isinstance(part, int):
            if not isinstance(here, list) or part >= len(here):
                return
            nxt = here[part]
        else:
            if not isinstance(here, dict):
                return
            nxt = here.get(part)
            if nxt is None:
                if value is None or isinstance(following, int):
                    return
                nxt = here[part] = {}
        if isinstance(following, int) and not isinstance(nxt, list):
            return
        if not isinstance(following, int) and not isinstance(nxt, dict):
            return
        here = nxt
    last = path[-1]
    if isinstance(last, int):
        return
    if value is None:
        here.pop(last, None)
    else:
        here[last] = value


def apply_op(data: dict, op: str, form: CompiledForm) -> dict:
    """Apply a row operation to the data: `add:/p`, `remove:/p/3`, `up:/p/3`, `down:/p/3`, `clear:/p`.

    An operation that does not fit the form (no such list, a row that is not there) changes nothing.
    """
    verb, _, where = op.partition(":")
    raw = [p.replace("~1", "/").replace("~0", "~") for p in where.split("/")[1:]] if where.startswith("/") else []
    if not raw or not all(raw):
        return data
    path = tuple(int(p) if ROW.fullmatch(p) else p for p in raw)
    if verb == "clear":
        if all(isinstance(p, str) for p in path):
            _put_at(data, path, None)
        return data
    if verb == "add":
        target, index = path, None
    elif isinstance(path[-1], int):
        target, index = path[:-1], path[-1]
    else:
        return data
    schema = form.schema_at(target)
    items = form.resolve(schema.get("items") or {}) if isinstance(schema.get("items"), dict) else None
    if type_of(schema) != "array" or items is None or options_of(items, {}) or is_attachment_list(schema) \
            and verb == "add":
        return data
    rows = _get_any(data, target)
    if rows is None and verb == "add":
        rows = _new_list(data, target)
    if not isinstance(rows, list):
        return data
    if verb == "add" and len(rows) < int(schema.get("maxItems", 10**6)):
        rows.append({} if type_of(items) == "object" else None)
    elif index is not None and 0 <= index < len(rows):
        if verb == "remove":
            rows.pop(index)
        elif verb == "up" and index > 0:
            rows[index - 1], rows[index] = rows[index], rows[index - 1]
        elif verb == "down" and index < len(rows) - 1:
            rows[index + 1], rows[index] = rows[index], rows[index + 1]
    return data


def _new_list(data: dict, path: tuple) -> list | None:
    """Make an empty list at a path (groups on the way made; rows must exist); None if it cannot be."""
    here: Any = data
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(here, list) or part >= len(here):
                return None
            here = here[part]
        else:
            if not isinstance(here, dict):
                return None
            here = here.setdefault(part, {})
    if not isinstance(here, dict) or not isinstance(path[-1], str):
        return None
    here[path[-1]] = []
    return here[path[-1]]


def _get_any(data: Any, path: tuple) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
        elif not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data
