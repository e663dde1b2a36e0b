"""Conditions (a JSON Schema the data must match) compiled to plain predicates where simple.

Visibility and branch conditions are small schemas judged many times per request, and often
re-judged as a person fills a form. The common shapes — properties with const, enum, type,
contains, minItems, required, allOf, not — become closures over Python values; anything else is
judged by a full JSON Schema validator. Nothing is ever `eval`-ed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Predicate = Callable[[Any], bool]

SIMPLE_KEYS = frozenset({
    "properties", "required", "allOf", "anyOf", "not", "const", "enum", "type", "contains",
    "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "title", "description", "$comment",
})

TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


def same(a: Any, b: Any) -> bool:
    """Compare as JSON does: true is not 1, 1 equals 1.0, lists and objects compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b and type(a) in (int, float, str, type(None)) and type(b) in (int, float, str, type(None))


def compile_condition(schema: Any, fallback: Callable[[Any], Predicate]) -> Predicate:
    """Turn a condition schema into a predicate; `fallback` compiles what is not simple."""
    if schema is True or schema == {}:
        return lambda value: True
    if schema is False:
        return lambda value: False
    if not isinstance(schema, dict) or not SIMPLE_KEYS.issuperset(schema):
        return fallback(schema)
    checks: list[Predicate] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not all(k in TYPES for k in kinds):
            return fallback(schema)
        tests = [TYPES[k] for k in kinds]
        checks.append(lambda v, tests=tests: any(t(v) for t in tests))
    if "const" in schema:
        checks.append(lambda v, c=schema["const"]: same(v, c))
    if "enum" in schema:
        checks.append(lambda v, options=schema["enum"]: any(same(v, o) for o in options))
    for key, op in (("minimum", float.__ge__), ("maximum", float.__le__),
                    ("exclusiveMinimum", float.__gt__), ("exclusiveMaximum", float.__lt__)):
        if key in schema:
            checks.append(lambda v, lim=float(schema[key]), op=op: not TYPES["number"](v) or op(float(v), lim))
    if "minItems" in schema:
        checks.append(lambda v, n=schema["minItems"]: not isinstance(v, list) or len(v) >= n)
    if "maxItems" in schema:
        checks.append(lambda v, n=schema["maxItems"]: not isinstance(v, list) or len(v) <= n)
    if "contains" in schema:
        inner = compile_condition(schema["contains"], fallback)
        checks.append(lambda v, inner=inner: not isinstance(v, list) or any(inner(x) for x in v))
    if "required" in schema:
        names = list(schema["required"])
        checks.append(lambda v, names=names: not isinstance(v, dict) or all(n in v for n in names))
    if "properties" in schema:
        props = [(name, compile_condition(sub, fallback)) for name, sub in schema["properties"].items()]
        checks.append(lambda v, props=props: not isinstance(v, dict)
                      or all(name not in v or test(v[name]) for name, test in props))
    if "allOf" in schema:
        parts = [compile_condition(sub, fallback) for sub in schema["allOf"]]
        checks.append(lambda v, parts=parts: all(p(v) for p in parts))
    if "anyOf" in schema:
        parts = [compile_condition(sub, fallback) for sub in schema["anyOf"]]
        checks.append(lambda v, parts=parts: any(p(v) for p in parts))
    if "not" in schema:
        inner = compile_condition(schema["not"], fallback)
        checks.append(lambda v, inner=inner: not inner(v))
    return lambda value: all(check(value) for check in checks)
