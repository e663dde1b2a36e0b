"""JSON Schema + ui hints → widget tree (`server.rendering`): pure unit tests, no app, no database."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.definitions.check import schema_problems
from server.definitions.ui import OWN_WIDGETS, RJSF_ALIASES
from server.formdata import from_post
from server.rendering import (
    HARD_MAX_ROWS,
    Context,
    Option,
    Renderer,
    Widget,
    choose_widget,
    defaults,
    dom_id,
    html_value,
    options_of,
    ordered,
)
from server.validation import CompiledForm
from tests.test_formdata import SAMPLES, SHA, SHIPPED, load_form

LOGGER = "server.rendering"


def render(properties: dict, ui: dict | None = None, data: dict | None = None, required=(), **context) -> Widget:
    """Render a form of the given properties and return its root widget."""
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return Renderer(CompiledForm(schema, ui), Context(**context)).tree(data or {})


def field(prop: dict, ui: dict | None = None, value=None, required=False, **context) -> Widget:
    """Render the single field `f` (holding `value`) and return its widget."""
    data = {} if value is None else {"f": value}
    root = render({"f": prop}, {"f": ui} if ui else None, data, ["f"] if required else [], **context)
    w = root.find("/f")
    assert w is not None
    return w


def opts(w: Widget) -> list[tuple[str, str, bool]]:
    return [(o.value, o.label, o.checked) for o in w.options]


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.fixture
def warn(caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    return caplog


# -- one test per widget -------------------------------------------------------------------------

def test_text(warn):
    w = field({"type": "string", "title": "姓名", "description": "户主本人", "minLength": 2, "maxLength": 30,
               "pattern": "^[^0-9]+$"},
              {"ui:placeholder": "如：张三", "ui:help": "与身份证一致"}, "李四", required=True)
    assert (w.widget, w.name, w.id, w.title) == ("text", "/f", "f-f", "姓名")
    assert w.attrs == {"type": "text", "minlength": 2, "maxlength": 30, "pattern": "[^0-9]+"}
    assert (w.description, w.placeholder, w.help) == ("户主本人", "如：张三", "与身份证一致")
    assert w.required and not w.readonly and not w.disabled
    assert (w.value, w.text) == ("李四", "李四")
    assert warnings_of(warn) == []


def test_text_pattern_not_anchored_is_not_passed_to_html():
    assert "pattern" not in field({"type": "string", "pattern": "[0-9]"}).attrs
    assert "pattern" not in field({"type": "string", "pattern": "^a"}).attrs
    assert field({"type": "string", "pattern": "^a\\$"}).attrs.get("pattern") is None


def test_textarea():
    w = field({"type": "string", "maxLength": 500}, {"ui:widget": "textarea", "ui:options": {"rows": 6}}, "一\n二")
    assert w.widget == "textarea"
    assert w.attrs == {"rows": 6, "maxlength": 500}  # no `type` on a textarea
    assert w.text == "一\n二"
    assert field({"type": "string"}, {"ui:widget": "textarea"}).attrs["rows"] == 3
    assert field({"type": "string"}, {"ui:widget": "textarea", "ui:options": {"rows": 99}}).attrs["rows"] == 3


def test_number():
    w = field({"type": "number", "minimum": 0, "maximum": 9.5, "multipleOf": 0.5}, None, 7.0)
    assert w.widget == "number"
    assert w.attrs == {"type": "number", "min": "0", "max": "9.5", "step": "0.5", "inputmode": "decimal"}
    assert w.text == "7"
    assert field({"type": "number"}).attrs["step"] == "any"


def test_integer():
    w = field({"type": "integer", "minimum": 1, "maximum": 50}, None, 12)
    assert w.widget == "integer"
    assert w.attrs == {"type": "number", "min": "1", "max": "50", "step": "1", "inputmode": "numeric"}
    assert w.text == "12"
    assert field({"type": "integer", "exclusiveMinimum": 0}).attrs.get("min") is None


def test_date():
    w = field({"type": "string", "format": "date"}, None, "2024-05-01")
    assert (w.widget, w.attrs["type"], w.text) == ("date", "date", "2024-05-01")


def test_datetime_shows_minutes():
    w = field({"type": "string", "format": "date-time"}, None, "2024-05-01T09:30:15+08:00")
    assert (w.widget, w.attrs["type"]) == ("datetime", "datetime-local")
    assert w.text == "2024-05-01T09:30"
    assert w.value == "2024-05-01T09:30:15+08:00"


def test_time():
    w = field({"type": "string", "format": "time"}, None, "09:30")
    assert (w.widget, w.attrs["type"], w.text) == ("time", "time", "09:30")


def test_select_is_the_default_for_labelled_options():
    w = field({"type": "string", "title": "户别",
               "oneOf": [{"const": "a", "title": "甲"}, {"const": "b", "title": "乙"}]},
              {"ui:placeholder": "请选择户别"}, "b", required=True)
    assert w.widget == "select"
    assert opts(w) == [("a", "甲", False), ("b", "乙", True)]
    assert w.required and w.placeholder == "请选择户别" and not w.multiple


def test_radio():
    w = field({"type": "integer", "anyOf": [{"const": 1, "title": "一般"}, {"const": 2, "title": "紧急"}]},
              {"ui:widget": "radio", "ui:options": {"inline": True}}, 2)
    assert w.widget == "radio" and w.inline
    assert opts(w) == [("1", "一般", False), ("2", "紧急", True)]


def test_checkboxes_of_an_array_of_enums():
    w = field({"type": "array", "title": "走访事项", "uniqueItems": True, "minItems": 1, "maxItems": 2,
               "items": {"type": "string", "oneOf": [{"const": "x", "title": "甲"}, {"const": "y", "title": "乙"},
                                                     {"const": "z", "title": "丙"}]}},
              None, ["z", "x"], required=True)
    assert w.widget == "checkboxes" and w.multiple and w.required
    assert opts(w) == [("x", "甲", True), ("y", "乙", False), ("z", "丙", True)]
    assert (w.min_rows, w.max_rows) == (1, 2)
    assert w.value == ["z", "x"]
    assert w.children == []


def test_checkboxes_with_integer_consts_are_checked_by_value():
    w = field({"type": "array", "items": {"type": "integer", "enum": [1, 2, 10]}}, {"ui:widget": "checkboxes"},
              [10, 1])
    assert opts(w) == [("1", "1", True), ("2", "2", False), ("10", "10", True)]
    w = field({"type": "array", "items": {"enum": [1, True]}}, None, [True])
    assert [o.checked for o in w.options] == [False, True]  # true is not 1


def test_yesno_is_the_default_for_booleans():
    w = field({"type": "boolean", "title": "是否独居"}, None, False)
    assert w.widget == "yesno"
    assert opts(w) == [("true", "是", False), ("false", "否", True)]
    assert [o.checked for o in field({"type": "boolean"}, None, True).options] == [True, False]
    assert [o.checked for o in field({"type": "boolean"}).options] == [False, False]


def test_yesno_with_labelled_options():
    w = field({"type": "boolean", "oneOf": [{"const": True, "title": "有"}, {"const": False, "title": "无"}]},
              {"ui:widget": "yesno"}, True)
    assert w.widget == "yesno"
    assert opts(w) == [("true", "有", True), ("false", "无", False)]


def test_group_of_an_object():
    root = render({"g": {"type": "object", "title": "住址", "required": ["city"],
                         "properties": {"city": {"type": "string"}, "no": {"type": "integer"}}}},
                  data={"g": {"city": "玉林", "no": 3}})
    g = root.find("/g")
    assert g.widget == "group" and g.title == "住址"
    assert [(c.name, c.widget, c.required, c.text) for c in g.children] == [
        ("/g/city", "text", True, "玉林"), ("/g/no", "integer", False, "3")]
    assert root.widget == "group" and root.name == "" and root.id == "f-root"


def test_repeat_of_objects():
    root = render({"members": {"type": "array", "title": "家庭成员",
                               "items": {"type": "object", "title": "成员", "required": ["name"],
                                         "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}}},
                  data={"members": [{"name": "甲"}, {"name": "乙", "age": 3}]})
    w = root.find("/members")
    assert w.widget == "repeat"
    assert [(r.name, r.widget, r.title, r.index) for r in w.children] == [
        ("/members/0", "group", "成员 1", 0), ("/members/1", "group", "成员 2", 1)]
    assert root.find("/members/1/age").text == "3"
    assert root.find("/members/0/name").required
    assert (w.can_add, w.can_remove, w.can_move) == (True, True, True)
    assert w.max_rows == HARD_MAX_ROWS


def test_repeat_of_scalars():
    root = render({"tags": {"type": "array", "title": "标签", "items": {"type": "string", "maxLength": 5}}},
                  data={"tags": ["一", "二"]})
    w = root.find("/tags")
    assert w.widget == "repeat"
    assert [(r.name, r.widget, r.text, r.attrs.get("maxlength")) for r in w.children] == [
        ("/tags/0", "text", "一", 5), ("/tags/1", "text", "二", 5)]
    assert [r.title for r in w.children] == ["标签 1", "标签 2"]


def test_photo():
    w = field({"type": "array", "items": {"type": "string", "format": "attachment"}, "maxItems": 9},
              {"ui:widget": "photo"}, [SHA[0], SHA[1]])
    assert w.widget == "photo" and w.multiple
    assert w.attrs == {"accept": "image/*", "capture": "environment"}
    assert w.value == [SHA[0], SHA[1]] and w.max_rows == 9
    w = field({"type": "array", "items": {"type": "string", "format": "attachment"}},
              {"ui:widget": "photo", "ui:options": {"accept": "image/jpeg"}})
    assert w.attrs["accept"] == "image/jpeg"


def test_file():
    w = field({"type": "array", "items": {"type": "string", "format": "attachment"}}, None, [SHA[0]])
    assert w.widget == "file" and w.multiple
    assert "capture" not in w.attrs and "accept" not in w.attrs
    w = field({"type": "array", "items": {"type": "string", "format": "attachment"}},
              {"ui:widget": "FileWidget", "ui:options": {"accept": ".pdf,image/*"}})
    assert w.widget == "file" and w.attrs["accept"] == ".pdf,image/*"


def test_single_attachment_is_a_file_field():
    w = field({"type": "string", "format": "attachment"}, None, SHA[2])
    assert w.widget == "file" and not w.multiple
    assert w.value == SHA[2]
    w = field({"type": "string", "format": "attachment"}, {"ui:widget": "photo"})
    assert (w.widget, w.attrs.get("capture")) == ("photo", "environment")


def test_single_attachment_widget_has_no_text_type():
    assert field({"type": "string", "format": "attachment"}).attrs.get("type") in (None, "file")


def test_geolocation():
    root = render({"loc": {"type": "object", "title": "走访定位", "required": ["latitude"],
                           "properties": {"latitude": {"type": "number", "minimum": -90, "maximum": 90},
                                          "longitude": {"type": "number"}}}},
                  {"loc": {"ui:widget": "geolocation"}}, {"loc": {"latitude": 22.65, "longitude": 110.15}})
    w = root.find("/loc")
    assert w.widget == "geolocation"
    assert [(c.name, c.widget, c.text, c.required) for c in w.children] == [
        ("/loc/latitude", "number", "22.65", True), ("/loc/longitude", "number", "110.15", False)]
    assert w.children[0].attrs["min"] == "-90"


def test_grid_picker_with_choices():
    choices = [("450902001", "城站社区"), ("450902002", "大北社区")]
    w = field({"type": "string", "format": "grid-code"}, None, "450902002", grid_choices=choices)
    assert w.widget == "grid"
    assert opts(w) == [("450902001", "城站社区", False), ("450902002", "大北社区", True)]


def test_grid_picker_without_choices_is_a_text_input():
    w = field({"type": "string", "format": "grid-code"}, {"ui:widget": "grid"}, "450902")
    assert (w.widget, w.options, w.attrs["type"], w.text) == ("grid", [], "text", "450902")


def test_phone():
    w = field({"type": "string", "format": "cn-mobile"}, None, "13877561234")
    assert w.widget == "phone"
    assert w.attrs == {"type": "tel", "inputmode": "numeric", "autocomplete": "tel", "maxlength": 11,
                       "pattern": "1[3-9][0-9]{9}"}
    assert field({"type": "string"}, {"ui:widget": "phone"}).widget == "phone"


def test_idcard():
    w = field({"type": "string", "format": "cn-id-card"}, None, "11010519491231002X")
    assert w.widget == "idcard"
    assert w.attrs["maxlength"] == 18 and w.attrs["pattern"] == "[0-9]{17}[0-9Xx]"
    assert w.attrs["autocapitalize"] == "characters" and w.attrs["type"] == "text"
    assert w.text == "11010519491231002X"


# -- labelled options ---------------------------------------------------------------------------

def test_options_of_one_of_any_of_and_enum():
    assert options_of({"oneOf": [{"const": "a", "title": "甲"}, {"const": "b"}]}, {}) == [("a", "甲"), ("b", "b")]
    assert options_of({"anyOf": [{"const": 1, "title": "一"}]}, {}) == [(1, "一")]
    assert options_of({"enum": ["a", "b", "c"]}, {"ui:enumNames": ["甲", "乙"]}) == [("a", "甲"), ("b", "乙"),
                                                                                    ("c", "c")]
    assert options_of({"enum": [True, None, 2]}, {}) == [(True, "是"), (None, "null"), (2, "2")]
    assert options_of({"enum": ["a"], "x-enumNames": ["甲"]}, {}) == [("a", "甲")]
    assert options_of({"oneOf": [{"type": "string"}]}, {}) is None
    assert options_of({"type": "string"}, {}) is None


def test_enum_names_label_a_select():
    w = field({"type": "string", "enum": ["m", "f"]}, {"ui:enumNames": ["男", "女"]}, "f")
    assert w.widget == "select"
    assert opts(w) == [("m", "男", False), ("f", "女", True)]


def test_enum_names_on_items_label_checkboxes():
    w = field({"type": "array", "items": {"type": "string", "enum": ["m", "f"]}},
              {"ui:widget": "checkboxes", "items": {"ui:enumNames": ["男", "女"]}}, ["m"])
    assert opts(w) == [("m", "男", True), ("f", "女", False)]


def test_rjsf_enum_names_on_the_array_label_checkboxes():
    w = field({"type": "array", "items": {"type": "string", "enum": ["m", "f"]}, "uniqueItems": True},
              {"ui:widget": "checkboxes", "ui:enumNames": ["男", "女"]})
    assert [o.label for o in w.options] == ["男", "女"]


# -- titles, help, description, placeholder -----------------------------------------------------

def test_ui_title_and_description_win_over_the_schema():
    w = field({"type": "string", "title": "schema", "description": "schema d"},
              {"ui:title": "界面", "ui:description": "界面说明", "ui:help": "帮助", "ui:placeholder": "占位"})
    assert (w.title, w.description, w.help, w.placeholder) == ("界面", "界面说明", "帮助", "占位")


def test_title_falls_back_to_the_key_and_label_can_be_hidden():
    root = render({"head_name": {"type": "string"}}, {"head_name": {"ui:options": {"label": False}}})
    w = root.find("/head_name")
    assert w.title == "head_name" and not w.show_label
    assert field({"type": "string"}, {"ui:label": False}).show_label is False
    assert field({"type": "string"}).show_label is True


def test_form_title_on_the_root():
    form = CompiledForm({"type": "object", "title": "走访", "properties": {}})
    assert Renderer(form).tree({}).title == "走访"
    form = CompiledForm({"type": "object", "title": "走访", "properties": {}}, {"ui:title": "入户走访"})
    assert Renderer(form).tree(None).title == "入户走访"


# -- read-only ----------------------------------------------------------------------------------

@pytest.mark.parametrize("prop, ui, readonly, disabled", [
    ({"type": "string"}, {"ui:readonly": True}, True, False),
    ({"type": "string"}, {"ui:disabled": True}, False, True),
    ({"type": "string", "readOnly": True}, None, True, False),
    ({"type": "string"}, None, False, False),
])
def test_readonly_and_disabled(prop, ui, readonly, disabled):
    w = field(prop, ui, "x")
    assert (w.readonly, w.disabled) == (readonly, disabled)


def test_readonly_context_makes_every_widget_readonly():
    root = render({"a": {"type": "string"}, "rows": {"type": "array", "items": {"type": "string"}}},
                  data={"rows": ["x", "y"]}, readonly=True)
    assert all(w.readonly for w in root.walk())
    rows = root.find("/rows")
    assert (rows.can_add, rows.can_remove, rows.can_move) == (False, False, False)


@pytest.mark.parametrize("ui", [{"ui:readonly": True}, {"ui:disabled": True}])
def test_readonly_repeat_offers_no_row_buttons(ui):
    w = field({"type": "array", "items": {"type": "string"}}, ui, ["a", "b"])
    assert (w.can_add, w.can_remove, w.can_move) == (False, False, False)


# -- repeats: nesting, limits, options ----------------------------------------------------------

NESTED = {"households": {"type": "array", "title": "住户", "items": {
    "type": "object", "title": "住户", "properties": {
        "head": {"type": "string"},
        "members": {"type": "array", "title": "成员", "minItems": 1, "items": {
            "type": "object", "title": "成员", "properties": {"name": {"type": "string"},
                                                             "age": {"type": "integer"}}}},
    }}}}


def test_repeat_inside_a_repeat_row():
    data = {"households": [{"head": "甲", "members": [{"name": "甲一"}, {"name": "甲二", "age": 9}]},
                           {"head": "乙"}]}
    root = render(NESTED, data=data)
    inner = root.find("/households/0/members")
    assert inner is not None and inner.widget == "repeat"
    assert [r.name for r in inner.children] == ["/households/0/members/0", "/households/0/members/1"]
    assert root.find("/households/0/members/1/age").text == "9"
    assert root.find("/households/0/members/1/age").id == "f-households-0-members-1-age"
    # the second household has no members: padded to minItems 1
    second = root.find("/households/1/members")
    assert [r.name for r in second.children] == ["/households/1/members/0"]
    assert root.find("/households/1/members/0/name").text == ""


def test_rows_padded_to_min_items_and_buttons_at_the_limits():
    prop = {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "object", "properties": {
        "x": {"type": "string"}}}}
    w = field(prop, None, [])
    assert [r.name for r in w.children] == ["/f/0", "/f/1"]
    assert (w.min_rows, w.max_rows, w.can_add, w.can_remove) == (2, 3, True, False)
    w = field(prop, None, [{"x": "1"}, {"x": "2"}, {"x": "3"}])
    assert (len(w.children), w.can_add, w.can_remove, w.can_move) == (3, False, True, True)
    w = field(prop, None, [{"x": "1"}] * 5)  # more than maxItems: only maxItems drawn
    assert len(w.children) == 3 and not w.can_add


def test_a_single_row_cannot_be_moved():
    w = field({"type": "array", "items": {"type": "string"}}, None, ["only"])
    assert w.can_move is False and w.can_remove is True


def test_rows_never_exceed_the_hard_limit():
    w = field({"type": "array", "items": {"type": "string"}}, None, [str(i) for i in range(HARD_MAX_ROWS + 50)])
    assert len(w.children) == HARD_MAX_ROWS and not w.can_add
    w = field({"type": "array", "maxItems": 10_000, "items": {"type": "string"}})
    assert w.max_rows == HARD_MAX_ROWS


def test_addable_removable_orderable_options():
    w = field({"type": "array", "items": {"type": "string"}},
              {"ui:options": {"addable": False, "removable": False, "orderable": False}}, ["a", "b"])
    assert (w.can_add, w.can_remove, w.can_move) == (False, False, False)


def test_row_title_from_items_ui():
    w = field({"type": "array", "title": "列表", "items": {"type": "string"}}, {"items": {"ui:title": "电话"}},
              ["1"])
    assert w.children[0].title == "电话 1"


# -- ui:order ------------------------------------------------------------------------------------

def test_ordered():
    names = ["a", "b", "c", "d"]
    assert ordered(names, ["c", "a"]) == ["c", "a", "b", "d"]
    assert ordered(names, ["c", "*", "a"]) == ["c", "b", "d", "a"]
    assert ordered(names, ["*", "a"]) == ["b", "c", "d", "a"]
    assert ordered(names, ["zz", "b", 3]) == ["b", "a", "c", "d"]
    assert ordered(names, None) == names
    assert ordered(names, "abc") == names


def test_ui_order_in_a_form_and_in_rows():
    props = {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"},
             "rows": {"type": "array", "items": {"type": "object", "properties": {
                 "x": {"type": "string"}, "y": {"type": "string"}, "z": {"type": "string"}}}}}
    root = render(props, {"ui:order": ["c", "*", "a"], "rows": {"items": {"ui:order": ["z", "x"]}}},
                  {"rows": [{}]})
    assert [c.name for c in root.children] == ["/c", "/b", "/rows", "/a"]
    assert [c.name for c in root.find("/rows/0").children] == ["/rows/0/z", "/rows/0/x", "/rows/0/y"]
    root = render(props, {"ui:order": ["rows", "b"]})
    assert [c.name for c in root.children] == ["/rows", "/b", "/a", "/c"]


# -- RJSF compatibility --------------------------------------------------------------------------

@pytest.mark.parametrize("alias, prop, expected", [
    ("TextWidget", {"type": "string"}, "text"),
    ("TextareaWidget", {"type": "string"}, "textarea"),
    ("SelectWidget", {"type": "string", "enum": ["a", "b"]}, "select"),
    ("RadioWidget", {"type": "string", "enum": ["a", "b"]}, "radio"),
    ("RadioWidget", {"type": "boolean"}, "radio"),
    ("CheckboxWidget", {"type": "boolean"}, "yesno"),
    ("checkbox", {"type": "boolean"}, "yesno"),
    ("CheckboxesWidget", {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}, "checkboxes"),
    ("SelectWidget", {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}, "select"),
    ("updown", {"type": "integer"}, "number"),
    ("range", {"type": "number"}, "number"),
    ("alt-date", {"type": "string", "format": "date"}, "date"),
    ("alt-datetime", {"type": "string", "format": "date-time"}, "datetime"),
    ("email", {"type": "string", "format": "email"}, "text"),
    ("password", {"type": "string"}, "text"),
    ("hidden", {"type": "string"}, "text"),
    ("FileWidget", {"type": "string", "format": "attachment"}, "file"),
    ("files", {"type": "array", "items": {"type": "string", "format": "attachment"}}, "file"),
])
def test_rjsf_aliases(warn, alias, prop, expected):
    assert alias in RJSF_ALIASES
    w = field(prop, {"ui:widget": alias})
    assert w.widget == expected
    assert warnings_of(warn) == []


def test_every_alias_names_one_of_our_widgets():
    assert set(RJSF_ALIASES.values()) <= OWN_WIDGETS


def test_updown_on_an_integer_keeps_integer_steps():
    w = field({"type": "integer", "minimum": 0}, {"ui:widget": "updown"}, 3)
    assert (w.attrs["step"], w.attrs["inputmode"], w.attrs["min"], w.text) == ("1", "numeric", "0", "3")


def test_hidden_widget_keeps_its_value():
    w = field({"type": "string"}, {"ui:widget": "hidden"}, "abc")
    assert (w.name, w.text) == ("/f", "abc")


def test_input_type_option():
    assert field({"type": "string"}, {"ui:options": {"inputType": "tel"}}).attrs["type"] == "tel"


# Adapted from react-jsonschema-form's playground "Simple" example (schema and uiSchema).
RJSF_SIMPLE_SCHEMA = {
    "title": "A registration form",
    "description": "A simple form example.",
    "type": "object",
    "required": ["firstName", "lastName"],
    "properties": {
        "firstName": {"type": "string", "title": "First name", "default": "Chuck"},
        "lastName": {"type": "string", "title": "Last name"},
        "age": {"type": "integer", "title": "Age"},
        "bio": {"type": "string", "title": "Bio"},
        "password": {"type": "string", "title": "Password", "minLength": 3},
        "telephone": {"type": "string", "title": "Telephone", "minLength": 10},
        "gender": {"type": "string", "title": "Gender", "enum": ["male", "female", "other"]},
        "pets": {"type": "array", "title": "Pets", "uniqueItems": True,
                 "items": {"type": "string", "enum": ["cat", "dog", "fish"]}},
        "tasks": {"type": "array", "title": "Tasks", "items": {
            "type": "object", "required": ["title"],
            "properties": {"title": {"type": "string", "title": "Title"},
                           "done": {"type": "boolean", "title": "Done?", "default": False}}}},
    },
}
RJSF_SIMPLE_UI = {
    "ui:order": ["firstName", "lastName", "*", "password"],
    "firstName": {
        "ui:autofocus": True,
        "ui:emptyValue": "",
        "ui:placeholder": "ui:emptyValue causes this field to always be valid despite being required",
        "ui:autocomplete": "family-name",
        "ui:enableMarkdownInDescription": True,
        "ui:description": "Make text **bold** or *italic*.",
    },
    "lastName": {"ui:autocomplete": "given-name"},
    "age": {"ui:widget": "updown", "ui:title": "Age of person", "ui:description": "(earth year)"},
    "bio": {"ui:widget": "textarea"},
    "password": {"ui:widget": "password", "ui:help": "Hint: Make it strong!"},
    "telephone": {"ui:options": {"inputType": "tel"}},
    "gender": {"ui:widget": "RadioWidget", "ui:enumNames": ["Male", "Female", "Other"]},
    "pets": {"ui:widget": "CheckboxesWidget", "ui:options": {"inline": True}},
    "tasks": {"ui:options": {"orderable": False},
              "items": {"done": {"ui:widget": "CheckboxWidget"}, "title": {"ui:classNames": "task-title"}}},
}


def test_rjsf_simple_example_renders(warn):
    form = CompiledForm(RJSF_SIMPLE_SCHEMA, RJSF_SIMPLE_UI)
    data = {"firstName": "Chuck", "lastName": "Norris", "age": 75, "bio": "Roundhouse kicking asses since 1940",
            "password": "noneed", "telephone": "1-800-KICKASS", "gender": "male", "pets": ["dog"],
            "tasks": [{"title": "kick", "done": True}]}
    root = Renderer(form).tree(data)
    assert warnings_of(warn) == []
    assert root.title == "A registration form"
    assert [c.name for c in root.children] == ["/firstName", "/lastName", "/age", "/bio", "/telephone", "/gender",
                                               "/pets", "/tasks", "/password"]
    first = root.find("/firstName")
    assert first.required and first.autofocus and first.description == "Make text **bold** or *italic*."
    assert sum(w.autofocus for w in root.walk()) == 1
    age = root.find("/age")
    assert (age.widget, age.title, age.description, age.text) == ("number", "Age of person", "(earth year)", "75")
    assert root.find("/bio").widget == "textarea"
    assert root.find("/password").help == "Hint: Make it strong!"
    assert root.find("/password").attrs["minlength"] == 3
    assert root.find("/telephone").attrs["type"] == "tel"
    gender = root.find("/gender")
    assert gender.widget == "radio" and opts(gender)[0] == ("male", "Male", True)
    pets = root.find("/pets")
    assert pets.widget == "checkboxes" and pets.inline and [o.checked for o in pets.options] == [False, True, False]
    tasks = root.find("/tasks")
    assert tasks.widget == "repeat" and not tasks.can_move
    assert root.find("/tasks/0/done").widget == "yesno"
    assert root.find("/tasks/0/done").options[0].checked
    assert form.validate(data).ok
    assert defaults(form) == {"firstName": "Chuck"}


# -- fallbacks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("prop, asked, expected, words", [
    ({"type": "string"}, "colourwheel", "text", "unknown widget"),
    ({"type": "integer"}, "SliderWidget", "integer", "unknown widget"),
    ({"type": "string"}, "checkboxes", "text", "cannot show"),
    ({"type": "integer"}, "textarea", "integer", "cannot show"),
    ({"type": "string"}, "photo", "text", "cannot show"),
    ({"type": "string"}, "repeat", "text", "cannot show"),
    ({"type": "boolean"}, "date", "yesno", "cannot show"),
    ({"type": "object", "properties": {}}, "text", "group", "cannot show"),
    ({"type": "array", "items": {"type": "string", "enum": ["a"]}}, "radio", "checkboxes", "cannot show"),
    ({"type": "array", "items": {"type": "object", "properties": {}}}, "checkboxes", "repeat", "cannot show"),
    ({"type": "array", "items": {"type": "string", "format": "attachment"}}, "text", "file", "cannot show"),
    ({"type": "string", "format": "cn-mobile"}, "integer", "phone", "cannot show"),
])
def test_unfit_widget_falls_back_with_a_warning(warn, prop, asked, expected, words):
    w = field(prop, {"ui:widget": asked})
    assert w.widget == expected
    messages = warnings_of(warn)
    assert len(messages) == 1
    assert words in messages[0] and asked in messages[0] and "/f" in messages[0]


@pytest.mark.parametrize("asked", [None, "", 3, ["text"], {"component": "x"}])
def test_widget_that_is_not_a_name_is_ignored_quietly(warn, asked):
    assert field({"type": "integer"}, {"ui:widget": asked}).widget == "integer"
    assert warnings_of(warn) == []


def test_choose_widget_defaults():
    assert choose_widget({"type": "string"}, {}) == "text"
    assert choose_widget({"type": ["integer", "null"]}, {}) == "integer"
    assert choose_widget({"enum": [1, 2]}, {}) == "select"
    assert choose_widget({"properties": {}}, {}) == "group"
    assert choose_widget({"items": {"type": "string"}}, {}) == "repeat"
    assert choose_widget({"type": "string", "format": "email"}, {}) == "text"
    assert choose_widget({"type": "boolean", "enum": [True, False]}, {}) == "yesno"
    assert choose_widget({}, {}) == "text"


@pytest.mark.parametrize("prop, asked, expected", [
    ({"type": "string"}, "radio", "text"), ({"type": "integer"}, "select", "integer")])
def test_choice_widget_on_a_field_without_options_falls_back(warn, prop, asked, expected):
    assert choose_widget(prop, {"ui:widget": asked}, "/f") == expected
    assert warnings_of(warn)


def test_ui_that_is_not_an_object_is_ignored():
    root = render({"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "string"}}},
                  {"a": "textarea", "b": {"items": 5, "ui:options": "x"}}, {"b": ["1"]})
    assert root.find("/a").widget == "text"
    assert root.find("/b/0").widget == "text"


# -- conditional fields --------------------------------------------------------------------------

COND_PROPS = {
    "has_issue": {"type": "boolean"},
    "issue": {"type": "string"},
    "rows": {"type": "array", "items": {"type": "object", "properties": {
        "x": {"type": "string"}, "why": {"type": "string"}}}},
}
COND_UI = {
    "issue": {"ui:visibleWhen": {"properties": {"has_issue": {"const": True}}, "required": ["has_issue"]}},
    "rows": {"items": {"why": {"ui:visibleWhen": {"properties": {"has_issue": {"const": True}},
                                                  "required": ["has_issue"]}}}},
}


def test_hidden_fields_are_left_out_of_the_tree():
    root = render(COND_PROPS, COND_UI, {"has_issue": False, "issue": "stale", "rows": [{"x": "1"}]})
    assert root.find("/issue") is None
    assert root.find("/rows/0/why") is None
    assert root.find("/rows/0/x") is not None
    assert root.find("/has_issue").watched


def test_hidden_fields_appear_when_the_condition_holds():
    root = render(COND_PROPS, COND_UI, {"has_issue": True, "rows": [{"x": "1"}, {}]})
    issue = root.find("/issue")
    assert issue is not None and issue.conditional and not issue.watched
    assert root.find("/rows/0/why") is not None and root.find("/rows/1/why") is not None


def test_hidden_row_fields_stay_hidden_in_padded_rows():
    props = {**COND_PROPS, "rows": {**COND_PROPS["rows"], "minItems": 2}}
    root = render(props, COND_UI, {"has_issue": False})
    assert len(root.find("/rows").children) == 2
    assert root.find("/rows/0/why") is None


def test_chained_conditions():
    props = {"a": {"type": "boolean"}, "b": {"type": "boolean"}, "c": {"type": "string"}}
    ui = {"b": {"ui:visibleWhen": {"properties": {"a": {"const": True}}, "required": ["a"]}},
          "c": {"ui:visibleWhen": {"properties": {"b": {"const": True}}, "required": ["b"]}}}
    assert [w.name for w in render(props, ui, {"a": False, "b": True}).children] == ["/a"]
    assert [w.name for w in render(props, ui, {"a": True, "b": True}).children] == ["/a", "/b", "/c"]


# -- errors and autofocus ------------------------------------------------------------------------

def test_errors_are_placed_on_their_widgets_and_the_first_gets_focus():
    root = render(NESTED | {"note": {"type": "string"}}, data={"households": [{"members": [{}, {}]}]},
                  errors={"/households/0/members/1/age": "「年龄」应为整数", "/note": "「note」为必填项",
                          "/households": "「住户」至少需要 2 项", "/nowhere": "x"})
    age = root.find("/households/0/members/1/age")
    assert age.error == "「年龄」应为整数"
    assert root.find("/note").error == "「note」为必填项"
    assert root.find("/households").error == "「住户」至少需要 2 项"
    focused = [w.name for w in root.walk() if w.autofocus]
    assert focused == ["/households"]  # the first in page order
    assert root.find("/households/0/members/0/age").error is None


def test_first_error_in_page_order_gets_focus():
    root = render({"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
                  {"ui:order": ["c", "b", "a"]}, errors={"/a": "a 错", "/b": "b 错"})
    assert [w.name for w in root.walk() if w.autofocus] == ["/b"]


def test_ui_autofocus_without_errors():
    root = render({"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
                  {"b": {"ui:autofocus": True}, "c": {"ui:autofocus": True}})
    assert [w.name for w in root.walk() if w.autofocus] == ["/b"]


def test_only_the_first_error_has_focus_even_with_ui_autofocus():
    root = render({"a": {"type": "string"}, "b": {"type": "string"}}, {"b": {"ui:autofocus": True}},
                  errors={"/a": "错"})
    assert [w.name for w in root.walk() if w.autofocus] == ["/a"]


# -- helpers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("/members/0/name", "f-members-0-name"),
    ("/involved_households", "f-involved_households"),
])
def test_dom_id_of_plain_names_is_readable(name, expected):
    assert dom_id(name) == expected


@pytest.mark.parametrize("name", ["/a b", "/姓名", "/a~1b", "/a-b"])
def test_dom_id_of_other_names_is_hashed_under_its_own_prefix(name):
    got = dom_id(name)
    assert got.startswith("f_") and len(got) <= 56
    assert dom_id(name) == got  # stable


@given(st.text(min_size=1, max_size=20))
def test_property_dom_id_is_a_safe_html_id(name):
    got = dom_id("/" + name)
    assert got.startswith(("f-", "f_"))
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in got)


@given(st.lists(st.text(min_size=1, max_size=6), min_size=2, max_size=2, unique=True))
def test_property_dom_id_is_one_to_one(names):
    assert dom_id("/" + names[0]) != dom_id("/" + names[1])


def test_dom_id_tells_different_names_apart():
    assert dom_id("/a-b") != dom_id("/a_2d_b")


@pytest.mark.parametrize("value, expected", [
    (None, ""), (True, "true"), (False, "false"), (3, "3"), (3.0, "3"), (2.5, "2.5"), ("x", "x"),
    ([1, "二"], '[1, "二"]'), ({"a": 1}, '{"a": 1}'), (0, "0"),
])
def test_html_value(value, expected):
    assert html_value(value) == expected


def test_option_dataclass_defaults():
    assert Option("a", "甲") == Option("a", "甲", False)


def test_defaults():
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "default": "甲"},
        "b": {"type": "boolean", "default": False},
        "n": {"type": "integer", "default": 0},
        "none": {"type": "string"},
        "g": {"type": "object", "properties": {"x": {"type": "integer", "default": 3}, "y": {"type": "string"}}},
        "empty": {"type": "object", "properties": {"y": {"type": "string"}}},
        "whole": {"type": "object", "default": {"k": 1}, "properties": {"k": {"type": "integer", "default": 9}}},
        "ref": {"$ref": "#/$defs/r"},
    }, "$defs": {"r": {"type": "string", "default": "引用"}}}
    assert defaults(CompiledForm(schema)) == {"a": "甲", "b": False, "n": 0, "g": {"x": 3}, "whole": {"k": 1},
                                              "ref": "引用"}


def test_widget_walk_and_find():
    root = render(NESTED, data={"households": [{"members": [{"name": "x"}]}]})
    names = [w.name for w in root.walk()]
    assert names[:4] == ["", "/households", "/households/0", "/households/0/head"]
    assert root.find("/households/0/members/0/name").text == "x"
    assert root.find("/nope") is None


def test_recursive_schema_is_refused_or_compiled():
    schema = {"type": "object", "properties": {"root": {"$ref": "#/$defs/node"}},
              "$defs": {"node": {"type": "object", "properties": {"v": {"type": "string"},
                                                                 "child": {"$ref": "#/$defs/node"}}}}}
    refused = bool(schema_problems(schema, "form.json", ("schema",)))
    assert refused or Renderer(CompiledForm(schema)).tree({"root": {"v": "x"}}).find("/root/v").text == "x"


@pytest.mark.parametrize("value", [1e20, 1e64, -3e300, 123456789012345.0])
def test_large_integral_number_is_written_so_that_it_posts_back_the_same(value):
    w = field({"type": "number"}, None, value)
    form = CompiledForm({"type": "object", "properties": {"x": {"type": "number"}}})
    assert from_post(form, [("/x", w.text)]).data == {"x": value}


# -- shipped forms -------------------------------------------------------------------------------

KEY_WIDGETS = {
    "door_knock_visit": [("/visited_at", "datetime"), ("/met_resident", "yesno"), ("/phone", "phone"),
                         ("/special_groups", "checkboxes"), ("/photos", "photo"), ("/location", "geolocation"),
                         ("/location/latitude", "number"), ("/summary", "textarea")],
    "incident_report": [("/category", "select"), ("/urgency", "radio"), ("/description", "textarea"),
                        ("/occurred_at", "datetime"), ("/location", "geolocation"), ("/photos", "photo"),
                        ("/involved_households", "integer")],
    "dispute_mediation": [("/dispute_type", "select"), ("/parties", "repeat"), ("/parties/1/id_card", "idcard"),
                          ("/parties/1/phone", "phone"), ("/occurred_on", "date"), ("/source", "radio"),
                          ("/amount", "number"), ("/materials", "photo")],
    "resource_request": [("/category", "radio"), ("/beneficiaries", "checkboxes"), ("/beneficiary_count", "integer"),
                         ("/deliberated", "yesno"), ("/expected_date", "date"), ("/contact_phone", "phone"),
                         ("/attachments", "file")],
}


@pytest.mark.parametrize("key", SHIPPED)
def test_shipped_form_renders_empty(warn, key):
    form = load_form(key)
    root = Renderer(form, Context()).tree({})
    assert (root.widget, root.name, root.required) == ("group", "", True)
    assert warnings_of(warn) == []
    drawn = {w.name: w.widget for w in root.walk()}
    for name, widget in KEY_WIDGETS[key]:
        assert drawn.get(name) == widget, name
    new = Renderer(form, Context(grid_choices=[("450902001001", "城站社区")])).tree(defaults(form) or {})
    assert new.children


@pytest.mark.parametrize("key", SHIPPED)
def test_shipped_form_renders_a_full_sample(warn, key):
    form = load_form(key)
    sample = SAMPLES[key]
    root = Renderer(form, Context()).tree(sample)
    assert warnings_of(warn) == []
    shown = {w.path[0] for w in root.walk() if w.path}
    assert shown == set(sample)  # every field of the full sample is drawn, none hidden
    assert {c.name for c in root.children} == {"/" + k for k in form.schema["properties"]}
    for w in root.walk():
        if w.options and w.widget != "checkboxes" and w.path and w.path[-1] in sample:
            assert [o.value for o in w.options if o.checked] == [html_value(sample[w.path[-1]])]


def test_door_knock_visit_key_widgets():
    form = load_form("door_knock_visit")
    root = Renderer(form).tree(SAMPLES["door_knock_visit"])
    assert root.find("/visited_at").widget == "datetime"
    assert root.find("/met_resident").widget == "yesno" and root.find("/met_resident").watched
    assert root.find("/phone").widget == "phone"
    assert root.find("/topics").widget == "checkboxes" and all(o.checked for o in root.find("/topics").options)
    assert root.find("/residence_type").widget == "radio"
    members = root.find("/members")
    assert members.widget == "repeat" and len(members.children) == 2 and members.max_rows == 20
    assert members.help.startswith("新增或变动的成员")
    assert root.find("/members/0/id_card").widget == "idcard"
    assert root.find("/members/0/gender").widget == "radio"
    assert root.find("/members/1/is_party_member").options[0].checked
    assert root.find("/members/0/notes").attrs["rows"] == 2
    assert [c.name.rsplit("/", 1)[1] for c in members.children[0].children][:3] == ["name", "relation", "id_card"]
    assert root.find("/issue_photos").widget == "photo" and root.find("/issue_photos").attrs["capture"]
    assert root.find("/location").widget == "geolocation"
    assert root.find("/location/latitude").attrs["min"] == "-90"
    assert [w.name for w in root.walk() if w.autofocus] == ["/head_name"]


def test_door_knock_visit_conditions():
    form = load_form("door_knock_visit")
    away = Renderer(form).tree({"met_resident": False, "has_issue": False})
    for name in ("/topics", "/members", "/policy_items", "/issue_type", "/issue_urgency"):
        assert away.find(name) is None, name
    met = Renderer(form).tree({"met_resident": True, "topics": ["info_collection"], "has_issue": True})
    for name in ("/topics", "/members", "/residence_type", "/issue_type", "/need_report"):
        assert met.find(name) is not None, name
    assert met.find("/issue_urgency") is None  # needs need_report too
    assert met.find("/policy_items") is None


def test_dispute_mediation_parties_padded_to_two():
    form = load_form("dispute_mediation")
    parties = Renderer(form).tree({}).find("/parties")
    assert [r.title for r in parties.children] == ["当事人 1", "当事人 2"]
    assert (parties.min_rows, parties.max_rows, parties.can_remove) == (2, 20, False)
    assert parties.children[0].find("/parties/0/role").widget == "radio"


def test_shipped_forms_with_errors_focus_the_first(warn):
    for key in SHIPPED:
        form = load_form(key)
        result = form.validate({})
        assert result.errors
        errors = {e.path: e.message for e in result.errors}
        root = Renderer(form, Context(errors=errors)).tree({})
        with_error = [w for w in root.walk() if w.error]
        assert with_error, key
        assert with_error[0].autofocus
        assert all(w.error == errors[w.name] for w in with_error)


def page_pairs(form: CompiledForm, data: dict) -> list[tuple[str, str]]:
    """What the fill page posts for this data, read off the widget tree as the templates draw it."""
    pairs: list[tuple[str, str]] = []

    def emit(w: Widget) -> None:
        if w.widget in ("group", "geolocation"):
            for c in w.children:
                emit(c)
        elif w.widget == "repeat":
            for row in w.children:
                pairs.append((row.name, ""))  # the row's hidden marker
                emit(row)
        elif w.widget in ("photo", "file", "signature"):
            shas = w.value if w.multiple else ([w.value] if w.value else [])
            pairs.extend((w.name, sha) for sha in shas)
        elif w.widget in ("radio", "yesno", "checkboxes"):
            pairs.extend((w.name, o.value) for o in w.options if o.checked)
        elif w.widget == "select" or (w.widget == "grid" and w.options):
            chosen = [o.value for o in w.options if o.checked]
            pairs.extend((w.name, v) for v in chosen or [""])
        else:
            pairs.append((w.name, w.text))

    emit(Renderer(form).tree(data))
    return pairs


@pytest.mark.parametrize("key", SHIPPED)
def test_shipped_form_page_round_trip(key):
    form = load_form(key)
    converted = from_post(form, page_pairs(form, SAMPLES[key]))
    assert converted.errors == []
    assert converted.data == SAMPLES[key]
