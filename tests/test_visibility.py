"""Conditional fields (ui:visibleWhen): a hidden field is neither required nor kept."""

from __future__ import annotations

from server.validation import CompiledForm


def when_true(name: str) -> dict:
    """A condition: the form data has `name` set to true."""
    return {"properties": {name: {"const": True}}, "required": [name]}


ISSUE = {
    "type": "object",
    "required": ["has_issue", "issue_detail"],
    "properties": {
        "has_issue": {"type": "boolean", "title": "是否发现问题"},
        "issue_detail": {"type": "string", "title": "问题描述", "minLength": 5},
    },
}
ISSUE_UI = {"issue_detail": {"ui:visibleWhen": when_true("has_issue")}}


def check(schema: dict, ui: dict, data):
    result = CompiledForm(schema, ui).validate(data)
    return result.data, [(e.path, e.message) for e in result.errors]


def test_hidden_field_is_not_required():
    data, errs = check(ISSUE, ISSUE_UI, {"has_issue": False})
    assert errs == []
    assert data == {"has_issue": False}


def test_hidden_field_value_is_dropped():
    data, errs = check(ISSUE, ISSUE_UI, {"has_issue": False, "issue_detail": "楼道堆放杂物"})
    assert errs == []
    assert data == {"has_issue": False}


def test_hidden_field_with_an_invalid_value_is_not_an_error():
    data, errs = check(ISSUE, ISSUE_UI, {"has_issue": False, "issue_detail": 42})
    assert errs == []
    assert "issue_detail" not in data


def test_visible_field_is_required():
    data, errs = check(ISSUE, ISSUE_UI, {"has_issue": True})
    assert errs == [("/issue_detail", "「问题描述」为必填项")]


def test_visible_field_is_kept_and_validated():
    data, errs = check(ISSUE, ISSUE_UI, {"has_issue": True, "issue_detail": "楼道堆放杂物"})
    assert errs == []
    assert data == {"has_issue": True, "issue_detail": "楼道堆放杂物"}
    _, errs = check(ISSUE, ISSUE_UI, {"has_issue": True, "issue_detail": "杂物"})
    assert errs == [("/issue_detail", "「问题描述」至少需要 5 个字")]


def test_data_without_the_trigger_field_hides_the_field():
    data, errs = check(ISSUE, ISSUE_UI, {"issue_detail": "楼道堆放杂物"})
    assert errs == [("/has_issue", "「是否发现问题」为必填项")]
    assert data == {}


def test_validating_does_not_change_the_data_passed_in():
    original = {"has_issue": False, "issue_detail": "楼道堆放杂物"}
    check(ISSUE, ISSUE_UI, original)
    assert original == {"has_issue": False, "issue_detail": "楼道堆放杂物"}


def test_condition_may_be_any_json_schema_over_the_data():
    schema = {"type": "object", "required": ["age", "guardian"], "properties": {
        "age": {"type": "integer", "title": "年龄"}, "guardian": {"type": "string", "title": "监护人"}}}
    ui = {"guardian": {"ui:visibleWhen": {"properties": {"age": {"maximum": 17}}, "required": ["age"]}}}
    assert check(schema, ui, {"age": 12})[1] == [("/guardian", "「监护人」为必填项")]
    assert check(schema, ui, {"age": 40, "guardian": "张三"}) == ({"age": 40}, [])


def test_condition_does_not_refuse_fields_it_does_not_mention():
    # Conditions are not closed like the form schema: the group holds more than the condition names.
    schema = {"type": "object", "properties": {
        "address": {"type": "object", "properties": {"city": {"type": "string"}, "street": {"type": "string"}}},
        "note": {"type": "string", "title": "说明"}}, "required": ["note"]}
    ui = {"note": {"ui:visibleWhen": {
        "properties": {"address": {"properties": {"city": {"const": "杭州"}}, "required": ["city"]}},
        "required": ["address"]}}}
    _, errs = check(schema, ui, {"address": {"city": "杭州", "street": "东街"}})
    assert errs == [("/note", "「说明」为必填项")]


# -- chains --------------------------------------------------------------------------------------

CHAIN = {
    "type": "object",
    "required": ["a", "b", "c"],
    "properties": {
        "a": {"type": "boolean", "title": "是否涉及纠纷"},
        "b": {"type": "string", "title": "纠纷类型"},
        "c": {"type": "string", "title": "邻里纠纷说明"},
    },
}
CHAIN_UI = {
    "b": {"ui:visibleWhen": when_true("a")},
    "c": {"ui:visibleWhen": {"properties": {"b": {"const": "neighbour"}}, "required": ["b"]}},
}


def test_hiding_the_first_trigger_hides_the_whole_chain():
    data, errs = check(CHAIN, CHAIN_UI, {"a": False, "b": "neighbour", "c": "噪音扰民"})
    assert errs == []
    assert data == {"a": False}


def test_chain_is_followed_whatever_order_the_conditions_are_declared():
    ui = {"c": CHAIN_UI["c"], "b": CHAIN_UI["b"]}
    schema = {**CHAIN, "properties": {k: CHAIN["properties"][k] for k in ("c", "b", "a")}}
    data, errs = check(schema, ui, {"a": False, "b": "neighbour", "c": "噪音扰民"})
    assert errs == []
    assert data == {"a": False}


def test_visible_chain_requires_its_last_field():
    data, errs = check(CHAIN, CHAIN_UI, {"a": True, "b": "neighbour"})
    assert errs == [("/c", "「邻里纠纷说明」为必填项")]


def test_middle_of_the_chain_hides_only_what_follows():
    data, errs = check(CHAIN, CHAIN_UI, {"a": True, "b": "debt", "c": "噪音扰民"})
    assert errs == []
    assert data == {"a": True, "b": "debt"}


def test_hidden_paths_names_every_hidden_field():
    compiled = CompiledForm(CHAIN, CHAIN_UI)
    assert compiled.hidden_paths({"a": False, "b": "neighbour"}) == {("b",), ("c",)}
    assert compiled.hidden_paths({"a": True, "b": "neighbour"}) == set()
    assert compiled.hidden_paths({"a": True, "b": "debt"}) == {("c",)}


def test_form_without_conditions_hides_nothing():
    compiled = CompiledForm(CHAIN)
    assert compiled.hidden_paths({"a": False}) == set()
    assert compiled.validate({"a": False, "b": "x", "c": "y"}).data == {"a": False, "b": "x", "c": "y"}


# -- nested groups and repeating groups ------------------------------------------------------------

HOUSEHOLD = {
    "type": "object",
    "properties": {
        "has_elderly": {"type": "boolean", "title": "有无老人"},
        "members": {
            "type": "array",
            "title": "家庭成员",
            "items": {
                "type": "object",
                "required": ["name", "care"],
                "properties": {
                    "name": {"type": "string", "title": "姓名"},
                    "care": {"type": "string", "title": "照护情况", "minLength": 2},
                },
            },
        },
    },
}
HOUSEHOLD_UI = {"members": {"items": {"care": {"ui:visibleWhen": when_true("has_elderly")}}}}


def test_hidden_field_in_rows_is_dropped_from_every_row():
    data, errs = check(HOUSEHOLD, HOUSEHOLD_UI, {
        "has_elderly": False,
        "members": [{"name": "张三", "care": "独居"}, {"name": "李四"}, {"name": "王五", "care": 1}]})
    assert errs == []
    assert data == {"has_elderly": False, "members": [{"name": "张三"}, {"name": "李四"}, {"name": "王五"}]}


def test_hidden_paths_in_rows_are_one_per_row():
    compiled = CompiledForm(HOUSEHOLD, HOUSEHOLD_UI)
    data = {"has_elderly": False, "members": [{"name": "张三"}, {"name": "李四"}]}
    assert compiled.hidden_paths(data) == {("members", 0, "care"), ("members", 1, "care")}


def test_visible_field_in_rows_is_required_in_each_row():
    data, errs = check(HOUSEHOLD, HOUSEHOLD_UI, {
        "has_elderly": True,
        "members": [{"name": "张三", "care": "独居"}, {"name": "李四"}, {"name": "王五", "care": "好"}]})
    assert errs == [
        ("/members/1/care", "「家庭成员第2项的照护情况」为必填项"),
        ("/members/2/care", "「家庭成员第3项的照护情况」至少需要 2 个字"),
    ]
    assert data["members"][0] == {"name": "张三", "care": "独居"}


def test_condition_in_rows_without_any_rows_hides_nothing_and_fails_nothing():
    data, errs = check(HOUSEHOLD, HOUSEHOLD_UI, {"has_elderly": False})
    assert (data, errs) == ({"has_elderly": False}, [])


def test_condition_on_a_row_field_can_look_at_the_rows():
    # A condition reads the whole data, so it can ask whether any row has some value.
    ui = {"members": {"items": {"care": {"ui:visibleWhen": {
        "properties": {"members": {"contains": {"properties": {"name": {"const": "张三"}}, "required": ["name"]}}},
        "required": ["members"]}}}}}
    _, errs = check(HOUSEHOLD, ui, {"members": [{"name": "李四"}]})
    assert errs == []
    _, errs = check(HOUSEHOLD, ui, {"members": [{"name": "李四"}, {"name": "张三", "care": "卧床"}]})
    assert errs == [("/members/0/care", "「家庭成员第1项的照护情况」为必填项")]


def test_hidden_field_in_a_nested_group_is_not_required_nor_kept():
    schema = {"type": "object", "properties": {
        "place": {"type": "string", "enum": ["home", "shop"], "title": "场所"},
        "address": {"type": "object", "title": "地址", "required": ["room"], "properties": {
            "street": {"type": "string", "title": "街道"}, "room": {"type": "string", "title": "房号"}}}}}
    ui = {"address": {"room": {"ui:visibleWhen": {"properties": {"place": {"const": "home"}}, "required": ["place"]}}}}
    data, errs = check(schema, ui, {"place": "shop", "address": {"street": "东街", "room": "101"}})
    assert (data, errs) == ({"place": "shop", "address": {"street": "东街"}}, [])
    _, errs = check(schema, ui, {"place": "home", "address": {"street": "东街"}})
    assert errs == [("/address/room", "「房号」为必填项")]


def test_hidden_whole_group_takes_its_required_fields_with_it():
    schema = {"type": "object", "required": ["has_issue", "issue"], "properties": {
        "has_issue": {"type": "boolean"},
        "issue": {"type": "object", "title": "问题", "required": ["kind"], "properties": {
            "kind": {"type": "string", "title": "类别"}}}}}
    ui = {"issue": {"ui:visibleWhen": when_true("has_issue")}}
    assert check(schema, ui, {"has_issue": False, "issue": {}}) == ({"has_issue": False}, [])
    assert check(schema, ui, {"has_issue": True, "issue": {}})[1] == [("/issue/kind", "「类别」为必填项")]


def test_condition_on_the_whole_form_is_ignored():
    # ui:visibleWhen belongs on fields; the form itself is always shown.
    ui = {**ISSUE_UI, "ui:visibleWhen": {"required": ["nothing"]}}
    data, errs = check(ISSUE, ui, {"has_issue": False})
    assert (data, errs) == ({"has_issue": False}, [])
