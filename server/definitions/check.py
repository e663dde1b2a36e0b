"""Lint definitions: meta-schema, JSON Schema validity, ui references, flow graph checks."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from ..formats import CHECKS as FORMATS
from ..validation import MISSING, local_target, pointer, resolve_local
from .files import Problem, Source, meta_schema
from .ui import WIDGETS

STANDARD_FORMATS_ALLOWED = frozenset(FORMATS)


@functools.cache
def _meta_validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(meta_schema(kind))


_JSON_SCHEMA_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)


def describe_meta_error(error: ValidationError) -> str:
    """Say in Chinese what a meta-schema error means, for the person editing the file."""
    kw, value = error.validator, error.validator_value
    if kw == "required":
        missing = [k for k in value if not isinstance(error.instance, dict) or k not in error.instance]
        return "缺少必需的键：" + "、".join(missing)
    if kw == "additionalProperties":
        allowed = set(error.schema.get("properties") or {})
        patterns = list(error.schema.get("patternProperties") or {})
        extra = [k for k in (error.instance or {})
                 if k not in allowed and not any(re.search(p, k) for p in patterns)]
        return "不认识的键：" + "、".join(extra)
    if kw == "type":
        return f"类型应为 {value}"
    if kw == "enum":
        return "只能是：" + "、".join(map(str, value))
    if kw == "const":
        return f"只能是 {value!r}"
    if kw == "pattern":
        return f"格式不符合 {value}"
    if kw == "minimum":
        return f"不能小于 {value}"
    if kw == "maximum":
        return f"不能大于 {value}"
    if kw in ("minLength", "minItems", "minProperties"):
        return f"不能少于 {value} 个"
    if kw in ("maxLength", "maxItems", "maxProperties"):
        return f"不能多于 {value} 个"
    if kw == "oneOf":
        return "应当恰好符合一种写法（例如 branches，或 foreach 加 branch）"
    if kw == "false":
        return "此处不允许"
    return f"不符合定义格式（{kw}）：{error.message}"


def _meta_problems(source: Source) -> list[Problem]:
    errors = _meta_validator(source.kind).iter_errors(source.doc)
    return [
        Problem(str(source.path), pointer(e.absolute_path), describe_meta_error(e))
        for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))
    ]


JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


def _schema_error(error: ValidationError) -> str:
    """Say in Chinese what is wrong with a field's JSON Schema (the commonest: a misspelt type)."""
    if error.absolute_path and error.absolute_path[-1] == "type":
        return f"类型 {error.instance!r} 不存在；可用：" + "、".join(JSON_TYPES)
    return describe_meta_error(error)


def schema_problems(schema: Any, file: str, at: tuple) -> list[Problem]:
    """Check a JSON Schema: valid draft 2020-12, local references only, formats we know."""
    problems = [
        Problem(file, pointer(at + tuple(e.absolute_path)), f"不是有效的 JSON Schema：{_schema_error(e)}")
        for e in _JSON_SCHEMA_META.iter_errors(schema)
    ]
    if problems:
        return problems
    for where, node in _walk(schema, at):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#"):
                problems.append(Problem(file, pointer(where + ("$ref",)),
                                        f"不允许引用外部模式 {ref}：只能引用本定义内的 #/$defs/…"))
            elif local_target(schema, ref) is MISSING:
                problems.append(Problem(file, pointer(where + ("$ref",)), f"找不到引用 {ref}"))
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt not in STANDARD_FORMATS_ALLOWED:
            problems.append(Problem(
                file, pointer(where + ("format",)),
                f"未知的格式 {fmt}；可用：" + "、".join(sorted(STANDARD_FORMATS_ALLOWED))))
        props = node.get("properties")
        required = node.get("required")
        if isinstance(props, dict) and isinstance(required, list):
            for i, name in enumerate(required):
                if name not in props:
                    problems.append(Problem(file, pointer(where + ("required", i)),
                                            f"必填项 {name} 不在 properties 中"))
        if "x-sensitive" in node and not isinstance(node["x-sensitive"], bool):
            problems.append(Problem(file, pointer(where + ("x-sensitive",)),
                                    "x-sensitive 应为 true 或 false"))
    for where, ref in _recursive_refs(schema):
        problems.append(Problem(file, pointer(at + where + ("$ref",)),
                                f"引用 {ref} 构成循环：表单不能无限嵌套，请改为有限的几层"))
    return problems


def _recursive_refs(schema: dict) -> list[tuple[tuple, str]]:
    """Find local `$ref`s that lead back to a schema containing them (directly or through others)."""
    def owner(path: tuple) -> tuple:
        return path[:2] if len(path) >= 2 and path[0] in ("$defs", "definitions") else ()

    edges: dict[tuple, list[tuple[tuple, tuple, str]]] = {}
    found = []
    for where, node in _walk(schema, ()):
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#") or local_target(schema, ref) is MISSING:
            continue
        target = tuple(p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/") if p)
        if where[:len(target)] == target:
            found.append((where, ref))
            continue
        edges.setdefault(owner(where), []).append((owner(target), where, ref))
    # a cycle among the $defs entries: follow the edges from each entry
    for start in list(edges):
        seen, stack = set(), [start]
        while stack:
            here = stack.pop()
            for target, where, ref in edges.get(here, []):
                if target == start and owner(where) == here and (where, ref) not in found:
                    found.append((where, ref))
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
    return found


SUBSCHEMA_KEYS = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
                  "unevaluatedProperties", "unevaluatedItems", "propertyNames")
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def _walk(schema: Any, at: tuple) -> Iterable[tuple[tuple, dict]]:
    """Yield every subschema (as a dict) with its location."""
    if not isinstance(schema, dict):
        return
    yield at, schema
    for key in SUBSCHEMA_KEYS:
        if isinstance(schema.get(key), dict):
            yield from _walk(schema[key], at + (key,))
    for key in SUBSCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                yield from _walk(sub, at + (key, name))
    for key in SUBSCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                yield from _walk(sub, at + (key, i))


def ui_problems(root: dict, schema: dict, ui: Any, file: str, at: tuple, top: bool = True) -> list[Problem]:
    """Check that ui hints name existing fields, known widgets, and valid conditions."""
    if not isinstance(ui, dict):
        return []
    schema = resolve_local(root, schema)
    problems = []
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    widget = ui.get("ui:widget")
    if isinstance(widget, str) and widget not in WIDGETS:
        problems.append(Problem(file, pointer(at + ("ui:widget",)),
                                f"未知的控件 {widget}；可用：" + "、".join(sorted(WIDGETS))))
    order = ui.get("ui:order")
    if isinstance(order, list):
        for i, name in enumerate(order):
            if name != "*" and name not in props:
                problems.append(Problem(file, pointer(at + ("ui:order", i)),
                                        f"ui:order 中的 {name} 不是本组的字段"))
    for key in ("ui:columns",):
        for i, name in enumerate(ui.get(key) or []):
            if name not in props:
                problems.append(Problem(file, pointer(at + (key, i)), f"{key} 中的 {name} 不是字段"))
    names = ui.get("ui:enumNames")
    if isinstance(names, list) and isinstance(schema.get("enum"), list):
        if len(names) != len(schema["enum"]):
            problems.append(Problem(file, pointer(at + ("ui:enumNames",)),
                                    "ui:enumNames 的个数应与 enum 的选项个数相同"))
    condition = ui.get("ui:visibleWhen")
    if condition is not None:
        if top:
            problems.append(Problem(file, pointer(at + ("ui:visibleWhen",)),
                                    "ui:visibleWhen 只能用在字段上，不能用在整张表单上"))
        problems.extend(schema_problems(condition, file, at + ("ui:visibleWhen",)))
    for key, sub_ui in ui.items():
        if key.startswith("ui:"):
            continue
        if key == "items" and "items" in schema:
            problems.extend(ui_problems(root, schema["items"], sub_ui, file, at + ("items",), False))
        elif key in props:
            problems.extend(ui_problems(root, props[key], sub_ui, file, at + (key,), False))
        else:
            problems.append(Problem(file, pointer(at + (key,)), f"ui 中的 {key} 不是本组的字段"))
    return problems


def check_form(source: Source, flows: set[str] | None) -> list[Problem]:
    """Check one form definition; `flows` are the known flow keys (None: do not check)."""
    problems = _meta_problems(source)
    if problems:
        return problems
    file, doc = str(source.path), source.doc
    problems.extend(schema_problems(doc["schema"], file, ("schema",)))
    problems.extend(ui_problems(doc["schema"], doc["schema"], doc.get("ui", {}), file, ("ui",)))
    if flows is not None and doc.get("flow") and doc["flow"] not in flows:
        problems.append(Problem(file, "/flow", f"找不到流程 {doc['flow']}"))
    return problems


def check_sources(
    sources: list[Source],
    known_forms: Iterable[str] = (),
    known_flows: Iterable[str] = (),
    check_flow_refs: bool = True,
    levels: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
) -> list[Problem]:
    """Check every definition, cross-references included; return all problems found."""
    from .flows import check_flow

    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    for source in sources:
        ident = (source.kind, source.key)
        if source.key and ident in seen:
            problems.append(Problem(str(source.path), "/key",
                                    f"键 {source.key} 与 {seen[ident]} 重复"))
        seen.setdefault(ident, str(source.path))
    forms = set(known_forms) | {s.key for s in sources if s.kind == "form"}
    flows = set(known_flows) | {s.key for s in sources if s.kind == "flow"}
    for source in sources:
        if source.kind == "form":
            problems.extend(check_form(source, flows if check_flow_refs else None))
        else:
            problems.extend(check_flow(source, forms if check_flow_refs else None, levels, roles))
    return problems
