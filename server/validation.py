"""Form validation: compiled validators, visibility conditions, errors in Chinese by field title."""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.validators import extend
from referencing import Registry

from .conditions import Predicate, compile_condition, same
from .formats import format_checker

log = logging.getLogger(__name__)

TYPE_NAMES = {
    "string": "文本",
    "integer": "整数",
    "number": "数字",
    "boolean": "是或否",
    "array": "列表",
    "object": "一组字段",
    "null": "空值",
}

FORMAT_MESSAGES = {
    "date": "「{title}」应为有效日期，如 2024-05-01",
    "time": "「{title}」应为有效时间，如 09:30",
    "date-time": "「{title}」应为有效的日期和时间，如 2024-05-01T09:30",
    "email": "「{title}」应为有效的电子邮箱地址",
    "cn-mobile": "「{title}」应为11位手机号码",
    "cn-id-card": "「{title}」不是有效的18位身份证号码（请核对出生日期和最后一位校验码）",
    "grid-code": "「{title}」不是有效的网格编码",
    "attachment": "「{title}」不是有效的附件，请重新上传",
}

MESSAGES = {
    "required": "「{title}」为必填项",
    "type": "「{title}」应为{expected}",
    "minimum": "「{title}」不能小于 {limit}",
    "maximum": "「{title}」不能大于 {limit}",
    "exclusiveMinimum": "「{title}」必须大于 {limit}",
    "exclusiveMaximum": "「{title}」必须小于 {limit}",
    "multipleOf": "「{title}」必须是 {limit} 的整数倍",
    "minLength": "「{title}」至少需要 {limit} 个字",
    "maxLength": "「{title}」最多 {limit} 个字",
    "pattern": "「{title}」的格式不正确",
    "enum": "「{title}」只能从以下选项中选择：{options}",
    "const": "「{title}」只能是「{options}」",
    "oneOf": "「{title}」只能从以下选项中选择：{options}",
    "oneOf_shape": "「{title}」不符合任何一种允许的填写方式",
    "anyOf": "「{title}」不符合任何一种允许的填写方式",
    "minItems": "「{title}」至少需要 {limit} 项",
    "maxItems": "「{title}」最多 {limit} 项",
    "uniqueItems": "「{title}」中有重复的项",
    "additionalProperties": "表单中没有「{name}」这一项，请删除",
    "unevaluatedProperties": "表单中没有「{name}」这一项，请删除",
    "minProperties": "「{title}」至少需要填写 {limit} 项",
    "maxProperties": "「{title}」最多填写 {limit} 项",
    "not": "「{title}」的值不被允许",
    "contains": "「{title}」缺少必需的项",
    "fallback": "「{title}」的值不符合要求",
}

ROOT_TITLE = "表单"


def _multiple_of(validator, divisor, instance, schema):
    """Check multipleOf exactly in decimal, so 19.99 is a multiple of 0.01."""
    if not validator.is_type(instance, "number"):
        return
    try:
        remainder = Decimal(str(instance)) % Decimal(str(divisor))
    except (InvalidOperation, ValueError):
        remainder = Decimal(1)
    if remainder != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


LABEL_KEYS = frozenset({"const", "title", "description", "$comment"})
_one_of = Draft202012Validator.VALIDATORS["oneOf"]


def _labelled_one_of(validator, options, instance, schema):
    """Check labelled options (`oneOf` of `const` + `title`) by comparing values directly.

    The same verdict as JSON Schema's oneOf, without building an error for every option that does
    not match: forms are full of these lists, and that waste was most of a form's validation time.
    """
    if all(isinstance(o, dict) and "const" in o and LABEL_KEYS.issuperset(o) for o in options):
        if sum(1 for o in options if same(instance, o["const"])) != 1:
            yield ValidationError(f"{instance!r} is not one of the options")
        return
    yield from _one_of(validator, options, instance, schema)


FormValidator = extend(Draft202012Validator, {"multipleOf": _multiple_of, "oneOf": _labelled_one_of})

# An empty registry: a `$ref` that is not inside the schema fails; nothing is ever fetched.
NO_REMOTE = Registry()


def make_validator(schema: dict) -> Draft202012Validator:
    """Compile a validator for a schema with our formats and no remote references."""
    return FormValidator(schema, format_checker=format_checker(), registry=NO_REMOTE)


@dataclass(frozen=True)
class FieldError:
    """One problem a person can fix: where (JSON Pointer) and what (Chinese)."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass
class Result:
    """The data as kept (hidden fields dropped) and the errors found in it."""

    data: Any
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def pointer(parts) -> str:
    """Turn path parts into a JSON Pointer."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def show_value(value: Any) -> str:
    """Show a value as a person reads it: 是/否 for booleans, text as it is, JSON otherwise."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _options(schema: dict, ui: dict) -> list[tuple[Any, str]]:
    """List (value, label) of a field's options: oneOf const/title, or enum with ui:enumNames."""
    if "oneOf" in schema and all(isinstance(o, dict) and "const" in o for o in schema["oneOf"]):
        return [(o["const"], o.get("title", show_value(o["const"]))) for o in schema["oneOf"]]
    if "enum" in schema:
        names = ui.get("ui:enumNames") or []
        return [
            (v, names[i] if i < len(names) else show_value(v)) for i, v in enumerate(schema["enum"])
        ]
    if "const" in schema:
        return [(schema["const"], show_value(schema["const"]))]
    return []


class CompiledForm:
    """A form version ready to validate: compiled once, kept in memory, shared by threads."""

    def __init__(self, schema: dict, ui: dict | None = None):
        self.schema = schema
        self.schema_text = json.dumps(schema, ensure_ascii=False)
        self.ui = ui or {}
        self.validator = make_validator(closed(schema))
        self.conditions: list[tuple[tuple, Predicate]] = []
        self._compiled_conditions: dict[str, Predicate] = {}
        self.watched: set[str] = set()  # field names some condition looks at
        self._looks_at: dict[int, set[str]] = {}  # condition → the field names it looks at
        self._collect_conditions(self.schema, self.ui, ())

    # -- visibility -------------------------------------------------------------------------

    def _collect_conditions(self, schema: dict, ui: dict, path: tuple) -> None:
        schema = self.resolve(schema)
        if path and isinstance(ui.get("ui:visibleWhen"), dict):
            self.conditions.append((path, self._condition(ui["ui:visibleWhen"])))
        for name, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, dict):
                sub_ui = ui.get(name) if isinstance(ui.get(name), dict) else {}
                self._collect_conditions(sub, sub_ui, path + (name,))
        items = schema.get("items")
        if isinstance(items, dict):
            items_ui = ui.get("items") if isinstance(ui.get("items"), dict) else {}
            self._collect_conditions(items, items_ui, path + ("*",))

    def _condition(self, condition: dict) -> Predicate:
        """Compile a condition once, sharing one validator between fields with the same condition."""
        text = json.dumps(condition, sort_keys=True)
        if text not in self._compiled_conditions:
            test = self._compiled_conditions[text] = compile_condition(
                condition, lambda schema: make_validator(schema).is_valid)
            self._looks_at[id(test)] = _names_in(condition)
            self.watched |= self._looks_at[id(test)]
        return self._compiled_conditions[text]

    def hidden_paths(self, data: Any) -> set[tuple]:
        """Return the concrete paths of fields hidden by their conditions, for this data."""
        if not self.conditions:
            return set()
        # Visibility may depend on other conditional fields: iterate to a fixed point, always
        # judging from the original data minus what is hidden so far. After the first pass only
        # the conditions that look at a field whose visibility changed are judged again.
        verdicts: dict[int, bool] = {}
        hidden: set[tuple] = set()
        changed: set[str] | None = None  # None: judge every condition
        for _ in range(len(self.conditions) + 1):
            view = _without(data, hidden)
            for _pattern, cond in self.conditions:
                key = id(cond)
                if changed is None and key not in verdicts or changed and self._looks_at[key] & changed:
                    verdicts[key] = cond(view)
            now = set()
            for pattern, cond in self.conditions:
                if not verdicts[id(cond)]:
                    now.update(_expand(pattern, data))
            changed = {part for p in now ^ hidden for part in p if isinstance(part, str)} & self.watched
            hidden = now
            if not changed:
                break
        return hidden

    # -- validation -------------------------------------------------------------------------

    def validate(self, data: Any) -> Result:
        """Drop hidden fields, validate the rest, and describe each error in Chinese."""
        hidden = self.hidden_paths(data) if isinstance(data, dict) else set()
        kept = _without(data, hidden)
        errors: list[FieldError] = []
        seen_required: set[tuple] = set()
        for error in self.validator.iter_errors(kept):
            errors.extend(self._describe(error, hidden, seen_required))
        return Result(kept, sorted(_unique(errors), key=self._position))

    def _position(self, error: FieldError) -> list:
        """Order errors as the fields appear in the form, top to bottom."""
        key, schema = [], self.resolve(self.schema)
        for raw in error.path.split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if part.isdigit():
                key.append(int(part))
                schema = self.resolve(schema.get("items") or {})
                continue
            names = list(schema.get("properties") or {})
            key.append(names.index(part) if part in names else len(names))
            schema = self.resolve((schema.get("properties") or {}).get(part) or {})
        return key

    def _describe(self, error: ValidationError, hidden: set, seen_required: set):
        where = tuple(error.absolute_path)
        keyword = error.validator
        schema = error.schema if isinstance(error.schema, dict) else {}
        custom = schema.get("x-errorMessages") or {}
        if keyword == "required":
            # jsonschema reports one error per missing name, from every `required` that
            # applies (the main list, if/then, allOf…): name each missing field once.
            instance = error.instance if isinstance(error.instance, dict) else {}
            for name in error.validator_value:
                path = where + (name,)
                if name in instance or path in hidden or path in seen_required:
                    continue
                seen_required.add(path)
                prop = self.schema_at(path)
                text = (prop.get("x-errorMessages") or {}).get("required")
                yield FieldError(pointer(path), text or MESSAGES["required"].format(
                    title=self.title_at(path)))
            return
        if keyword in ("additionalProperties", "unevaluatedProperties"):
            props = self.declared(error.schema) if keyword == "unevaluatedProperties" else (
                error.schema.get("properties") or {})
            patterns = list(error.schema.get("patternProperties") or {})
            instance = error.instance if isinstance(error.instance, dict) else {}
            for name in instance:
                if name not in props and not any(re.search(p, name) for p in patterns):
                    yield FieldError(pointer(where + (name,)),
                                     MESSAGES["additionalProperties"].format(name=name))
            return
        title = self.title_at(where)
        if keyword in custom:
            yield FieldError(pointer(where), custom[keyword])
            return
        yield FieldError(pointer(where), self._message(error, keyword, title, where))

    def _message(self, error: ValidationError, keyword: str, title: str, where: tuple) -> str:
        value = error.validator_value
        if keyword == "type":
            kinds = value if isinstance(value, list) else [value]
            expected = "或".join(TYPE_NAMES.get(k, k) for k in kinds)
            return MESSAGES["type"].format(title=title, expected=expected)
        if keyword == "format":
            template = FORMAT_MESSAGES.get(value, "「{title}」的格式不正确")
            return template.format(title=title)
        if keyword in ("enum", "const", "oneOf"):
            options = _options(error.schema, self.ui_at(where))
            if options:
                labels = "、".join(label for _, label in options)
                return MESSAGES[keyword].format(title=title, options=labels)
            if keyword == "oneOf":
                return MESSAGES["oneOf_shape"].format(title=title)
        if keyword in MESSAGES and "{limit}" in MESSAGES[keyword]:
            return MESSAGES[keyword].format(title=title, limit=_number(value))
        if keyword in MESSAGES:
            return MESSAGES[keyword].format(title=title)
        log.warning("no Chinese message for keyword %s at %s", keyword, pointer(where))
        return MESSAGES["fallback"].format(title=title)

    # -- looking things up by path ------------------------------------------------------------

    def declared(self, schema: dict, depth: int = 0) -> set[str]:
        """Name every property an object schema declares, in itself and in the parts it combines."""
        schema = self.resolve(schema)
        names = set(schema.get("properties") or {})
        if depth > 8:
            return names
        for key in COMPOSITION:
            value = schema.get(key)
            parts = value if isinstance(value, list) else (
                list(value.values()) if key == "dependentSchemas" and isinstance(value, dict) else [value])
            for part in parts:
                if isinstance(part, dict):
                    names |= self.declared(part, depth + 1)
        return names

    def resolve(self, schema: dict) -> dict:
        """Follow a local `$ref` (`#/…`) to the schema it names."""
        return resolve_local(self.schema, schema)

    def schema_at(self, path: tuple) -> dict:
        """Return the schema of the field at a data path (array indices step into `items`).

        A title written beside a `$ref` wins over the title of the schema it names.
        """
        schema = self.resolve(self.schema)
        for part in path:
            if isinstance(part, int) or part == "*":
                raw = schema.get("items") or {}
            else:
                raw = (schema.get("properties") or {}).get(part) or {}
            schema = self.resolve(raw)
            if isinstance(raw, dict) and "title" in raw and raw is not schema:
                schema = {**schema, "title": raw["title"]}
        return schema

    def ui_at(self, path: tuple) -> dict:
        """Return the ui hints of the field at a data path."""
        ui: Any = self.ui
        for part in path:
            key = "items" if isinstance(part, int) or part == "*" else part
            ui = ui.get(key) if isinstance(ui, dict) else None
        return ui if isinstance(ui, dict) else {}

    def title_at(self, path: tuple) -> str:
        """Name a field as a person sees it: ui:title, else the schema title, else its key.

        An array item without a title is named after its list, with its row number.
        """
        if not path:
            return self.ui.get("ui:title") or self.schema.get("title") or ROOT_TITLE
        ui, schema = self.ui_at(path), self.schema_at(path)
        title = ui.get("ui:title") or schema.get("title")
        last = path[-1]
        if isinstance(last, int):
            owner = self.title_at(path[:-1])
            # An item of a list of choices is the list itself to the person filling it.
            return f"{owner}第{last + 1}项" if schema.get("type") == "object" else owner
        title = title or str(last)
        rows = [i for i, p in enumerate(path) if isinstance(p, int)]
        if rows:
            i = rows[-1]
            return f"{self.title_at(path[: i + 1])}的{title}"
        return title


COMPOSITION = ("allOf", "anyOf", "oneOf", "if", "then", "else", "not", "dependentSchemas")
DECLARES_EXTRA = ("additionalProperties", "patternProperties", "unevaluatedProperties")


def closed(schema: Any) -> Any:
    """Return a copy of a schema where object schemas refuse fields they do not declare.

    A plain object schema gets `additionalProperties: false`; one that also combines schemas
    (allOf, if/then …) gets `unevaluatedProperties: false`, which sees the properties its parts
    declare. Schemas that are parts of a combination are left open: they describe a piece of the
    object, not all of it. A form opts out with `additionalProperties: true`.
    """
    schema = copy.deepcopy(schema)
    _close(schema, part=False)
    return schema


def _close(node: Any, part: bool) -> None:
    if not isinstance(node, dict):
        return
    for key in ("properties", "$defs", "definitions"):
        for sub in (node.get(key) or {}).values() if isinstance(node.get(key), dict) else ():
            _close(sub, part=False)
    for key in ("items", "additionalProperties", "contains", "unevaluatedItems"):
        _close(node.get(key), part=False)
    for sub in node.get("prefixItems") or []:
        _close(sub, part=False)
    for key in COMPOSITION:
        value = node.get(key)
        subs = value if isinstance(value, list) else (
            value.values() if key == "dependentSchemas" and isinstance(value, dict) else [value])
        for sub in subs:
            _close(sub, part=True)
    if part or not isinstance(node.get("properties"), dict):
        return
    if any(k in node for k in DECLARES_EXTRA):
        return
    if any(k in node for k in COMPOSITION) or "$ref" in node:
        node["unevaluatedProperties"] = False
    else:
        node["additionalProperties"] = False


MISSING = object()


def local_target(root: Any, ref: str) -> Any:
    """Return what a local reference (`#/$defs/x`) names inside root, or MISSING."""
    target = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return MISSING
        target = target[part]
    return target


def resolve_local(root: Any, schema: Any) -> dict:
    """Follow local `$ref`s from a schema to the one they name ({} if it cannot be found)."""
    for _ in range(16):
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not isinstance(ref, str):
            break
        target = local_target(root, ref) if ref.startswith("#") else MISSING
        if target is MISSING:
            return {}
        schema = target
    return schema if isinstance(schema, dict) else {}


def _names_in(schema: Any) -> set[str]:
    """Collect every property name a condition mentions (over-approximating is harmless)."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("properties", "patternProperties", "dependentRequired", "dependentSchemas") \
                        and isinstance(value, dict):
                    names |= set(value)
                elif key == "required" and isinstance(value, list):
                    names |= {v for v in value if isinstance(v, str)}
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return names


def _number(value: Any) -> str:
    """Show a limit without a trailing `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen, out = set(), []
    for e in errors:
        if (e.path, e.message) not in seen:
            seen.add((e.path, e.message))
            out.append(e)
    return out


def _expand(pattern: tuple, data: Any, prefix: tuple = ()) -> list[tuple]:
    """Expand `*` in a field path over the rows present in the data."""
    if not pattern:
        return [prefix]
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if not isinstance(data, list):
            return []
        out = []
        for i, row in enumerate(data):
            out.extend(_expand(rest, row, prefix + (i,)))
        return out
    if not rest:
        return [prefix + (head,)]
    if not isinstance(data, dict) or head not in data:
        return []
    return _expand(rest, data[head], prefix + (head,))


def _without(data: Any, hidden: set[tuple]) -> Any:
    """Return a copy of the data without the values at the hidden paths."""
    if not hidden:
        return data
    return _prune(data, hidden, ())


def _prune(data: Any, hidden: set[tuple], here: tuple) -> Any:
    if isinstance(data, dict):
        return {
            k: _prune(v, hidden, here + (k,)) for k, v in data.items() if here + (k,) not in hidden
        }
    if isinstance(data, list):
        return [_prune(v, hidden, here + (i,)) for i, v in enumerate(data)]
    return data


def formatted_values(form: CompiledForm, data: Any, fmt: str) -> list[tuple[tuple, str]]:
    """Return (path, value) of every string in the data whose field has the format `fmt`."""
    found: list[tuple[tuple, str]] = []
    if f'"format": "{fmt}"' not in form.schema_text:
        return found  # the form has no such field: nothing to walk

    def walk(schema: dict, value: Any, path: tuple, depth: int) -> None:
        schema = form.resolve(schema)
        if depth > 32:
            return
        if schema.get("format") == fmt and isinstance(value, str):
            found.append((path, value))
        elif isinstance(value, dict):
            for name, sub in (schema.get("properties") or {}).items():
                if name in value and isinstance(sub, dict):
                    walk(sub, value[name], path + (name,), depth + 1)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for i, item in enumerate(value):
                walk(schema["items"], item, path + (i,), depth + 1)

    walk(form.schema, data, (), 0)
    return found


_cache: dict[str, CompiledForm] = {}
_cache_lock = threading.Lock()


def compiled_form(content_hash: str, schema: dict, ui: dict | None = None) -> CompiledForm:
    """Return the compiled form for a definition version, compiling it only the first time."""
    form = _cache.get(content_hash)
    if form is None:
        with _cache_lock:
            form = _cache.get(content_hash)
            if form is None:
                form = _cache[content_hash] = CompiledForm(schema, ui)
    return form


def cache_size() -> int:
    """Tell how many compiled forms are held in memory."""
    return len(_cache)
