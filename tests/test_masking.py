"""Sensitive fields: found in any form's schema, masked in lists, restored when sent back masked."""

from __future__ import annotations

import json

import pytest

from server import ROOT
from server.masking import (
    MASK,
    has_sensitive_values,
    mask_data,
    mask_patch,
    mask_value,
    restore_masked,
    sensitive_paths,
)

SCHEMA = {
    "type": "object",
    "$defs": {"phone": {"type": "string", "format": "cn-mobile", "x-sensitive": True}},
    "properties": {
        "name": {"type": "string"},
        "id_card": {"type": "string", "format": "cn-id-card", "x-sensitive": True},
        "phone": {"$ref": "#/$defs/phone"},
        "income": {"type": "number", "x-sensitive": True},
        "groups": {"type": "array", "items": {"type": "string"}, "x-sensitive": True},
        "members": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"},
            "id_card": {"type": "string", "format": "cn-id-card", "x-sensitive": True},
        }}},
    },
}
DATA = {
    "name": "王芳", "id_card": "45090219800101123X", "phone": "13800138000", "income": 12000,
    "groups": ["elderly", "disabled"],
    "members": [{"name": "王一", "id_card": "450902200501011234"}, {"name": "王二"}],
}


def test_sensitive_fields_are_found_through_refs_and_array_items():
    assert dict(sensitive_paths(SCHEMA)) == {
        ("id_card",): "cn-id-card", ("phone",): "cn-mobile", ("income",): None, ("groups",): None,
        ("members", "*", "id_card"): "cn-id-card",
    }


@pytest.mark.parametrize("value, fmt, masked", [
    ("45090219800101123X", "cn-id-card", "4509**********123X"),
    ("13800138000", "cn-mobile", "138****8000"),
    ("高血压", None, MASK),
    (12000, None, MASK),
    (True, None, MASK),
    (["a", "b"], None, MASK),
    (None, None, None),
])
def test_values_are_masked_by_format(value, fmt, masked):
    assert mask_value(value, fmt) == masked


def test_masking_data_keeps_the_rest_and_leaves_the_original_alone():
    original = json.loads(json.dumps(DATA))
    masked = mask_data(DATA, sensitive_paths(SCHEMA))
    assert masked == {
        "name": "王芳", "id_card": "4509**********123X", "phone": "138****8000", "income": MASK,
        "groups": MASK,
        "members": [{"name": "王一", "id_card": "4509**********1234"}, {"name": "王二"}],
    }
    assert DATA == original


def test_a_patch_carries_masked_values_only():
    ops = [
        {"op": "replace", "path": "/phone", "value": "13900139000"},
        {"op": "replace", "path": "/name", "value": "李四"},
        {"op": "add", "path": "/members/1", "value": {"name": "王三", "id_card": "450902201001011234"}},
        {"op": "replace", "path": "/members/0/id_card", "value": "450902200501015678"},
        {"op": "remove", "path": "/income"},
    ]
    assert mask_patch(ops, sensitive_paths(SCHEMA)) == [
        {"op": "replace", "path": "/phone", "value": "139****9000"},
        {"op": "replace", "path": "/name", "value": "李四"},
        {"op": "add", "path": "/members/1", "value": {"name": "王三", "id_card": "4509**********1234"}},
        {"op": "replace", "path": "/members/0/id_card", "value": "4509**********5678"},
        {"op": "remove", "path": "/income"},
    ]


def test_values_sent_back_masked_are_restored_and_real_changes_kept():
    paths = sensitive_paths(SCHEMA)
    sent = mask_data(DATA, paths)
    sent["name"] = "王芳芳"
    sent["income"] = 15000  # changed by the editor: kept
    restored = restore_masked(sent, DATA, paths)
    assert restored == {**DATA, "name": "王芳芳", "income": 15000}


def test_has_sensitive_values():
    paths = sensitive_paths(SCHEMA)
    assert has_sensitive_values(DATA, paths)
    assert not has_sensitive_values({"name": "王芳", "members": [{"name": "王一"}]}, paths)


@pytest.mark.parametrize("path", sorted((ROOT / "forms").glob("*.json")), ids=lambda p: p.stem)
def test_every_shipped_sensitive_field_is_found(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    text = json.dumps(doc["schema"], ensure_ascii=False)
    assert len(sensitive_paths(doc["schema"])) == text.count('"x-sensitive": true')


def test_search_never_indexes_sensitive_values(client, people, visit_form):
    people.make("wgy", "grid_worker@G1")
    data = {"household": "张三丰", "visit_date": "2026-11-20", "has_issue": False, "phone": "13812345678",
            "members": [{"name": "张小宝", "id_card": "45090219800118123X"}]}
    response = client.post("/api/v1/forms/test_visit/submissions", json={"grid": "G1", "data": data},
                           headers=people.headers("wgy"))
    assert response.status_code == 201
    sid = response.get_json()["id"]

    def found(q: str) -> list[str]:
        items = client.get(f"/api/v1/submissions?q={q}", headers=people.headers("wgy")).get_json()["items"]
        return [i["id"] for i in items]

    assert found("张小宝") == [sid] and found("张三丰") == [sid]
    assert found("13812345678") == found("5678") == found("45090219800118123X") == []
    edited = client.put(f"/api/v1/submissions/{sid}", json={"revision": 1, "data": {**data, "phone": "13900001111"}},
                        headers=people.headers("wgy"))
    assert edited.status_code == 200
    assert found("13900001111") == found("1111") == []


def test_rows_are_matched_by_content_not_position():
    paths = sensitive_paths(SCHEMA)
    stored = {**DATA, "members": [{"name": "王一", "id_card": "450902200501011234"},
                                  {"name": "王二", "id_card": "450902200701015678"}]}
    sent = mask_data(stored, paths)
    del sent["members"][0]  # the first member moved out; the second is now first
    assert restore_masked(sent, stored, paths)["members"] == [{"name": "王二", "id_card": "450902200701015678"}]


@pytest.mark.parametrize("change", [
    lambda sent: sent["members"][0].update(name="王一一"),              # a masked row also edited
    lambda sent: sent["members"].append({"name": "新", "id_card": "4509**********1234"}),  # a new row with a mask
    lambda sent: sent.update(phone="139****0000"),                     # a mask of nothing stored
])
def test_a_mask_that_matches_no_stored_value_is_refused(change):
    from server.masking import MaskedValueError

    paths = sensitive_paths(SCHEMA)
    sent = mask_data(DATA, paths)
    change(sent)
    with pytest.raises(MaskedValueError):
        restore_masked(sent, DATA, paths)


def test_a_new_real_value_replaces_a_masked_one():
    paths = sensitive_paths(SCHEMA)
    sent = mask_data(DATA, paths)
    sent["phone"] = "13911112222"
    sent["members"].append({"name": "王三", "id_card": "450902201001011234"})
    restored = restore_masked(sent, DATA, paths)
    assert restored["phone"] == "13911112222" and restored["members"][2]["id_card"] == "450902201001011234"
    assert restored["members"][0]["id_card"] == "450902200501011234"
