"""Township adaptations: RFC 6902 overlays made, applied, stacked, re-applied on new bases, refused.

The pure part works on the shipped definitions as JSON. The stored part runs on SQLite and
PostgreSQL with the small tree of conftest.py (C1 city › D1 district › S1 street › M1 community ›
G1, G2 grids; D2 › S2 › M2 › G3 elsewhere) and the shipped forms and flows.
"""

from __future__ import annotations

import copy
import json

import pytest

from server import ROOT, store
from server.definitions import overlays, versions
from server.definitions.check import check_sources
from server.definitions.files import Source
from server.definitions.overlays import Conflict, Refused, apply_overlay, apply_partly, make_overlay, overlay_problems
from server.models import Adaptation, FormVersion, Overlay, Submission


def shipped(kind: str, key: str) -> dict:
    doc = json.loads((ROOT / f"{kind}s" / f"{key}.json").read_text(encoding="utf-8"))
    return versions.canonical(doc)


def form() -> dict:
    return shipped("form", "incident_report")


def flow() -> dict:
    return shipped("flow", "mediation_321")


def flow_problems(doc: dict) -> list[str]:
    return [str(p) for p in check_sources([Source(ROOT / "flows" / "x.json", "flow", doc)], check_flow_refs=False)]


def form_problems(doc: dict) -> list[str]:
    return [str(p) for p in check_sources([Source(ROOT / "forms" / "x.json", "form", doc)], check_flow_refs=False)]


def props(doc: dict) -> dict:
    return doc["schema"]["properties"]


# -- edits a township makes ----------------------------------------------------------------

def relabel(doc: dict) -> dict:
    props(doc)["description"]["title"] = "事件经过"
    doc["ui"]["description"]["ui:placeholder"] = "写清楚时间、地点、人物"
    return doc


def relabel_option(doc: dict) -> dict:
    props(doc)["urgency"]["oneOf"][0]["title"] = "普通"
    return doc


def add_field(doc: dict) -> dict:
    props(doc)["building"] = {"type": "string", "title": "楼栋号", "maxLength": 20}
    doc["ui"]["ui:order"].insert(doc["ui"]["ui:order"].index("location") + 1, "building")
    doc["ui"]["building"] = {"ui:placeholder": "如：3栋"}
    return doc


def add_option(doc: dict) -> dict:
    props(doc)["source"]["oneOf"].insert(2, {"const": "wechat_group", "title": "微信群反映"})
    return doc


def hide_optional(doc: dict) -> dict:
    del props(doc)["involved_households"]
    del doc["ui"]["involved_households"]
    doc["ui"]["ui:order"].remove("involved_households")
    return doc


def make_required(doc: dict) -> dict:
    doc["schema"]["required"].append("source")
    return doc


def flow_deadline(doc: dict) -> dict:
    doc["nodes"]["street_mediation"]["deadline"] = {"duration": "P15D", "calendar": "working"}
    return doc


STUDIO = {
    "type": "task", "title": "“作退一步想”工作室调解",
    "description": "社区初调未成功的，先到“作退一步想”工作室调解，仍未化解的再由镇（街道）深调。",
    "assignees": [{"role": "mediator", "level": "community"}], "mode": "any",
    "deadline": {"duration": "P5D", "calendar": "working"},
    "actions": [{"key": "resolved", "title": "调解成功", "to": "follow_up"},
                {"key": "escalate", "title": "转镇（街道）深调", "to": "street_mediation"}],
}


def studio_step(doc: dict) -> dict:
    """Insert the studio before the town's mediation: the community's last round now leads to it."""
    doc["nodes"]["studio_mediation"] = copy.deepcopy(STUDIO)
    doc["nodes"]["community_result"]["default"] = "studio_mediation"
    return doc


def studio_by_action(doc: dict) -> dict:
    """The same step, reached by rewiring an action's `to`: the community's terminate goes to the studio."""
    doc["nodes"]["studio_mediation"] = copy.deepcopy(STUDIO)
    terminate = next(a for a in doc["nodes"]["community_mediation"]["actions"] if a["key"] == "terminate")
    terminate["to"] = "studio_mediation"
    return doc


FORM_EDITS = [relabel, relabel_option, add_field, add_option, hide_optional, make_required]
FLOW_EDITS = [flow_deadline, studio_step, studio_by_action]


# -- pure: make and apply ------------------------------------------------------------------

@pytest.mark.parametrize("edit", FORM_EDITS, ids=lambda f: f.__name__)
def test_apply_make_is_the_edit_for_a_form(edit):
    parent = form()
    edited = edit(form())
    ops = make_overlay(parent, edited)
    assert ops and all(op["op"] in ("add", "remove", "replace", "test", "move", "copy") for op in ops)
    assert apply_overlay(parent, ops) == edited
    assert parent == form()  # the parent is not touched
    assert overlay_problems("form", parent, edited) == []
    assert form_problems(edited) == []
    json.dumps(ops)  # stored as JSON


@pytest.mark.parametrize("edit", FLOW_EDITS, ids=lambda f: f.__name__)
def test_apply_make_is_the_edit_for_a_flow(edit):
    parent = flow()
    edited = edit(flow())
    ops = make_overlay(parent, edited)
    assert apply_overlay(parent, ops) == edited
    assert overlay_problems("flow", parent, edited) == []
    assert flow_problems(edited) == []


def test_all_allowed_form_edits_at_once():
    parent = form()
    edited = form()
    for edit in (relabel, relabel_option, add_field, add_option, make_required):
        edited = edit(edited)
    ops = make_overlay(parent, edited)
    assert apply_overlay(parent, ops) == edited
    assert overlay_problems("form", parent, edited) == []


def test_adding_and_hiding_fields_in_one_overlay_applies():
    parent = form()
    edited = hide_optional(add_field(form()))
    assert apply_overlay(parent, make_overlay(parent, edited)) == edited


def test_a_required_field_is_appended_to_required_not_put_at_an_index():
    parent = form()
    ops = make_overlay(parent, make_required(form()))
    assert ops == [{"op": "add", "path": "/schema/required/-", "value": "source"}]
    base = form()
    base["schema"]["required"].insert(0, "photos")
    out = apply_overlay(base, ops)
    assert out["schema"]["required"] == ["photos", *parent["schema"]["required"], "source"]


def test_an_order_is_restated_whole_and_a_hidden_field_leaves_it():
    ops = make_overlay(form(), hide_optional(form()))
    order = [o for o in ops if o["path"] == "/ui/ui:order"]
    assert order == [{"op": "replace", "path": "/ui/ui:order",
                      "value": [n for n in form()["ui"]["ui:order"] if n != "involved_households"]}]
    assert not any(o["path"].startswith("/ui/ui:order/") for o in ops)


def test_an_option_change_is_guarded_by_the_options_code():
    edited = form()
    props(edited)["category"]["oneOf"][1]["title"] = "邻里纠纷"
    ops = make_overlay(form(), edited)
    i = next(i for i, o in enumerate(ops) if o["op"] == "replace")
    assert ops[i - 1] == {"op": "test", "path": "/schema/properties/category/oneOf/1/const",
                          "value": props(form())["category"]["oneOf"][1]["const"]}


def test_stacking_a_district_and_a_street_overlay():
    base = form()
    district = add_option(relabel(form()))
    district_ops = make_overlay(base, district)
    street = add_field(make_required(copy.deepcopy(district)))
    props(street)["description"]["title"] = "事件经过（街道）"
    street_ops = make_overlay(district, street)
    assert apply_overlay(apply_overlay(base, district_ops), street_ops) == street
    # the street's patch alone does not carry the district's change
    alone = apply_overlay(base, street_ops)
    assert not any(o["const"] == "wechat_group" for o in props(alone)["source"]["oneOf"])


def test_reapplying_on_a_new_base_that_kept_the_touched_fields_keeps_the_bases_changes():
    ops = make_overlay(form(), make_required(add_option(add_field(relabel(form())))))
    base = form()
    props(base)["category"]["oneOf"].append({"const": "elderly_care", "title": "养老服务"})
    props(base)["photos"]["maxItems"] = 6
    props(base)["weather"] = {"type": "string", "title": "天气"}
    base["ui"]["ui:order"].append("weather")
    out = apply_overlay(base, ops)
    assert props(out)["description"]["title"] == "事件经过"
    assert props(out)["building"]["title"] == "楼栋号"
    assert props(out)["source"]["oneOf"][2]["const"] == "wechat_group"
    assert "source" in out["schema"]["required"]
    assert props(out)["category"]["oneOf"][-1]["const"] == "elderly_care"
    assert props(out)["photos"]["maxItems"] == 6
    assert props(out)["weather"] == {"type": "string", "title": "天气"}
    assert set(out["ui"]["ui:order"]) == set(props(out))
    assert form_problems(out) == []


def test_a_flow_overlay_reapplies_on_a_new_flow_version():
    ops = make_overlay(flow(), flow_deadline(studio_step(flow())))
    base = flow()
    base["nodes"]["city_mediation"]["deadline"] = {"duration": "P20D", "calendar": "working"}
    out = apply_overlay(base, ops)
    assert out["nodes"]["studio_mediation"] == STUDIO
    assert out["nodes"]["community_result"]["default"] == "studio_mediation"
    assert out["nodes"]["street_mediation"]["deadline"]["duration"] == "P15D"
    assert out["nodes"]["city_mediation"]["deadline"]["duration"] == "P20D"
    assert flow_problems(out) == []


# -- pure: conflicts ---------------------------------------------------------------------------

def without_description(doc: dict) -> dict:
    del props(doc)["description"]
    doc["schema"]["required"].remove("description")
    del doc["ui"]["description"]
    doc["ui"]["ui:order"].remove("description")
    doc["ui"]["ui:columns"].remove("description")
    return doc


def test_relabelling_a_field_the_base_removed_conflicts_naming_it():
    parent = form()
    edited = relabel(form())
    ops = make_overlay(parent, edited)
    with pytest.raises(Conflict) as caught:
        apply_overlay(without_description(form()), ops, names=edited)
    conflict = caught.value
    assert "「事件经过」" in conflict.message and "已删除" in conflict.message
    assert conflict.op in ops and ops[conflict.index] == conflict.op
    assert conflict.as_dict() == {"message": conflict.message, "op": conflict.op, "index": conflict.index}
    with pytest.raises(Conflict, match="字段「事件描述」在上级新版本中已删除或改名，本地的修改无法套用"):
        apply_overlay(without_description(form()), ops, names=parent)


def test_a_conflict_inside_a_repeat_names_the_repeat_and_the_field():
    parent = shipped("form", "dispute_mediation")
    edited = copy.deepcopy(parent)
    props(edited)["parties"]["items"]["properties"]["address"]["title"] = "现住址"
    ops = make_overlay(parent, edited)
    base = copy.deepcopy(parent)
    del props(base)["parties"]["items"]["properties"]["address"]
    base["ui"]["parties"]["items"]["ui:order"].remove("address")
    with pytest.raises(Conflict, match="字段「当事人 › 住址」在上级新版本中已删除"):
        apply_overlay(base, ops, names=parent)


def test_an_option_relabel_conflicts_after_the_base_reordered_the_options():
    ops = make_overlay(form(), relabel_option(form()))
    base = form()
    props(base)["urgency"]["oneOf"].reverse()
    with pytest.raises(Conflict, match="紧急程度"):
        apply_overlay(base, ops, names=form())


def test_a_local_reorder_wins_over_the_bases_order_and_keeps_its_new_fields():
    parent = form()
    edited = form()
    order = edited["ui"]["ui:order"]
    order.remove("photos")
    order.insert(0, "photos")
    ops = make_overlay(parent, edited)
    assert apply_overlay(parent, ops) == edited
    base = form()
    base["ui"]["ui:order"].reverse()
    props(base)["weather"] = {"type": "string", "title": "天气"}
    base["ui"]["ui:order"].append("weather")
    out = apply_overlay(base, ops, names=parent)
    assert out["ui"]["ui:order"] == order + ["weather"]


def test_a_field_the_base_also_added_under_the_same_key_conflicts_naming_it_by_title():
    parent = form()
    edited = add_field(form())
    ops = make_overlay(parent, edited)
    base = form()
    props(base)["building"] = {"type": "integer", "title": "楼栋数"}
    with pytest.raises(Conflict) as caught:
        apply_overlay(base, ops, names=edited)
    assert caught.value.message == "上级新版本也新增了字段「楼栋号」，与本地新增的内容重名"
    assert caught.value.op["path"] == "/schema/properties/building"
    # the same field added with the same content is no conflict
    same = form()
    props(same)["building"] = copy.deepcopy(props(edited)["building"])
    assert props(apply_overlay(same, ops))["building"] == props(edited)["building"]


def test_an_appended_field_reapplies_on_a_base_that_removed_another_field():
    parent = form()
    edited = form()
    props(edited)["room"] = {"type": "string", "title": "房号"}
    edited["ui"]["ui:order"].append("room")
    ops = make_overlay(parent, edited)
    out = apply_overlay(without_description(form()), ops, names=edited)
    assert out["ui"]["ui:order"][-1] == "room"


def test_a_step_the_flow_removed_is_named_as_a_step():
    parent = flow()
    edited = flow_deadline(flow())
    ops = make_overlay(parent, edited)
    base = flow()
    del base["nodes"]["street_mediation"]
    with pytest.raises(Conflict, match="步骤「镇（街道）深调」"):
        apply_overlay(base, ops, names=parent)


def test_apply_partly_keeps_what_still_applies():
    parent = form()
    edited = add_option(add_field(relabel(form())))
    ops = make_overlay(parent, edited)
    out, conflicts = apply_partly(without_description(form()), ops, names=edited)
    assert [c.op["path"] for c in conflicts] == ["/schema/properties/description/title",
                                                 "/ui/description/ui:placeholder"]
    assert all("「事件经过」" in c.message for c in conflicts)
    assert props(out)["building"]["title"] == "楼栋号"
    assert props(out)["source"]["oneOf"][2]["const"] == "wechat_group"
    assert "description" not in props(out)


def test_apply_partly_skips_the_operation_a_failed_test_guards():
    parent = form()
    edited = form()
    props(edited)["category"]["oneOf"][0]["title"] = "家庭纠纷"
    props(edited)["description"]["title"] = "事件经过"
    ops = make_overlay(parent, edited)
    base = form()
    props(base)["category"]["oneOf"].reverse()
    out, conflicts = apply_partly(base, ops, names=parent)
    assert len(conflicts) == 1 and conflicts[0].op["op"] == "test"
    guarded = ops[conflicts[0].index + 1]
    assert all(c.op is not guarded for c in conflicts)
    assert props(out)["category"]["oneOf"] == props(base)["category"]["oneOf"]  # nothing relabelled wrongly
    assert props(out)["description"]["title"] == "事件经过"  # what still applies is kept


# -- pure: what an overlay may not do ----------------------------------------------------------

def change(doc: dict, how) -> dict:
    how(doc)
    return doc


REFUSED_FORM = [
    ("hide a required field", lambda d: (props(d).pop("description"), d["schema"]["required"].remove("description")),
     "必填字段「事件描述」不能隐藏（上级要求填写）"),
    ("change a type", lambda d: props(d)["involved_people"].update(type="string"),
     "不能修改字段「涉及人数」的类型"),
    ("change a format", lambda d: props(d)["reporter_phone"].update(format="cn-id-card"),
     "不能修改字段「反映人联系电话」的类型"),
    ("make a required field optional", lambda d: d["schema"]["required"].remove("urgency"),
     "字段「紧急程度」是上级规定的必填项，不能改为选填"),
    ("remove an option", lambda d: props(d)["category"]["oneOf"].pop(),
     "不能删除字段「事件类别」的上级选项（可以新增选项或改名称）"),
    ("change an option's value", lambda d: props(d)["urgency"]["oneOf"][2].update(const="top"),
     "不能删除字段「紧急程度」的上级选项（可以新增选项或改名称）"),
    ("change the flow", lambda d: d.update(flow="mediation_321"), "不能更换表单所走的流程"),
    ("change the key", lambda d: d.update(key="incident_report_local"), "不能修改表单或流程的标识"),
]


@pytest.mark.parametrize("what, how, message", REFUSED_FORM, ids=[r[0] for r in REFUSED_FORM])
def test_overlay_problems_refuse_each_forbidden_form_change(what, how, message):
    edited = change(form(), how)
    assert overlay_problems("form", form(), edited) == [message]


def test_overlay_problems_look_into_repeats_and_checkbox_options():
    parent = shipped("form", "dispute_mediation")
    edited = copy.deepcopy(parent)
    items = props(edited)["parties"]["items"]
    del items["properties"]["name"]
    items["required"].remove("name")
    props(edited)["risk_factors"]["items"]["oneOf"].pop(0)
    props(edited)["amount"]["type"] = "integer"
    assert sorted(overlay_problems("form", parent, edited)) == sorted([
        "必填字段「姓名（名称）」不能隐藏（上级要求填写）",
        "不能删除字段「风险情形」的上级选项（可以新增选项或改名称）",
        "不能修改字段「涉及金额（元）」的类型",
    ])


def test_overlay_problems_list_every_problem():
    edited = form()
    edited["key"] = "other"
    props(edited)["urgency"]["type"] = "integer"
    edited["schema"]["required"].remove("category")
    assert overlay_problems("form", form(), edited) == [
        "不能修改表单或流程的标识",
        "字段「事件类别」是上级规定的必填项，不能改为选填",
        "不能修改字段「紧急程度」的类型",
    ]


def test_overlay_problems_refuse_removing_a_flow_step_or_changing_its_key():
    edited = flow()
    del edited["nodes"]["city_mediation"]
    edited["nodes"]["street_result"]["default"] = "end_unresolved"
    assert overlay_problems("flow", flow(), edited) == ["不能删除上级流程中的步骤「市级调解」"]
    edited = flow()
    edited["key"] = "mediation_local"
    assert overlay_problems("flow", flow(), edited) == ["不能修改表单或流程的标识"]
    assert overlay_problems("flow", flow(), flow_deadline(studio_step(flow()))) == []


# -- stored ----------------------------------------------------------------------------------

KEY = "incident_report"


@pytest.fixture
def city(shipped, tree):
    """The shipped definitions and the small tree; returns the nodes by code."""
    return tree


def edit_of(kind: str, key: str, grid, how) -> dict:
    """The definition above a grid, edited."""
    return how(copy.deepcopy(overlays.parent_of(kind, key, grid).definition))


def street_edit(doc: dict) -> dict:
    relabel(doc)
    add_field(doc)
    doc["schema"]["required"].append("building")
    return doc


def community_edit(doc: dict) -> dict:
    props(doc)["building"]["title"] = "楼栋（幢）"
    props(doc)["room"] = {"type": "string", "title": "房号", "maxLength": 10}
    # next to 楼栋 (appending would meet the ui:order append bug, see test_an_appended_field_…)
    doc["ui"]["ui:order"].insert(doc["ui"]["ui:order"].index("building") + 1, "room")
    return doc


def publish_base(how) -> versions.Loaded:
    doc = how(copy.deepcopy(versions.latest_form(KEY).definition))
    return versions.publish("form", doc)


def adaptation(grid) -> Adaptation:
    return Adaptation.get((Adaptation.kind == "form") & (Adaptation.key == KEY) & (Adaptation.grid == grid))


def test_a_street_overlay_changes_the_form_for_its_subtree_only(city):
    street = city["S1"]
    base = versions.latest_form(KEY)
    overlay = overlays.publish_overlay("form", KEY, street, edit_of("form", KEY, street, street_edit), None,
                                       note="东街道试点")
    assert (overlay.version, overlay.base_version, overlay.note) == (1, base.version, "东街道试点")
    for code in ("S1", "M1", "G1", "G2"):
        row = overlays.effective("form", KEY, city[code].path)
        assert props(row.definition)["description"]["title"] == "事件经过"
        assert "building" in row.definition["schema"]["required"]
        assert row.variant == "S1:1" and row.overlays == [{"grid": "S1", "version": 1}]
        assert row.version == base.version and row.id != base.id
        assert row.form.key == KEY
    for code in ("C1", "D1", "D2", "S2", "G3"):
        assert overlays.effective("form", KEY, city[code].path).id == base.id
    assert overlays.effective("form", KEY, None).id == base.id
    assert versions.latest_form(KEY).id == base.id  # the base is still the newest published version
    assert FormVersion.select().where(FormVersion.variant == "").count() == 4
    state = adaptation(street)
    assert (state.overlay_version, state.effective, state.conflict) == (1, row.id, None)
    assert overlays.parent_of("form", KEY, street).id == base.id
    assert overlays.parent_of("form", KEY, city["M1"]).id == row.id
    assert [a.grid.code for a in overlays.adaptations("form", KEY)] == ["S1"]
    assert overlays.adaptations("form", KEY, within=["/C1/D2/"]) == []
    assert overlays.conflicts() == []


def test_a_community_overlay_stacks_on_the_streets(city):
    overlays.publish_overlay("form", KEY, city["S1"], edit_of("form", KEY, city["S1"], street_edit), None)
    street_row = overlays.effective("form", KEY, city["S1"].path)
    overlays.publish_overlay("form", KEY, city["M1"], edit_of("form", KEY, city["M1"], community_edit), None)
    row = overlays.effective("form", KEY, city["G1"].path)
    assert row.variant == "S1:1/M1:1"
    assert row.overlays == [{"grid": "S1", "version": 1}, {"grid": "M1", "version": 1}]
    d = row.definition
    assert props(d)["description"]["title"] == "事件经过"  # the street's
    assert props(d)["building"]["title"] == "楼栋（幢）" and "room" in props(d)  # the community's
    assert overlays.effective("form", KEY, city["S1"].path).id == street_row.id
    assert [a.grid.code for a in overlays.adaptations("form", KEY)] == ["S1", "M1"]
    assert [a.grid.code for a in overlays.adaptations("form", KEY, within=[city["M1"].path])] == ["M1"]


def test_a_new_base_version_reapplies_every_adaptation(city):
    overlays.publish_overlay("form", KEY, city["S1"], edit_of("form", KEY, city["S1"], street_edit), None)
    overlays.publish_overlay("form", KEY, city["M1"], edit_of("form", KEY, city["M1"], community_edit), None)
    before = overlays.effective("form", KEY, city["G1"].path)

    def new_base(doc):
        props(doc)["source"]["title"] = "事件来源渠道"
        props(doc)["category"]["oneOf"].append({"const": "elderly_care", "title": "养老服务"})
        return doc

    loaded = publish_base(new_base)
    assert loaded.created and loaded.version == 2
    row = overlays.effective("form", KEY, city["G1"].path)
    assert row.id != before.id
    assert row.version == 2 and row.variant == "S1:1/M1:1"
    assert row.overlays == [{"grid": "S1", "version": 1}, {"grid": "M1", "version": 1}]
    d = row.definition
    assert props(d)["source"]["title"] == "事件来源渠道"
    assert props(d)["category"]["oneOf"][-1]["const"] == "elderly_care"
    assert props(d)["description"]["title"] == "事件经过" and props(d)["building"]["title"] == "楼栋（幢）"
    street = overlays.effective("form", KEY, city["S1"].path)
    assert (street.version, street.variant, street.overlays) == (2, "S1:1", [{"grid": "S1", "version": 1}])
    assert overlays.effective("form", KEY, city["G3"].path).version == 2
    assert overlays.effective("form", KEY, city["G3"].path).variant == ""
    assert adaptation(city["S1"]).effective == street.id and adaptation(city["M1"]).effective == row.id
    assert overlays.conflicts() == []
    # the old effective versions stay (cases filed on them keep pointing at them)
    assert FormVersion.get_by_id(before.id).variant == "S1:1/M1:1"
    # publishing the same base again stores nothing and re-applies nothing new
    assert not versions.publish("form", versions.latest_form(KEY).definition).created
    assert overlays.effective("form", KEY, city["G1"].path).id == row.id


def test_a_base_that_removes_a_relabelled_field_records_a_conflict_and_keeps_the_last_working_version(city):
    overlays.publish_overlay("form", KEY, city["S1"], edit_of("form", KEY, city["S1"], street_edit), None)
    overlays.publish_overlay("form", KEY, city["M1"], edit_of("form", KEY, city["M1"], community_edit), None)
    street_before = overlays.effective("form", KEY, city["S1"].path)
    grid_before = overlays.effective("form", KEY, city["G1"].path)
    count = FormVersion.select().count()

    loaded = publish_base(without_description)
    assert loaded.version == 2
    state = adaptation(city["S1"])
    assert state.conflict is not None
    assert "「事件经过」" in state.conflict["message"] and "已删除" in state.conflict["message"]
    assert state.conflict["base_version"] == 2 and state.conflict["variant"] == ""
    assert "/description" in state.conflict["op"]["path"]
    assert state.effective == street_before.id  # nothing dropped
    assert overlays.effective("form", KEY, city["S1"].path).id == street_before.id
    # the community re-applies on the street's (unchanged) effective version: the same row
    assert adaptation(city["M1"]).conflict is None
    assert overlays.effective("form", KEY, city["G1"].path).id == grid_before.id
    assert FormVersion.select().count() == count + 1  # only the new base
    assert [a.grid.code for a in overlays.conflicts()] == ["S1"]
    assert overlays.conflicts(within=["/C1/D2/"]) == []
    assert overlays.effective("form", KEY, city["G3"].path).version == 2
    # re-applying again says the same and still drops nothing
    again = overlays.reapply("form", KEY)
    assert [(r.grid, r.ok) for r in again] == [("S1", False), ("M1", True)]
    assert again[0].conflict["message"] == state.conflict["message"] and again[1].conflict is None
    assert overlays.effective("form", KEY, city["G1"].path).id == grid_before.id

    # the street fixes its overlay on the new base: the conflict is cleared, the community follows
    fixed = overlays.publish_overlay("form", KEY, city["S1"], edit_of("form", KEY, city["S1"], add_field), None)
    assert fixed.version == 2 and fixed.base_version == 2
    assert adaptation(city["S1"]).conflict is None
    assert overlays.conflicts() == []
    street = overlays.effective("form", KEY, city["S1"].path)
    assert (street.version, street.variant) == (2, "S1:2")
    grid = overlays.effective("form", KEY, city["G1"].path)
    assert (grid.version, grid.variant) == (2, "S1:2/M1:1")
    assert grid.overlays == [{"grid": "S1", "version": 2}, {"grid": "M1", "version": 1}]
    assert "description" not in props(grid.definition) and props(grid.definition)["building"]["title"] == "楼栋（幢）"
    assert [o.version for o in Overlay.select().where(Overlay.grid == city["S1"]).order_by(Overlay.version)] == [1, 2]


def test_withdrawing_puts_the_subtree_back_on_the_definition_above(city):
    overlays.publish_overlay("form", KEY, city["S1"], edit_of("form", KEY, city["S1"], street_edit), None)
    overlays.publish_overlay("form", KEY, city["M1"], edit_of("form", KEY, city["M1"], community_edit), None)
    street = overlays.effective("form", KEY, city["S1"].path)
    assert overlays.withdraw("form", KEY, city["M1"], None) is True
    assert overlays.effective("form", KEY, city["G1"].path).id == street.id
    assert overlays.withdraw("form", KEY, city["S1"], None) is True
    base = versions.latest_form(KEY)
    for code in ("S1", "M1", "G1"):
        assert overlays.effective("form", KEY, city[code].path).id == base.id
    assert overlays.withdraw("form", KEY, city["S1"], None) is False
    assert Adaptation.select().count() == 0
    assert Overlay.select().count() == 2  # on record
    # adapting again starts from the base, numbered after the withdrawn versions
    again = overlays.publish_overlay("form", KEY, city["S1"], edit_of("form", KEY, city["S1"], add_option), None)
    assert again.version == 2
    assert overlays.effective("form", KEY, city["G1"].path).variant == "S1:2"


def test_withdrawing_a_street_reapplies_the_community_below_on_the_base(city):
    overlays.publish_overlay("form", KEY, city["S1"], edit_of("form", KEY, city["S1"], street_edit), None)
    overlays.publish_overlay("form", KEY, city["M1"], edit_of("form", KEY, city["M1"], add_option), None)
    overlays.withdraw("form", KEY, city["S1"], None)
    row = overlays.effective("form", KEY, city["G1"].path)
    assert row.variant == "M1:1" and row.overlays == [{"grid": "M1", "version": 1}]
    assert props(row.definition)["description"]["title"] == "事件描述"
    assert props(row.definition)["source"]["oneOf"][2]["const"] == "wechat_group"


def test_refused_overlays_store_nothing(city):
    street = city["S1"]
    before = (Overlay.select().count(), Adaptation.select().count(), FormVersion.select().count())

    def type_and_required(doc):
        props(doc)["involved_people"]["type"] = "string"
        doc["schema"]["required"].remove("urgency")
        return doc

    with pytest.raises(Refused) as caught:
        overlays.publish_overlay("form", KEY, street, edit_of("form", KEY, street, type_and_required), None)
    assert sorted(caught.value.messages) == sorted(["不能修改字段「涉及人数」的类型",
                                                    "字段「紧急程度」是上级规定的必填项，不能改为选填"])
    assert isinstance(caught.value, ValueError) and "；" not in str(caught.value)

    def bad_format(doc):
        props(doc)["building"] = {"type": "string", "title": "楼栋号", "format": "building-code"}
        return doc

    with pytest.raises(Refused) as caught:
        overlays.publish_overlay("form", KEY, street, edit_of("form", KEY, street, bad_format), None)
    assert any("未知的格式 building-code" in m for m in caught.value.messages)
    with pytest.raises(Refused) as caught:
        overlays.publish_overlay("form", KEY, street, edit_of("form", KEY, street, lambda d: d), None)
    assert caught.value.messages == ["与上级版本相比没有改动"]
    with pytest.raises(Refused) as caught:
        overlays.publish_overlay("form", "no_such_form", street, form(), None)
    assert caught.value.messages == ["找不到表单 no_such_form"]

    def drop_step(doc):
        del doc["nodes"]["city_mediation"]
        doc["nodes"]["street_result"]["default"] = "end_unresolved"
        return doc

    with pytest.raises(Refused) as caught:
        overlays.publish_overlay("flow", "mediation_321", street, edit_of("flow", "mediation_321", street, drop_step),
                                 None)
    assert caught.value.messages == ["不能删除上级流程中的步骤「市级调解」",  # and what the flow checks say
                                     "/nodes/city_result：从开始节点无法到达此节点"]
    assert (Overlay.select().count(), Adaptation.select().count(), FormVersion.select().count()) == before
    assert overlays.effective("form", KEY, city["G1"].path).id == versions.latest_form(KEY).id


def test_a_flow_overlay_adds_the_studio_step_for_the_street(city):
    street = city["S1"]
    overlays.publish_overlay("flow", "mediation_321", street,
                             edit_of("flow", "mediation_321", street, lambda d: flow_deadline(studio_step(d))), None)
    row = overlays.effective("flow", "mediation_321", city["G1"].path)
    assert row.variant == "S1:1" and row.definition["nodes"]["studio_mediation"] == STUDIO
    assert row.definition["nodes"]["community_result"]["default"] == "studio_mediation"
    dispute = versions.latest_form("dispute_mediation").definition
    assert store.flow_for(dispute, city["G1"].path).id == row.id
    base = versions.latest_flow("mediation_321")
    assert store.flow_for(dispute, city["G3"].path).id == base.id
    assert overlays.effective("flow", "mediation_321", city["G3"].path).id == base.id
    # a new flow version re-applies the step
    doc = copy.deepcopy(base.definition)
    doc["nodes"]["city_mediation"]["deadline"] = {"duration": "P20D", "calendar": "working"}
    assert versions.publish("flow", doc).version == 2
    row = overlays.effective("flow", "mediation_321", city["G1"].path)
    assert row.version == 2 and "studio_mediation" in row.definition["nodes"]
    assert row.definition["nodes"]["city_mediation"]["deadline"]["duration"] == "P20D"


# -- stored: through the API -------------------------------------------------------------------

def report(**extra) -> dict:
    return {"category": "environment_sanitation", "urgency": "normal", "description": "楼道堆放杂物，堵塞消防通道",
            "occurred_at": "2026-05-01T08:30:00+08:00", "location": {"latitude": 22.6, "longitude": 110.1}, **extra}


@pytest.fixture
def adapted(city, people):
    people.make("wgy", "grid_worker@G1")
    people.make("wgy3", "grid_worker@G3")
    overlay = overlays.publish_overlay("form", KEY, city["S1"], edit_of("form", KEY, city["S1"], street_edit), None)
    return overlay


def test_a_submission_in_the_street_is_filed_on_the_adapted_version(client, people, adapted, city):
    row = overlays.effective("form", KEY, city["G1"].path)
    url = f"/api/v1/forms/{KEY}/submissions"
    missing = client.post(url, json={"grid": "G1", "data": report()}, headers=people.headers("wgy"))
    assert missing.status_code == 422
    assert {e["path"] for e in missing.get_json()["errors"]} == {"/building"}
    assert "楼栋号" in missing.get_json()["errors"][0]["message"]
    response = client.post(url, json={"grid": "G1", "data": report(building="3栋")}, headers=people.headers("wgy"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    case = Submission.get_by_id(body["id"])
    assert case.form_version_id == row.id
    assert row.overlays == [{"grid": "S1", "version": adapted.version}]
    assert case.data["building"] == "3栋"
    detail = client.get(f"/api/v1/submissions/{body['id']}", headers=people.headers("wgy"))
    assert detail.status_code == 200
    assert detail.get_json()["overlays"] == [{"grid": "S1", "version": 1}]
    # elsewhere the base applies: no 楼栋号 needed, and the case names no overlay
    other = client.post(url, json={"grid": "G3", "data": report()}, headers=people.headers("wgy3"))
    assert other.status_code == 201, other.get_json()
    elsewhere = Submission.get_by_id(other.get_json()["id"])
    assert elsewhere.form_version_id == versions.latest_form(KEY).id
    detail = client.get(f"/api/v1/submissions/{elsewhere.id}", headers=people.headers("wgy3"))
    assert detail.get_json()["overlays"] == []


def test_the_form_for_a_grid_is_its_effective_definition(client, people, adapted, city):
    inside = client.get(f"/api/v1/forms/{KEY}?grid=G1", headers=people.headers("wgy"))
    assert inside.status_code == 200
    body = inside.get_json()
    assert body["schema"]["properties"]["description"]["title"] == "事件经过"
    assert "building" in body["schema"]["properties"] and "building" in body["schema"]["required"]
    assert body["ui"]["building"] == {"ui:placeholder": "如：3栋"}
    assert body["overlays"] == [{"grid": "S1", "version": 1}] and body["version"] == 1
    outside = client.get(f"/api/v1/forms/{KEY}?grid=G3", headers=people.headers("wgy3"))
    assert outside.status_code == 200
    body = outside.get_json()
    assert body["schema"] == versions.latest_form(KEY).definition["schema"]
    assert body["overlays"] == []
    plain = client.get(f"/api/v1/forms/{KEY}", headers=people.headers("wgy")).get_json()
    assert "building" not in plain["schema"]["properties"]
