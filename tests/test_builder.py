"""The no-code form builder's model: fields as rows of settings, to and from JSON Schema + ui.

Pure: no database. Every form the builder makes is checked the way the project checks definition
files (meta-schema, JSON Schema validity, ui references: `check_form`) and its schema validates
real data with jsonschema's draft 2020-12 validator and the project's formats.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from server import ROOT
from server.definitions import builder
from server.definitions.builder import BuildError
from server.definitions.check import check_form
from server.definitions.files import Source, meta_schema
from server.formats import format_checker, id_card_check_char

EMPTY = {"key": "build_test", "title": "构建测试", "schema": {"type": "object", "properties": {}}}
META = Draft202012Validator(meta_schema("form"))
SHIPPED = sorted((ROOT / "forms").glob("*.json"))


def problems(form: dict) -> list[str]:
    """What the project's definition checks say about a form (meta-schema, schema, ui)."""
    return [str(p) for p in check_form(Source(Path("builder.json"), "form", form), None)]


def validator(form: dict) -> Draft202012Validator:
    return Draft202012Validator(form["schema"], format_checker=format_checker())


def valid(form: dict, data: dict) -> bool:
    return validator(form).is_valid(data)


def field_at(form: dict, path: tuple) -> tuple[dict, dict]:
    """The schema and ui of a field (ui may be absent: {})."""
    _, _, schema, ui = builder.locate(copy.deepcopy(form), path, create_ui=False)
    return schema, ui


def add(form: dict, kind: str, title: str | None = None, key: str | None = None, parent: tuple = ()):
    return builder.add_field(form, parent, kind, title, key)


def change(form: dict, path: tuple, **new) -> tuple[dict, tuple]:
    """Apply the field's own settings with some of them changed, as the settings panel does."""
    return builder.apply_settings(form, path, {**builder.settings(form, path), **new})


def prune(ui):
    """A ui without empty entries (the builder may leave `{}` where a field has no hints)."""
    if not isinstance(ui, dict):
        return ui
    out = {}
    for key, value in ui.items():
        value = prune(value)
        if isinstance(value, dict) and not value:
            continue
        out[key] = value
    return out


def meaning(form: dict) -> dict:
    """A form's meaning: schema with `required` as sets, ui without empty entries."""
    out = copy.deepcopy(form)

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("required"), list):
                node["required"] = sorted(node["required"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out["schema"])
    out["ui"] = prune(out.get("ui") or {})
    return out


def all_rows(rows):
    for row in rows:
        yield row
        yield from all_rows(row.children)


def an_id_card() -> str:
    first = "11010519491231002"
    return first + id_card_check_char(first)


PHOTO = "a" * 64

# kind → (values a field of it takes, values it refuses)
SAMPLES = {
    "text": (["张三", ""], [123, "字" * 201]),
    "textarea": (["第一行\n第二行", "字" * 2000], ["字" * 2001, ["x"]]),
    "integer": ([3, -1, 0], [1.5, "3"]),
    "number": ([1.5, 2, -0.25], ["1.5", True]),
    "date": (["2024-05-01"], ["2024-13-01", "2024/05/01", "昨天"]),
    "datetime": (["2024-05-01T08:30:00+08:00", "2024-05-01T08:30:00"], ["2024-05-01", "08:30"]),
    "time": (["08:30", "23:59:59"], ["25:00", "8点"]),
    "select": (["o1", "o2"], ["o3", "选项一"]),
    "radio": (["o2"], ["o9", None]),
    "checkboxes": ([["o1", "o2"], [], ["o2"]], [["o1", "o1"], ["o3"], "o1"]),
    "yesno": ([True, False], ["是", 1]),
    "phone": (["13800138000", "19912345678"], ["12345", "1380013800a", "23800138000"]),
    "idcard": ([an_id_card()], ["110101199003071234", "12345"]),
    "photo": ([[PHOTO], []], [["not-a-hash"], [PHOTO] * 10, PHOTO]),
    "file": ([[PHOTO, "b" * 64]], [["x.pdf"]]),
    "location": ([{"latitude": 22.6, "longitude": 110.1}, {"latitude": 0, "longitude": 0, "accuracy": 12}],
                 [{"latitude": 91, "longitude": 0}, {"latitude": 22.6}, [22.6, 110.1]]),
    "grid": (["450902001001001", "G1"], ["g1", "网格一"]),
    "group": ([{}], [[], "x"]),
    "repeat": ([[], [{}]], [{}, "x"]),
}


def test_every_kind_has_samples():
    assert set(SAMPLES) == set(builder.KINDS)


# -- each kind: the schema and ui it produces ---------------------------------------------------

@pytest.mark.parametrize("kind", list(builder.KINDS))
def test_a_field_of_each_kind_validates_real_data_and_reads_back_as_its_kind(kind):
    form, path = add(EMPTY, kind, "字段")
    assert path == ("field_1",)
    assert problems(form) == []
    schema, ui = field_at(form, path)
    assert builder.kind_of(schema, ui) == kind
    assert [(r.key, r.kind, r.title) for r in builder.rows(form)] == [("field_1", kind, "字段")]
    assert form["ui"]["ui:order"] == ["field_1"]
    Draft202012Validator.check_schema(form["schema"])
    good, bad = SAMPLES[kind]
    for value in good:
        assert valid(form, {"field_1": value}), (kind, value)
    for value in bad:
        assert not valid(form, {"field_1": value}), (kind, value)
    assert valid(form, {})  # a new field is optional


@pytest.mark.parametrize("kind", list(builder.KINDS))
def test_a_new_field_gets_its_kind_label_as_title(kind):
    form, path = add(EMPTY, kind)
    assert builder.rows(form)[0].title == builder.KINDS[kind]
    assert builder.rows(form)[0].kind_label == builder.KINDS[kind]


def test_shapes_of_the_kinds_with_formats_options_and_attachments():
    assert builder.shape("phone", "手机")[0] == {"title": "手机", "type": "string", "format": "cn-mobile"}
    assert builder.shape("idcard", "身份证")[0]["format"] == "cn-id-card"
    assert builder.shape("date", "日期")[0]["format"] == "date"
    assert builder.shape("datetime", "时间")[0]["format"] == "date-time"
    assert builder.shape("grid", "网格")[0]["format"] == "grid-code"
    schema, ui = builder.shape("checkboxes", "多选")
    assert schema["type"] == "array" and schema["uniqueItems"] is True
    assert schema["items"]["type"] == "string"
    assert [o["const"] for o in schema["items"]["oneOf"]] == ["o1", "o2"]
    assert all("title" in o for o in schema["items"]["oneOf"])
    assert ui == {"ui:widget": "checkboxes"}
    schema, ui = builder.shape("radio", "单选", [{"const": "a", "title": "甲"}])
    assert schema["oneOf"] == [{"const": "a", "title": "甲"}] and ui == {"ui:widget": "radio"}
    schema, ui = builder.shape("photo", "照片")
    assert schema["items"] == {"type": "string", "format": "attachment"} and ui == {"ui:widget": "photo"}
    assert builder.shape("file", "附件")[1] == {"ui:widget": "file"}
    schema, ui = builder.shape("location", "定位")
    assert schema["required"] == ["latitude", "longitude"] and ui == {"ui:widget": "geolocation"}
    assert builder.shape("repeat", "成员")[0]["items"] == {"type": "object", "properties": {}}
    assert builder.shape("yesno", "是否")[0] == {"title": "是否", "type": "boolean"}
    with pytest.raises(BuildError, match="未知的字段类型"):
        builder.shape("signature", "签名")


@pytest.mark.parametrize("schema, ui, kind", [
    ({"type": "string", "enum": ["a", "b"]}, {}, "select"),
    ({"type": "string", "enum": ["a", "b"]}, {"ui:widget": "radio"}, "radio"),
    ({"type": "array", "items": {"type": "string", "enum": ["a"]}}, {}, "checkboxes"),
    ({"type": "array", "items": {"type": "string", "anyOf": [{"const": "a"}]}}, {}, "checkboxes"),
    ({"type": "array", "items": {"type": "object", "properties": {}}}, {}, "repeat"),
    ({"type": "array", "items": {"type": "string", "format": "attachment"}}, {}, "file"),
    ({"type": "object", "properties": {}}, {"ui:widget": "geolocation"}, "location"),
    ({"type": "string"}, {"ui:widget": "textarea"}, "textarea"),
    ({"type": "string", "format": "time"}, {}, "time"),
    ({"type": "string", "format": "email"}, {}, "text"),
])
def test_kind_of_reads_hand_written_shapes(schema, ui, kind):
    assert builder.kind_of(schema, ui) == kind


# -- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(builder.KINDS))
def test_applying_a_fields_own_settings_changes_nothing(kind):
    form, path = add(EMPTY, kind, "字段")
    form, _ = add(form, "text", "另一个")
    out, same = builder.apply_settings(form, path, builder.settings(form, path))
    assert same == path
    assert out == form


def test_settings_show_a_field_as_the_panel_needs_it():
    form, path = add(EMPTY, "select", "纠纷类型", key="dispute_type")
    assert builder.settings(form, path) == {
        "key": "dispute_type", "kind": "select", "title": "纠纷类型", "description": "", "help": "",
        "placeholder": "", "required": False, "sensitive": False, "default": None,
        "options": [{"value": "o1", "label": "选项一"}, {"value": "o2", "label": "选项二"}],
        "min_length": None, "max_length": None, "minimum": None, "maximum": None,
        "min_items": None, "max_items": None, "rows": None, "visible": None,
    }


def test_label_help_placeholder_description_are_written_where_rjsf_reads_them():
    form, path = add(EMPTY, "text", "姓名")
    form, path = change(form, path, title="  户主姓名 ", help="按户口本填写", placeholder="如：张三",
                        description="户主的姓名")
    schema, ui = field_at(form, path)
    assert schema["title"] == "户主姓名" and schema["description"] == "户主的姓名"
    assert ui == {"ui:help": "按户口本填写", "ui:placeholder": "如：张三"}
    assert builder.rows(form)[0].title == "户主姓名"
    form, path = change(form, path, title="", help="", placeholder="", description="")
    schema, ui = field_at(form, path)
    assert schema["title"] == "户主姓名"  # an empty label keeps the old one
    assert "description" not in schema and ui == {}
    assert "field_1" not in form["ui"]  # the empty ui entry is dropped
    assert problems(form) == []


def test_required_is_kept_in_the_parents_required_list():
    form, first = add(EMPTY, "text", "甲")
    form, second = add(form, "text", "乙")
    form, _ = change(form, first, required=True)
    form, _ = change(form, second, required=True)
    assert form["schema"]["required"] == ["field_1", "field_2"]
    assert [r.required for r in builder.rows(form)] == [True, True]
    assert not valid(form, {"field_1": "x"}) and valid(form, {"field_1": "x", "field_2": "y"})
    form, _ = change(form, first, required=False)
    assert form["schema"]["required"] == ["field_2"]
    form, _ = change(form, second, required=False)
    assert "required" not in form["schema"]
    assert problems(form) == []


@pytest.mark.parametrize("kind, given, stored, data", [
    ("text", "无", "无", "无"),
    ("integer", "3", 3, 3),
    ("number", "2.5", 2.5, 2.5),
    ("number", "2.0", 2, 2),
    ("yesno", "是", True, True),
    ("yesno", False, False, False),
    ("select", "o2", "o2", "o2"),
    ("radio", "o1", "o1", "o1"),
])
def test_defaults_are_typed_by_the_kind(kind, given, stored, data):
    form, path = add(EMPTY, kind, "字段")
    form, _ = change(form, path, default=given)
    schema, _ = field_at(form, path)
    assert schema["default"] == stored and type(schema["default"]) is type(stored)
    assert valid(form, {"field_1": schema["default"]})
    assert builder.settings(form, path)["default"] == stored
    form, _ = change(form, path, default="")
    assert "default" not in field_at(form, path)[0]


@pytest.mark.parametrize("kind", ["date", "phone", "checkboxes", "photo", "group", "repeat", "location"])
def test_kinds_without_a_default_drop_one(kind):
    form, path = add(EMPTY, kind, "字段")
    form, _ = change(form, path, default="2024-01-01")
    assert "default" not in field_at(form, path)[0]


@pytest.mark.parametrize("kind, limits, keys, inside, outside", [
    ("text", {"min_length": "2", "max_length": "5"}, {"minLength": 2, "maxLength": 5}, "张三", "张"),
    ("textarea", {"min_length": 10, "max_length": ""}, {"minLength": 10}, "字" * 10, "字" * 9),
    ("integer", {"minimum": "0", "maximum": "120"}, {"minimum": 0, "maximum": 120}, 120, 121),
    ("number", {"minimum": "-1.5", "maximum": 1e3}, {"minimum": -1.5, "maximum": 1000}, -1.5, -1.6),
    ("checkboxes", {"min_items": 1, "max_items": 2}, {"minItems": 1, "maxItems": 2}, ["o1"], []),
    ("photo", {"min_items": "1", "max_items": "3"}, {"minItems": 1, "maxItems": 3}, [PHOTO], []),
    ("repeat", {"min_items": 2, "max_items": 4}, {"minItems": 2, "maxItems": 4}, [{}, {}], [{}]),
])
def test_limits_go_into_the_schema_and_bind_the_data(kind, limits, keys, inside, outside):
    form, path = add(EMPTY, kind, "字段")
    form, _ = change(form, path, **limits)
    schema, _ = field_at(form, path)
    for key, value in keys.items():
        assert schema[key] == value and type(schema[key]) is type(value)
    absent = {"min_length": "minLength", "max_length": "maxLength", "minimum": "minimum", "maximum": "maximum",
              "min_items": "minItems", "max_items": "maxItems"}
    for name, value in limits.items():
        if value == "":
            assert absent[name] not in schema
    assert valid(form, {"field_1": inside}) and not valid(form, {"field_1": outside})
    assert problems(form) == []
    assert builder.apply_settings(form, path, builder.settings(form, path))[0] == form


def test_textarea_rows_go_into_ui_options():
    form, path = add(EMPTY, "textarea", "说明")
    form, _ = change(form, path, rows="4")
    assert field_at(form, path)[1] == {"ui:widget": "textarea", "ui:options": {"rows": 4}}
    assert builder.settings(form, path)["rows"] == 4
    form, _ = change(form, path, rows=None)
    assert field_at(form, path)[1] == {"ui:widget": "textarea"}


def test_options_can_be_added_removed_reordered_and_relabelled():
    form, path = add(EMPTY, "select", "纠纷类型")
    options = [{"value": "neighbourhood", "label": "邻里纠纷"}, {"value": "family", "label": "婚姻家庭"},
               {"value": "", "label": "其他"}]
    form, _ = change(form, path, options=options)
    schema, _ = field_at(form, path)
    assert schema["oneOf"] == [{"const": "neighbourhood", "title": "邻里纠纷"},
                               {"const": "family", "title": "婚姻家庭"}, {"const": "o3", "title": "其他"}]
    # relabel and reorder: the stored values stay
    form, _ = change(form, path, options=[{"value": "o3", "label": "其他纠纷"},
                                          {"value": "neighbourhood", "label": "邻里纠纷"},
                                          {"value": "family", "label": "婚姻家庭纠纷"}])
    assert field_at(form, path)[0]["oneOf"] == [{"const": "o3", "title": "其他纠纷"},
                                                {"const": "neighbourhood", "title": "邻里纠纷"},
                                                {"const": "family", "title": "婚姻家庭纠纷"}]
    # remove one; an option without a label is left out
    form, _ = change(form, path, options=[{"value": "family", "label": "婚姻家庭纠纷"},
                                          {"value": "o3", "label": "  "}])
    assert field_at(form, path)[0]["oneOf"] == [{"const": "family", "title": "婚姻家庭纠纷"}]
    assert valid(form, {"field_1": "family"}) and not valid(form, {"field_1": "neighbourhood"})
    assert builder.settings(form, path)["options"] == [{"value": "family", "label": "婚姻家庭纠纷"}]
    assert problems(form) == []


def test_generated_option_values_do_not_collide_with_given_ones():
    form, path = add(EMPTY, "radio", "单选")
    form, _ = change(form, path, options=[{"value": "", "label": "甲"}, {"value": "o1", "label": "乙"}])
    assert [o["const"] for o in field_at(form, path)[0]["oneOf"]] == ["o2", "o1"]


def test_checkbox_options_live_on_the_items():
    form, path = add(EMPTY, "checkboxes", "风险情形")
    form, _ = change(form, path, options=[{"value": "threat", "label": "扬言极端行为"},
                                          {"value": "group", "label": "群体性"}])
    schema, _ = field_at(form, path)
    assert "oneOf" not in schema
    assert schema["items"]["oneOf"] == [{"const": "threat", "title": "扬言极端行为"},
                                        {"const": "group", "title": "群体性"}]
    assert valid(form, {"field_1": ["group", "threat"]}) and not valid(form, {"field_1": ["group", "group"]})


def test_enum_options_with_enum_names_become_labelled_options():
    form = {**EMPTY, "schema": {"type": "object", "properties": {
        "gender": {"type": "string", "title": "性别", "enum": ["m", "f"]}}},
        "ui": {"gender": {"ui:enumNames": ["男", "女"]}}}
    assert builder.settings(form, ("gender",))["options"] == [{"value": "m", "label": "男"},
                                                              {"value": "f", "label": "女"}]
    out, _ = change(form, ("gender",))
    assert out["schema"]["properties"]["gender"]["oneOf"] == [{"const": "m", "title": "男"},
                                                              {"const": "f", "title": "女"}]
    assert "enum" not in out["schema"]["properties"]["gender"] and "gender" not in out["ui"]
    assert problems(out) == []


def test_the_sensitive_flag_is_x_sensitive():
    form, path = add(EMPTY, "idcard", "身份证号")
    form, _ = change(form, path, sensitive=True)
    assert field_at(form, path)[0]["x-sensitive"] is True
    assert builder.rows(form)[0].sensitive and builder.settings(form, path)["sensitive"] is True
    form, _ = change(form, path, sensitive=False)
    assert "x-sensitive" not in field_at(form, path)[0]
    assert problems(form) == []


# -- changing a field's kind ------------------------------------------------------------------

def test_text_becomes_a_select_with_starter_options_when_none_are_given():
    form, path = add(EMPTY, "text", "类别")
    form, _ = change(form, path, required=True, sensitive=True)
    new = {k: v for k, v in builder.settings(form, path).items() if k != "options"}
    out, _ = builder.apply_settings(form, path, {**new, "kind": "select"})
    schema, ui = field_at(out, path)
    assert builder.kind_of(schema, ui) == "select"
    assert schema == {"title": "类别", "type": "string", "x-sensitive": True,
                      "oneOf": [{"const": "o1", "title": "选项一"}, {"const": "o2", "title": "选项二"}]}
    assert ui == {"ui:widget": "select"}
    assert out["schema"]["required"] == ["field_1"]
    assert problems(out) == []


def test_text_becomes_a_select_with_the_options_given():
    form, path = add(EMPTY, "text", "类别")
    out, _ = change(form, path, kind="select", options=[{"value": "a", "label": "甲"}, {"value": "b", "label": "乙"}])
    schema, _ = field_at(out, path)
    assert schema["oneOf"] == [{"const": "a", "title": "甲"}, {"const": "b", "title": "乙"}]
    assert "maxLength" not in schema
    assert valid(out, {"field_1": "a"}) and not valid(out, {"field_1": "c"})


def test_select_becomes_checkboxes_keeping_its_options():
    form, path = add(EMPTY, "select", "走访事项")
    form, _ = change(form, path, options=[{"value": "policy", "label": "政策宣传"},
                                          {"value": "dispute", "label": "矛盾排查"}], default="policy")
    out, _ = change(form, path, kind="checkboxes")
    schema, ui = field_at(out, path)
    assert builder.kind_of(schema, ui) == "checkboxes"
    assert schema["type"] == "array" and schema["uniqueItems"] is True and "default" not in schema
    assert schema["items"]["oneOf"] == [{"const": "policy", "title": "政策宣传"},
                                        {"const": "dispute", "title": "矛盾排查"}]
    assert valid(out, {"field_1": ["dispute", "policy"]}) and not valid(out, {"field_1": "policy"})
    back, _ = change(out, path, kind="radio")
    assert field_at(back, path)[0]["oneOf"] == schema["items"]["oneOf"]
    assert field_at(back, path)[1] == {"ui:widget": "radio"}
    assert problems(out) == [] and problems(back) == []


def test_a_kind_change_drops_what_the_old_kind_had():
    form, path = add(EMPTY, "textarea", "说明")
    form, _ = change(form, path, min_length=5, rows=3, help="说清楚", default="无")
    with pytest.raises(BuildError, match="“无”不是数字"):  # the old default does not fit the new kind
        change(form, path, kind="integer")
    out, _ = change(form, path, kind="integer", default=None)
    schema, ui = field_at(out, path)
    assert schema == {"title": "说明", "type": "integer"}
    assert ui == {"ui:help": "说清楚"}
    assert problems(out) == []


def test_group_becomes_repeat_keeping_its_children():
    form, group = add(EMPTY, "group", "家庭成员", key="members")
    form, name = add(form, "text", "姓名", key="name", parent=group)
    form, _ = change(form, name, required=True)
    form, _ = add(form, "integer", "年龄", key="age", parent=group)
    out, _ = change(form, group, kind="repeat")
    schema, _ = field_at(out, group)
    assert schema["type"] == "array"
    assert list(schema["items"]["properties"]) == ["name", "age"]
    assert schema["items"]["required"] == ["name"]
    assert [(r.key, r.kind) for r in builder.rows(out)[0].children] == [("name", "text"), ("age", "integer")]
    assert valid(out, {"members": [{"name": "张三", "age": 30}]})
    assert not valid(out, {"members": [{"age": 30}]})
    back, _ = change(out, group, kind="group")
    assert field_at(back, group)[0]["properties"] == schema["items"]["properties"]
    assert field_at(back, group)[0]["required"] == ["name"]


def test_group_becomes_repeat_keeping_its_childrens_ui():
    form, group = add(EMPTY, "group", "组")
    form, _ = add(form, "textarea", "说明", parent=group)
    out, _ = change(form, group, kind="repeat")
    assert problems(out) == []
    assert [r.kind for r in builder.rows(out)[0].children] == ["textarea"]


def test_group_becomes_text_without_leftover_child_ui():
    form, group = add(EMPTY, "group", "组")
    form, _ = add(form, "textarea", "说明", parent=group)
    out, _ = change(form, group, kind="text")
    assert problems(out) == []


# -- nested groups and repeats --------------------------------------------------------------

def household() -> dict:
    """A form with a group (address) and a repeat (members) holding fields, one nested group."""
    form, _ = add(EMPTY, "text", "户主姓名", key="head")
    form, addr = add(form, "group", "住址", key="address")
    form, _ = add(form, "text", "小区", key="estate", parent=addr)
    form, _ = add(form, "integer", "楼栋", key="building", parent=addr)
    form, members = add(form, "repeat", "家庭成员", key="members")
    form, name = add(form, "text", "姓名", key="name", parent=members)
    form, _ = change(form, name, required=True)
    form, _ = add(form, "idcard", "身份证号", key="id_card", parent=members)
    form, _ = add(form, "group", "联系方式", key="contact", parent=members)
    form, _ = add(form, "phone", "手机", key="mobile", parent=("members", "contact"))
    return form


def test_groups_and_repeats_hold_their_own_fields():
    form = household()
    assert problems(form) == []
    rows = builder.rows(form)
    assert [(r.key, r.kind) for r in rows] == [("head", "text"), ("address", "group"), ("members", "repeat")]
    assert [r.path for r in rows[1].children] == [("address", "estate"), ("address", "building")]
    members = rows[2].children
    assert [r.path for r in members] == [("members", "name"), ("members", "id_card"), ("members", "contact")]
    assert members[0].required and not members[1].required
    assert [r.path for r in members[2].children] == [("members", "contact", "mobile")]
    assert members[0].ident == "members/name"
    items = form["schema"]["properties"]["members"]["items"]
    assert items["required"] == ["name"]
    assert form["ui"]["members"]["items"]["ui:order"] == ["name", "id_card", "contact"]
    assert form["ui"]["members"]["items"]["contact"]["ui:order"] == ["mobile"]
    assert form["ui"]["address"]["ui:order"] == ["estate", "building"]
    good = {"head": "张三", "address": {"estate": "幸福小区", "building": 3},
            "members": [{"name": "李四", "id_card": an_id_card(), "contact": {"mobile": "13800138000"}}]}
    assert valid(form, good)
    for bad in ({**good, "members": [{"id_card": an_id_card()}]},
                {**good, "members": [{"name": "李四", "contact": {"mobile": "123"}}]},
                {**good, "address": {"building": "三"}}):
        assert not valid(form, bad)


def test_settings_of_a_field_inside_a_repeat():
    form = household()
    path = ("members", "id_card")
    assert builder.settings(form, path)["kind"] == "idcard"
    out, _ = change(form, path, title="公民身份号码", required=True, sensitive=True, help="18位")
    schema, ui = field_at(out, path)
    assert schema["title"] == "公民身份号码" and schema["x-sensitive"] is True
    assert out["schema"]["properties"]["members"]["items"]["required"] == ["name", "id_card"]
    assert out["ui"]["members"]["items"]["id_card"] == {"ui:help": "18位"}
    assert problems(out) == []
    assert builder.apply_settings(out, path, builder.settings(out, path))[0] == out


def test_only_groups_and_repeats_take_fields():
    form = household()
    with pytest.raises(BuildError, match="只有分组和重复组里可以再加字段"):
        add(form, "text", parent=("head",))
    with pytest.raises(BuildError, match="找不到字段"):
        add(form, "text", parent=("nowhere",))
    with pytest.raises(BuildError, match="找不到字段 members/nobody"):
        builder.settings(form, ("members", "nobody"))


# -- order ----------------------------------------------------------------------------------

def test_move_up_down_and_to_an_index():
    form = EMPTY
    for key in "abcd":
        form, _ = add(form, "text", key.upper(), key=key)
    assert builder.position(form, ("c",)) == (2, 4)
    up = builder.move_field(form, ("c",), 1)
    assert up["ui"]["ui:order"] == ["a", "c", "b", "d"]
    assert [r.key for r in builder.rows(up)] == ["a", "c", "b", "d"]
    down = builder.move_field(up, ("a",), builder.position(up, ("a",))[0] + 1)
    assert down["ui"]["ui:order"] == ["c", "a", "b", "d"]
    assert builder.move_field(form, ("a",), 99)["ui"]["ui:order"] == ["b", "c", "d", "a"]
    assert builder.move_field(form, ("d",), -5)["ui"]["ui:order"] == ["d", "a", "b", "c"]
    assert list(down["schema"]["properties"]) == ["a", "b", "c", "d"]  # the schema's order is not touched
    assert problems(down) == []


def test_move_inside_a_repeat_orders_its_items():
    form = household()
    out = builder.move_field(form, ("members", "contact"), 0)
    assert out["ui"]["members"]["items"]["ui:order"] == ["contact", "name", "id_card"]
    assert [r.key for r in builder.rows(out)[2].children] == ["contact", "name", "id_card"]
    assert out["ui"]["ui:order"] == form["ui"]["ui:order"]


def test_order_of_honours_a_star_and_names_not_listed():
    schema = {"properties": {"a": {}, "b": {}, "c": {}, "d": {}}}
    assert builder.order_of(schema, {"ui:order": ["c", "*", "a"]}) == ["c", "b", "d", "a"]
    assert builder.order_of(schema, {"ui:order": ["d", "gone"]}) == ["d", "a", "b", "c"]
    assert builder.order_of(schema, {}) == ["a", "b", "c", "d"]
    form = {**EMPTY, "schema": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
            "ui": {"ui:order": ["b", "*"]}}
    assert [r.key for r in builder.rows(form)] == ["b", "a"]
    assert builder.move_field(form, ("b",), 1)["ui"]["ui:order"] == ["a", "b"]


# -- remove and rename ----------------------------------------------------------------------

def test_remove_drops_the_required_flag_ui_and_place_in_order():
    form, a = add(EMPTY, "textarea", "甲", key="a")
    form, b = add(form, "text", "乙", key="b")
    form, _ = change(form, a, required=True, help="帮助")
    out = builder.remove_field(form, a)
    assert list(out["schema"]["properties"]) == ["b"]
    assert "required" not in out["schema"]
    assert "a" not in out["ui"] and out["ui"]["ui:order"] == ["b"]
    assert problems(out) == []
    nested = builder.remove_field(household(), ("members", "name"))
    items = nested["schema"]["properties"]["members"]["items"]
    assert "name" not in items["properties"] and "required" not in items
    assert nested["ui"]["members"]["items"]["ui:order"] == ["id_card", "contact"]
    gone = builder.remove_field(household(), ("members",))
    assert "members" not in gone["ui"] and "members" not in gone["ui"]["ui:order"]
    assert problems(gone) == []


def test_rename_moves_required_ui_and_order_with_the_key():
    form, a = add(EMPTY, "textarea", "甲", key="a")
    form, _ = add(form, "text", "乙", key="b")
    form, _ = change(form, a, required=True)
    out = builder.rename(form, a, "remark")
    assert list(out["schema"]["properties"]) == ["remark", "b"]
    assert out["schema"]["required"] == ["remark"]
    assert out["ui"]["remark"] == {"ui:widget": "textarea"} and "a" not in out["ui"]
    assert out["ui"]["ui:order"] == ["remark", "b"]
    assert problems(out) == []
    via_settings, path = change(form, a, key="remark")
    assert path == ("remark",) and via_settings == out
    with pytest.raises(BuildError, match="已有字段标识 b"):
        builder.rename(form, a, "b")
    with pytest.raises(BuildError, match="小写英文字母"):
        builder.rename(form, a, "Remark")


def test_rename_follows_conditions_that_look_at_the_field():
    form, flag = add(EMPTY, "yesno", "是否发现问题", key="has_issue")
    form, detail = add(form, "textarea", "问题描述", key="detail")
    form, _ = change(form, detail, visible={"mode": "all", "rows": [
        {"field": "has_issue", "op": "eq", "value": True}]})
    out = builder.rename(form, flag, "found_issue")
    condition = out["ui"]["detail"]["ui:visibleWhen"]
    assert Draft202012Validator(condition).is_valid({"found_issue": True})


def test_removing_a_field_a_condition_looks_at_leaves_the_dependent_field_editable():
    form, flag = add(EMPTY, "yesno", "是否发现问题", key="has_issue")
    form, detail = add(form, "textarea", "问题描述", key="detail")
    form, _ = change(form, detail, visible={"mode": "all", "rows": [
        {"field": "has_issue", "op": "eq", "value": True}]})
    try:
        out = builder.remove_field(form, flag)
    except BuildError:
        return  # refusing to remove a field a condition needs would be fine too
    builder.apply_settings(out, detail, builder.settings(out, detail))


def test_remove_and_rename_keep_ui_columns_valid():
    form = json.loads((ROOT / "forms" / "incident_report.json").read_text(encoding="utf-8"))
    assert problems(builder.remove_field(form, ("category",))) == []
    assert problems(builder.rename(form, ("category",), "kind")) == []


def test_new_keys_avoid_every_key_in_the_form():
    form, _ = add(EMPTY, "group", "组")  # field_1
    form, _ = add(form, "text", parent=("field_1",), key="field_2")
    assert builder.all_keys(form) == {"field_1", "field_2"}
    assert builder.new_key(form) == "field_3"
    form, path = add(form, "text")
    assert path == ("field_3",)
    form, path = builder.add_field(form, (), "text", prefix="q")
    assert path == ("q_1",)
    # the same key may be used in a different group, but not twice in one
    form, path = add(form, "text", key="field_3", parent=("field_1",))
    assert path == ("field_1", "field_3")
    with pytest.raises(BuildError, match="已有字段标识 field_3"):
        add(form, "text", key="field_3")


@pytest.mark.parametrize("key", ["1abc", "Name", "名字", "a-b", "_a", "a" * 65, "a b"])
def test_bad_keys_are_refused(key):
    with pytest.raises(BuildError, match="字段标识只能用小写英文字母"):
        add(EMPTY, "text", key=key)


def test_bad_settings_are_refused_in_chinese():
    form, text = add(EMPTY, "text", "甲")
    form, number = add(form, "number", "乙")
    form, choice = add(form, "select", "丙")
    form, many = add(form, "checkboxes", "丁")
    with pytest.raises(BuildError, match="选项不能为空"):
        change(form, choice, options=[])
    with pytest.raises(BuildError, match="选项不能为空"):
        change(form, choice, options=[{"value": "a", "label": " "}])
    with pytest.raises(BuildError, match="选项值 a 重复"):
        change(form, choice, options=[{"value": "a", "label": "甲"}, {"value": "a", "label": "乙"}])
    with pytest.raises(BuildError, match="字数的下限不能大于上限"):
        change(form, text, min_length=10, max_length=5)
    with pytest.raises(BuildError, match="数值的下限不能大于上限"):
        change(form, number, minimum="10", maximum="-1")
    with pytest.raises(BuildError, match="个数的下限不能大于上限"):
        change(form, many, min_items=3, max_items=2)
    with pytest.raises(BuildError, match="“很多”不是数字"):
        change(form, number, maximum="很多")
    with pytest.raises(BuildError, match="“abc”不是数字"):
        change(form, text, max_length="abc")
    with pytest.raises(BuildError, match="未知的字段类型"):
        change(form, text, kind="signature")
    with pytest.raises(BuildError, match="已有字段标识"):
        change(form, text, key="field_2")
    with pytest.raises(BuildError, match="字段标识只能用"):
        change(form, text, key="2nd")
    with pytest.raises(BuildError, match="条件里的字段 nothing 不存在"):
        change(form, text, visible={"mode": "all", "rows": [{"field": "nothing", "op": "eq", "value": 1}]})
    with pytest.raises(BuildError, match="未知的条件"):
        change(form, text, visible={"mode": "all", "rows": [{"field": "field_2", "op": "like", "value": 1}]})
    assert isinstance(BuildError("x"), ValueError)


# -- conditions ------------------------------------------------------------------------------

def condition_form() -> dict:
    form, _ = add(EMPTY, "yesno", "是否存在矛盾纠纷", key="has_dispute")
    form, kind = add(form, "select", "纠纷类型", key="dispute_type")
    form, _ = change(form, kind, options=[{"value": "neighbourhood", "label": "邻里纠纷"},
                                          {"value": "family", "label": "婚姻家庭"},
                                          {"value": "other", "label": "其他"}])
    form, _ = add(form, "integer", "涉及人数", key="people")
    form, _ = add(form, "number", "金额", key="amount")
    form, risk = add(form, "checkboxes", "风险情形", key="risks")
    form, _ = change(form, risk, options=[{"value": "threat", "label": "扬言极端行为"},
                                          {"value": "group", "label": "群体性"}])
    form, _ = add(form, "text", "备注", key="note")
    form, home = add(form, "group", "住户", key="home")
    form, _ = add(form, "integer", "人口", key="size", parent=home)
    form, _ = add(form, "yesno", "是否独居", key="alone", parent=home)
    form, _ = add(form, "repeat", "成员", key="members")
    form, _ = add(form, "text", "姓名", key="name", parent=("members",))
    form, target = add(form, "textarea", "处理情况", key="target")
    return form


# op, field, value as the panel gives it, value as typed, data matching, data not matching
ROWS = [
    ("eq", "has_dispute", "是", True, {"has_dispute": True}, {"has_dispute": False}),
    ("eq", "has_dispute", "false", False, {"has_dispute": False}, {"has_dispute": True}),
    ("eq", "dispute_type", "family", "family", {"dispute_type": "family"}, {"dispute_type": "other"}),
    ("eq", "people", "3", 3, {"people": 3}, {"people": 4}),
    ("ne", "dispute_type", "other", "other", {"dispute_type": "family"}, {"dispute_type": "other"}),
    ("in", "dispute_type", "neighbourhood，family", ["neighbourhood", "family"], {"dispute_type": "family"},
     {"dispute_type": "other"}),
    ("in", "people", ["1", "2"], [1, 2], {"people": 2}, {"people": 3}),
    ("contains", "risks", "threat", "threat", {"risks": ["group", "threat"]}, {"risks": ["group"]}),
    ("gt", "people", "10", 10, {"people": 11}, {"people": 10}),
    ("gte", "people", 10, 10, {"people": 10}, {"people": 9}),
    ("lt", "amount", "0.5", 0.5, {"amount": 0.25}, {"amount": 0.5}),
    ("lte", "amount", "100", 100, {"amount": 100}, {"amount": 100.5}),
    ("filled", "note", "", "", {"note": "有"}, {}),
    ("empty", "note", "", "", {}, {"note": "有"}),
    ("eq", "home/alone", "是", True, {"home": {"alone": True}}, {"home": {"alone": False}}),
    ("gte", "home/size", "4", 4, {"home": {"size": 5}}, {"home": {"size": 3}}),
    ("ne", "home/size", "1", 1, {"home": {"size": 2}}, {"home": {"size": 1}}),
    ("filled", "home/size", "", "", {"home": {"size": 1}}, {"home": {"alone": True}}),
    ("empty", "home/size", "", "", {"home": {"alone": True}}, {"home": {"size": 1}}),
]


@pytest.mark.parametrize("op, target, given, typed, yes, no", ROWS,
                         ids=[f"{r[0]}-{r[1]}-{i}" for i, r in enumerate(ROWS)])
def test_condition_rows_to_schema_and_back(op, target, given, typed, yes, no):
    form = condition_form()
    rows = {"mode": "all", "rows": [{"field": target, "op": op, "value": given}]}
    condition = builder.build_condition(form, rows)
    Draft202012Validator.check_schema(condition)
    check = Draft202012Validator(condition)
    assert check.is_valid(yes) and not check.is_valid(no)
    parsed = builder.parse_condition(condition)
    assert parsed == {"mode": "all", "rows": [{"field": target, "op": op, "value": typed}], "raw": None}
    assert builder.build_condition(form, parsed) == condition
    # on a field: settings show the rows, and applying them keeps the condition
    out, _ = change(form, ("target",), visible=rows)
    assert out["ui"]["target"]["ui:visibleWhen"] == condition
    assert builder.rows(out)[-1].conditional
    assert builder.settings(out, ("target",))["visible"] == parsed
    assert builder.apply_settings(out, ("target",), builder.settings(out, ("target",)))[0] == out
    assert problems(out) == []
    if isinstance(typed, bool):
        assert type(parsed["rows"][0]["value"]) is bool


def test_empty_condition_on_a_field_in_a_group_holds_when_the_group_is_absent():
    form = condition_form()
    condition = builder.build_condition(form, {"mode": "all", "rows": [
        {"field": "home/size", "op": "empty", "value": ""}]})
    assert Draft202012Validator(condition).is_valid({})


@pytest.mark.parametrize("mode, key", [("all", "allOf"), ("any", "anyOf")])
def test_conditions_with_several_rows(mode, key):
    form = condition_form()
    rows = {"mode": mode, "rows": [{"field": "has_dispute", "op": "eq", "value": True},
                                   {"field": "people", "op": "gte", "value": "5"},
                                   {"field": "", "op": "eq", "value": "ignored"}]}
    condition = builder.build_condition(form, rows)
    assert list(condition) == [key] and len(condition[key]) == 2
    check = Draft202012Validator(condition)
    both, one = {"has_dispute": True, "people": 5}, {"has_dispute": True, "people": 1}
    assert check.is_valid(both) and check.is_valid(one) == (mode == "any") and not check.is_valid({})
    parsed = builder.parse_condition(condition)
    assert parsed["mode"] == mode and parsed["raw"] is None
    assert parsed["rows"] == [{"field": "has_dispute", "op": "eq", "value": True},
                              {"field": "people", "op": "gte", "value": 5}]
    assert builder.build_condition(form, parsed) == condition
    joiner = " 或 " if mode == "any" else " 且 "
    assert builder.describe_condition(form, condition) == \
        f"当 是否存在矛盾纠纷 等于 是{joiner}涉及人数 不少于 5 时显示"


def test_no_rows_means_no_condition():
    form = condition_form()
    assert builder.build_condition(form, {"mode": "all", "rows": []}) is None
    assert builder.parse_condition(None) is None
    assert builder.describe_condition(form, None) == ""
    out, _ = change(form, ("target",), visible={"mode": "all", "rows": [
        {"field": "has_dispute", "op": "eq", "value": True}]})
    cleared, _ = change(out, ("target",), visible={"mode": "all", "rows": []})
    assert cleared["ui"]["target"] == {"ui:widget": "textarea"}


def test_describe_a_yes_no_condition_in_chinese():
    form = condition_form()
    condition = builder.build_condition(form, {"mode": "all", "rows": [
        {"field": "has_dispute", "op": "eq", "value": "是"}]})
    assert condition == {"properties": {"has_dispute": {"const": True}}, "required": ["has_dispute"]}
    assert builder.describe_condition(form, condition) == "当 是否存在矛盾纠纷 等于 是 时显示"


@pytest.mark.parametrize("row, text", [
    ({"field": "dispute_type", "op": "in", "value": ["neighbourhood", "family"]},
     "当 纠纷类型 是其中之一 邻里纠纷、婚姻家庭 时显示"),
    ({"field": "risks", "op": "contains", "value": "group"}, "当 风险情形 包含 群体性 时显示"),
    ({"field": "note", "op": "filled", "value": ""}, "当 备注 已填写 时显示"),
    ({"field": "note", "op": "empty", "value": ""}, "当 备注 未填写 时显示"),
    ({"field": "home/alone", "op": "ne", "value": True}, "当 住户 › 是否独居 不等于 是 时显示"),
    ({"field": "amount", "op": "lt", "value": "9.5"}, "当 金额 小于 9.5 时显示"),
])
def test_describe_conditions_names_fields_and_option_labels(row, text):
    form = condition_form()
    condition = builder.build_condition(form, {"mode": "all", "rows": [row]})
    assert builder.describe_condition(form, condition) == text


def test_condition_fields_skip_repeats_and_attachments_and_enter_groups():
    form, _ = add(condition_form(), "photo", "照片", key="pics")
    form, _ = add(form, "location", "定位", key="where")
    fields = [(path, label) for path, label, _ in builder.condition_fields(form)]
    assert fields == [("has_dispute", "是否存在矛盾纠纷"), ("dispute_type", "纠纷类型"), ("people", "涉及人数"),
                      ("amount", "金额"), ("risks", "风险情形"), ("note", "备注"), ("home/size", "住户 › 人口"),
                      ("home/alone", "住户 › 是否独居"), ("target", "处理情况")]
    with pytest.raises(BuildError, match="条件里的字段 members/name 不存在"):
        builder.build_condition(form, {"rows": [{"field": "members/name", "op": "filled"}]})


def test_value_choices_offer_options_and_yes_no():
    form = condition_form()
    fields = {path: schema for path, _, schema in builder.condition_fields(form)}
    assert builder.value_choices(fields["has_dispute"]) == [(True, "是"), (False, "否")]
    assert builder.value_choices(fields["dispute_type"]) == [("neighbourhood", "邻里纠纷"), ("family", "婚姻家庭"),
                                                             ("other", "其他")]
    assert builder.value_choices(fields["risks"]) == [("threat", "扬言极端行为"), ("group", "群体性")]
    assert builder.value_choices(fields["people"]) == []


RAW = [
    {"properties": {"has_dispute": {"const": False}}},  # no `required`: true when unanswered
    {"properties": {"risks": {"type": "array", "minItems": 1}}, "required": ["risks"]},
    {"allOf": [{"properties": {"has_dispute": {"const": True}}, "required": ["has_dispute"]},
               {"properties": {"risks": {"type": "array", "contains": {"const": "threat"}}}, "required": ["risks"]}]},
    {"anyOf": [{"required": ["note"]}, {"required": ["people"]}]},
    {"properties": {"has_dispute": {"const": True}, "people": {"minimum": 1}}, "required": ["has_dispute", "people"]},
]


@pytest.mark.parametrize("raw", RAW)
def test_a_condition_the_rows_cannot_show_is_kept_as_it_is(raw):
    form = condition_form()
    parsed = builder.parse_condition(raw)
    assert parsed == {"mode": "all", "rows": [], "raw": raw}
    assert builder.build_condition(form, parsed) == raw
    assert builder.describe_condition(form, raw) == "按自定义条件显示"
    form["ui"]["target"] = {"ui:widget": "textarea", "ui:visibleWhen": copy.deepcopy(raw)}
    out, _ = change(form, ("target",), title="处理结果", help="写清楚")
    assert out["ui"]["target"]["ui:visibleWhen"] == raw
    assert problems(out) == []


# -- the shipped forms ----------------------------------------------------------------------

def shipped_form(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def properties(schema: dict, at: tuple = ()) -> set[tuple]:
    """Every field path the builder shows: properties, into groups and repeats (not into locations)."""
    out = set()
    for name, sub in (schema.get("properties") or {}).items():
        out.add((*at, name))
        holder = sub.get("items") if sub.get("type") == "array" else sub
        if isinstance(holder, dict) and holder.get("type") == "object" and "latitude" not in (
                holder.get("properties") or {}):
            out |= properties(holder, (*at, name))
    return out


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_rows_list_every_field_of_a_shipped_form(path):
    form = shipped_form(path)
    rows = list(all_rows(builder.rows(form)))
    assert {r.path for r in rows} == properties(form["schema"])
    assert len(rows) == len({r.path for r in rows})
    top = builder.rows(form)
    assert [r.key for r in top] == form["ui"]["ui:order"]
    required = set(form["schema"].get("required") or [])
    assert {r.key for r in top if r.required} == required
    for row in rows:
        schema, ui = field_at(form, row.path)
        assert row.kind == builder.kind_of(schema, ui)
        assert row.conditional == ("ui:visibleWhen" in ui)
        assert row.sensitive == bool(schema.get("x-sensitive"))
        assert row.title == schema.get("title", row.key)


# Shipped data to check "the same data validates the same way" with: one valid case per form.
def sample_data(key: str) -> dict:
    samples = {
        "incident_report": {"category": "dispute", "urgency": "normal", "description": "楼道堆放杂物，堵塞通道",
                            "occurred_at": "2024-05-01T08:30:00+08:00",
                            "location": {"latitude": 22.6, "longitude": 110.1}, "source": "hotline",
                            "is_anonymous": False, "reporter_phone": "13800138000"},
        "dispute_mediation": {"dispute_type": "neighbourhood", "description": "邻居噪音扰民纠纷",
                              "parties": [{"name": "张三", "role": "applicant"}, {"name": "李四", "role": "respondent",
                                                                                  "id_card": an_id_card()}],
                              "occurred_on": "2024-05-01", "source": "screening", "transfer_from": "court",
                              "risk_level": "low", "has_extreme_behavior": False, "amount": 12.5},
        "resource_request": {"category": "funds", "item": "健身器材", "description": "小区健身器材一套",
                             "amount": 5000, "beneficiaries": ["elderly"], "beneficiary_count": 100,
                             "urgency": "normal", "justification": "老年人活动需要", "contact_name": "王五",
                             "contact_phone": "13900139000"},
    }
    return samples.get(key, {})


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_applying_each_shipped_fields_own_settings_keeps_the_forms_meaning(path):
    form = shipped_form(path)
    data = sample_data(form["key"])
    before = validator(form)
    for row in all_rows(builder.rows(form)):
        settings = builder.settings(form, row.path)
        out, same = builder.apply_settings(form, row.path, settings)
        assert same == row.path
        assert meaning(out) == meaning(form), row.ident
        assert problems(out) == [], row.ident
        after = builder.settings(out, row.path)
        assert after == settings, row.ident
        assert validator(out).is_valid(data) == before.is_valid(data)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_forms_pass_the_checks_and_their_samples(path):
    form = shipped_form(path)
    assert problems(form) == []
    if sample_data(form["key"]):
        errors = [e.message for e in validator(form).iter_errors(sample_data(form["key"]))]
        assert errors == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_conditions_read_as_rows_or_raw_and_build_back_unchanged(path):
    form = shipped_form(path)
    seen = 0
    for row in all_rows(builder.rows(form)):
        condition = field_at(form, row.path)[1].get("ui:visibleWhen")
        if condition is None:
            continue
        seen += 1
        parsed = builder.parse_condition(condition)
        assert builder.build_condition(form, parsed) == condition, row.ident
        assert builder.describe_condition(form, condition).endswith("显示")
    assert seen == sum(1 for r in all_rows(builder.rows(form)) if r.conditional)


def test_a_shipped_condition_is_described_with_option_labels():
    form = shipped_form(ROOT / "forms" / "dispute_mediation.json")
    condition = form["ui"]["transfer_from"]["ui:visibleWhen"]
    assert builder.describe_condition(form, condition) == "当 纠纷来源 等于 部门移交 时显示"
    condition = form["ui"]["risk_factors"]["ui:visibleWhen"]
    assert builder.describe_condition(form, condition) == \
        "当 风险等级 是其中之一 中（有激化苗头）、高（可能激化） 时显示"


# -- property: random edits keep the form valid ------------------------------------------------

LEAF_KINDS = [k for k in builder.KINDS if k not in ("group", "repeat")]

step = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 50), st.sampled_from(list(builder.KINDS))),
    st.tuples(st.just("move"), st.integers(0, 50), st.integers(-2, 8)),
    st.tuples(st.just("remove"), st.integers(0, 50), st.none()),
    st.tuples(st.just("required"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("label"), st.integers(0, 50), st.text(min_size=0, max_size=8)),
    st.tuples(st.just("limits"), st.integers(0, 50), st.tuples(st.integers(0, 20), st.integers(0, 20))),
    st.tuples(st.just("kind"), st.integers(0, 50), st.sampled_from(LEAF_KINDS)),
    st.tuples(st.just("visible"), st.integers(0, 50), st.integers(0, 50)),
    st.tuples(st.just("rename"), st.integers(0, 50), st.integers(1, 30)),
)


def containers(form: dict) -> list[tuple]:
    return [()] + [r.path for r in all_rows(builder.rows(form)) if r.kind in ("group", "repeat")]


def consistent(form: dict, path: tuple = ()) -> None:
    """rows() agrees with schema.properties at every level: same names, display order, required flags."""
    schema, ui = builder.children_of(copy.deepcopy(form), path)
    rows = builder.rows(form, path)
    names = list((schema.get("properties") or {}).keys())
    assert sorted(r.key for r in rows) == sorted(names)
    assert [r.key for r in rows] == builder.order_of(schema, ui)
    required = set(schema.get("required") or [])
    assert required <= set(names)
    assert {r.key for r in rows if r.required} == required
    for row in rows:
        assert row.path == (*path, row.key)
        if row.kind in ("group", "repeat"):
            consistent(form, row.path)


def looked_at(form: dict, rows) -> bool:
    """Whether some field's condition names one of these fields' keys."""
    conditions = []

    def walk(ui):
        if isinstance(ui, dict):
            if "ui:visibleWhen" in ui:
                conditions.append(json.dumps(ui["ui:visibleWhen"]))
            for value in ui.values():
                walk(value)

    walk(form.get("ui"))
    return any(f'"{row.key}"' in text for row in rows for text in conditions)


def run(form: dict, op: str, pick: int, arg) -> dict:
    fields = list(all_rows(builder.rows(form)))
    if op == "add":
        places = containers(form)
        return add(form, arg, parent=places[pick % len(places)])[0]
    if not fields:
        return form
    row = fields[pick % len(fields)]
    if op == "move":
        return builder.move_field(form, row.path, arg)
    if op == "remove":
        if looked_at(form, [row, *all_rows(row.children)]) and builder.dependents(form, row.path):
            with pytest.raises(BuildError, match="的显示条件用到了这个字段"):
                builder.remove_field(form, row.path)
            return form
        return builder.remove_field(form, row.path)
    if op == "required":
        return change(form, row.path, required=arg)[0]
    if op == "label":
        return change(form, row.path, title=arg)[0]
    if op == "limits":
        low, high = sorted(arg)
        return change(form, row.path, min_length=low, max_length=high, minimum=low, maximum=high,
                      min_items=low, max_items=high)[0]
    if op == "kind":
        new = {**builder.settings(form, row.path), "kind": arg}
        if not new["options"]:
            del new["options"]  # a new option field starts with two options (see the report on this)
        return builder.apply_settings(form, row.path, new)[0]
    if op == "visible":
        targets = [p for p, _, _ in builder.condition_fields(form) if p != row.ident]
        if not targets:
            return form
        target = targets[arg % len(targets)]
        return change(form, row.path, visible={"mode": "all", "rows": [
            {"field": target, "op": "filled", "value": ""}]})[0]
    if op == "rename":
        key = f"k{arg}"
        if key in builder.children_of(copy.deepcopy(form), row.path[:-1])[0].get("properties", {}):
            return form
        return builder.rename(form, row.path, key)
    raise AssertionError(op)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_random_edits_keep_the_form_valid_and_rows_consistent(steps):
    form = copy.deepcopy(EMPTY)
    for op, pick, arg in steps:
        form = run(form, op, pick, arg)
        assert list(META.iter_errors(form)) == []
        assert problems(form) == [], (op, pick, arg)
        consistent(form)
        Draft202012Validator.check_schema(form["schema"])
    for row in all_rows(builder.rows(form)):
        again, _ = builder.apply_settings(form, row.path, builder.settings(form, row.path))
        assert meaning(again) == meaning(form), row.ident
