"""The form builder's model: fields as rows of plain settings, to and from JSON Schema + ui."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

# What an administrator picks, with its label; each maps to a schema shape and a widget.
KINDS: dict[str, str] = {
    "text": "单行文字", "textarea": "多行文字", "integer": "整数", "number": "数字",
    "date": "日期", "datetime": "日期和时间", "time": "时间",
    "select": "下拉单选", "radio": "单选（平铺）", "checkboxes": "多选", "yesno": "是/否",
    "phone": "手机号", "idcard": "身份证号", "photo": "照片", "file": "附件",
    "location": "定位", "grid": "网格", "group": "分组", "repeat": "重复组（可加多行）",
}
OPTION_KINDS = {"select", "radio", "checkboxes"}
TEXT_KINDS = {"text", "textarea"}
FORMATS = {"date": "date", "datetime": "date-time", "time": "time", "phone": "cn-mobile",
           "idcard": "cn-id-card", "grid": "grid-code"}
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# Condition operators a row offers, with their labels.
OPERATORS: dict[str, str] = {
    "eq": "等于", "ne": "不等于", "in": "是其中之一", "contains": "包含",
    "gt": "大于", "gte": "不少于", "lt": "小于", "lte": "不多于", "filled": "已填写", "empty": "未填写",
}
BOUNDS = {"gt": "exclusiveMinimum", "gte": "minimum", "lt": "exclusiveMaximum", "lte": "maximum"}


class BuildError(ValueError):
    """A builder operation that cannot be done, with the reason in Chinese."""


Path = tuple[str, ...]


# -- walking the definition ---------------------------------------------------------------------

def _container(schema: dict) -> dict:
    """The object schema whose properties are a field's children (a repeat's item object)."""
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return schema["items"]
    return schema


def _ui_container(ui: dict, schema: dict) -> dict:
    if schema.get("type") == "array":
        return ui.setdefault("items", {})
    return ui


def locate(form: dict, path: Path, create_ui: bool = True) -> tuple[dict, dict, dict, dict]:
    """Find a field: (parent object schema, parent ui, field schema, field ui)."""
    schema, ui = form.setdefault("schema", {"type": "object", "properties": {}}), form.setdefault("ui", {})
    parent, parent_ui = schema, ui
    for i, name in enumerate(path):
        props = parent.get("properties") or {}
        if name not in props:
            raise BuildError(f"找不到字段 {'/'.join(path[: i + 1])}")
        sub = props[name]
        sub_ui = parent_ui.setdefault(name, {}) if create_ui else parent_ui.get(name, {})
        if i == len(path) - 1:
            return parent, parent_ui, sub, sub_ui
        parent, parent_ui = _container(sub), _ui_container(sub_ui, sub)
    return {}, {}, schema, ui


def children_of(form: dict, path: Path) -> tuple[dict, dict]:
    """The object schema and ui holding the fields directly under `path` (() = the form)."""
    if not path:
        return form.setdefault("schema", {"type": "object", "properties": {}}), form.setdefault("ui", {})
    _, _, sub, sub_ui = locate(form, path)
    if kind_of(sub, sub_ui) not in ("group", "repeat"):
        raise BuildError("只有分组和重复组里可以再加字段")
    return _container(sub), _ui_container(sub_ui, sub)


def with_orders(doc: dict) -> dict:
    """Write every object's field order into its `ui:order` (a copy): PostgreSQL's jsonb keeps keys
    in its own order, so the order a definition was written in must be stated to survive storage."""
    out = copy.deepcopy(doc)

    def walk(schema: Any, ui: dict) -> None:
        if not isinstance(schema, dict):
            return
        if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            items = schema["items"]
            if isinstance(items.get("properties"), dict) and items["properties"]:
                walk(items, ui.setdefault("items", {}))
            return
        props = schema.get("properties")
        if not isinstance(props, dict) or not props or ui.get("ui:widget") == "geolocation":
            return
        ui["ui:order"] = order_of(schema, ui)
        for name, sub in props.items():
            if isinstance(sub, dict) and (sub.get("type") in ("object", "array")):
                holder = ui.get(name)
                if holder is None:
                    holder = {}
                if isinstance(holder, dict):
                    walk(sub, holder)
                    if holder:
                        ui[name] = holder

    if isinstance(out.get("schema"), dict):
        out.setdefault("ui", {})
        walk(out["schema"], out["ui"])
    for node in (out.get("nodes") or {}).values():
        for form in [node.get("form")] + [a.get("form") for a in node.get("actions") or [] if isinstance(a, dict)]:
            if isinstance(form, dict) and isinstance(form.get("schema"), dict):
                form.setdefault("ui", {})
                walk(form["schema"], form["ui"])
    return out


def order_of(schema: dict, ui: dict) -> list[str]:
    """Property names in display order (`ui:order`, `*` standing for the rest)."""
    names = list((schema.get("properties") or {}).keys())
    order = ui.get("ui:order")
    if not isinstance(order, list):
        return names
    listed = [n for n in order if n in names or n == "*"]
    rest = [n for n in names if n not in listed]
    if "*" in listed:
        i = listed.index("*")
        return listed[:i] + rest + listed[i + 1:]
    return listed + rest


def _options(schema: dict) -> list[dict] | None:
    holder = schema.get("items") if schema.get("type") == "array" else schema
    if not isinstance(holder, dict):
        return None
    for key in ("oneOf", "anyOf"):
        if isinstance(holder.get(key), list) and all(isinstance(o, dict) and "const" in o for o in holder[key]):
            return holder[key]
    return None


def kind_of(schema: dict, ui: dict) -> str:
    """The builder kind of a field (what the administrator sees in the type list)."""
    widget = ui.get("ui:widget")
    kind = schema.get("type")
    if kind == "object":
        return "location" if widget == "geolocation" else "group"
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if items.get("format") == "attachment":
            return "photo" if widget == "photo" else "file"
        if _options(schema) is not None or "enum" in items:
            return "checkboxes"
        return "repeat"
    if kind == "boolean":
        return "yesno"
    if kind in ("integer", "number"):
        return kind
    fmt = schema.get("format")
    for name, value in FORMATS.items():
        if fmt == value:
            return name
    if _options(schema) is not None or "enum" in schema:
        return "radio" if widget == "radio" else "select"
    return "textarea" if widget == "textarea" else "text"


@dataclass
class Row:
    """One field as the builder lists it."""

    path: Path
    key: str
    title: str
    kind: str
    required: bool
    conditional: bool
    sensitive: bool
    children: list[Row] = field(default_factory=list)

    @property
    def ident(self) -> str:
        return "/".join(self.path)

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)


def rows(form: dict, path: Path = ()) -> list[Row]:
    """The fields of a form (or of a group) as rows, in display order, groups with their children."""
    schema, ui = children_of(copy.deepcopy(form), path)
    required = set(schema.get("required") or [])
    out = []
    for name in order_of(schema, ui):
        sub = schema["properties"][name]
        sub_ui = ui.get(name) if isinstance(ui.get(name), dict) else {}
        kind = kind_of(sub, sub_ui)
        row = Row((*path, name), name, sub_ui.get("ui:title") or sub.get("title") or name, kind,
                  name in required, isinstance(sub_ui.get("ui:visibleWhen"), dict), bool(sub.get("x-sensitive")))
        if kind in ("group", "repeat"):
            row.children = rows(form, row.path)
        out.append(row)
    return out


def all_keys(form: dict) -> set[str]:
    """Every property name used anywhere in the form (new keys avoid them all)."""
    found: set[str] = set()

    def walk(schema: Any) -> None:
        if isinstance(schema, dict):
            for name, sub in (schema.get("properties") or {}).items():
                found.add(name)
                walk(sub)
            walk(schema.get("items"))

    walk(form.get("schema"))
    return found


def new_key(form: dict, prefix: str = "field") -> str:
    """A key not used in the form yet: field_1, field_2…"""
    taken, n = all_keys(form), 1
    while f"{prefix}_{n}" in taken:
        n += 1
    return f"{prefix}_{n}"


# -- shapes of each kind ------------------------------------------------------------------------

def shape(kind: str, title: str, options: list[dict] | None = None) -> tuple[dict, dict]:
    """The schema and ui of a new field of a kind."""
    if kind not in KINDS:
        raise BuildError(f"未知的字段类型 {kind}")
    opts = options if options is not None else [{"const": "o1", "title": "选项一"}, {"const": "o2", "title": "选项二"}]
    schema: dict[str, Any] = {"title": title}
    ui: dict[str, Any] = {}
    if kind in TEXT_KINDS:
        schema.update(type="string", maxLength=200 if kind == "text" else 2000)
        if kind == "textarea":
            ui["ui:widget"] = "textarea"
    elif kind in ("integer", "number"):
        schema["type"] = kind
    elif kind in FORMATS:
        schema.update(type="string", format=FORMATS[kind])
    elif kind in ("select", "radio"):
        schema.update(type="string", oneOf=opts)
        ui["ui:widget"] = kind
    elif kind == "checkboxes":
        schema.update(type="array", items={"type": "string", "oneOf": opts}, uniqueItems=True)
        ui["ui:widget"] = "checkboxes"
    elif kind == "yesno":
        schema["type"] = "boolean"
    elif kind in ("photo", "file"):
        schema.update(type="array", items={"type": "string", "format": "attachment"}, maxItems=9)
        ui["ui:widget"] = kind
    elif kind == "location":
        schema.update(type="object", properties={
            "latitude": {"type": "number", "minimum": -90, "maximum": 90, "title": "纬度"},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180, "title": "经度"},
            "accuracy": {"type": "number", "minimum": 0, "title": "精度（米）"},
        }, required=["latitude", "longitude"])
        ui["ui:widget"] = "geolocation"
    elif kind == "group":
        schema.update(type="object", properties={})
    elif kind == "repeat":
        schema.update(type="array", items={"type": "object", "properties": {}}, maxItems=50)
    return schema, ui


# -- operations ---------------------------------------------------------------------------------

def add_field(form: dict, parent: Path, kind: str, title: str | None = None, key: str | None = None,
              prefix: str = "field") -> tuple[dict, Path]:
    """Add a field at the end of the form or of a group; returns the new form and the field's path."""
    if kind not in KINDS:
        raise BuildError(f"未知的字段类型 {kind}")
    out = copy.deepcopy(form)
    schema, ui = children_of(out, parent)
    key = key or new_key(out, prefix)
    if not KEY.match(key):
        raise BuildError("字段标识只能用小写英文字母、数字和下划线，并以字母开头")
    props = schema.setdefault("properties", {})
    if key in props:
        raise BuildError(f"已有字段标识 {key}")
    props[key], sub_ui = shape(kind, title or KINDS[kind])
    if sub_ui:
        ui[key] = sub_ui
    order = order_of(schema, ui)
    ui["ui:order"] = order
    return out, (*parent, key)


def remove_field(form: dict, path: Path) -> dict:
    """Remove a field (and its required flag, ui and place in the order)."""
    using = dependents(form, path)
    if using:
        raise BuildError("「" + "」「".join(using) + "」的显示条件用到了这个字段，请先修改那些条件再删除")
    out = copy.deepcopy(form)
    parent, parent_ui, _, _ = locate(out, path)
    name = path[-1]
    del parent["properties"][name]
    if len(path) == 1 and isinstance(out["ui"].get("ui:columns"), list):
        out["ui"]["ui:columns"] = [n for n in out["ui"]["ui:columns"] if n != name]
    parent_ui.pop(name, None)
    if name in (parent.get("required") or []):
        parent["required"] = [n for n in parent["required"] if n != name]
        if not parent["required"]:
            del parent["required"]
    if isinstance(parent_ui.get("ui:order"), list):
        parent_ui["ui:order"] = [n for n in parent_ui["ui:order"] if n != name]
    return out


def move_field(form: dict, path: Path, index: int) -> dict:
    """Move a field to a position among its siblings (0 first; beyond the end: last)."""
    out = copy.deepcopy(form)
    parent, parent_ui, _, _ = locate(out, path)
    order = [n for n in order_of(parent, parent_ui) if n != path[-1]]
    index = max(0, min(index, len(order)))
    order.insert(index, path[-1])
    parent_ui["ui:order"] = order
    return out


def position(form: dict, path: Path) -> tuple[int, int]:
    """A field's index among its siblings and their number."""
    parent, parent_ui, _, _ = locate(copy.deepcopy(form), path)
    order = order_of(parent, parent_ui)
    return order.index(path[-1]), len(order)


# -- conditions that look at a field -------------------------------------------------------------

def _visible_holders(form: dict) -> list[tuple[Path, dict]]:
    """Every field ui that carries a condition, with the field's path."""
    out: list[tuple[Path, dict]] = []

    def walk(schema: Any, ui: Any, at: Path) -> None:
        if not isinstance(schema, dict) or not isinstance(ui, dict):
            return
        if schema.get("type") == "array":
            walk(schema.get("items"), ui.get("items"), at)
            return
        for name, sub in (schema.get("properties") or {}).items():
            sub_ui = ui.get(name)
            if isinstance(sub_ui, dict):
                if isinstance(sub_ui.get("ui:visibleWhen"), dict):
                    out.append(((*at, name), sub_ui))
                walk(sub, sub_ui, (*at, name))

    walk(form.get("schema"), form.get("ui"), ())
    return out


def _walk_condition(cond: Any, path: Path, visit) -> None:
    """Call visit(schema, name) where a condition looks at the field `path` (from the data's root)."""
    if not isinstance(cond, dict):
        return
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in cond.get(key) or []:
            _walk_condition(sub, path, visit)
    for key in ("not", "if", "then", "else"):
        _walk_condition(cond.get(key), path, visit)
    if len(path) == 1:
        visit(cond, path[0])
    elif isinstance(cond.get("properties"), dict) and path[0] in cond["properties"]:
        _walk_condition(cond["properties"][path[0]], path[1:], visit)


def dependents(form: dict, path: Path) -> list[str]:
    """Titles of the fields whose condition looks at a field (or inside it)."""
    out = []
    for where, ui in _visible_holders(form):
        if where[: len(path)] == path:
            continue
        found = []

        def seen(schema: dict, name: str, found=found) -> None:
            if name in (schema.get("properties") or {}) or name in (schema.get("required") or []):
                found.append(name)

        _walk_condition(ui["ui:visibleWhen"], path, seen)
        if found:
            _, _, sub, sub_ui = locate(copy.deepcopy(form), where)
            out.append(sub_ui.get("ui:title") or sub.get("title") or where[-1])
    return out


def _rename_in_conditions(form: dict, path: Path, key: str) -> None:
    def rename(schema: dict, name: str) -> None:
        props = schema.get("properties")
        if isinstance(props, dict) and name in props:
            schema["properties"] = {(key if n == name else n): v for n, v in props.items()}
        if isinstance(schema.get("required"), list):
            schema["required"] = [key if n == name else n for n in schema["required"]]

    for _, ui in _visible_holders(form):
        _walk_condition(ui["ui:visibleWhen"], path, rename)


# -- settings of one field ----------------------------------------------------------------------

def settings(form: dict, path: Path) -> dict:
    """A field's settings as the builder's panel shows them."""
    parent, _, schema, ui = locate(copy.deepcopy(form), path)
    kind = kind_of(schema, ui)
    holder = schema.get("items") if kind == "checkboxes" else schema
    out: dict[str, Any] = {
        "key": path[-1], "kind": kind, "title": schema.get("title", ""),
        "description": schema.get("description", ""), "help": ui.get("ui:help", ""),
        "placeholder": ui.get("ui:placeholder", ""), "required": path[-1] in (parent.get("required") or []),
        "sensitive": bool(schema.get("x-sensitive")), "default": schema.get("default"),
        "options": [{"value": o["const"], "label": o.get("title", str(o["const"]))} for o in _options(schema) or []],
        "min_length": schema.get("minLength"), "max_length": schema.get("maxLength"),
        "minimum": schema.get("minimum"), "maximum": schema.get("maximum"),
        "min_items": schema.get("minItems"), "max_items": schema.get("maxItems"),
        "rows": (ui.get("ui:options") or {}).get("rows") if isinstance(ui.get("ui:options"), dict) else None,
        "visible": parse_condition(ui.get("ui:visibleWhen")),
    }
    if not out["options"] and isinstance(holder, dict) and isinstance(holder.get("enum"), list):
        names = ui.get("ui:enumNames") or (ui.get("items") or {}).get("ui:enumNames") or []
        out["options"] = [{"value": v, "label": names[i] if i < len(names) else str(v)}
                          for i, v in enumerate(holder["enum"])]
    return out


def _set(d: dict, key: str, value: Any) -> None:
    if value is None or value == "" or value == []:
        d.pop(key, None)
    else:
        d[key] = value


def apply_settings(form: dict, path: Path, new: dict) -> tuple[dict, Path]:
    """Write a field's settings back (type, label, help, limits, options, condition…); returns form and path."""
    out = copy.deepcopy(form)
    parent, parent_ui, schema, ui = locate(out, path)
    old_kind = kind_of(schema, ui)
    kind = new.get("kind") or old_kind
    if kind not in KINDS:
        raise BuildError(f"未知的字段类型 {kind}")
    title = (new.get("title") or "").strip() or schema.get("title") or path[-1]
    if kind != old_kind:
        options = _clean_options(new.get("options")) or _options(schema) or None
        fresh, fresh_ui = shape(kind, title, options if kind in OPTION_KINDS else None)
        for keep in ("description", "x-sensitive", "default") if kind in TEXT_KINDS | {"yesno"} else ("description",):
            if keep in schema:
                fresh[keep] = schema[keep]
        if kind in ("group", "repeat") and old_kind in ("group", "repeat"):
            inner = _container(schema)
            target = _container(fresh)
            target["properties"] = inner.get("properties", {})
            _set(target, "required", inner.get("required"))
        schema.clear()
        schema.update(fresh)
        children_ui = _take_children_ui(ui, old_kind)
        for k in [k for k in ui if k.startswith("ui:") and k != "ui:visibleWhen"]:
            del ui[k]
        ui.update(fresh_ui)
        if kind == "group":
            ui.update(children_ui)
        elif kind == "repeat" and children_ui:
            ui["items"] = children_ui
    schema["title"] = title
    _set(schema, "description", (new.get("description") or "").strip())
    _set(ui, "ui:help", (new.get("help") or "").strip())
    _set(ui, "ui:placeholder", (new.get("placeholder") or "").strip())
    _set(schema, "x-sensitive", True if new.get("sensitive") else None)
    if kind in OPTION_KINDS and "options" in new and (kind == old_kind or new["options"]):
        options = _clean_options(new["options"])
        if not options:
            raise BuildError("选项不能为空，请至少留一个选项")
        (schema["items"] if kind == "checkboxes" else schema)["oneOf"] = options
        for holder in (schema, schema.get("items") or {}):
            if isinstance(holder, dict) and "enum" in holder:
                del holder["enum"]
        ui.pop("ui:enumNames", None)
    _limits(schema, ui, kind, new)
    _default(schema, kind, new.get("default"))
    values = [o["const"] for o in _options(schema) or []]
    if values and "default" in schema and schema["default"] not in values:
        del schema["default"]
    condition = new.get("visible")
    if condition is not None:
        _set(ui, "ui:visibleWhen", build_condition(out, condition))
    required = list(parent.get("required") or [])
    if new.get("required") and path[-1] not in required:
        required.append(path[-1])
    elif not new.get("required"):
        required = [n for n in required if n != path[-1]]
    _set(parent, "required", required)
    new_key = (new.get("key") or path[-1]).strip()
    if new_key != path[-1]:
        out = rename(out, path, new_key)
        path = (*path[:-1], new_key)
    _tidy(out, path)
    return out, path


def _take_children_ui(ui: dict, kind: str) -> dict:
    """Remove and return the ui of a group's or repeat's own fields (and their order)."""
    if kind == "repeat":
        return ui.pop("items", None) or {}
    if kind == "group":
        taken = {k: ui.pop(k) for k in [k for k in ui if not k.startswith("ui:") or k == "ui:order"]}
        return taken
    return {}


def _tidy(form: dict, path: Path) -> None:
    """Drop a field's empty ui entry."""
    _, parent_ui, _, ui = locate(form, path)
    if not ui:
        parent_ui.pop(path[-1], None)


def _number(value: Any, kind: str = "number") -> int | float | None:
    if value is None or value == "":
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise BuildError(f"“{value}”不是数字") from None
    if kind == "integer" and not number.is_integer():
        raise BuildError(f"“{value}”不是整数")
    if number.is_integer():
        return int(number)
    return number


def _limits(schema: dict, ui: dict, kind: str, new: dict) -> None:
    if kind in TEXT_KINDS:
        _set(schema, "minLength", _number(new.get("min_length"), "integer"))
        _set(schema, "maxLength", _number(new.get("max_length"), "integer"))
        if kind == "textarea":
            rows = _number(new.get("rows"), "integer")
            options = ui.get("ui:options") if isinstance(ui.get("ui:options"), dict) else {}
            _set(options, "rows", rows)
            _set(ui, "ui:options", options or None)
    elif kind in ("integer", "number"):
        _set(schema, "minimum", _number(new.get("minimum"), kind))
        _set(schema, "maximum", _number(new.get("maximum"), kind))
    elif kind in ("checkboxes", "photo", "file", "repeat"):
        _set(schema, "minItems", _number(new.get("min_items"), "integer"))
        _set(schema, "maxItems", _number(new.get("max_items"), "integer"))
    for low, high, label in (("minLength", "maxLength", "字数"), ("minimum", "maximum", "数值"),
                             ("minItems", "maxItems", "个数")):
        if low in schema and high in schema and schema[low] > schema[high]:
            raise BuildError(f"{label}的下限不能大于上限")


def _default(schema: dict, kind: str, value: Any) -> None:
    if kind not in TEXT_KINDS | {"integer", "number", "yesno", "select", "radio"}:
        schema.pop("default", None)
        return
    if value is None or value == "":
        schema.pop("default", None)
    elif kind in ("integer", "number"):
        schema["default"] = _number(value, kind)
    elif kind == "yesno":
        schema["default"] = value in (True, "true", "1", "是")
    else:
        schema["default"] = str(value)


def _clean_options(options: Any) -> list[dict]:
    out, seen = [], set()
    for i, o in enumerate(options or []):
        label = str(o.get("label") or "").strip()
        if not label:
            continue
        value = o.get("value")
        if value in (None, ""):
            n = i + 1
            while f"o{n}" in seen or any(x.get("value") == f"o{n}" for x in options):
                n += 1
            value = f"o{n}"
        if value in seen:
            raise BuildError(f"选项值 {value} 重复")
        seen.add(value)
        out.append({"const": value, "title": label})
    return out


def rename(form: dict, path: Path, key: str) -> dict:
    """Give a field a new key (its required flag, ui and place in the order follow)."""
    if not KEY.match(key):
        raise BuildError("字段标识只能用小写英文字母、数字和下划线，并以字母开头")
    out = copy.deepcopy(form)
    parent, parent_ui, _, _ = locate(out, path)
    old = path[-1]
    if key in parent["properties"]:
        raise BuildError(f"已有字段标识 {key}")
    parent["properties"] = {(key if n == old else n): v for n, v in parent["properties"].items()}
    if old in parent_ui:
        parent_ui[key] = parent_ui.pop(old)
    if parent.get("required"):
        parent["required"] = [key if n == old else n for n in parent["required"]]
    if isinstance(parent_ui.get("ui:order"), list):
        parent_ui["ui:order"] = [key if n == old else n for n in parent_ui["ui:order"]]
    if len(path) == 1 and isinstance(out["ui"].get("ui:columns"), list):
        out["ui"]["ui:columns"] = [key if n == old else n for n in out["ui"]["ui:columns"]]
    _rename_in_conditions(out, path, key)
    if parent_ui.get(key) == {}:
        del parent_ui[key]
    return out


# -- conditions as rows -------------------------------------------------------------------------

def condition_fields(form: dict) -> list[tuple[str, str, dict]]:
    """Fields a condition may look at (not inside repeats): (path 'a/b', label, schema)."""
    out = []

    def walk(schema: dict, ui: dict, at: Path, label: str) -> None:
        for name in order_of(schema, ui):
            sub = schema["properties"][name]
            sub_ui = ui.get(name) if isinstance(ui.get(name), dict) else {}
            kind = kind_of(sub, sub_ui)
            title = (label + " › " if label else "") + (sub.get("title") or name)
            if kind == "group":
                walk(sub, sub_ui, (*at, name), title)
            elif kind not in ("repeat", "photo", "file", "location"):
                out.append(("/".join((*at, name)), title, sub))

    walk(form.get("schema") or {}, form.get("ui") or {}, (), "")
    return out


def _typed(value: Any, schema: dict) -> Any:
    kind = schema.get("type")
    if kind == "array":
        kind = (schema.get("items") or {}).get("type")
    if kind == "boolean":
        if value in (True, False):
            return value
        return str(value).strip() in ("true", "是", "1")
    if kind in ("integer", "number"):
        return _number(value, kind)
    return value if isinstance(value, str) else str(value)


def _row_schema(row: dict, fields: dict[str, dict]) -> dict:
    target = row.get("field") or ""
    if target not in fields:
        raise BuildError(f"条件里的字段 {target or '（未选）'} 不存在")
    op = row.get("op") or "eq"
    if op not in OPERATORS:
        raise BuildError(f"未知的条件 {op}")
    schema = fields[target]
    value = row.get("value")
    if op in ("eq", "ne"):
        test: dict = {"const": _typed(value, schema)}
    elif op == "in":
        values = value if isinstance(value, list) else [v for v in str(value or "").replace("，", ",").split(",") if v]
        test = {"enum": [_typed(v, schema) for v in values]}
    elif op == "contains":
        test = {"contains": {"const": _typed(value, schema)}}
    elif op in BOUNDS:
        test = {BOUNDS[op]: _typed(value, schema)}
    else:
        test = {}
    parts = target.split("/")
    inner: dict = {"not": test} if op == "ne" else test
    out: dict = {"properties": {parts[-1]: inner}, "required": [parts[-1]]}
    for name in reversed(parts[:-1]):
        out = {"properties": {name: out}, "required": [name]}
    return {"not": out} if op == "empty" else out


def build_condition(form: dict, condition: dict) -> dict | None:
    """Turn condition rows {"mode": all|any, "rows": [{field, op, value}]} into a JSON-Schema condition.

    A condition the rows cannot express ({"raw": …}) is kept as it is.
    """
    if condition.get("raw") is not None:
        return condition["raw"]
    fields = {path: schema for path, _, schema in condition_fields(form)}
    for row in condition.get("rows") or []:
        target = row.get("field") or ""
        if target and target not in fields:  # a field conditions do not offer (now a photo…): as it is
            parts, scratch = tuple(target.split("/")), copy.deepcopy(form)
            try:
                inside_rows = any(locate(scratch, parts[:i], create_ui=False)[2].get("type") == "array"
                                  for i in range(1, len(parts)))
                if not inside_rows:
                    fields[target] = locate(scratch, parts, create_ui=False)[2]
            except BuildError:
                pass
    parts = [_row_schema(row, fields) for row in condition.get("rows") or [] if row.get("field")]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"anyOf" if condition.get("mode") == "any" else "allOf": parts}


def _parse_row(schema: Any, at: Path = ()) -> dict | None:
    if not isinstance(schema, dict):
        return None
    if set(schema) == {"not"} and isinstance(schema["not"], dict) and set(schema["not"]) == {"required"}:
        names = schema["not"]["required"]
        if len(names) == 1:
            return {"field": "/".join((*at, names[0])), "op": "empty", "value": ""}
        return None
    if not at and set(schema) == {"not"}:
        inner = _parse_row(schema["not"])
        if inner is not None and inner["op"] == "filled":
            return {**inner, "op": "empty"}
        return None
    props, required = schema.get("properties"), schema.get("required")
    if set(schema) != {"properties", "required"} or not isinstance(props, dict) or len(props) != 1:
        return None
    (name, test), = props.items()
    if required != [name] or not isinstance(test, dict):
        return None
    where = (*at, name)
    if set(test) <= {"properties", "required", "not"} and ("properties" in test or "not" in test) \
            and not (set(test) == {"not"} and "const" in test.get("not", {})):
        return _parse_row(test, where)
    return _parse_test(test, "/".join(where))


def _parse_test(test: dict, target: str) -> dict | None:
    if not test:
        return {"field": target, "op": "filled", "value": ""}
    if set(test) == {"const"}:
        return {"field": target, "op": "eq", "value": test["const"]}
    if set(test) == {"not"} and isinstance(test["not"], dict) and set(test["not"]) == {"const"}:
        return {"field": target, "op": "ne", "value": test["not"]["const"]}
    if set(test) == {"enum"} and isinstance(test["enum"], list):
        return {"field": target, "op": "in", "value": test["enum"]}
    if set(test) == {"contains"} and isinstance(test["contains"], dict) and set(test["contains"]) == {"const"}:
        return {"field": target, "op": "contains", "value": test["contains"]["const"]}
    if len(test) == 1:
        (word, value), = test.items()
        for op, bound in BOUNDS.items():
            if word == bound:
                return {"field": target, "op": op, "value": value}
    return None


def parse_condition(condition: Any) -> dict | None:
    """Read a JSON-Schema condition back into rows; one the rows cannot show comes back as {"raw": …}."""
    if condition is None:
        return None
    mode, parts = "all", [condition]
    if isinstance(condition, dict) and len(condition) == 1 and next(iter(condition)) in ("allOf", "anyOf"):
        mode = "any" if "anyOf" in condition else "all"
        parts = condition["allOf" if mode == "all" else "anyOf"]
    found = [_parse_row(p) for p in parts] if isinstance(parts, list) else [None]
    if any(r is None for r in found):
        return {"mode": "all", "rows": [], "raw": condition}
    return {"mode": mode, "rows": found, "raw": None}


def describe_condition(form: dict, condition: Any) -> str:
    """Say a condition in Chinese, e.g. 当 是否存在矛盾纠纷 等于 是 时显示."""
    parsed = parse_condition(condition)
    if parsed is None:
        return ""
    if parsed.get("raw") is not None:
        return "按自定义条件显示"
    labels = {path: (label, schema) for path, label, schema in condition_fields(form)}
    parts = []
    for row in parsed["rows"]:
        label, schema = labels.get(row["field"], (row["field"], {}))
        value = row["value"]
        shown = _value_label(schema, value)
        if row["op"] in ("filled", "empty"):
            parts.append(f"{label} {OPERATORS[row['op']]}")
        else:
            parts.append(f"{label} {OPERATORS[row['op']]} {shown}")
    joiner = " 或 " if parsed["mode"] == "any" else " 且 "
    return "当 " + joiner.join(parts) + " 时显示"


def _value_label(schema: dict, value: Any) -> str:
    if isinstance(value, list):
        return "、".join(_value_label(schema, v) for v in value)
    if isinstance(value, bool):
        return "是" if value else "否"
    for o in _options(schema) or []:
        if o.get("const") == value:
            return str(o.get("title", value))
    return str(value)


def value_choices(schema: dict) -> list[tuple[Any, str]]:
    """The values a condition row may pick for a field (options, 是/否), or [] for free input."""
    if schema.get("type") == "boolean":
        return [(True, "是"), (False, "否")]
    return [(o["const"], str(o.get("title", o["const"]))) for o in _options(schema) or []]
