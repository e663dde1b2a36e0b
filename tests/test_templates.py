"""The shipped templates: they pass the checks, load, and take real submissions through the API."""

from __future__ import annotations

import json

import pytest

from server import ROOT
from server.demo_samples import SAMPLES

FORMS = sorted(p.stem for p in (ROOT / "forms").glob("*.json"))


def test_each_shipped_form_names_a_shipped_flow():
    flows = {p.stem for p in (ROOT / "flows").glob("*.json")}
    for key in FORMS:
        definition = json.loads((ROOT / "forms" / f"{key}.json").read_text(encoding="utf-8"))
        assert definition["key"] == key
        assert definition["flow"] in flows


def test_every_shipped_form_has_samples():
    assert {form for form, *_ in SAMPLES} == set(FORMS)


@pytest.fixture
def worker(people, shipped):
    people.make("wgy", "grid_worker@G1")
    return people


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_each_sample_is_accepted_through_the_api(client, worker, index):
    form, _, _, data = SAMPLES[index]
    response = client.post(f"/api/v1/forms/{form}/submissions", json={"grid": "G1", "data": data},
                           headers=worker.headers("wgy"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"] == data


def test_door_knock_visit_requires_issue_details_only_when_an_issue_was_found(client, worker):
    data = dict(next(d for f, _, _, d in SAMPLES if f == "door_knock_visit" and not d["has_issue"]))
    data["has_issue"] = True
    response = client.post("/api/v1/forms/door_knock_visit/submissions", json={"grid": "G1", "data": data},
                           headers=worker.headers("wgy"))
    assert response.status_code == 422
    paths = {e["path"]: e["message"] for e in response.get_json()["errors"]}
    assert paths["/issue_type"] == "「问题类型」为必填项"
    assert "/issue_description" in paths and "/need_report" in paths


def test_dispute_mediation_needs_two_parties_with_valid_id_cards(client, worker):
    data = json.loads(json.dumps(next(d for f, _, _, d in SAMPLES if f == "dispute_mediation")))
    data["parties"] = data["parties"][:1]
    valid = data["parties"][0]["id_card"]
    data["parties"][0]["id_card"] = valid[:17] + ("0" if valid[17] != "0" else "1")  # wrong check digit
    response = client.post("/api/v1/forms/dispute_mediation/submissions", json={"grid": "G1", "data": data},
                           headers=worker.headers("wgy"))
    assert response.status_code == 422
    paths = {e["path"] for e in response.get_json()["errors"]}
    assert "/parties" in paths
    assert "/parties/0/id_card" in paths


def test_resource_request_amount_takes_fen_but_not_less(client, worker):
    data = dict(next(d for f, _, _, d in SAMPLES if f == "resource_request"))
    ok = client.post("/api/v1/forms/resource_request/submissions",
                     json={"grid": "G1", "data": {**data, "amount": 4999.99}}, headers=worker.headers("wgy"))
    assert ok.status_code == 201
    bad = client.post("/api/v1/forms/resource_request/submissions",
                      json={"grid": "G1", "data": {**data, "amount": 0.001}}, headers=worker.headers("wgy"))
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["path"] == "/amount"
