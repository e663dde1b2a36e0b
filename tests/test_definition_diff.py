"""Readable version diffs of forms and flows, and `gridflow export` writing definitions back to files."""

from __future__ import annotations

import copy
import json

import pytest

from server import ROOT
from server.cli import main
from server.definitions.diff import flow_changes, form_changes


def shipped(kind: str, key: str) -> dict:
    return json.loads((ROOT / kind / f"{key}.json").read_text(encoding="utf-8"))


def texts(changes) -> list[str]:
    return [c.text for c in changes]


def test_the_same_definition_has_no_changes():
    form = shipped("forms", "incident_report")
    assert form_changes(form, copy.deepcopy(form)) == []
    flow = shipped("flows", "incident_loop")
    assert flow_changes(flow, copy.deepcopy(flow)) == []


def test_fields_added_removed_renamed_made_required_and_options_are_named_in_chinese():
    old = shipped("forms", "incident_report")
    new = copy.deepcopy(old)
    props = new["schema"]["properties"]
    props["building"] = {"type": "string", "title": "楼栋号", "maxLength": 20}
    new["schema"]["required"].append("building")
    del props["involved_people"]
    props["description"]["title"] = "事件经过"
    props["description"]["maxLength"] = 500
    props["urgency"]["oneOf"][0]["title"] = "普通"
    props["urgency"]["oneOf"].append({"const": "routine", "title": "日常"})
    props["category"]["oneOf"] = [o for o in props["category"]["oneOf"] if o["const"] != "other"]
    props["reporter_phone"]["x-sensitive"] = False
    changes = form_changes(old, new)
    assert {c.where: c.kind for c in changes if c.where in ("/building", "/involved_people")} == {
        "/building": "added", "/involved_people": "removed"}
    assert set(texts(changes)) >= {
        "新增字段「楼栋号」（必填）",
        "删除字段「涉及人数」",
        "字段「事件描述」改名为「事件经过」",
        "「事件经过」的最多字数：2000 → 500",
        "「紧急程度」的选项「一般」改为「普通」",
        "「紧急程度」新增选项「日常」",
        "「事件类别」删除选项「其他」",
        "「反映人联系电话」不再是敏感信息",
    }


def test_changes_inside_groups_and_repeating_rows_point_into_them():
    old = shipped("forms", "dispute_mediation")
    new = copy.deepcopy(old)
    items = new["schema"]["properties"]["parties"]["items"]
    items["properties"]["occupation"] = {"type": "string", "title": "职业"}
    items["properties"]["name"]["title"] = "当事人姓名"
    changes = form_changes(old, new)
    by_where = {c.where: c.text for c in changes}
    assert by_where["/parties/*/occupation"] == "新增字段「职业」"
    assert "改名为「当事人姓名」" in by_where["/parties/*/name"]


def test_a_changed_widget_condition_and_form_title_are_reported():
    old = shipped("forms", "incident_report")
    new = copy.deepcopy(old)
    new["title"] = "事件上报（试行）"
    new["ui"]["urgency"]["ui:widget"] = "select"
    del new["ui"]["is_anonymous"]["ui:visibleWhen"]
    assert set(texts(form_changes(old, new))) >= {
        "表单名称：事件上报 → 事件上报（试行）",
        "「紧急程度」的填写方式：radio → select",
        "「反映人是否要求匿名」去掉了显示条件（总是显示）",
    }


def test_flow_steps_deadlines_and_actions():
    old = shipped("flows", "mediation_321")
    new = copy.deepcopy(old)
    new["nodes"]["studio_mediation"] = {"type": "task", "title": "“作退一步想”工作室调解",
                                        "assignees": [{"role": "mediator", "level": "street"}],
                                        "actions": [{"key": "record", "title": "登记调解结果", "to": "street_result"}]}
    new["nodes"]["street_mediation"]["deadline"] = {"duration": "P15D", "calendar": "working"}
    refer = {"key": "refer", "title": "转交工作室", "to": "studio_mediation"}
    new["nodes"]["street_mediation"]["actions"].append(refer)
    del new["nodes"]["follow_up"]["actions"][0]["title"]
    changes = flow_changes(old, new)
    assert set(texts(changes)) >= {
        "新增步骤「“作退一步想”工作室调解」",
        "「镇（街道）深调」的时限：10 个工作日 → 15 个工作日",
        "「镇（街道）深调」新增操作「转交工作室」",
    }
    assert any(c.where == "follow_up" and c.kind == "changed" for c in changes)


def test_export_writes_the_published_definitions_back_and_loading_them_changes_nothing(shipped, runner, tmp_path):
    result = runner.invoke(main, ["export", "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    forms = sorted(p.name for p in (tmp_path / "forms").iterdir())
    flows = sorted(p.name for p in (tmp_path / "flows").iterdir())
    assert forms == ["dispute_mediation.json", "door_knock_visit.json", "incident_report.json",
                     "resource_request.json"]
    assert flows == ["incident_loop.json", "mediation_321.json", "resource_request.json", "visit_followup.json"]
    written = json.loads((tmp_path / "forms" / "incident_report.json").read_text(encoding="utf-8"))
    assert next(iter(written)) == "$schema" and written["title"] == "事件上报"
    assert "共 8 个文件有变化" in result.output
    again = runner.invoke(main, ["export", "--to", str(tmp_path)])
    assert "共 0 个文件有变化" in again.output
    loaded = runner.invoke(main, ["load", str(tmp_path / "forms"), str(tmp_path / "flows")])
    assert loaded.exit_code == 0, loaded.output
    assert "新版本" not in loaded.output


def test_risky_changes_count_the_submissions_they_touch():
    from server.definitions.diff import affected

    old = shipped("forms", "dispute_mediation")
    new = copy.deepcopy(old)
    props = new["schema"]["properties"]
    props["dispute_type"]["oneOf"] = [o for o in props["dispute_type"]["oneOf"] if o["const"] != "neighbourhood"]
    props["involved_people"] = {"type": "string", "title": "涉及人数（文字）"}
    del props["claims"]
    role = props["parties"]["items"]["properties"]["role"]
    removed_role = role["oneOf"].pop()["const"]
    changes = form_changes(old, new)
    datas = [
        {"dispute_type": "neighbourhood", "involved_people": 3, "claims": "赔偿", "parties": [{"role": removed_role}]},
        {"dispute_type": "neighbourhood"},
        {"dispute_type": "other", "parties": [{"role": "x"}, {"role": removed_role}]},
        {},
    ]
    counts = {c.where + ":" + (c.risk or ""): n for c, n in affected(changes, iter(datas)).items()}
    assert counts == {"/dispute_type:option": 2, "/involved_people:type": 1, "/claims:field": 1,
                      "/parties/*/role:option": 2}
    assert all(c.risk is None for c in changes if c.kind == "added")


@pytest.mark.parametrize(("before", "after", "text"), [
    ({"duration": "P3D"}, {"duration": "PT48H"}, "「社区初调」的时限：3 天 → 48 小时"),
    ({"duration": "P2W"}, {"duration": "P1DT2H"}, "「社区初调」的时限：2 周 → P1DT2H"),
    (None, {"duration": "P5D", "calendar": "working"}, "「社区初调」的时限：（无） → 5 个工作日"),
])
def test_deadlines_read_as_people_say_them(before, after, text):
    flow = json.loads((ROOT / "flows" / "mediation_321.json").read_text(encoding="utf-8"))
    old, new = copy.deepcopy(flow), copy.deepcopy(flow)
    for doc, value in ((old, before), (new, after)):
        node = doc["nodes"]["community_mediation"]
        node.pop("deadline", None)
        if value is not None:
            node["deadline"] = value
    assert text in [c.text for c in flow_changes(old, new)]


def test_modes_and_timeouts_read_in_chinese():
    flow = json.loads((ROOT / "flows" / "mediation_321.json").read_text(encoding="utf-8"))
    new = copy.deepcopy(flow)
    new["nodes"]["community_mediation"].update(mode="all", on_timeout={"action": "escalate"})
    assert {"「社区初调」的办理方式：或签 → 会签", "「社区初调」的超时处理：提醒 → 督办上报"} <= {
        c.text for c in flow_changes(flow, new)}


def test_assignees_read_as_roles_at_levels():
    flow = json.loads((ROOT / "flows" / "mediation_321.json").read_text(encoding="utf-8"))
    new = copy.deepcopy(flow)
    new["nodes"]["community_mediation"]["assignees"] = [{"role": "mediator", "level": "street"},
                                                        {"department": "justice", "level": "street"}]
    assert "「社区初调」的办理人：社区（村）调解员 → 街道（乡镇）调解员、街道（乡镇）司法" in {
        c.text for c in flow_changes(flow, new)}
