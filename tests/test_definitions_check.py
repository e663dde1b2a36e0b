"""`gridflow check`: every problem in a definition file is reported with its file and JSON Pointer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from server import ROOT
from server.cli import main
from server.definitions.check import check_sources
from server.definitions.files import Problem, read_sources

FORM = {
    "key": "door_visit",
    "title": "入户走访",
    "flow": "visit_review",
    "schema": {
        "type": "object",
        "required": ["household"],
        "$defs": {"mobile": {"type": "string", "format": "cn-mobile"}},
        "properties": {
            "household": {"type": "string", "title": "户主姓名"},
            "phone": {"$ref": "#/$defs/mobile", "title": "电话"},
            "housing": {"type": "string", "enum": ["own", "rent"], "title": "住房"},
            "members": {"type": "array", "title": "家庭成员", "items": {
                "type": "object", "properties": {"name": {"type": "string", "title": "姓名"}}}},
        },
    },
    "ui": {
        "ui:order": ["household", "*"],
        "household": {"ui:widget": "text"},
        "housing": {"ui:widget": "radio", "ui:enumNames": ["自有", "租住"],
                    "ui:visibleWhen": {"required": ["household"]}},
        "members": {"items": {"name": {"ui:placeholder": "姓名"}}},
    },
}

FLOW = {
    "key": "visit_review",
    "title": "走访复核",
    "start": "review",
    "nodes": {
        "review": {
            "type": "task", "title": "社区复核", "mode": "any",
            "assignees": [{"role": "community_secretary", "level": "community"}],
            "actions": [{"key": "approve", "title": "通过", "to": "route"},
                        {"key": "reject", "title": "驳回", "to": "rejected"}],
        },
        "route": {"type": "branch", "conditions": [
            {"when": {"properties": {"housing": {"const": "rent"}}, "required": ["housing"]}, "to": "fanout"}],
            "default": "done"},
        "fanout": {"type": "parallel", "branches": ["police", "street"], "join": "gather"},
        "police": {"type": "task", "title": "派出所核查", "assignees": [{"department": "public_security"}],
                   "actions": [{"key": "ok", "title": "完成", "to": "gather"}]},
        "street": {"type": "task", "title": "街道核查", "assignees": [{"role": "street_officer", "level": "street"}],
                   "actions": [{"key": "ok", "title": "完成", "to": "gather"}]},
        "gather": {"type": "join", "next": "notify"},
        "notify": {"type": "cc", "to": [{"submitter": True}], "next": "done"},
        "done": {"type": "end", "outcome": "resolved"},
        "rejected": {"type": "end", "outcome": "rejected"},
    },
}

UNKNOWN_TYPE = "类型 '{}' 不存在；可用：string、number、integer、boolean、object、array、null"


def changed(doc: dict, change) -> dict:
    """Return a deep copy of a definition after `change` (a function that edits it in place)."""
    doc = copy.deepcopy(doc)
    change(doc)
    return doc


def write(folder: Path, name: str, content) -> Path:
    path = folder / name
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def check(*paths: Path, **options) -> list[Problem]:
    sources, problems = read_sources(list(paths))
    return problems + check_sources(sources, **options)


def check_form(tmp_path: Path, doc: dict) -> tuple[str, list[tuple[str, str]]]:
    """Check one form together with its flow; return its file and its problems as (pointer, message)."""
    path = write(tmp_path, "form.json", doc)
    flow = write(tmp_path, "flow.json", FLOW)
    problems = check(path, flow)
    assert all(p.file == str(path) for p in problems), problems
    return str(path), [(p.pointer, p.message) for p in problems]


def check_flow(tmp_path: Path, doc: dict, **options) -> list[tuple[str, str]]:
    path = write(tmp_path, "flow.json", doc)
    problems = check(path, **options)
    assert all(p.file == str(path) for p in problems), problems
    return [(p.pointer, p.message) for p in problems]


def test_good_form_and_flow_pass(tmp_path):
    assert check(write(tmp_path, "form.json", FORM), write(tmp_path, "flow.json", FLOW)) == []


def test_shipped_templates_pass():
    sources, problems = read_sources([ROOT / "forms", ROOT / "flows"])
    assert problems == []
    assert {s.kind for s in sources} == {"form", "flow"}
    assert check_sources(sources) == []


def test_problem_reads_as_file_pointer_and_message():
    assert str(Problem("forms/a.json", "/schema/type", "坏了")) == "forms/a.json:/schema/type: 坏了"
    assert str(Problem("forms/a.json", "", "坏了")) == "forms/a.json:/: 坏了"


# -- reading files -----------------------------------------------------------------------------------


def test_json_syntax_error_is_reported_with_line_and_column(tmp_path):
    path = write(tmp_path, "broken.json", '{\n  "key": "door_visit",\n  "title": \n}\n')
    assert check(path) == [Problem(str(path), "", "JSON 语法错误（第 4 行第 1 列）：Expecting value")]


def test_file_that_is_not_utf8_is_reported(tmp_path):
    path = tmp_path / "gbk.json"
    path.write_bytes(json.dumps({"key": "a", "title": "走访"}, ensure_ascii=False).encode("gbk"))
    assert check(path) == [Problem(str(path), "", "文件不是 UTF-8 编码")]


def test_unknown_kind_of_definition_is_reported(tmp_path):
    path = write(tmp_path, "what.json", {"key": "what", "title": "不知是什么"})
    assert check(path) == [Problem(str(path), "", "无法判断定义类型：表单定义须有 schema，流程定义须有 nodes")]


def test_json_that_is_not_an_object_is_an_unknown_kind(tmp_path):
    path = write(tmp_path, "list.json", [FORM])
    assert [p.message for p in check(path)] == ["无法判断定义类型：表单定义须有 schema，流程定义须有 nodes"]


def test_missing_path_is_reported(tmp_path):
    missing = tmp_path / "nowhere"
    assert check(missing) == [Problem(str(missing), "", "文件或文件夹不存在")]


def test_folder_is_read_for_its_json_files_only(tmp_path):
    write(tmp_path, "form.json", FORM)
    write(tmp_path, "flow.json", FLOW)
    write(tmp_path, "notes.txt", "not json")
    (tmp_path / "old").mkdir()
    write(tmp_path / "old", "bad.json", "{")
    sources, problems = read_sources([tmp_path])
    assert problems == []
    assert sorted((s.kind, s.key, s.path.name) for s in sources) == [
        ("flow", "visit_review", "flow.json"), ("form", "door_visit", "form.json")]


# -- form definitions: meta-schema -------------------------------------------------------------------


def test_missing_key_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d.pop("key")))
    assert problems == [("", "缺少必需的键：key")]


def test_missing_title_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d.pop("title")))
    assert problems == [("", "缺少必需的键：title")]


@pytest.mark.parametrize("key", ["Door_Visit", "door-visit", "1visit", "d", "入户走访", "door visit"])
def test_badly_shaped_key_is_reported(tmp_path, key):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d.update(key=key)))
    assert problems == [("/key", "格式不符合 ^[a-z][a-z0-9_]{1,63}$")]


def test_unknown_top_level_key_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d.update(colour="red")))
    assert problems == [("", "不认识的键：colour")]


def test_schema_whose_root_is_not_an_object_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"].update(type="array")))
    assert problems == [("/schema/type", "只能是 'object'")]


def test_ui_hint_of_the_wrong_type_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"].update({"ui:order": "household"})))
    assert problems == [("/ui/ui:order", "类型应为 array")]


def test_unknown_ui_key_names_only_the_unknown_key(tmp_path):
    # "household" is a field (allowed by the ui meta-schema's patternProperties); only "x:y" is wrong.
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"].update({"x:y": {}})))
    assert problems == [("/ui", "不认识的键：x:y")]


# -- form definitions: the JSON Schema -----------------------------------------------------------------


def test_invalid_json_schema_is_reported_where_it_is(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["properties"]["household"].update(
        type="text")))
    assert problems == [("/schema/properties/household/type",
                         "不是有效的 JSON Schema：" + UNKNOWN_TYPE.format("text"))]


def test_negative_min_length_is_an_invalid_schema(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["properties"]["household"].update(
        minLength=-1)))
    assert problems == [("/schema/properties/household/minLength",
                         "不是有效的 JSON Schema：不能小于 0")]


def test_external_ref_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["properties"].update(
        other={"$ref": "https://example.com/x.json"})))
    assert problems == [("/schema/properties/other/$ref",
                         "不允许引用外部模式 https://example.com/x.json：只能引用本定义内的 #/$defs/…")]


def test_relative_file_ref_is_an_external_ref(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["properties"].update(
        other={"$ref": "common.json#/$defs/mobile"})))
    assert [p for p, _ in problems] == ["/schema/properties/other/$ref"]
    assert problems[0][1].startswith("不允许引用外部模式 common.json#/$defs/mobile")


def test_unresolvable_local_ref_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["properties"]["members"]["items"][
        "properties"].update(phone={"$ref": "#/$defs/telephone"})))
    assert problems == [("/schema/properties/members/items/properties/phone/$ref", "找不到引用 #/$defs/telephone")]


def test_unknown_format_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["properties"]["household"].update(
        format="phone")))
    assert len(problems) == 1
    pointer, message = problems[0]
    assert pointer == "/schema/properties/household/format"
    assert message.startswith("未知的格式 phone；可用：")
    assert "cn-mobile" in message and "cn-id-card" in message


def test_unknown_format_inside_defs_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["$defs"]["mobile"].update(
        format="mobile")))
    assert [p for p, _ in problems] == ["/schema/$defs/mobile/format"]


def test_required_name_not_in_properties_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["required"].append("age")))
    assert problems == [("/schema/required/1", "必填项 age 不在 properties 中")]


def test_required_name_missing_from_a_row_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["properties"]["members"]["items"]
                                               .update(required=["name", "relation"])))
    assert problems == [("/schema/properties/members/items/required/1", "必填项 relation 不在 properties 中")]


def test_sensitive_mark_must_be_a_boolean(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["schema"]["properties"]["household"].update(
        {"x-sensitive": "yes"})))
    assert problems == [("/schema/properties/household/x-sensitive", "x-sensitive 应为 true 或 false")]


# -- form definitions: ui hints ------------------------------------------------------------------------


def test_ui_key_naming_a_missing_field_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"].update(age={"ui:widget": "integer"})))
    assert problems == [("/ui/age", "ui 中的 age 不是本组的字段")]


def test_ui_key_naming_a_missing_field_in_rows_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"]["members"]["items"].update(
        age={"ui:widget": "integer"})))
    assert problems == [("/ui/members/items/age", "ui 中的 age 不是本组的字段")]


def test_ui_order_naming_a_missing_field_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"].update(
        {"ui:order": ["household", "age", "*"]})))
    assert problems == [("/ui/ui:order/1", "ui:order 中的 age 不是本组的字段")]


def test_unknown_widget_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"]["household"].update(
        {"ui:widget": "slider"})))
    assert len(problems) == 1
    assert problems[0][0] == "/ui/household/ui:widget"
    assert problems[0][1].startswith("未知的控件 slider；可用：")


@pytest.mark.parametrize("widget", ["textarea", "idcard", "photo", "repeat", "RadioWidget", "updown"])
def test_our_widgets_and_rjsf_widget_names_are_accepted(tmp_path, widget):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"]["household"].update({"ui:widget": widget})))
    assert problems == []


def test_enum_names_of_the_wrong_length_are_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"]["housing"].update(
        {"ui:enumNames": ["自有"]})))
    assert problems == [("/ui/housing/ui:enumNames", "ui:enumNames 的个数应与 enum 的选项个数相同")]


def test_invalid_visible_when_schema_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"]["housing"].update(
        {"ui:visibleWhen": {"type": "nonsense"}})))
    assert problems == [("/ui/housing/ui:visibleWhen/type",
                         "不是有效的 JSON Schema：" + UNKNOWN_TYPE.format("nonsense"))]


def test_visible_when_with_an_external_ref_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"]["housing"].update(
        {"ui:visibleWhen": {"$ref": "https://example.com/cond.json"}})))
    assert [p for p, _ in problems] == ["/ui/housing/ui:visibleWhen/$ref"]


def test_visible_when_on_the_whole_form_is_reported(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"].update(
        {"ui:visibleWhen": {"required": ["household"]}})))
    assert problems == [("/ui/ui:visibleWhen", "ui:visibleWhen 只能用在字段上，不能用在整张表单上")]


def test_ui_of_a_field_behind_a_ref_is_checked_against_its_target(tmp_path):
    _, problems = check_form(tmp_path, changed(FORM, lambda d: d["ui"].update(phone={"ui:widget": "phone"})))
    assert problems == []


# -- cross references ------------------------------------------------------------------------------------


def test_form_naming_an_unknown_flow_is_reported_when_flows_are_checked(tmp_path):
    path, problems = check_form(tmp_path, changed(FORM, lambda d: d.update(flow="no_such_flow")))
    assert problems == [("/flow", "找不到流程 no_such_flow")]


def test_form_naming_a_flow_known_elsewhere_passes(tmp_path):
    form = write(tmp_path, "form.json", changed(FORM, lambda d: d.update(flow="stored_flow")))
    assert check(form, known_flows={"stored_flow"}) == []


def test_flow_reference_is_not_checked_when_asked_not_to(tmp_path):
    form = write(tmp_path, "form.json", changed(FORM, lambda d: d.update(flow="no_such_flow")))
    assert check(form, check_flow_refs=False) == []


def test_duplicate_keys_across_files_are_reported(tmp_path):
    first = write(tmp_path, "a.json", FORM)
    second = write(tmp_path, "b.json", changed(FORM, lambda d: d.update(title="入户走访（新）")))
    flow = write(tmp_path, "flow.json", FLOW)
    assert check(first, second, flow) == [Problem(str(second), "/key", f"键 door_visit 与 {first} 重复")]


def test_form_and_flow_may_share_a_key(tmp_path):
    form = write(tmp_path, "form.json", changed(FORM, lambda d: d.update(key="visit_review")))
    flow = write(tmp_path, "flow.json", FLOW)
    assert check(form, flow) == []


def test_problems_in_several_files_are_all_reported(tmp_path):
    form = write(tmp_path, "form.json", changed(FORM, lambda d: d["schema"]["required"].append("age")))
    flow = write(tmp_path, "flow.json", changed(FLOW, lambda d: d.update(start="begin")))
    assert {(p.file, p.pointer) for p in check(form, flow)} == {(str(form), "/schema/required/1"),
                                                                (str(flow), "/start")}


# -- flow definitions ----------------------------------------------------------------------------------


def test_flow_missing_its_nodes_is_a_form_without_schema(tmp_path):
    path = write(tmp_path, "flow.json", changed(FLOW, lambda d: d.pop("nodes")))
    assert [p.message for p in check(path)] == ["无法判断定义类型：表单定义须有 schema，流程定义须有 nodes"]


def test_flow_missing_start_is_reported(tmp_path):
    assert check_flow(tmp_path, changed(FLOW, lambda d: d.pop("start"))) == [("", "缺少必需的键：start")]


def test_unknown_start_node_is_reported(tmp_path):
    assert check_flow(tmp_path, changed(FLOW, lambda d: d.update(start="begin"))) == [
        ("/start", "开始节点 begin 不存在")]


def test_unknown_node_reference_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["review"]["actions"][1].update(to="archive")))
    assert ("/nodes/review/actions/1/to", "引用了不存在的节点 archive") in problems
    # The only way to `rejected` is gone, so it is also unreachable now.
    assert ("/nodes/rejected", "从开始节点无法到达此节点") in problems


def test_unknown_branch_target_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["route"].update(default="finish")))
    assert ("/nodes/route/default", "引用了不存在的节点 finish") in problems


def test_unreachable_node_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"].update(
        orphan={"type": "end", "outcome": "withdrawn"})))
    assert problems == [("/nodes/orphan", "从开始节点无法到达此节点")]


def test_node_with_no_path_to_an_end_is_reported(tmp_path):
    def loop(d):
        d["nodes"]["review"]["actions"].append({"key": "wait", "title": "等待", "to": "waiting"})
        d["nodes"]["waiting"] = {"type": "cc", "to": [{"submitter": True}], "next": "waiting"}

    assert check_flow(tmp_path, changed(FLOW, loop)) == [("/nodes/waiting", "此节点没有通往结束节点的路径")]


def test_flow_without_any_end_is_reported_at_every_node(tmp_path):
    flow = {"key": "no_end", "title": "无结束", "start": "a", "nodes": {
        "a": {"type": "cc", "to": [{"submitter": True}], "next": "b"},
        "b": {"type": "cc", "to": [{"submitter": True}], "next": "a"}}}
    assert check_flow(tmp_path, flow) == [("/nodes/a", "此节点没有通往结束节点的路径"),
                                          ("/nodes/b", "此节点没有通往结束节点的路径")]


def test_branch_without_default_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["route"].pop("default")))
    assert problems == [("/nodes/route", "缺少必需的键：default")]


def test_task_without_actions_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["police"].pop("actions")))
    assert problems == [("/nodes/police", "缺少必需的键：actions")]


def test_unknown_node_type_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["notify"].update(type="email")))
    assert problems == [("/nodes/notify/type", "只能是：task、branch、parallel、join、cc、spawn、end")]


def test_parallel_whose_join_is_not_a_join_node_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["fanout"].update(join="notify")))
    assert ("/nodes/fanout/join", "并行节点的汇合节点 notify 不存在或不是 join 类型") in problems


def test_parallel_whose_join_does_not_exist_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["fanout"].update(join="meet")))
    assert ("/nodes/fanout/join", "并行节点的汇合节点 meet 不存在或不是 join 类型") in problems


def test_parallel_branch_that_never_reaches_the_join_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["street"]["actions"][0].update(to="done")))
    assert problems == [("/nodes/fanout/branches/1", "分支 street 无法到达汇合节点 gather")]


def test_parallel_without_join_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["fanout"].pop("join")))
    assert ("/nodes/fanout", "缺少必需的键：join") in problems


def test_parallel_with_both_fixed_and_dynamic_branches_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["fanout"].update(
        foreach="/departments", branch="police")))
    assert problems == [("/nodes/fanout", "应当恰好符合一种写法（例如 branches，或 foreach 加 branch）")]


def _foreach(d):
    d["nodes"]["fanout"] = {"type": "parallel", "foreach": "/departments", "branch": "police", "join": "gather"}
    del d["nodes"]["street"]


def test_parallel_over_a_list_passes(tmp_path):
    assert check_flow(tmp_path, changed(FLOW, _foreach)) == []


def test_parallel_over_a_list_whose_branch_never_joins_is_reported_at_branch(tmp_path):
    def broken(d):
        _foreach(d)
        d["nodes"]["police"]["actions"][0]["to"] = "done"

    problems = check_flow(tmp_path, changed(FLOW, broken))
    assert ("/nodes/fanout/branch", "分支 police 无法到达汇合节点 gather") in problems


def test_unknown_role_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["review"]["assignees"][0].update(
        role="wizard")))
    assert problems == [("/nodes/review/assignees/0/role", "角色 wizard 未配置")]


def test_unknown_level_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["review"]["assignees"][0].update(
        level="galaxy")))
    assert problems == [("/nodes/review/assignees/0/level", "层级 galaxy 未配置")]


def test_role_without_level_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["review"]["assignees"][0].pop("level")))
    assert problems == [("/nodes/review/assignees/0", "按角色指派时须同时写明层级 level")]


def test_unknown_role_in_cc_and_fallback_is_reported(tmp_path):
    def edit(d):
        d["nodes"]["notify"]["to"] = [{"role": "ghost", "level": "community"}]
        d["nodes"]["review"]["fallback"] = {"role": "mediator", "level": "planet"}

    problems = check_flow(tmp_path, changed(FLOW, edit))
    assert sorted(problems) == [("/nodes/notify/to/0/role", "角色 ghost 未配置"),
                                ("/nodes/review/fallback/level", "层级 planet 未配置")]


def test_configured_roles_and_levels_replace_the_defaults(tmp_path):
    flow = changed(FLOW, lambda d: d["nodes"]["review"]["assignees"][0].update(role="elder", level="village"))
    assert check_flow(tmp_path, flow, levels={"village", "street"}, roles={"elder", "street_officer"}) == []
    problems = check_flow(tmp_path, FLOW, levels={"village", "street"}, roles={"elder", "street_officer"})
    assert problems == [("/nodes/review/assignees/0/role", "角色 community_secretary 未配置"),
                        ("/nodes/review/assignees/0/level", "层级 community 未配置")]


def test_invalid_step_form_schema_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["review"].update(
        form={"schema": {"type": "object", "properties": {"score": {"type": "integr"}}}})))
    assert problems == [("/nodes/review/form/schema/properties/score/type",
                         "不是有效的 JSON Schema：" + UNKNOWN_TYPE.format("integr"))]


def test_step_form_that_is_not_an_object_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["review"].update(
        form={"schema": {"type": "array"}})))
    assert problems == [("/nodes/review/form/schema/type", "步骤表单的 schema 须为 type: object")]


def test_action_step_form_problems_are_reported(tmp_path):
    def edit(d):
        d["nodes"]["review"]["actions"][1]["form"] = {
            "schema": {"type": "object", "required": ["reason"],
                       "properties": {"note": {"type": "string", "format": "bogus"}}},
            "ui": {"reason": {"ui:widget": "textarea"}}}

    problems = check_flow(tmp_path, changed(FLOW, edit))
    assert sorted(p for p, _ in problems) == ["/nodes/review/actions/1/form/schema/properties/note/format",
                                              "/nodes/review/actions/1/form/schema/required/0",
                                              "/nodes/review/actions/1/form/ui/reason"]


def test_invalid_branch_condition_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["route"]["conditions"][0].update(
        when={"type": "bogus"})))
    assert problems == [("/nodes/route/conditions/0/when/type",
                         "不是有效的 JSON Schema：" + UNKNOWN_TYPE.format("bogus"))]


def test_visit_count_of_an_unknown_node_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["route"]["conditions"].append(
        {"visits": {"node": "mediate", "lt": 3}, "to": "review"})))
    assert problems == [("/nodes/route/conditions/1/visits/node", "计数的节点 mediate 不存在")]


def test_bad_deadline_duration_is_reported(tmp_path):
    problems = check_flow(tmp_path, changed(FLOW, lambda d: d["nodes"]["review"].update(
        deadline={"duration": "3 days"})))
    assert [p for p, _ in problems] == ["/nodes/review/deadline/duration"]


def test_spawn_of_an_unknown_form_is_reported(tmp_path):
    def edit(d):
        d["nodes"]["notify"] = {"type": "spawn", "form": "follow_up", "next": "done"}

    form = write(tmp_path, "form.json", FORM)
    flow = write(tmp_path, "flow.json", changed(FLOW, edit))
    assert check(form, flow) == [Problem(str(flow), "/nodes/notify/form", "找不到表单 follow_up")]
    assert check(form, flow, known_forms={"follow_up"}) == []


# -- the command ---------------------------------------------------------------------------------------
# The commands live on the `gridflow` group (server.cli.main), not on app.cli, so the runner is given it.


def test_check_command_passes_the_shipped_templates(runner):
    result = runner.invoke(main, args=["check", str(ROOT / "forms"), str(ROOT / "flows")])
    assert result.exit_code == 0, result.output
    count = len(list((ROOT / "forms").glob("*.json"))) + len(list((ROOT / "flows").glob("*.json")))
    assert result.stdout.strip() == f"{count} 个定义全部通过检查"


def test_check_command_reports_each_problem_and_exits_non_zero(runner, tmp_path):
    bad_form = write(tmp_path, "form.json", changed(FORM, lambda d: d["schema"]["properties"].update(
        other={"$ref": "https://example.com/x.json"})))
    broken = write(tmp_path, "broken.json", "{")
    flow = write(tmp_path, "flow.json", FLOW)
    result = runner.invoke(main, args=["check", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert f"{broken}:/: JSON 语法错误（第 1 行第 2 列）：Expecting property name enclosed in double quotes" in lines
    assert (f"{bad_form}:/schema/properties/other/$ref: "
            "不允许引用外部模式 https://example.com/x.json：只能引用本定义内的 #/$defs/…") in lines
    assert lines[-1] == "发现 2 个问题（共检查 2 个定义）"
    assert str(flow) not in result.stderr


def test_check_command_checks_flow_references_only_when_given_flows(runner, tmp_path):
    forms, flows = tmp_path / "forms", tmp_path / "flows"
    forms.mkdir()
    flows.mkdir()
    form = write(forms, "form.json", changed(FORM, lambda d: d.update(flow="no_such_flow")))
    write(flows, "flow.json", FLOW)
    alone = runner.invoke(main, args=["check", str(forms)])
    assert alone.exit_code == 0, alone.output
    together = runner.invoke(main, args=["check", str(forms), str(flows)])
    assert together.exit_code == 1
    assert f"{form}:/flow: 找不到流程 no_such_flow" in together.stderr.splitlines()
