"""Cases put in someone's hands are visible to them: a task (department staff, a named person) or a copy."""

from __future__ import annotations

import pytest

from server.definitions.versions import publish

FORM = {"key": "handover_case", "title": "跨区协办", "flow": "handover_flow",
        "schema": {"type": "object", "properties": {"what": {"type": "string", "title": "事项"}},
                   "required": ["what"]}}
FLOW = {"key": "handover_flow", "title": "跨区协办流程", "start": "copy",
        "nodes": {
            "copy": {"type": "cc", "to": [{"person": "reader"}], "next": "help"},
            "help": {"type": "task", "title": "公安协办", "mode": "any",
                     "assignees": [{"role": "department_staff", "department": "public_security", "level": "district"}],
                     "actions": [{"key": "done", "title": "办结", "to": "check"}]},
            "check": {"type": "task", "title": "甲区公安复核", "mode": "any", "assignees": [{"person": "gaj1"}],
                      "actions": [{"key": "done", "title": "复核完毕", "to": "end"}]},
            "end": {"type": "end", "outcome": "resolved"}}}


@pytest.fixture
def assigned(client, people):
    publish("flow", FLOW)
    publish("form", FORM)
    people.make("wgy3", "grid_worker@G3")  # files in the other district
    people.make("gaj", "department_staff:public_security@D2")  # serves D2: gets the task
    people.make("gaj1", "department_staff:public_security@D1")  # serves D1 only
    people.make("reader", "grid_worker@G1")  # outside D2, but sent a copy
    response = client.post("/api/v1/forms/handover_case/submissions", headers=people.headers("wgy3"),
                           json={"grid": "G3", "data": {"what": "跨区协查"}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def listed(client, people, user):
    return [c["id"] for c in client.get("/api/v1/submissions", headers=people.headers(user)).get_json()["items"]]


def test_a_copy_makes_the_case_visible_to_its_reader(client, people, assigned):
    assert listed(client, people, "reader") == [assigned]
    assert client.get(f"/api/v1/submissions/{assigned}", headers=people.headers("reader")).status_code == 200


def test_department_staff_see_the_case_assigned_to_their_department_and_others_do_not(client, people, assigned):
    tasks = client.get("/api/v1/tasks", headers=people.headers("gaj")).get_json()["items"]
    assert [(t["case"], t["title"]) for t in tasks] == [(assigned, "公安协办")]
    assert listed(client, people, "gaj") == [assigned]
    assert listed(client, people, "gaj1") == []
    assert client.get(f"/api/v1/submissions/{assigned}", headers=people.headers("gaj1")).status_code == 404
    # a transfer goes only to someone serving the case's grid
    refused = client.post(f"/api/v1/tasks/{tasks[0]['id']}/actions", headers=people.headers("gaj"),
                          json={"action": "transfer", "to": "gaj1", "comment": "请甲区协查"})
    assert refused.status_code == 422 and refused.get_json()["error"] == "bad_target"
    # the flow itself names D1's officer for the review: now it is in their hands, so they see it
    moved = client.post(f"/api/v1/tasks/{tasks[0]['id']}/actions", headers=people.headers("gaj"),
                        json={"action": "done"})
    assert moved.status_code == 200, moved.get_json()
    assert listed(client, people, "gaj1") == [assigned]
    case = client.get(f"/api/v1/submissions/{assigned}", headers=people.headers("gaj1")).get_json()
    [task] = [t for t in case["tasks"] if t["state"] == "open"]
    assert task["assignees"] == ["gaj1"] and "done" in [a["key"] for a in task["actions"]]
    done = client.post(f"/api/v1/tasks/{task['id']}/actions", headers=people.headers("gaj1"),
                       json={"action": "done"})
    assert done.status_code == 200 and done.get_json()["status"] == "closed"
    # still visible after the work is done: it is in their 已办
    assert listed(client, people, "gaj1") == [assigned]
