"""Posted form fields → typed JSON (`from_post`) and row operations (`apply_op`): pure unit tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.formats import id_card_check_char
from server.formdata import MAX_DEPTH, MAX_ROWS, MAX_VALUES, Converted, apply_op, from_post
from server.rendering import html_value, is_attachment_list, options_of, type_of
from server.validation import CompiledForm, FieldError

FORMS_DIR = Path(__file__).resolve().parents[1] / "forms"
SHIPPED = ("door_knock_visit", "incident_report", "dispute_mediation", "resource_request")


def load_form(key: str) -> CompiledForm:
    """Compile a shipped form from forms/<key>.json."""
    doc = json.loads((FORMS_DIR / f"{key}.json").read_text(encoding="utf-8"))
    return CompiledForm(doc["schema"], doc.get("ui"))


def id_card(first17: str) -> str:
    """A valid resident ID number (GB 11643 check character appended)."""
    return first17 + id_card_check_char(first17)


SHA = ["%064x" % (i * 7919 + 1) for i in range(4)]  # attachment references: SHA-256 in hex

# One fully valid sample per shipped form, chosen so that every conditional field is shown
# (the renderer leaves hidden fields out, and a hidden field's value is dropped on validation).
# Checkbox values are in option order and date-times have whole minutes, as the page posts them.
SAMPLES: dict[str, dict] = {
    "door_knock_visit": {
        "visited_at": "2026-11-18T09:30:00",
        "met_resident": True,
        "companions": "楼栋长张某",
        "head_name": "黄桂英",
        "address": "城站路12号3栋2单元501",
        "phone": "13877561234",
        "residence_type": "registered",
        "topics": ["info_collection", "policy_publicity", "dispute_screening", "hazard_report",
                   "poverty_monitoring", "livelihood_service"],
        "registered_count": 3,
        "resident_count": 2,
        "members": [
            {"name": "黄桂英", "relation": "head", "id_card": id_card("45090219460312024"),
             "gender": "female", "birth_date": "1946-03-12", "phone": "13877561234",
             "is_party_member": False, "whereabouts": "at_home", "occupation": "retired",
             "health": "chronic", "notes": "高血压\n子女在广东务工"},
            {"name": "李明", "relation": "child", "gender": "male", "is_party_member": True,
             "whereabouts": "migrant_work", "occupation": "employed", "health": "healthy"},
        ],
        "special_groups": ["elderly_alone", "low_income"],
        "special_group_notes": "独居，子女每月回来一次",
        "policy_items": ["pension", "anti_fraud"],
        "letter_delivered": True,
        "poverty_risk_found": True,
        "poverty_risk_types": ["illness", "lack_of_labour"],
        "per_capita_income": 8600.5,
        "poverty_risk_notes": "医药费支出较大",
        "need_categories": ["medical", "elderly_care"],
        "need_description": "希望社区长者饭堂能送餐上门",
        "need_resolved": False,
        "has_issue": True,
        "issue_type": "fire_safety",
        "issue_description": "楼道堆放电动车电池和杂物，堵塞消防通道",
        "issue_photos": [SHA[0], SHA[1]],
        "need_report": True,
        "issue_urgency": "urgent",
        "photos": [SHA[2]],
        "location": {"latitude": 22.6545, "longitude": 110.1543, "accuracy": 12.5,
                     "address": "玉林市玉州区城站路12号"},
        "contact_card_given": True,
        "summary": "老人身体尚可，已登记送餐需求。",
    },
    "incident_report": {
        "category": "environment_sanitation",
        "urgency": "urgent",
        "description": "小区东门垃圾清运不及时，群众多次反映有异味",
        "occurred_at": "2026-11-21T07:30:00",
        "location": {"latitude": 22.6539, "longitude": 110.1561, "accuracy": 8, "address": "城站社区东门"},
        "photos": [SHA[0]],
        "source": "resident_report",
        "involved_households": 120,
        "involved_people": 300,
        "is_anonymous": False,
        "reporter_name": "周秀兰",
        "reporter_phone": "13907751234",
    },
    "dispute_mediation": {
        "dispute_type": "neighbourhood",
        "parties": [
            {"name": "刘建国", "role": "applicant", "id_card": id_card("45090219700815035"),
             "phone": "13807751111", "address": "大北路88号1栋102"},
            {"name": "唐海燕", "role": "respondent", "id_card": id_card("45090219820421046"),
             "phone": "13977562222", "address": "大北路88号1栋702"},
            {"name": "物业公司", "role": "other_party"},
        ],
        "description": "顶楼住户将餐厨垃圾从下水管道排出，导致底层住户厨房反复堵塞",
        "claims": "要求停止倾倒\n并承担疏通费用",
        "occurred_on": "2026-11-10",
        "dispute_place": "大北路88号1栋",
        "source": "department_transfer",
        "transfer_from": "justice",
        "amount": 1234.56,
        "involved_people": 5,
        "risk_level": "high",
        "has_extreme_behavior": True,
        "risk_factors": ["threat", "long_standing"],
        "stabilisation_measures": "网格员已上门安抚双方情绪",
        "police_needed": False,
        "materials": [SHA[3], SHA[1]],
    },
    "resource_request": {
        "category": "materials",
        "item": "小区健身器材",
        "description": "为城站小区活动场地申请一套太阳能健身器材",
        "quantity": 1.5,
        "unit": "套",
        "amount": 38600.25,
        "beneficiaries": ["all_residents", "elderly"],
        "beneficiary_count": 1200,
        "urgency": "normal",
        "justification": "小区活动场地没有健身设施，居民一致希望配置",
        "capacity": "社区负责日常维护",
        "expected_effect": "方便居民锻炼",
        "deliberated": True,
        "expected_date": "2026-12-31",
        "contact_name": "城站社区书记",
        "contact_phone": "13877560001",
        "attachments": [SHA[2]],
    },
}


def flatten(form: CompiledForm, data: dict) -> list[tuple[str, str]]:
    """Turn data into (name, value) pairs named as the fill page names its inputs.

    Scalars post their text; choice lists and attachment lists post one pair per value under the
    list's own name; each row of a repeating group posts an empty marker `/rows/3` and then its
    fields `/rows/3/x`; date-times post minutes, as `datetime-local` does.
    """
    pairs: list[tuple[str, str]] = []

    def walk(schema: dict, value: Any, name: str) -> None:
        schema = form.resolve(schema)
        kind = type_of(schema)
        if kind == "object":
            for key, sub in (schema.get("properties") or {}).items():
                if key in value:
                    walk(sub, value[key], f"{name}/{key.replace('~', '~0').replace('/', '~1')}")
        elif kind == "array":
            items = form.resolve(schema.get("items") or {})
            if options_of(items, {}) or is_attachment_list(schema):
                pairs.extend((name, html_value(v)) for v in value)
            else:
                for i, row in enumerate(value):
                    pairs.append((f"{name}/{i}", ""))
                    walk(items, row, f"{name}/{i}")
        elif schema.get("format") == "date-time":
            pairs.append((name, value[:16]))
        else:
            pairs.append((name, html_value(value)))

    walk(form.schema, data, "")
    return pairs


def depth(value: Any) -> int:
    """How deep a JSON value nests (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def one(prop: dict, ui: dict | None = None, **extra) -> CompiledForm:
    """A form with the single field `f`."""
    return CompiledForm({"type": "object", "properties": {"f": prop, **extra}}, {"f": ui} if ui else None)


def value_of(form: CompiledForm, text: str) -> Any:
    """What posting `text` to the field `f` gives (missing → a sentinel)."""
    return from_post(form, [("/f", text)]).data.get("f", "<omitted>")


ROWS = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "rows": {
            "type": "array",
            "title": "成员",
            "maxItems": 3,
            "items": {
                "type": "object",
                "title": "成员",
                "properties": {
                    "name": {"type": "string", "title": "姓名"},
                    "age": {"type": "integer", "title": "年龄"},
                    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                    "sub": {"type": "array", "items": {"type": "object",
                                                       "properties": {"z": {"type": "string"}}}},
                },
            },
        },
        "words": {"type": "array", "items": {"type": "string"}},
    },
}


@pytest.fixture(scope="module")
def rows_form() -> CompiledForm:
    return CompiledForm(ROWS)


# -- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("12", 12), ("12.0", 12), ("1,000", 1000), ("１２", 12), (" 12 ", 12), ("-3", -3), ("+4", 4),
    ("1e3", 1000), ("１，０００", 1000),
    ("abc", "abc"), ("12.5", "12.5"), (" 3 个 ", "3 个"),
])
def test_integer_conversion(text, expected):
    got = value_of(one({"type": "integer"}), text)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize("text, expected", [
    ("12", 12), ("12.5", 12.5), ("0.1", 0.1), (".5", 0.5), ("-2.25", -2.25), ("1,234.5", 1234.5),
    ("１２.５", 12.5), ("1e-3", 0.001), ("1e400", "1e400"), ("12元", "12元"), ("nan", "nan"),
    ("inf", "inf"), ("1.2.3", "1.2.3"),
])
def test_number_conversion(text, expected):
    got = value_of(one({"type": "number"}), text)
    assert got == expected
    assert type(got) is type(expected)


def test_integral_number_comes_out_as_int_and_large_ones_as_float():
    form = one({"type": "number"})
    assert value_of(form, "7.000") == 7 and isinstance(value_of(form, "7.000"), int)
    big = value_of(form, "1" + "0" * 20)
    assert isinstance(big, float) and big == 1e20


def test_text_in_integer_field_is_kept_and_named_by_the_validator():
    form = one({"type": "integer", "title": "人数"})
    converted = from_post(form, [("/f", "三个")])
    assert converted.data == {"f": "三个"}
    assert converted.errors == []
    result = form.validate(converted.data)
    assert [(e.path, e.message) for e in result.errors] == [("/f", "「人数」应为整数")]


def test_text_in_number_field_gets_number_message():
    form = one({"type": "number", "title": "面积"})
    data = from_post(form, [("/f", "很大")]).data
    assert [(e.path, e.message) for e in form.validate(data).errors] == [("/f", "「面积」应为数字")]


def test_integer_with_thousands_of_digits_does_not_crash():
    form = one({"type": "integer"})
    converted = from_post(form, [("/f", "9" * 5000)])
    assert converted.data["f"] == "9" * 5000 or isinstance(converted.data["f"], int)


@pytest.mark.parametrize("kind", ["number", "integer"])
def test_number_with_huge_exponent_does_not_crash(kind):
    form = one({"type": kind})
    assert from_post(form, [("/f", "1e999999999999999999")]).data == {"f": "1e999999999999999999"}


def test_misplaced_grouping_comma_is_not_silently_dropped():
    assert value_of(one({"type": "number"}), "1,5") == "1,5"


# -- booleans -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("true", True), ("false", False), ("是", True), ("否", False), ("on", True), ("1", True),
    ("0", False), ("YES", True), ("no", False), (" true ", True), ("maybe", "maybe"),
])
def test_boolean_conversion(text, expected):
    got = value_of(one({"type": "boolean"}), text)
    assert got is expected if isinstance(expected, bool) else got == expected


def test_boolean_with_labelled_options():
    form = one({"type": "boolean", "oneOf": [{"const": True, "title": "有"}, {"const": False, "title": "无"}]})
    assert value_of(form, "true") is True
    assert value_of(form, "false") is False
    assert value_of(form, "是") is True


def test_unknown_boolean_text_fails_validation():
    form = one({"type": "boolean", "title": "是否独居"})
    data = from_post(form, [("/f", "也许")]).data
    assert [e.message for e in form.validate(data).errors] == ["「是否独居」应为是或否"]


# -- choices ------------------------------------------------------------------------------------

def test_single_choice_with_integer_consts_comes_out_typed():
    form = one({"type": "integer", "oneOf": [{"const": 1, "title": "一"}, {"const": 2, "title": "二"}]})
    assert value_of(form, "2") == 2 and isinstance(value_of(form, "2"), int)
    assert value_of(form, "3") == "3"  # not an option: kept for the validator


def test_checkboxes_of_strings_keep_posting_order_and_drop_duplicates():
    form = one({"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}})
    data = from_post(form, [("/f", "c"), ("/f", "a"), ("/f", "c"), ("/f", "")]).data
    assert data == {"f": ["c", "a"]}


def test_checkboxes_of_integer_consts_come_out_as_integers():
    form = one({"type": "array", "uniqueItems": True,
                "items": {"type": "integer", "oneOf": [{"const": 1, "title": "一"}, {"const": 2, "title": "二"},
                                                       {"const": 10, "title": "十"}]}})
    data = from_post(form, [("/f", "10"), ("/f", "1")]).data
    assert data == {"f": [10, 1]}
    assert all(type(v) is int for v in data["f"])
    assert form.validate(data).ok


def test_checkboxes_with_number_and_boolean_consts():
    numbers = one({"type": "array", "items": {"enum": [0.5, 1.5]}})
    assert from_post(numbers, [("/f", "1.5")]).data == {"f": [1.5]}
    flags = one({"type": "array", "items": {"type": "boolean", "enum": [True, False]}})
    assert from_post(flags, [("/f", "false")]).data == {"f": [False]}


def test_checkbox_value_not_among_options_is_kept_and_refused():
    form = one({"type": "array", "title": "标签", "items": {"type": "string", "enum": ["a", "b"]}})
    data = from_post(form, [("/f", "a"), ("/f", "z")]).data
    assert data == {"f": ["a", "z"]}
    assert [e.path for e in form.validate(data).errors] == ["/f/1"]


def test_checkbox_list_posted_empty_is_omitted():
    form = one({"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["a", "b"]}})
    data = from_post(form, [("/f", "")]).data
    assert data == {}
    assert form.validate(data).ok


# -- text ---------------------------------------------------------------------------------------

def test_text_is_stripped_and_line_ends_normalised():
    form = one({"type": "string"})
    assert value_of(form, "  你好  ") == "你好"
    assert value_of(form, "一\r\n二\r三\n四") == "一\n二\n三\n四"
    assert value_of(form, " \t\u3000 ") == "<omitted>"


def test_first_non_empty_value_of_a_name_wins():
    form = one({"type": "string"})
    assert from_post(form, [("/f", ""), ("/f", "甲"), ("/f", "乙")]).data == {"f": "甲"}


@pytest.mark.parametrize("fmt, text, expected", [
    ("date-time", "2024-05-01T09:30", "2024-05-01T09:30:00"),
    ("date-time", "2024-05-01T09:30:15", "2024-05-01T09:30:15"),
    ("date", "２０２４-０５-０１", "2024-05-01"),
    ("time", "09:30", "09:30"),
    ("cn-mobile", "１３８ ００１３ ８０００", "13800138000"),
    ("cn-id-card", "11010519491231002x", "11010519491231002X"),
    ("cn-id-card", "１１０１０５１９４９１２３１００２ｘ", "11010519491231002X"),
    ("grid-code", " 4509 02 ", "450902"),
])
def test_formatted_text_is_normalised(fmt, text, expected):
    assert value_of(one({"type": "string", "format": fmt}), text) == expected


def test_normalised_values_validate():
    schema = {"type": "object", "properties": {
        "at": {"type": "string", "format": "date-time"},
        "phone": {"type": "string", "format": "cn-mobile"},
        "id": {"type": "string", "format": "cn-id-card"},
    }}
    form = CompiledForm(schema)
    data = from_post(form, [("/at", "2024-05-01T09:30"), ("/phone", "１３８００１３８０００"),
                            ("/id", id_card("11010519491231002").lower())]).data
    assert form.validate(data).ok, form.validate(data).errors


def test_empty_optional_fields_are_omitted():
    schema = {"type": "object", "properties": {
        "a": {"type": "string"}, "n": {"type": "integer"}, "b": {"type": "boolean"},
        "d": {"type": "string", "format": "date"},
    }}
    assert from_post(CompiledForm(schema), [("/a", ""), ("/n", " "), ("/b", ""), ("/d", "")]).data == {}


# -- groups and rows ----------------------------------------------------------------------------

GROUP = {"type": "object", "properties": {
    "g": {"type": "object", "properties": {"a": {"type": "string"}, "n": {"type": "integer"},
                                           "inner": {"type": "object", "properties": {"x": {"type": "string"}}}}},
}}


def test_nested_group_is_typed():
    data = from_post(CompiledForm(GROUP), [("/g/a", "甲"), ("/g/n", "3"), ("/g/inner/x", "乙")]).data
    assert data == {"g": {"a": "甲", "n": 3, "inner": {"x": "乙"}}}


def test_empty_group_is_omitted_unless_keeping_empty():
    form = CompiledForm(GROUP)
    pairs = [("/g/a", ""), ("/g/inner/x", " ")]
    assert from_post(form, pairs).data == {}
    assert from_post(form, pairs, keep_empty=True).data == {"g": {"inner": {}}}  # redrawn, as posted
    assert from_post(form, [("/g", "")], keep_empty=True).data == {}  # no field of the group posted


def test_rows_come_out_in_posting_order_whatever_their_numbers(rows_form):
    pairs = [("/rows/7", ""), ("/rows/7/name", "七"), ("/rows/2", ""), ("/rows/2/name", "二"),
             ("/rows/7/age", "70"), ("/rows/0/name", "零")]
    assert from_post(rows_form, pairs).data == {"rows": [{"name": "七", "age": 70}, {"name": "二"},
                                                         {"name": "零"}]}


def test_rows_keep_their_own_lists_and_nested_rows(rows_form):
    pairs = [("/rows/0/name", "甲"), ("/rows/0/tags", "b"), ("/rows/0/tags", "a"),
             ("/rows/0/sub/5/z", "五"), ("/rows/0/sub/1/z", "一"), ("/rows/1/tags", "a")]
    assert from_post(rows_form, pairs).data == {"rows": [
        {"name": "甲", "tags": ["b", "a"], "sub": [{"z": "五"}, {"z": "一"}]}, {"tags": ["a"]}]}


def test_empty_rows_are_dropped_unless_keeping_empty(rows_form):
    pairs = [("/rows/0", ""), ("/rows/0/name", ""), ("/rows/1", ""), ("/rows/1/name", "乙"), ("/rows/2", "")]
    assert from_post(rows_form, pairs).data == {"rows": [{"name": "乙"}]}
    assert from_post(rows_form, pairs, keep_empty=True).data == {"rows": [{}, {"name": "乙"}, {}]}


def test_rows_of_plain_text(rows_form):
    pairs = [("/words/3", "三"), ("/words/1", ""), ("/words/0", "零")]
    assert from_post(rows_form, pairs).data == {"words": ["三", "零"]}
    assert from_post(rows_form, pairs, keep_empty=True).data == {"words": ["三", None, "零"]}


def test_odd_row_tokens_are_ignored(rows_form):
    pairs = [("/rows/x/name", "x"), ("/rows/-1/name", "neg"), ("/rows/1.5/name", "frac"),
             ("/rows/1234567/name", "too long"), ("/rows/ 1/name", "space"), ("/rows/4/name", "ok")]
    assert from_post(rows_form, pairs).data == {"rows": [{"name": "ok"}]}


def test_attachments_list_keeps_order_and_drops_duplicates():
    form = one({"type": "array", "items": {"type": "string", "format": "attachment"}, "maxItems": 9})
    data = from_post(form, [("/f", SHA[1]), ("/f", SHA[0]), ("/f", SHA[1]), ("/f", "")]).data
    assert data == {"f": [SHA[1], SHA[0]]}
    assert form.validate(data).ok


def test_tilde_escapes_in_names():
    schema = {"type": "object", "properties": {"a/b": {"type": "string"}, "c~d": {"type": "integer"}}}
    data = from_post(CompiledForm(schema), [("/a~1b", "x"), ("/c~0d", "4")]).data
    assert data == {"a/b": "x", "c~d": 4}


# -- hostile input ------------------------------------------------------------------------------

def test_names_the_schema_does_not_know_are_ignored(rows_form):
    pairs = [("/nope", "x"), ("/rows/0/nope", "x"), ("/title/extra", "x"), ("/title", "标题"),
             ("/__proto__", "x"), ("/rows/0/name/0", "x")]
    assert from_post(rows_form, pairs).data == {"title": "标题"}


@pytest.mark.parametrize("name", ["title", "csrf_token", "_op", "", "title/", " /title", "\\title"])
def test_names_that_are_not_pointers_are_ignored(rows_form, name):
    assert from_post(rows_form, [(name, "x")]).data == {}


def test_pairs_that_are_not_text_are_ignored(rows_form):
    pairs = [(None, "x"), (b"/title", "x"), ("/title", None), ("/title", b"bytes"), ("/title", 5),
             ("/rows/0/name", "ok")]
    assert from_post(rows_form, pairs).data == {"rows": [{"name": "ok"}]}


def nested_schema(levels: int) -> dict:
    """Objects nested `levels` deep under `c`, each holding a text `v`."""
    schema: dict = {"type": "object", "properties": {"v": {"type": "string"}}}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"v": {"type": "string"}, "c": schema}}
    return schema


def test_names_deeper_than_the_limit_are_ignored():
    form = CompiledForm(nested_schema(40))
    at_limit = "/c" * (MAX_DEPTH - 1) + "/v"
    too_deep = "/c" * MAX_DEPTH + "/v"
    assert MAX_DEPTH == 32
    assert at_limit.count("/") == 32 and too_deep.count("/") == 33
    ok = from_post(form, [(at_limit, "ok")]).data
    assert depth(ok) == 32
    assert from_post(form, [(too_deep, "deep")]).data == {}


def test_deep_names_cannot_make_data_deeper_than_the_schema(rows_form):
    deep = "/rows/0/sub/0/z" + "/0" * 20
    pairs = [(deep, "x"), ("/rows/0/sub/0/z/q", "y"), ("/title/a/b/c/d", "z"),
             ("/rows/0/name" + "/n" * 25, "w"), ("/rows/0/sub/0/z", "ok")]
    data = from_post(rows_form, pairs).data
    assert data == {"rows": [{"sub": [{"z": "ok"}]}]}
    assert depth(data) <= 5  # rows → row → sub → row → z


def test_huge_checkbox_list_is_fast_and_capped():
    form = one({"type": "array", "items": {"type": "integer", "enum": list(range(5))}},
               g={"type": "array", "items": {"type": "string", "enum": ["a"]}})
    pairs = [("/f", str(i % 7)) for i in range(100_000)] + [("/g", f"v{i}") for i in range(100_000)]
    start = time.perf_counter()
    data = from_post(form, pairs).data
    elapsed = time.perf_counter() - start
    assert elapsed < 2, elapsed
    assert 0 < len(data["f"]) <= MAX_VALUES
    assert len(data["g"]) == MAX_VALUES  # distinct values: exactly the cap


def test_huge_number_of_row_tokens_is_fast_and_capped(rows_form):
    pairs = [(f"/rows/{i}/name", "x") for i in range(50_000)]
    start = time.perf_counter()
    data = from_post(rows_form, pairs).data
    elapsed = time.perf_counter() - start
    assert elapsed < 2, elapsed
    assert len(data["rows"]) == MAX_ROWS


def test_huge_post_of_unknown_names_is_fast(rows_form):
    pairs = [(f"/junk{i}/a", "x") for i in range(50_000)]
    start = time.perf_counter()
    assert from_post(rows_form, pairs).data == {}
    assert time.perf_counter() - start < 2


def test_invalid_utf8_gives_a_chinese_error_at_the_field():
    form = one({"type": "string", "title": "姓名"})
    converted = from_post(form, [("/f", "张\ufffd三")])
    assert isinstance(converted, Converted)
    assert converted.errors == [FieldError("/f", "「姓名」含有无法识别的字符，请重新输入")]
    assert converted.data == {"f": "张\ufffd三"}


def test_invalid_utf8_in_a_row_is_reported_at_the_row_it_lands_in(rows_form):
    converted = from_post(rows_form, [("/rows/9/name", "甲"), ("/rows/4/name", "\ufffd")])
    assert [e.path for e in converted.errors] == ["/rows/1/name"]
    assert "含有无法识别的字符" in converted.errors[0].message
    assert "姓名" in converted.errors[0].message


def test_invalid_utf8_in_numbers_and_checkboxes_is_reported():
    form = one({"type": "integer", "title": "人数"},
               tags={"type": "array", "title": "标签", "items": {"type": "string", "enum": ["a"]}})
    converted = from_post(form, [("/f", "1\ufffd"), ("/tags", "a"), ("/tags", "\ufffd")])
    assert {e.path for e in converted.errors} == {"/f", "/tags/1"}
    assert all("含有无法识别的字符" in e.message for e in converted.errors)


# -- read-only fields ---------------------------------------------------------------------------

READONLY = {"type": "object", "properties": {
    "code": {"type": "string", "readOnly": True},
    "owner": {"type": "string"},
    "fixed": {"type": "integer"},
    "meta": {"type": "object", "properties": {"a": {"type": "string"}}},
    "free": {"type": "string"},
}}
READONLY_UI = {"owner": {"ui:readonly": True}, "fixed": {"ui:disabled": True}, "meta": {"ui:readonly": True}}


def test_readonly_fields_come_from_base_never_from_the_post():
    form = CompiledForm(READONLY, READONLY_UI)
    pairs = [("/code", "HACK"), ("/owner", "HACK"), ("/fixed", "99"), ("/meta/a", "HACK"), ("/free", "ok")]
    base = {"code": "C-1", "owner": "张三", "fixed": 1, "meta": {"a": "kept"}, "free": "old"}
    assert from_post(form, pairs, base=base).data == {"code": "C-1", "owner": "张三", "fixed": 1,
                                                      "meta": {"a": "kept"}, "free": "ok"}


def test_readonly_fields_without_base_are_left_out():
    form = CompiledForm(READONLY, READONLY_UI)
    pairs = [("/code", "HACK"), ("/owner", "HACK"), ("/meta/a", "HACK"), ("/free", "ok")]
    assert from_post(form, pairs).data == {"free": "ok"}
    assert from_post(form, pairs, base={"code": "C-1"}).data == {"code": "C-1", "free": "ok"}


def test_readonly_field_inside_a_group_comes_from_base():
    schema = {"type": "object", "properties": {"g": {"type": "object", "properties": {
        "id": {"type": "string", "readOnly": True}, "x": {"type": "string"}}}}}
    form = CompiledForm(schema)
    data = from_post(form, [("/g/id", "HACK"), ("/g/x", "新")], base={"g": {"id": "ID-7", "x": "旧"}}).data
    assert data == {"g": {"id": "ID-7", "x": "新"}}


def test_readonly_field_in_a_row_is_not_taken_from_the_post():
    schema = {"type": "object", "properties": {"rows": {"type": "array", "items": {"type": "object", "properties": {
        "k": {"type": "string", "readOnly": True}, "v": {"type": "string"}}}}}}
    form = CompiledForm(schema)
    data = from_post(form, [("/rows/0/k", "posted"), ("/rows/0/v", "v")],
                     base={"rows": [{"k": "kept", "v": "old"}]}).data
    assert data["rows"][0].get("k") != "posted"


# -- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("key", SHIPPED)
def test_shipped_sample_is_valid(key):
    form = load_form(key)
    result = form.validate(SAMPLES[key])
    assert result.ok, result.errors
    assert result.data == SAMPLES[key]  # nothing hidden: every field of the sample is shown


@pytest.mark.parametrize("key", SHIPPED)
def test_shipped_form_round_trips_through_a_post(key):
    form = load_form(key)
    sample = SAMPLES[key]
    converted = from_post(form, flatten(form, sample))
    assert converted.errors == []
    assert converted.data == sample
    assert form.validate(converted.data).ok


@pytest.mark.parametrize("key", SHIPPED)
def test_shipped_form_round_trip_survives_shuffled_row_numbers(key):
    """Renumber every row token (as a page with removed rows would) without changing the order."""
    form = load_form(key)
    pairs = flatten(form, SAMPLES[key])
    renumbered = []
    for name, value in pairs:
        parts = name.split("/")
        renumbered.append(("/".join(str(int(p) * 10 + 3) if p.isdigit() else p for p in parts), value))
    assert from_post(form, renumbered).data == SAMPLES[key]


SIMPLE = CompiledForm({"type": "object", "properties": {
    "n": {"type": "integer"}, "x": {"type": "number"}, "s": {"type": "string"},
    "rows": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer"},
                                                                          "s": {"type": "string"}}}},
}})
clean_text = st.text(min_size=1).filter(lambda s: s == s.strip() and "\r" not in s and "\ufffd" not in s)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(min_value=-(10**30), max_value=10**30), s=clean_text,
       x=st.floats(min_value=-1e15, max_value=1e15, allow_nan=False) | st.floats(max_value=1e-3, min_value=-1e-3))
def test_property_scalars_round_trip(n, s, x):
    data = {"n": n, "s": s, "x": x}
    converted = from_post(SIMPLE, flatten(SIMPLE, data))
    assert converted.data == data
    assert type(converted.data["n"]) is int


def test_large_number_round_trips_through_the_page():
    data = {"x": 1e64}
    assert from_post(SIMPLE, flatten(SIMPLE, data)).data == data


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({}, optional={"n": st.integers(-10**6, 10**6), "s": clean_text}),
                     max_size=8))
def test_property_rows_round_trip(rows):
    data = {"rows": rows} if rows else {}
    kept = [r for r in rows if r]
    expected = {"rows": kept} if kept else {}
    assert from_post(SIMPLE, flatten(SIMPLE, data)).data == expected


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(st.text(max_size=30), st.text(max_size=30)), max_size=30))
def test_property_any_post_gives_data_of_the_schema_shape(pairs):
    converted = from_post(SIMPLE, pairs)
    assert set(converted.data) <= {"n", "x", "s", "rows"}
    assert depth(converted.data) <= 3
    for row in converted.data.get("rows", []):
        assert set(row) <= {"n", "s"}


# -- row operations -----------------------------------------------------------------------------

def rows_data() -> dict:
    return {"rows": [{"name": "甲"}, {"name": "乙"}, {"name": "丙"}]}


def names(data: dict) -> list:
    return [r.get("name") for r in data["rows"]]


def test_add_appends_an_empty_row(rows_form):
    data = {"rows": [{"name": "甲"}]}
    assert apply_op(data, "add:/rows", rows_form) == {"rows": [{"name": "甲"}, {}]}


def test_add_creates_the_list_when_missing(rows_form):
    assert apply_op({}, "add:/rows", rows_form) == {"rows": [{}]}
    assert apply_op({}, "add:/words", rows_form) == {"words": [None]}


def test_add_in_a_nested_repeat(rows_form):
    data = {"rows": [{"name": "甲"}]}
    assert apply_op(data, "add:/rows/0/sub", rows_form) == {"rows": [{"name": "甲", "sub": [{}]}]}


def test_add_stops_at_max_items(rows_form):
    data = rows_data()
    assert apply_op(data, "add:/rows", rows_form) == rows_data()  # maxItems 3


def test_remove_row(rows_form):
    assert names(apply_op(rows_data(), "remove:/rows/1", rows_form)) == ["甲", "丙"]
    assert names(apply_op(rows_data(), "remove:/rows/0", rows_form)) == ["乙", "丙"]


@pytest.mark.parametrize("op", ["remove:/rows/3", "remove:/rows/99", "remove:/rows/-1", "remove:/rows",
                                "remove:/rows/x", "up:/rows/0", "down:/rows/2", "up:/rows/7", "down:/rows/9",
                                "jump:/rows/1", "remove:/title/0", "up:/nothing/1", "", "remove:"])
def test_ops_out_of_bounds_change_nothing(rows_form, op):
    assert apply_op(rows_data(), op, rows_form) == rows_data()


def test_up_and_down(rows_form):
    assert names(apply_op(rows_data(), "up:/rows/1", rows_form)) == ["乙", "甲", "丙"]
    assert names(apply_op(rows_data(), "up:/rows/2", rows_form)) == ["甲", "丙", "乙"]
    assert names(apply_op(rows_data(), "down:/rows/0", rows_form)) == ["乙", "甲", "丙"]
    assert names(apply_op(rows_data(), "down:/rows/1", rows_form)) == ["甲", "丙", "乙"]


def test_ops_on_nested_rows(rows_form):
    data = {"rows": [{"sub": [{"z": "1"}, {"z": "2"}]}]}
    assert apply_op(data, "down:/rows/0/sub/0", rows_form) == {"rows": [{"sub": [{"z": "2"}, {"z": "1"}]}]}
    assert apply_op(data, "remove:/rows/0/sub/1", rows_form) == {"rows": [{"sub": [{"z": "2"}]}]}


def test_remove_an_attachment_from_a_list():
    form = one({"type": "array", "items": {"type": "string", "format": "attachment"}})
    data = {"f": [SHA[0], SHA[1], SHA[2]]}
    assert apply_op(data, "remove:/f/1", form) == {"f": [SHA[0], SHA[2]]}


def test_clear_removes_a_field(rows_form):
    assert apply_op({"title": "x", "rows": []}, "clear:/title", rows_form) == {"rows": []}
    schema = {"type": "object", "properties": {"g": {"type": "object", "properties": {"a": {"type": "string"}}}}}
    assert apply_op({"g": {"a": "x"}}, "clear:/g/a", CompiledForm(schema)) == {"g": {}}


def test_clear_inside_rows_or_of_missing_fields_changes_nothing(rows_form):
    assert apply_op(rows_data(), "clear:/rows/0/name", rows_form) == rows_data()
    assert apply_op(rows_data(), "clear:/missing/deeper", rows_form) == rows_data()


def test_add_under_a_missing_row_changes_nothing(rows_form):
    assert apply_op(rows_data(), "add:/rows/5/sub", rows_form) == rows_data()


@pytest.mark.parametrize("op", ["remove:/rows/²", "up:/rows/¹", "clear:/²"])
def test_ops_with_odd_digits_change_nothing(rows_form, op):
    assert apply_op(rows_data(), op, rows_form) == rows_data()


@pytest.mark.parametrize("op", ["add:/nothing", "add:/title", "add:/"])
def test_add_on_a_path_that_is_not_a_repeat_changes_nothing(rows_form, op):
    assert apply_op(rows_data(), op, rows_form) == rows_data()
