"""JSON Schema + ui hints → a tree of widgets for the fill and view templates (no HTML here)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from .definitions.ui import OWN_WIDGETS, RJSF_ALIASES
from .validation import CompiledForm, pointer, show_value

log = logging.getLogger(__name__)

# The widget a type gets when ui names none (or names one that cannot show it).
FORMAT_WIDGETS = {
    "date": "date", "date-time": "datetime", "time": "time", "cn-mobile": "phone",
    "cn-id-card": "idcard", "grid-code": "grid", "attachment": "file", "email": "text",
}
TYPE_WIDGETS = {"integer": "integer", "number": "number", "boolean": "yesno", "string": "text"}

# Which widgets can show which kind of field.
SCALAR_TEXT = {"text", "textarea", "date", "datetime", "time", "phone", "idcard", "grid"}
FITS: dict[str, set[str]] = {
    "string": SCALAR_TEXT | {"file", "photo", "signature"},
    "integer": {"integer", "number", "text"},
    "number": {"number", "integer", "text"},
    "boolean": {"yesno", "select", "radio"},
    "object": {"group", "geolocation"},
    "options": {"select", "radio"},
}

# HTML input types per widget.
INPUT_TYPES = {
    "text": "text", "date": "date", "datetime": "datetime-local", "time": "time", "phone": "tel",
    "idcard": "text", "grid": "text", "number": "number", "integer": "number",
}

HARD_MAX_ROWS = 200  # rows a repeat may show when the schema sets no maxItems
MAX_DEPTH = 32  # nesting drawn at most (the definition check refuses recursive schemas)


@dataclass
class Option:
    """One choice of a select, radio or checkbox list: the posted text, its label, whether chosen."""

    value: str
    label: str
    checked: bool = False


@dataclass
class Widget:
    """One field as the templates draw it; groups and repeats hold their fields as children."""

    path: tuple
    widget: str
    title: str
    name: str = ""
    id: str = ""
    description: str | None = None
    help: str | None = None
    placeholder: str | None = None
    required: bool = False
    readonly: bool = False
    disabled: bool = False
    autofocus: bool = False
    show_label: bool = True
    value: Any = None
    text: str = ""
    error: str | None = None
    options: list[Option] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    children: list[Widget] = field(default_factory=list)
    watched: bool = False
    conditional: bool = False
    min_rows: int = 0
    max_rows: int = HARD_MAX_ROWS
    can_add: bool = True
    can_remove: bool = True
    can_move: bool = True
    multiple: bool = False
    inline: bool = False
    index: int | None = None

    def walk(self):
        """Yield this widget and every widget below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str) -> Widget | None:
        """Return the widget whose input name is `name`, if it is drawn."""
        return next((w for w in self.walk() if w.name == name), None)


PLAIN_NAME = re.compile(r"(/[A-Za-z0-9_]+)*")


def dom_id(name: str) -> str:
    """Turn an input name (a JSON Pointer) into an HTML id: `/members/0/name` → `f-members-0-name`.

    Names made of letters, digits and `_` map one to one (`/` becomes `-`). Any other name gets
    a readable part and a hash of the whole, under another prefix (`f_`), so no two names share an id.
    """
    if PLAIN_NAME.fullmatch(name):
        return "f" + name.replace("/", "-")
    readable = re.sub(r"[^A-Za-z0-9_]", "-", name)[:40]
    return "f_" + readable.strip("-") + "_" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]


def html_value(value: Any) -> str:
    """Show a value in an input: text as it is, numbers without a trailing `.0`, JSON otherwise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def options_of(schema: dict, ui: dict) -> list[tuple[Any, str]] | None:
    """Return (value, label) pairs of a field's choices (oneOf/anyOf const+title, enum+ui:enumNames)."""
    for key in ("oneOf", "anyOf"):
        choices = schema.get(key)
        if isinstance(choices, list) and choices and all(isinstance(o, dict) and "const" in o for o in choices):
            return [(o["const"], o.get("title") or show_value(o["const"])) for o in choices]
    if isinstance(schema.get("enum"), list):
        names = ui.get("ui:enumNames") or schema.get("x-enumNames") or []
        return [(v, names[i] if i < len(names) and isinstance(names[i], str) else show_value(v))
                for i, v in enumerate(schema["enum"])]
    return None


def type_of(schema: dict) -> str | None:
    """Return a schema's main JSON type (the first that is not null), guessing from its shape."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind:
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    options = options_of(schema, {})
    if options:
        values = [v for v, _ in options]
        if all(isinstance(v, bool) for v in values):
            return "boolean"
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "integer"
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return "number"
        return "string"
    return None


def is_attachment_list(schema: dict) -> bool:
    """Tell whether an array holds attachments."""
    items = schema.get("items")
    return isinstance(items, dict) and items.get("format") == "attachment"


def choose_widget(schema: dict, ui: dict, where: str = "") -> str:
    """Pick the widget for a field: the ui's, if it can show the field; else the type's default."""
    kind = type_of(schema)
    default = _default_widget(schema, kind)
    asked = ui.get("ui:widget")
    if not isinstance(asked, str) or not asked:
        return default
    name = RJSF_ALIASES.get(asked, asked)
    if name not in OWN_WIDGETS:
        log.warning("unknown widget %r at %s: drawn as %s", asked, where or "/", default)
        return default
    if _fits(name, schema, kind):
        return name
    log.warning("widget %r cannot show the %s field at %s: drawn as %s", asked, kind, where or "/", default)
    return default


def _default_widget(schema: dict, kind: str | None) -> str:
    if kind == "object":
        return "group"
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if is_attachment_list(schema):
            return "file"
        if options_of(items, {}):
            return "checkboxes"
        return "repeat"
    if schema.get("format") in FORMAT_WIDGETS and kind in (None, "string"):
        return FORMAT_WIDGETS[schema["format"]]
    if options_of(schema, {}) and kind != "boolean":
        return "select"
    return TYPE_WIDGETS.get(kind or "string", "text")


def _fits(name: str, schema: dict, kind: str | None) -> bool:
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if is_attachment_list(schema):
            return name in ("file", "photo", "signature")
        if options_of(items, {}):
            return name in ("checkboxes", "select")
        return name == "repeat"
    if kind == "object":
        return name in FITS["object"]
    if options_of(schema, {}) and name in FITS["options"]:
        return True
    if name in ("photo", "file", "signature"):
        return schema.get("format") == "attachment"
    return name in FITS.get(kind or "string", set())


def ordered(names: list[str], order: Any, where: str = "") -> list[str]:
    """Order property names by `ui:order` (with `*` standing for the rest, as in RJSF)."""
    if not isinstance(order, list):
        return names
    listed = [n for n in order if isinstance(n, str) and (n in names or n == "*")]
    rest = [n for n in names if n not in listed]
    if "*" in listed:
        i = listed.index("*")
        return listed[:i] + rest + listed[i + 1:]
    return listed + rest


@dataclass
class Context:
    """What rendering needs beyond the form: errors to show, grid choices, where it posts."""

    errors: dict[str, str] = field(default_factory=dict)
    hidden: set = field(default_factory=set)
    grid_choices: list[tuple[str, str]] | None = None
    readonly: bool = False
    first_drawing: bool = True  # ui:autofocus only when the page opens, never on a redraw


class Renderer:
    """Build the widget tree of a compiled form for some data."""

    def __init__(self, form: CompiledForm, context: Context | None = None):
        self.form = form
        self.context = context or Context()

    def tree(self, data: Any) -> Widget:
        """Return the root group of the form for this data, hidden fields left out."""
        if not isinstance(data, dict):
            data = {}
        data = self._padded(self.form.resolve(self.form.schema), data, 0)
        self.context.hidden = self.form.hidden_paths(data)
        root = self._object(self.form.resolve(self.form.schema), self.form.ui, (), data, required=True)
        root.title = self.form.ui.get("ui:title") or self.form.schema.get("title") or ""
        first = next((w for w in root.walk() if w.error and w.name), None)
        asked = not self.context.readonly and self.context.first_drawing
        wanted = first or (next((w for w in root.walk() if w.autofocus), None) if asked else None)
        for w in root.walk():
            w.autofocus = w is wanted
        return root

    def _padded(self, schema: dict, value: Any, depth: int) -> Any:
        """Return the data with every repeat filled up to its minimum rows (as the page shows them)."""
        if depth > MAX_DEPTH:
            return value
        kind = type_of(schema)
        if kind == "object" and isinstance(value, dict):
            props = schema.get("properties") or {}
            out = {k: self._padded(self.form.resolve(props[k]), v, depth + 1) if isinstance(props.get(k), dict)
                   else v for k, v in value.items()}
            for name, sub in props.items():
                sub = self.form.resolve(sub) if isinstance(sub, dict) else {}
                if name not in out and type_of(sub) == "array" and int(sub.get("minItems") or 0) > 0:
                    padded = self._padded(sub, [], depth + 1)
                    if padded:
                        out[name] = padded
            return out
        items = self.form.resolve(schema.get("items") or {}) if isinstance(schema.get("items"), dict) else {}
        if kind == "array" and type_of(items) == "object" and not options_of(items, {}):
            rows = list(value) if isinstance(value, list) else []
            rows += [{}] * max(0, int(schema.get("minItems") or 0) - len(rows))
            return [self._padded(items, r, depth + 1) for r in rows]
        return value

    # -- building ---------------------------------------------------------------------------

    def _field(self, schema: dict, ui: dict, path: tuple, value: Any, required: bool) -> Widget:
        schema = self.form.resolve(schema)
        where = pointer(path)
        if len(path) > MAX_DEPTH:
            log.warning("form nests deeper than %d at %s: not drawn further", MAX_DEPTH, where)
            return Widget(path=path, widget="group", title=str(path[-1]), name=where, id=dom_id(where))
        widget = choose_widget(schema, ui, where)
        if widget in ("group", "geolocation"):
            w = self._object(schema, ui, path, value, required)
            w.widget = widget
        elif widget == "repeat":
            w = self._repeat(schema, ui, path, value, required)
        else:
            w = self._leaf(schema, ui, path, value, required, widget)
        w.error = self.context.errors.get(where) or w.error
        return w

    def _base(self, schema: dict, ui: dict, path: tuple, widget: str, required: bool) -> Widget:
        name = pointer(path)
        options = ui.get("ui:options") if isinstance(ui.get("ui:options"), dict) else {}
        title = ui.get("ui:title") or schema.get("title") or (str(path[-1]) if path else "")
        w = Widget(path=path, widget=widget, title=title, name=name, id=dom_id(name) if path else "f-root",
                   description=ui.get("ui:description") or schema.get("description"),
                   help=ui.get("ui:help"), placeholder=ui.get("ui:placeholder"), required=required,
                   readonly=bool(ui.get("ui:readonly") or schema.get("readOnly") or self.context.readonly),
                   disabled=bool(ui.get("ui:disabled")), autofocus=bool(ui.get("ui:autofocus")),
                   show_label=options.get("label", True) is not False and ui.get("ui:label", True) is not False,
                   inline=bool(options.get("inline")))
        w.watched = bool(path) and isinstance(path[-1], str) and path[-1] in self.form.watched
        w.conditional = isinstance(ui.get("ui:visibleWhen"), dict)
        return w

    def _object(self, schema: dict, ui: dict, path: tuple, value: Any, required: bool) -> Widget:
        w = self._base(schema, ui, path, "group", required)
        value = value if isinstance(value, dict) else {}
        props = schema.get("properties") or {}
        needed = set(schema.get("required") or [])
        for name in ordered(list(props), ui.get("ui:order"), pointer(path)):
            sub_path = path + (name,)
            if sub_path in self.context.hidden:
                continue
            sub_ui = ui.get(name) if isinstance(ui.get(name), dict) else {}
            w.children.append(self._field(props[name], sub_ui, sub_path, value.get(name), name in needed))
        return w

    def _repeat(self, schema: dict, ui: dict, path: tuple, value: Any, required: bool) -> Widget:
        w = self._base(schema, ui, path, "repeat", required)
        options = ui.get("ui:options") if isinstance(ui.get("ui:options"), dict) else {}
        items = self.form.resolve(schema.get("items") or {})
        items_ui = ui.get("items") if isinstance(ui.get("items"), dict) else {}
        rows = list(value) if isinstance(value, list) else []
        w.min_rows = int(schema.get("minItems") or 0)
        w.max_rows = min(int(schema.get("maxItems", HARD_MAX_ROWS)), HARD_MAX_ROWS)
        while len(rows) < w.min_rows:
            rows.append(None)
        readonly = w.readonly or w.disabled
        w.can_add = options.get("addable", True) is not False and len(rows) < w.max_rows and not readonly
        w.can_remove = options.get("removable", True) is not False and len(rows) > w.min_rows and not readonly
        w.can_move = options.get("orderable", True) is not False and len(rows) > 1 and not readonly
        row_title = items_ui.get("ui:title") or items.get("title") or w.title
        for i, row in enumerate(rows[:w.max_rows]):
            child = self._field(items, items_ui, path + (i,), row, True)
            child.index = i
            child.title = f"{row_title} {i + 1}"
            w.children.append(child)
        return w

    def _leaf(self, schema: dict, ui: dict, path: tuple, value: Any, required: bool, widget: str) -> Widget:
        w = self._base(schema, ui, path, widget, required)
        w.value = value
        kind = type_of(schema)
        if kind == "array":
            w.multiple = True
            items = self.form.resolve(schema.get("items") or {})
            chosen = value if isinstance(value, list) else []
            w.value = chosen
            items_ui = ui.get("items") if isinstance(ui.get("items"), dict) else {}
            if "ui:enumNames" in ui and "ui:enumNames" not in items_ui:
                items_ui = {**items_ui, "ui:enumNames": ui["ui:enumNames"]}  # where RJSF reads it
            choices = options_of(items, items_ui) or []
            w.options = [Option(html_value(v), label, any(_same(v, c) for c in chosen)) for v, label in choices]
            w.min_rows = int(schema.get("minItems") or 0)
            w.max_rows = int(schema.get("maxItems", HARD_MAX_ROWS))
            if widget in ("file", "photo", "signature"):
                self._file_attrs(w, ui, widget)
            return w
        choices = options_of(schema, ui)
        if kind == "boolean" and not choices:
            choices = [(True, "是"), (False, "否")]
        if choices is not None:
            w.options = [Option(html_value(v), label, _same(v, value)) for v, label in choices]
        w.text = html_value(value)
        if widget in ("file", "photo", "signature"):
            self._file_attrs(w, ui, widget)
        else:
            self._input_attrs(w, schema, ui, kind, widget)
        if widget == "grid" and self.context.grid_choices is not None:
            w.options = [Option(code, label, code == value) for code, label in self.context.grid_choices]
        return w

    def _input_attrs(self, w: Widget, schema: dict, ui: dict, kind: str | None, widget: str) -> None:
        a = w.attrs
        options = ui.get("ui:options") if isinstance(ui.get("ui:options"), dict) else {}
        a["type"] = options.get("inputType") if isinstance(options.get("inputType"), str) else INPUT_TYPES.get(
            widget, "text")
        if widget in ("number", "integer") or kind in ("number", "integer"):
            for key, attr in (("minimum", "min"), ("maximum", "max")):
                if isinstance(schema.get(key), int | float):
                    a[attr] = html_value(schema[key])
            step = schema.get("multipleOf")
            a["step"] = html_value(step) if isinstance(step, int | float) else ("1" if kind == "integer" else "any")
            a["inputmode"] = "numeric" if kind == "integer" else "decimal"
        if kind == "string" or kind is None:
            for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
                if isinstance(schema.get(key), int):
                    a[attr] = schema[key]
            if isinstance(schema.get("pattern"), str) and _html_pattern(schema["pattern"]):
                a["pattern"] = _html_pattern(schema["pattern"])
        if widget == "phone":
            a.update(inputmode="numeric", autocomplete="tel", maxlength=11, pattern="1[3-9][0-9]{9}")
        elif widget == "idcard":
            a.update(autocapitalize="characters", autocomplete="off", maxlength=18, spellcheck="false",
                     pattern="[0-9]{17}[0-9Xx]")
        elif widget == "textarea":
            rows = options.get("rows")
            a["rows"] = rows if isinstance(rows, int) and 1 <= rows <= 30 else 3
            a.pop("type", None)
        if schema.get("format") == "date-time" and isinstance(w.value, str):
            w.text = w.value[:16]  # datetime-local shows minutes

    def _file_attrs(self, w: Widget, ui: dict, widget: str) -> None:
        options = ui.get("ui:options") if isinstance(ui.get("ui:options"), dict) else {}
        accept = options.get("accept")
        if widget == "photo":
            w.attrs["accept"] = accept if isinstance(accept, str) else "image/*"
            w.attrs["capture"] = "environment"
        elif isinstance(accept, str):
            w.attrs["accept"] = accept
        w.multiple = w.multiple or False


def _same(a: Any, b: Any) -> bool:
    from .conditions import same

    return same(a, b)


def _html_pattern(pattern: str) -> str | None:
    """Return a JSON Schema pattern usable in HTML's `pattern` (which must match the whole value).

    JSON Schema patterns search anywhere; HTML anchors them. Only a pattern anchored at both ends
    means the same in both, so only those are passed on (without their anchors).
    """
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[1:-1]
    return None


def defaults(form: CompiledForm, schema: dict | None = None, depth: int = 0) -> Any:
    """Collect the `default` values a schema declares, as the data a new form starts with."""
    schema = form.resolve(form.schema if schema is None else schema)
    if "default" in schema:
        return schema["default"]
    if depth > 16 or not isinstance(schema.get("properties"), dict):
        return None
    out = {}
    for name, sub in schema["properties"].items():
        value = defaults(form, sub, depth + 1) if isinstance(sub, dict) else None
        if value is not None and value != {}:
            out[name] = value
    return out
