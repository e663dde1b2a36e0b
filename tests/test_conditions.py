"""Compiled conditions judge exactly as JSON Schema does."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server import ROOT
from server.conditions import compile_condition, same
from server.validation import make_validator


def _shipped_conditions() -> list[dict]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("ui:visibleWhen", "when") and isinstance(value, dict):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for folder in ("forms", "flows"):
        for path in sorted((ROOT / folder).glob("*.json")):
            walk(json.loads(path.read_text(encoding="utf-8")))
    return found


CONDITIONS = _shipped_conditions()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 1.0, 5000, 5000.01]),
                    st.sampled_from(["low", "medium", "high", "info_collection", "poverty_monitoring",
                                     "resident_report", "hotline", "department_transfer", "materials", ""]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
FIELDS = ["met_resident", "topics", "has_issue", "need_report", "special_groups", "need_categories",
          "poverty_risk_found", "source", "is_anonymous", "risk_level", "category", "amount", "satisfaction",
          "mediation_result", "issue_found"]
data_strategy = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)


def test_shipped_templates_have_conditions():
    assert len(CONDITIONS) >= 20


@settings(max_examples=300, deadline=None)
@given(data=data_strategy)
def test_compiled_conditions_agree_with_json_schema(data):
    for condition in CONDITIONS:
        expected = make_validator(condition).is_valid(data)
        assert compile_condition(condition, lambda s: make_validator(s).is_valid)(data) is expected, condition


@pytest.mark.parametrize("condition, value, expected", [
    ({"const": True}, 1, False),
    ({"const": 1}, True, False),
    ({"const": 1}, 1.0, True),
    ({"enum": [[1, 2]]}, [1, 2], True),
    ({"type": "integer"}, 2.0, True),
    ({"type": "integer"}, True, False),
    ({"properties": {"a": {"minimum": 3}}}, {"a": "x"}, True),
    ({"required": ["a"]}, [], True),
    ({"not": {"required": ["a"]}}, {"a": 1}, False),
    ({"pattern": "^a"}, "abc", True),
    ({"pattern": "^a"}, "bcd", False),
])
def test_edge_cases_match_json_schema(condition, value, expected):
    assert make_validator(condition).is_valid(value) is expected
    assert compile_condition(condition, lambda s: make_validator(s).is_valid)(value) is expected


def test_json_equality_keeps_booleans_apart_from_numbers():
    assert same(True, True) and not same(True, 1) and not same(0, False)
    assert same({"a": [1, 2.0]}, {"a": [1.0, 2]})


def _labelled_option_schemas() -> list[dict]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("oneOf"), list) and all("const" in o for o in node["oneOf"]):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted((ROOT / "forms").glob("*.json")):
        walk(json.loads(path.read_text(encoding="utf-8"))["schema"])
    return found


LABELLED = _labelled_option_schemas()


def test_shipped_forms_use_labelled_options():
    assert len(LABELLED) >= 20


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(values, st.sampled_from(sorted({o["const"] for s in LABELLED for o in s["oneOf"]}))))
def test_labelled_options_are_judged_as_json_schema_judges_them(value):
    from jsonschema import Draft202012Validator

    for schema in LABELLED:
        assert make_validator(schema).is_valid(value) is Draft202012Validator(schema).is_valid(value), schema
