"""Form validation: a Chinese message and a JSON Pointer per error, form order, unknown fields, caching."""

from __future__ import annotations

import http.server
import threading
import time
import uuid

import pytest
from referencing.exceptions import Unresolvable

from server.definitions.check import STANDARD_FORMATS_ALLOWED
from server.formats import format_checker, id_card_check_char
from server.validation import CompiledForm, cache_size, compiled_form


def errors(schema: dict, data, ui: dict | None = None) -> list[tuple[str, str]]:
    """Validate and return the errors as (path, message), in the order they are reported."""
    return [(e.path, e.message) for e in CompiledForm(schema, ui).validate(data).errors]


def form(**properties) -> dict:
    return {"type": "object", "properties": properties}


def one_field(prop: dict, value, ui: dict | None = None) -> list[tuple[str, str]]:
    """Errors for a form with the single field `f`, holding `value`."""
    return errors(form(f=prop), {"f": value}, {"f": ui} if ui else None)


# -- one message per keyword -------------------------------------------------------------------

KEYWORD_CASES = [
    # keyword, field schema, field ui, value, message
    ("type string", {"type": "string", "title": "姓名"}, None, 5, "「姓名」应为文本"),
    ("type integer", {"type": "integer", "title": "人数"}, None, 2.5, "「人数」应为整数"),
    ("type number", {"type": "number", "title": "面积"}, None, "大", "「面积」应为数字"),
    ("type boolean", {"type": "boolean", "title": "是否独居"}, None, "是", "「是否独居」应为是或否"),
    ("type array", {"type": "array", "title": "照片"}, None, "a.jpg", "「照片」应为列表"),
    ("type object", {"type": "object", "title": "地址"}, None, "东街1号", "「地址」应为一组字段"),
    ("type null", {"type": "null", "title": "备用"}, None, 0, "「备用」应为空值"),
    ("type list", {"type": ["integer", "null"], "title": "年龄"}, None, "十八", "「年龄」应为整数或空值"),
    ("minimum", {"type": "integer", "minimum": 0, "title": "人数"}, None, -1, "「人数」不能小于 0"),
    ("minimum float", {"type": "number", "minimum": 1.5, "title": "面积"}, None, 1, "「面积」不能小于 1.5"),
    ("minimum whole float", {"type": "number", "minimum": 2.0, "title": "面积"}, None, 1, "「面积」不能小于 2"),
    ("maximum", {"type": "integer", "maximum": 120, "title": "年龄"}, None, 121, "「年龄」不能大于 120"),
    ("exclusiveMinimum", {"type": "number", "exclusiveMinimum": 0, "title": "金额"}, None, 0,
     "「金额」必须大于 0"),
    ("exclusiveMaximum", {"type": "number", "exclusiveMaximum": 100, "title": "比例"}, None, 100,
     "「比例」必须小于 100"),
    ("multipleOf", {"type": "number", "multipleOf": 0.01, "title": "金额"}, None, 19.995,
     "「金额」必须是 0.01 的整数倍"),
    ("multipleOf integer", {"type": "integer", "multipleOf": 5, "title": "份数"}, None, 12,
     "「份数」必须是 5 的整数倍"),
    ("minLength", {"type": "string", "minLength": 2, "title": "户主姓名"}, None, "张", "「户主姓名」至少需要 2 个字"),
    ("maxLength", {"type": "string", "maxLength": 4, "title": "户主姓名"}, None, "欧阳上官司马",
     "「户主姓名」最多 4 个字"),
    ("pattern", {"type": "string", "pattern": "^[0-9]{6}$", "title": "邮编"}, None, "31000",
     "「邮编」的格式不正确"),
    ("enum", {"type": "string", "enum": ["a", "b"], "title": "类别"}, None, "c", "「类别」只能从以下选项中选择：a、b"),
    ("enum with ui:enumNames", {"type": "string", "enum": ["own", "rent"], "title": "住房"},
     {"ui:enumNames": ["自有", "租住"]}, "free", "「住房」只能从以下选项中选择：自有、租住"),
    ("enum with too few ui:enumNames", {"type": "string", "enum": ["own", "rent", "other"], "title": "住房"},
     {"ui:enumNames": ["自有"]}, "free", "「住房」只能从以下选项中选择：自有、rent、other"),
    ("const", {"const": "yes"}, {"ui:title": "同意条款"}, "no", "「同意条款」只能是「yes」"),
    ("oneOf labelled options", {"type": "string", "title": "紧急程度", "oneOf": [
        {"const": "low", "title": "一般"}, {"const": "high", "title": "紧急"}]}, None, "mid",
     "「紧急程度」只能从以下选项中选择：一般、紧急"),
    ("oneOf const without titles", {"title": "等级", "oneOf": [{"const": 1}, {"const": 2}]}, None, 3,
     "「等级」只能从以下选项中选择：1、2"),
    ("minItems", {"type": "array", "minItems": 2, "title": "照片"}, None, ["a"], "「照片」至少需要 2 项"),
    ("maxItems", {"type": "array", "maxItems": 1, "title": "照片"}, None, ["a", "b"], "「照片」最多 1 项"),
    ("uniqueItems", {"type": "array", "uniqueItems": True, "title": "部门"}, None, ["公安", "公安"],
     "「部门」中有重复的项"),
    ("minProperties", {"type": "object", "minProperties": 1, "title": "补充信息",
                       "additionalProperties": True}, None, {}, "「补充信息」至少需要填写 1 项"),
    ("maxProperties", {"type": "object", "maxProperties": 1, "title": "补充信息",
                       "additionalProperties": True}, None, {"a": 1, "b": 2}, "「补充信息」最多填写 1 项"),
    ("not", {"not": {"const": "无"}, "title": "说明"}, None, "无", "「说明」的值不被允许"),
    ("contains", {"type": "array", "contains": {"const": "本人"}, "title": "关系"}, None, ["父", "母"],
     "「关系」缺少必需的项"),
    ("anyOf", {"anyOf": [{"type": "string"}, {"type": "integer"}], "title": "门牌"}, None, 1.5,
     "「门牌」不符合任何一种允许的填写方式"),
]


@pytest.mark.parametrize("prop, ui, value, message", [c[1:] for c in KEYWORD_CASES],
                         ids=[c[0] for c in KEYWORD_CASES])
def test_each_keyword_has_its_chinese_message(prop, ui, value, message):
    assert one_field(prop, value, ui) == [("/f", message)]


def test_missing_required_field_is_named_by_its_title():
    schema = {"type": "object", "required": ["household"],
              "properties": {"household": {"type": "string", "title": "户主姓名"}}}
    assert errors(schema, {}) == [("/household", "「户主姓名」为必填项")]


def test_each_missing_required_field_gets_its_own_error():
    schema = {"type": "object", "required": ["a", "b"],
              "properties": {"a": {"type": "string", "title": "甲"}, "b": {"type": "string", "title": "乙"}}}
    assert errors(schema, {}) == [("/a", "「甲」为必填项"), ("/b", "「乙」为必填项")]


def test_required_field_from_a_condition_is_reported_with_the_others():
    # `then: required` makes a field required only sometimes; both missing fields must be listed
    # at once, or the person fixes one, submits again, and only then hears about the other.
    schema = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "title": "姓名"},
            "has_issue": {"type": "boolean", "title": "是否发现问题"},
            "detail": {"type": "string", "title": "问题描述"},
        },
        "if": {"properties": {"has_issue": {"const": True}}, "required": ["has_issue"]},
        "then": {"required": ["detail"]},
    }
    assert errors(schema, {"has_issue": True}) == [("/name", "「姓名」为必填项"), ("/detail", "「问题描述」为必填项")]


def test_required_field_from_all_of_is_reported_with_the_others():
    schema = {"type": "object", "required": ["a"], "allOf": [{"required": ["b"]}],
              "properties": {"a": {"type": "string", "title": "甲"}, "b": {"type": "string", "title": "乙"}}}
    assert errors(schema, {}) == [("/a", "「甲」为必填项"), ("/b", "「乙」为必填项")]


def test_const_message_names_the_allowed_value_not_the_field_title():
    # The title names the field; the value the person must give is the const itself.
    prop = {"type": "string", "const": "yes", "title": "同意条款"}
    assert one_field(prop, "no") == [("/f", "「同意条款」只能是「yes」")]


def test_multiple_of_is_checked_in_decimal():
    prop = {"type": "number", "multipleOf": 0.01, "title": "金额"}
    # In binary floating point 19.99 / 0.01 is 1998.9999999999998.
    for amount in (19.99, 0.07, 1.1, 100, 0, 123456.78):
        assert one_field(prop, amount) == [], amount
    assert one_field({"type": "number", "multipleOf": 0.1}, 0.3) == []
    assert one_field(prop, 0.001) == [("/f", "「金额」必须是 0.01 的整数倍")]


# -- formats -----------------------------------------------------------------------------------

FORMAT_CASES = [
    ("date", "2024-02-30", "「日期」应为有效日期，如 2024-05-01"),
    ("time", "25:00", "「日期」应为有效时间，如 09:30"),
    ("date-time", "2024-05-01 9:30", "「日期」应为有效的日期和时间，如 2024-05-01T09:30"),
    ("email", "zhangsan", "「日期」应为有效的电子邮箱地址"),
    ("cn-mobile", "12345", "「日期」应为11位手机号码"),
    ("cn-id-card", "110105194912310021", "「日期」不是有效的18位身份证号码（请核对出生日期和最后一位校验码）"),
    ("grid-code", "g-1", "「日期」不是有效的网格编码"),
    ("attachment", "photo.jpg", "「日期」不是有效的附件，请重新上传"),
]


@pytest.mark.parametrize("fmt, value, message", FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_each_format_has_its_chinese_message(fmt, value, message):
    assert one_field({"type": "string", "format": fmt, "title": "日期"}, value) == [("/f", message)]


def test_valid_id_card_passes_the_form():
    first17 = "33010619800101001"
    prop = {"type": "string", "format": "cn-id-card", "title": "身份证号"}
    assert one_field(prop, first17 + id_card_check_char(first17)) == []


def test_format_of_a_non_string_is_left_to_type():
    assert one_field({"format": "date", "title": "日期"}, 20240501) == []
    assert one_field({"type": "string", "format": "date", "title": "日期"}, 20240501) == [("/f", "「日期」应为文本")]


def test_every_format_gridflow_check_accepts_is_enforced():
    # A format that passes `gridflow check` but is never checked silently accepts anything.
    assert STANDARD_FORMATS_ALLOWED <= set(format_checker().checkers)


# -- naming the field ----------------------------------------------------------------------------


def test_ui_title_overrides_the_schema_title():
    got = one_field({"type": "string", "title": "name"}, 1, {"ui:title": "户主姓名"})
    assert got == [("/f", "「户主姓名」应为文本")]


def test_field_without_a_title_is_named_by_its_key():
    assert errors(form(household={"type": "string"}), {"household": 1}) == [("/household", "「household」应为文本")]


def test_error_on_the_whole_form_is_named_by_the_form_title():
    assert errors(form(a={}), "oops") == [("", "「表单」应为一组字段")]
    assert errors({**form(a={}), "title": "走访登记"}, "oops") == [("", "「走访登记」应为一组字段")]
    assert errors(form(a={}), "oops", {"ui:title": "入户走访"}) == [("", "「入户走访」应为一组字段")]


MEMBERS = {
    "type": "object",
    "properties": {
        "members": {
            "type": "array",
            "title": "家庭成员",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "title": "姓名"},
                    "phones": {
                        "type": "array",
                        "title": "电话",
                        "items": {"type": "object", "properties": {
                            "number": {"type": "string", "format": "cn-mobile", "title": "号码"}}},
                    },
                    "tags": {"type": "array", "title": "标签", "items": {"type": "string", "enum": ["old", "ill"]}},
                },
            },
        }
    },
}


def test_error_in_a_repeating_group_names_the_row():
    got = errors(MEMBERS, {"members": [{"name": "张三"}, {}]})
    assert got == [("/members/1/name", "「家庭成员第2项的姓名」为必填项")]


def test_error_in_a_nested_repeating_group_names_both_rows():
    data = {"members": [{"name": "张三"}, {"name": "李四", "phones": [{"number": "110"}]}]}
    assert errors(MEMBERS, data) == [
        ("/members/1/phones/0/number", "「家庭成员第2项的电话第1项的号码」应为11位手机号码")]


def test_error_on_a_choice_in_a_list_of_choices_names_the_list():
    ui = {"members": {"items": {"tags": {"items": {"ui:enumNames": ["老人", "病人"]}}}}}
    got = errors(MEMBERS, {"members": [{"name": "张三", "tags": ["old", "young"]}]}, ui)
    assert got == [("/members/0/tags/1", "「家庭成员第1项的标签」只能从以下选项中选择：老人、病人")]


def test_title_of_a_field_behind_a_local_ref_is_found():
    schema = {
        "type": "object",
        "$defs": {"mobile": {"type": "string", "format": "cn-mobile", "title": "手机"}},
        "properties": {"phone": {"$ref": "#/$defs/mobile"}},
    }
    assert errors(schema, {"phone": "1"}) == [("/phone", "「手机」应为11位手机号码")]


def test_json_pointer_escapes_slash_and_tilde_in_keys():
    schema = form(**{"a/b": {"type": "string", "title": "甲"}, "c~d": {"type": "string", "title": "乙"}})
    assert errors(schema, {"a/b": 1, "c~d": 2}) == [("/a~1b", "「甲」应为文本"), ("/c~0d", "「乙」应为文本")]


# -- custom messages -----------------------------------------------------------------------------


def test_x_error_messages_overrides_a_keyword_message():
    prop = {"type": "string", "minLength": 6, "title": "邮编", "x-errorMessages": {"minLength": "邮编是 6 位数字"}}
    assert one_field(prop, "123") == [("/f", "邮编是 6 位数字")]


def test_x_error_messages_leaves_other_keywords_alone():
    prop = {"type": "string", "minLength": 6, "title": "邮编", "x-errorMessages": {"minLength": "邮编是 6 位数字"}}
    assert one_field(prop, 123456) == [("/f", "「邮编」应为文本")]


def test_x_error_messages_overrides_a_format_message():
    prop = {"type": "string", "format": "date", "title": "日期", "x-errorMessages": {"format": "请按 年-月-日 填写"}}
    assert one_field(prop, "5月1日") == [("/f", "请按 年-月-日 填写")]


def test_x_error_messages_on_the_field_overrides_required():
    schema = {"type": "object", "required": ["phone"], "properties": {
        "phone": {"type": "string", "title": "电话", "x-errorMessages": {"required": "请留一个能打通的电话"}}}}
    assert errors(schema, {}) == [("/phone", "请留一个能打通的电话")]


# -- form order ----------------------------------------------------------------------------------


def test_errors_come_out_in_form_order():
    schema = {
        "type": "object",
        "required": ["name", "phone", "area", "date"],
        "properties": {
            "name": {"type": "string", "title": "姓名"},
            "phone": {"type": "string", "format": "cn-mobile", "title": "电话"},
            "area": {"type": "number", "minimum": 1, "title": "面积"},
            "date": {"type": "string", "format": "date", "title": "日期"},
        },
    }
    got = errors(schema, {"date": "昨天", "area": 0, "phone": "1"})
    assert [path for path, _ in got] == ["/name", "/phone", "/area", "/date"]


def test_errors_in_rows_come_out_row_by_row_and_unknown_fields_last():
    data = {"extra": 1, "members": [{"name": 1}, {}, {"name": "王五", "phones": [{"number": "1"}]}]}
    got = errors(MEMBERS, data)
    assert [path for path, _ in got] == [
        "/members/0/name", "/members/1/name", "/members/2/phones/0/number", "/extra"]


# -- unknown fields ------------------------------------------------------------------------------


def test_unknown_field_is_refused():
    assert errors(form(name={"type": "string"}), {"name": "张三", "surname": "张"}) == [
        ("/surname", "表单中没有「surname」这一项，请删除")]


def test_unknown_field_in_a_group_or_row_is_refused_with_its_path():
    schema = form(address={"type": "object", "properties": {"street": {"type": "string"}}}, **MEMBERS["properties"])
    got = errors(schema, {"address": {"room": "1"}, "members": [{"name": "张三", "age": 3}]})
    assert got == [("/address/room", "表单中没有「room」这一项，请删除"),
                   ("/members/0/age", "表单中没有「age」这一项，请删除")]


def test_additional_properties_true_lets_unknown_fields_in():
    schema = {**form(name={"type": "string"}), "additionalProperties": True}
    assert errors(schema, {"name": "张三", "surname": "张"}) == []


def test_pattern_properties_are_not_unknown_fields():
    schema = {**form(name={"type": "string"}), "patternProperties": {"^x_": {"type": "string"}},
              "additionalProperties": False}
    assert errors(schema, {"x_note": "ok", "y": 1}) == [("/y", "表单中没有「y」这一项，请删除")]


def test_unknown_field_is_refused_when_the_form_has_a_condition():
    schema = {
        "type": "object",
        "properties": {"has_issue": {"type": "boolean"}, "detail": {"type": "string"}},
        "if": {"properties": {"has_issue": {"const": True}}, "required": ["has_issue"]},
        "then": {"required": ["detail"]},
    }
    assert errors(schema, {"has_issue": False, "surname": "张"}) == [
        ("/surname", "表单中没有「surname」这一项，请删除")]


def test_compiling_does_not_change_the_definition():
    schema = form(name={"type": "string"}, group={"type": "object", "properties": {"a": {}}})
    before = repr(schema)
    CompiledForm(schema).validate({"name": "x", "zzz": 1})
    assert repr(schema) == before


# -- oneOf shapes ----------------------------------------------------------------------------------


def test_nested_one_of_of_shapes_says_no_allowed_way_matched():
    prop = {"type": "object", "title": "联系方式", "oneOf": [
        {"properties": {"phone": {"type": "string"}}, "required": ["phone"]},
        {"properties": {"email": {"type": "string"}}, "required": ["email"]},
    ]}
    assert one_field(prop, {}) == [("/f", "「联系方式」不符合任何一种允许的填写方式")]


def test_value_matching_two_one_of_shapes_is_refused():
    prop = {"title": "数量", "oneOf": [{"type": "number"}, {"type": "integer"}]}
    assert one_field(prop, 3) == [("/f", "「数量」不符合任何一种允许的填写方式")]


def test_valid_labelled_option_passes():
    prop = {"type": "string", "title": "紧急程度", "oneOf": [{"const": "low", "title": "一般"}, {"const": "high"}]}
    assert one_field(prop, "high") == []


def test_result_is_ok_only_without_errors():
    compiled = CompiledForm(form(a={"type": "string"}))
    assert compiled.validate({"a": "x"}).ok
    bad = compiled.validate({"a": 1})
    assert not bad.ok
    assert [e.as_dict() for e in bad.errors] == [{"path": "/a", "message": "「a」应为文本"}]


# -- one compiled validator per form version -------------------------------------------------------


def test_same_content_hash_gives_the_same_compiled_form():
    digest = uuid.uuid4().hex
    schema = form(a={"type": "string"})
    before = cache_size()
    first = compiled_form(digest, schema, {})
    second = compiled_form(digest, schema, {})
    assert first is second
    assert cache_size() == before + 1


def test_other_content_hash_compiles_another_form():
    schema = form(a={"type": "string"})
    before = cache_size()
    first = compiled_form(uuid.uuid4().hex, schema)
    second = compiled_form(uuid.uuid4().hex, schema)
    assert first is not second
    assert cache_size() == before + 2


def test_threads_asking_at_once_share_one_compiled_form():
    digest = uuid.uuid4().hex
    schema = form(a={"type": "string"})
    before = cache_size()
    barrier = threading.Barrier(8)
    got = []

    def ask():
        barrier.wait()
        got.append(compiled_form(digest, schema))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(g is got[0] for g in got)
    assert cache_size() == before + 1


# -- references ----------------------------------------------------------------------------------


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def schema_server():
    """A real local HTTP server that serves a schema and records every request."""
    _CountingHandler.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _CountingHandler.hits
    server.shutdown()
    server.server_close()
    thread.join()


def test_remote_ref_is_never_fetched(schema_server):
    base, hits = schema_server
    compiled = CompiledForm(form(name={"$ref": f"{base}/name.json"}))
    with pytest.raises(Unresolvable):
        compiled.validate({"name": "张三"})
    assert hits == []


def test_remote_ref_fails_fast():
    compiled = CompiledForm(form(name={"$ref": "https://example.com/x.json"}))
    started = time.monotonic()
    with pytest.raises(Unresolvable):
        compiled.validate({"name": "张三"})
    assert time.monotonic() - started < 1


def test_missing_local_ref_is_unresolvable():
    compiled = CompiledForm(form(name={"$ref": "#/$defs/nothing"}))
    with pytest.raises(Unresolvable):
        compiled.validate({"name": "张三"})


def test_unknown_field_beside_a_combined_schema_names_only_the_unknown_field():
    form = CompiledForm({
        "type": "object",
        "properties": {"a": {"type": "string", "title": "甲"}},
        "allOf": [{"properties": {"b": {"type": "string", "title": "乙"}}}],
    })
    result = form.validate({"a": "x", "b": "y", "zz": 1})
    assert [e.as_dict() for e in result.errors] == [
        {"path": "/zz", "message": "表单中没有「zz」这一项，请删除"}]


def test_title_beside_a_ref_names_the_field():
    form = CompiledForm({
        "type": "object",
        "$defs": {"place": {"type": "object", "title": "地点", "properties": {}}},
        "properties": {"dispute_place": {"$ref": "#/$defs/place", "title": "纠纷发生地"}},
    })
    assert form.validate({"dispute_place": 3}).errors[0].message == "「纠纷发生地」应为一组字段"


def test_boolean_const_reads_as_yes_or_no():
    form = CompiledForm({"type": "object", "properties": {"agree": {"const": True, "title": "同意"}}})
    assert form.validate({"agree": False}).errors[0].message == "「同意」只能是「是」"
