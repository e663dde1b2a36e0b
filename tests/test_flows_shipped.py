"""The shipped flows end to end through the API, worked by the right people of the demo city.

The demo city (server/demo.py) and the shipped forms and flows are built once per test run into a
SQLite template; each test gets a copy of that file (SQLite) or the same rows reloaded into the
emptied database (PostgreSQL), so no test sees another's cases and both databases run every test.

Who is who (see server/demo.py): in 城站社区第一网格 wgy is the grid worker, wgz the grid leader,
zyz a volunteer; sq_shuji and sq_tiaojie are 城站社区's secretary and mediator; jd_ganbu and
jd_tiaojie 玉城街道's officer and mediator; bm_<department> the department staff of 玉州区 (the
demo has no department staff at street level, so a street-level department assignment falls back
as the flow says); shi_tiaojie the city mediator; wgy2 works in another district.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from server import ROOT, cases, create_app, store
from server.auth import add_membership, create_person, create_token
from server.cli import main
from server.db import bind, database, migrate_schema, open_database, sqlite_url
from server.definitions.versions import forget_versions, load_paths
from server.demo import build_demo
from server.grids import seed_configuration
from server.models import MODELS, CaseLink, CcEntry, Event, Person, Submission, Task
from server.workdays import due

from .conftest import _truncate_postgres, need, postgres_url

ZONE = "Asia/Shanghai"
LOCAL = ZoneInfo(ZONE)
GRID = "450902001001001"  # 城站社区第一网格
COMMUNITY = "450902001001"  # 城站社区
STREET = "450902001"  # 玉城街道
CHINESE = re.compile(r"[\u4e00-\u9fff]")

PEOPLE = [
    "admin", "shi_tiaojie", "jd_admin", "jd_ganbu", "jd_tiaojie", "sq_shuji", "sq_tiaojie", "wgz", "wgy", "zyz",
    "wgy2", "bm_public_security", "bm_justice", "bm_health", "bm_civil_affairs", "bm_urban_management",
    "bm_education", "bm_health_450900", "bm_health_450903", "wgz_450902001001002",
]


# -- the demo city, built once ----------------------------------------------------------------------

@dataclass
class Template:
    """The demo city with the shipped definitions: a SQLite file, its rows, and API tokens."""

    path: Path
    rows: dict
    tokens: dict[str, str]


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Template:
    folder = tmp_path_factory.mktemp("demo-city")
    url = sqlite_url(folder / "demo.db")
    bind(open_database(url))
    migrate_schema()
    with database.atomic():
        seed_configuration()
    database.close()
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret",
                      "INSTANCE_PATH": str(folder / "instance")})
    with app.app_context():
        build_demo("secret-pass")  # before the forms are loaded: no sample cases in anybody's inbox
        loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
        assert problems == [] and len(loaded) == 8
        with database.atomic():
            tokens = {p.username: create_token(p, "test")
                      for p in Person.select().where(Person.username.in_(PEOPLE))}
        assert sorted(tokens) == sorted(PEOPLE)
        rows = {model: list(model.select().dicts()) for model in MODELS}
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    database.obj.close_all()
    return Template(folder / "demo.db", rows, tokens)


def _restore_rows(rows: dict) -> None:
    """Reload the template's rows into the emptied PostgreSQL database and move its sequences on."""
    with database.atomic():
        for model in MODELS:
            batch = rows[model]
            for i in range(0, len(batch), 500):
                model.insert_many(batch[i:i + 500]).execute()
            pk = model._meta.primary_key
            if getattr(pk, "field_type", None) == "AUTO":
                table, column = model._meta.table_name, pk.column_name
                database.execute_sql(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
                    f"COALESCE((SELECT MAX(\"{column}\") FROM \"{table}\"), 0) + 1, false)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, demo_template) -> str:
    """Override conftest's: a database already holding the demo city and the shipped definitions."""
    if request.param == "sqlite":
        target = tmp_path / "gridflow.db"
        shutil.copyfile(demo_template.path, target)
        return sqlite_url(target)
    url, problem = postgres_url()
    if problem:
        need(problem)
    bind(open_database(url))
    _truncate_postgres()
    _restore_rows(demo_template.rows)
    forget_versions()
    database.close()
    return url


@pytest.fixture
def city(client, demo_template):
    return City(client, dict(demo_template.tokens))


class City:
    """Drive the API as the people of the demo city."""

    def __init__(self, client, tokens: dict[str, str]):
        self.client = client
        self.tokens = tokens

    def newcomer(self, username: str, role: str, code: str, department: str | None = None) -> None:
        """Add somebody to the city (with an API token) for a test that needs one more person."""
        with database.atomic():
            person = create_person(username, "unused", password_hash="unused")
            add_membership(person, code, role, department)
            self.tokens[username] = create_token(person, "test")

    def headers(self, user: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def file(self, user: str, form: str, data: dict, grid: str = GRID) -> dict:
        response = self.client.post(f"/api/v1/forms/{form}/submissions", json={"grid": grid, "data": data},
                                    headers=self.headers(user))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def case(self, sid: str, user: str = "admin", status: int = 200) -> dict:
        response = self.client.get(f"/api/v1/submissions/{sid}", headers=self.headers(user))
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def tasks(self, user: str, state: str = "open", overdue: bool = False) -> list[dict]:
        query = f"?state={state}" + ("&overdue=1" if overdue else "")
        response = self.client.get(f"/api/v1/tasks{query}", headers=self.headers(user))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"]

    def task(self, user: str, sid: str, node: str | None = None) -> dict:
        """The one open task of a case waiting for a person, found through their own task list."""
        mine = [t for t in self.tasks(user) if t["case"] == sid and (node is None or t["node"] == node)]
        assert len(mine) == 1, (user, node, [(t["case"], t["node"], t["assignees"]) for t in self.tasks(user)])
        return mine[0]

    def post(self, user: str, path: str, body: dict):
        return self.client.post(path, json=body, headers=self.headers(user))

    def act(self, user: str, task_id: int, action: str, data: dict | None = None, comment: str | None = None,
            to=None, status: int = 200) -> dict:
        body: dict = {"action": action}
        if data is not None:
            body["data"] = data
        if comment is not None:
            body["comment"] = comment
        if to is not None:
            body["to"] = to
        response = self.post(user, f"/api/v1/tasks/{task_id}/actions", body)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def work(self, user: str, sid: str, action: str, node: str | None = None, **kwargs) -> dict:
        """Find the person's open task on the case and act on it."""
        return self.act(user, self.task(user, sid, node)["id"], action, **kwargs)

    def case_act(self, user: str, sid: str, action: str, status: int = 200, **body) -> dict:
        response = self.post(user, f"/api/v1/submissions/{sid}/actions", {"action": action, **body})
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def state(self, sid: str) -> tuple:
        """What a refused request must leave as it was: revision, status, tasks, flow history."""
        case = self.case(sid)
        tasks = sorted((t["id"], t["node"], t["state"], tuple(t["assignees"]), t["due_at"], t["overdue"])
                       for t in case["tasks"])
        return case["revision"], case["status"], case["data"], tasks, kinds(case)


def open_nodes(case: dict) -> list[tuple[str, list[str]]]:
    return sorted((t["node"], t["assignees"]) for t in case["tasks"] if t["state"] == "open")


def kinds(case: dict) -> list[str]:
    return [e["kind"] for e in case["history"] if e["kind"] != "sensitive_viewed"]


def events(case: dict, kind: str) -> list[dict]:
    return [e for e in case["history"] if e["kind"] == kind]


def refused(response, status: int, error: str | None = None) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert CHINESE.search(body["message"]), body
    if error is not None:
        assert body["error"] == error, body
    return body


# -- data -------------------------------------------------------------------------------------------

WHERE = {"latitude": 22.6551, "longitude": 110.155, "accuracy": 12.0, "address": "玉林市玉州区城站路"}

INCIDENT = {
    "category": "municipal_facility",
    "urgency": "normal",
    "description": "城站路与民主路交叉口井盖破损，夜间存在行人跌落隐患",
    "occurred_at": "2026-11-20T08:40:00+08:00",
    "location": WHERE,
    "source": "grid_patrol",
}
HANDLED = {"handling_result": "已更换井盖并设置警示标志"}
SATISFIED = {"visit_method": "phone", "satisfaction": "satisfied", "feedback": "井盖已修好"}
UNSATISFIED = {"visit_method": "door", "satisfaction": "unsatisfied", "unsatisfied_reasons": ["not_solved"],
               "feedback": "井盖仍然松动"}

DISPUTE = {
    "dispute_type": "neighbourhood",
    "parties": [{"name": "刘建国", "role": "applicant"}, {"name": "唐海燕", "role": "respondent"}],
    "description": "顶楼住户将餐厨垃圾从下水管道排出，导致底层住户厨房反复堵塞",
    "occurred_on": "2026-11-10",
    "source": "screening",
    "risk_level": "low",
}
FAILED = {"mediation_date": "2026-11-21", "mediator_name": "李调解", "mediation_method": "studio",
          "mediation_result": "fail", "fail_reason": "双方对疏通费用分担分歧较大"}
AGREED = {"mediation_date": "2026-11-28", "mediator_name": "张调解", "mediation_method": "joint",
          "mediation_result": "success", "agreement_type": "oral", "agreement": "顶楼住户停止倾倒并承担疏通费用"}
FOLLOWED_UP = {"followup_date": "2026-12-05", "followup_method": "phone", "performance": "fulfilled",
               "satisfaction": "satisfied"}

RESOURCE = {
    "category": "funds", "item": "长者饭堂运营补贴", "description": "为社区长者饭堂申请运营补贴，用于送餐上门",
    "amount": 8000, "beneficiaries": ["elderly"], "beneficiary_count": 120, "urgency": "normal",
    "justification": "社区独居老人较多，送餐需求大", "contact_name": "王伟", "contact_phone": "13877560001",
}
APPROVED = {"provider_department": "civil_affairs", "review_opinion": "需求真实，社区有承接能力"}
DELIVERED = {"delivered_on": "2026-12-01", "delivery_notes": "补贴已拨付到社区账户", "delivered_amount": 3000}
EVALUATED = {"received_as_requested": True, "satisfaction": "satisfied"}

VISIT_WITH_ISSUE = {
    "visited_at": "2026-11-19T15:10:00+08:00", "met_resident": True, "head_name": "陈志强",
    "address": "城站路88号1栋302", "topics": ["dispute_screening", "hazard_report"], "has_issue": True,
    "issue_type": "fire_safety", "issue_description": "楼道堆放电动车电池和杂物，堵塞消防通道",
    "need_report": True, "issue_urgency": "urgent", "location": WHERE,
}
VISIT_WITHOUT_ISSUE = {
    "visited_at": "2026-11-20T10:00:00+08:00", "met_resident": False, "head_name": "李国庆",
    "address": "城站路12号3栋501", "has_issue": False, "location": WHERE, "summary": "户主外出务工，已留联系卡",
}


def to_street(city: City, sid: str) -> dict:
    return city.work("wgz", sid, "to_street", comment="涉及多个部门，需街道协调")


# -- 1. incident_loop -------------------------------------------------------------------------------

def test_incident_whistled_to_three_departments_joins_and_an_unsatisfied_visit_reopens_it(city):
    case = city.file("wgy", "incident_report", INCIDENT)
    sid = case["id"]
    assert case["status"] == "in_progress" and case["created_by"] == "wgy"
    triage = city.task("wgz", sid)
    assert triage["node"] == "triage" and triage["assignees"] == ["wgz"]
    assert [a["comment"] for a in triage["actions"] if a["key"] == "to_street"] == ["required"]

    case = to_street(city, sid)
    assert open_nodes(case) == [("street_whistle", ["jd_ganbu"])]
    assert events(case, "acted")[-1]["comment"] == "涉及多个部门，需街道协调"

    whistle = city.task("jd_ganbu", sid, "street_whistle")
    offered = {a["key"]: a for a in whistle["actions"]}
    assert "whistle_departments" in offered["whistle"]["schema"]["properties"]
    case = city.act("jd_ganbu", whistle["id"], "whistle", data={
        "whistle_departments": ["urban_management", "public_security", "health"],
        "whistle_requirements": "三日内排查同类井盖"})
    assert open_nodes(case) == [("dept_handling", ["bm_health"]), ("dept_handling", ["bm_public_security"]),
                                ("dept_handling", ["bm_urban_management"])]
    assert len(events(case, "dispatched")) == 1

    for i, staff in enumerate(["bm_health", "bm_public_security", "bm_urban_management"]):
        mine = city.task(staff, sid)  # each department finds its own task in its task list
        assert mine["node"] == "dept_handling" and mine["item"] == staff.removeprefix("bm_")
        case = city.act(staff, mine["id"], "done", data=HANDLED)
        assert staff not in {p for _, people in open_nodes(case) for p in people}
        if i < 2:  # the case waits at the join until every department is done
            assert [n for n, _ in open_nodes(case)] == ["dept_handling"] * (2 - i)
            assert events(case, "joined") == []
        assert [t["case"] for t in city.tasks(staff, state="done")] == [sid]
    assert open_nodes(case) == [("close_confirm", ["wgz"])]
    assert len(events(case, "joined")) == 1

    case = city.work("wgz", sid, "confirm", comment="现场核实已修复")
    assert open_nodes(case) == [("return_visit", ["wgy"])]
    case = city.work("wgy", sid, "submit", data=UNSATISFIED)
    # 不满意: back to the level that handled it (the street), and the history says so
    assert case["status"] == "in_progress"
    assert open_nodes(case) == [("street_whistle", ["jd_ganbu"])]
    routes = [(e["node"], e["to"]) for e in events(case, "branched")]
    assert routes[-2:] == [("satisfaction_check", "reopen_route"), ("reopen_route", "street_whistle")]
    assert events(case, "acted")[-1]["data"]["satisfaction"] == "unsatisfied"

    city.work("jd_ganbu", sid, "done", data={"handling_result": "街道协调城管重新加固井盖"})
    city.work("wgz", sid, "confirm")
    case = city.work("wgy", sid, "submit", data=SATISFIED)
    assert case["status"] == "closed" and case["outcome"] == "resolved"
    assert open_nodes(case) == []
    assert [e["node"] for e in events(case, "task_opened")].count("return_visit") == 2
    assert kinds(case)[-1] == "ended" and case["history"][-1]["outcome"] == "resolved"
    assert Submission.get_by_id(sid).closed_at is not None


def test_critical_incident_is_copied_to_the_community_secretary_and_the_street_officer(city):
    critical = city.file("wgy", "incident_report", {**INCIDENT, "urgency": "critical"})["id"]
    normal = city.file("wgy", "incident_report", INCIDENT)["id"]
    case = city.case(critical)
    copies = events(case, "cc")
    assert [(e["node"], sorted(e["people"])) for e in copies] == [("cc_critical", ["jd_ganbu", "sq_shuji"])]
    assert open_nodes(case) == [("triage", ["wgz"])]  # copying does not hold the case up
    copied = {c.person.username for c in CcEntry.select().where(CcEntry.submission == critical)}
    assert copied == {"sq_shuji", "jd_ganbu"}
    assert events(city.case(normal), "cc") == []
    assert CcEntry.select().where(CcEntry.submission == normal).count() == 0
    # a copy is not a task: neither of them has anything to do on it
    assert [t for t in city.tasks("sq_shuji") + city.tasks("jd_ganbu") if t["case"] == critical] == []


def test_incident_handled_in_the_grid_is_rejected_or_closed(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    city.work("wgz", sid, "handle_in_grid")
    case = city.work("wgy", sid, "done", data=HANDLED)
    assert open_nodes(case) == [("close_confirm", ["wgz"])]
    other = city.file("wgy", "incident_report", INCIDENT)["id"]
    case = city.work("wgz", other, "reject", comment="重复上报")
    assert (case["status"], case["outcome"], open_nodes(case)) == ("closed", "rejected", [])


def unsatisfied_three_times(city: City) -> str:
    """An incident handled in the grid whose return visit is unsatisfied three times."""
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    city.work("wgz", sid, "handle_in_grid")
    for _ in range(3):
        city.work("wgy", sid, "done", node="grid_handling", data=HANDLED)
        city.work("wgz", sid, "confirm")
        case = city.work("wgy", sid, "submit", data=UNSATISFIED)
    assert open_nodes(case) == [("unsatisfied_review", ["sq_shuji"])]
    return sid


def test_three_unsatisfied_visits_go_to_the_community_which_may_close_with_an_explanation(city):
    sid = unsatisfied_three_times(city)
    case = city.work("sq_shuji", sid, "close", comment="已向群众解释：井盖产权单位已列入改造计划")
    assert (case["status"], case["outcome"]) == ("closed", "unresolved")


def test_three_unsatisfied_visits_go_to_the_community_which_may_have_it_handled_again(city):
    sid = unsatisfied_three_times(city)
    # 'reopen' here is the node's own action 继续办理, not the operation on closed cases
    case = city.work("sq_shuji", sid, "reopen", comment="请网格重新处置")
    assert case["status"] == "in_progress"
    assert open_nodes(case) == [("grid_handling", ["wgy"])]
    assert [(e["node"], e["to"]) for e in events(case, "branched")][-1] == ("reopen_route", "grid_handling")


# -- 2. mediation_321 -------------------------------------------------------------------------------

def test_mediation_three_two_one_without_success_ends_unresolved(city):
    sid = city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"]
    for mediator, node, times in [("sq_tiaojie", "community_mediation", 3), ("jd_tiaojie", "street_mediation", 2),
                                  ("shi_tiaojie", "city_mediation", 1)]:
        for _ in range(times):
            mine = city.task(mediator, sid)
            assert mine["node"] == node
            data = {**FAILED, "referral_path": "litigation"} if node == "city_mediation" else FAILED
            case = city.act(mediator, mine["id"], "record", data=data)
    assert (case["status"], case["outcome"]) == ("closed", "unresolved")
    assert open_nodes(case) == []
    opened = [(e["node"], e["assignees"]) for e in events(case, "task_opened")]
    assert opened == [("community_mediation", ["sq_tiaojie"])] * 3 + [("street_mediation", ["jd_tiaojie"])] * 2 \
        + [("city_mediation", ["shi_tiaojie"])]
    assert case["history"][-1]["node"] == "end_unresolved"


def test_mediation_succeeding_at_the_street_is_followed_up_and_resolved(city):
    sid = city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"]
    for _ in range(3):
        city.work("sq_tiaojie", sid, "record", data=FAILED)
    case = city.work("jd_tiaojie", sid, "record", data=AGREED)
    assert open_nodes(case) == [("follow_up", ["sq_tiaojie"])]
    assert events(case, "branched")[-1]["to"] == "follow_up"
    invalid = city.post("sq_tiaojie", f"/api/v1/tasks/{city.task('sq_tiaojie', sid)['id']}/actions",
                        {"action": "done", "data": {"followup_method": "phone"}})
    paths = {e["path"] for e in refused(invalid, 422, "invalid")["errors"]}
    assert {"/followup_date", "/performance", "/satisfaction"} <= paths
    case = city.work("sq_tiaojie", sid, "done", data=FOLLOWED_UP)
    assert (case["status"], case["outcome"]) == ("closed", "resolved")
    assert "street_mediation" in [e["node"] for e in events(case, "task_opened")]
    assert "city_mediation" not in [e["node"] for e in events(case, "task_opened")]


# -- 3. resource_request ----------------------------------------------------------------------------

def test_resource_over_the_threshold_is_approved_by_the_street_then_delivered_and_evaluated(city):
    sid = city.file("wgy", "resource_request", RESOURCE)["id"]
    case = city.work("sq_shuji", sid, "approve", data=APPROVED)
    assert open_nodes(case) == [("street_approval", ["jd_ganbu"])]  # 8000 元 > 5000 元
    assert [(e["node"], e["to"]) for e in events(case, "branched")] == [("amount_check", "street_approval")]
    assert events(case, "acted")[-1]["data"]["provider_department"] == "civil_affairs"
    case = city.work("jd_ganbu", sid, "approve", data={
        "provider_department": "civil_affairs", "approved_amount": 7500, "coordination_opinion": "同意，核减500元"})
    # the demo has no department staff at street level: the delivery falls back as the flow says
    delivery = [e for e in events(case, "task_opened") if e["node"] == "delivery"]
    assert len(delivery) == 1 and delivery[0]["assignees"] == ["jd_ganbu"] and "无人担任" in delivery[0]["note"]
    case = city.work("jd_ganbu", sid, "delivered", node="delivery", data={**DELIVERED, "delivered_amount": 7500})
    assert open_nodes(case) == [("evaluation", ["sq_shuji"])]
    case = city.work("sq_shuji", sid, "submit", data=EVALUATED)
    assert (case["status"], case["outcome"]) == ("closed", "resolved")
    assert [(e["node"], e["people"]) for e in events(case, "cc")] == [("cc_office", ["jd_ganbu"])]


def test_resource_within_the_threshold_goes_straight_to_delivery(city):
    sid = city.file("wgy", "resource_request", {**RESOURCE, "amount": 5000})["id"]
    case = city.work("sq_shuji", sid, "approve", data=APPROVED)
    assert [n for n, _ in open_nodes(case)] == ["delivery"]
    assert events(case, "branched")[-1]["to"] == "delivery"
    assert "street_approval" not in [e["node"] for e in events(case, "task_opened")]


def test_resource_returned_to_the_submitter_is_edited_and_resubmitted(city):
    sid = city.file("wgy", "resource_request", {**RESOURCE, "amount": 3000})["id"]
    refused(city.post("sq_shuji", f"/api/v1/tasks/{city.task('sq_shuji', sid)['id']}/actions",
                      {"action": "return"}), 422, "comment_required")  # 退回 needs a reason
    case = city.work("sq_shuji", sid, "return", comment="请补充受益老人名单和送餐频次")
    assert open_nodes(case) == [("supplement", ["wgy"])]  # the flow's 补充申报材料, for the submitter
    assert events(case, "acted")[-1]["comment"] == "请补充受益老人名单和送餐频次"
    supplement = city.task("wgy", sid)
    assert {"resubmit", "withdraw"} <= {a["key"] for a in supplement["actions"]}
    assert supplement["due_at"] is not None  # five working days
    assert [t for t in city.tasks("sq_shuji") if t["case"] == sid] == []

    revision = city.case(sid, user="wgy")["revision"]
    edited = {**RESOURCE, "amount": 9000, "description": "为社区长者饭堂申请运营补贴，含送餐车辆租赁"}
    stale = city.client.put(f"/api/v1/submissions/{sid}", json={"data": edited, "revision": revision - 1},
                            headers=city.headers("wgy"))
    refused(stale, 409, "stale")
    put = city.client.put(f"/api/v1/submissions/{sid}", json={"data": edited, "revision": revision},
                          headers=city.headers("wgy"))
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["revision"] == revision + 1 and put.get_json()["data"]["amount"] == 9000

    case = city.act("wgy", supplement["id"], "resubmit", comment="已补充")
    assert case["status"] == "in_progress"
    assert open_nodes(case) == [("community_review", ["sq_shuji"])]
    case = city.work("sq_shuji", sid, "approve", data=APPROVED)
    assert open_nodes(case) == [("street_approval", ["jd_ganbu"])]  # the edited amount decides


def test_resource_returned_for_more_material_waits_at_the_supplement_step(city):
    sid = city.file("wgy", "resource_request", RESOURCE)["id"]
    case = city.work("sq_shuji", sid, "return", comment="请补充预算明细")
    assert open_nodes(case) == [("supplement", ["wgy"])]
    assert city.task("wgy", sid)["due_at"] is not None  # 补充申报材料 has five working days


def test_resource_submitter_withdraws_from_the_supplement_step(city):
    sid = city.file("wgy", "resource_request", RESOURCE)["id"]
    city.work("sq_shuji", sid, "return", comment="请补充预算明细")
    case = city.work("wgy", sid, "withdraw", node="supplement", comment="需求已由其他渠道解决")
    assert (case["status"], case["outcome"], open_nodes(case)) == ("withdrawn", "withdrawn", [])
    assert case["history"][-1]["node"] == "end_withdrawn"


def test_street_returns_a_resource_request_to_the_community_review(city):
    sid = city.file("wgy", "resource_request", RESOURCE)["id"]
    city.work("sq_shuji", sid, "approve", data=APPROVED)
    case = city.work("jd_ganbu", sid, "return", comment="请社区重新核实需求")
    assert open_nodes(case) == [("community_review", ["sq_shuji"])]


def test_actions_offered_on_a_task_have_distinct_keys(city):
    sid = city.file("wgy", "resource_request", RESOURCE)["id"]
    keys = [a["key"] for a in city.task("sq_shuji", sid)["actions"]]
    assert len(keys) == len(set(keys)), keys


def test_resource_request_rejected_by_the_community(city):
    sid = city.file("wgy", "resource_request", RESOURCE)["id"]
    task = city.task("sq_shuji", sid)
    before = city.state(sid)
    refused(city.post("sq_shuji", f"/api/v1/tasks/{task['id']}/actions", {"action": "reject"}), 422,
            "comment_required")
    assert city.state(sid) == before
    case = city.act("sq_shuji", task["id"], "reject", comment="不属于资源下放范围")
    assert (case["status"], case["outcome"], open_nodes(case)) == ("closed", "rejected", [])


# -- 4. visit_followup ------------------------------------------------------------------------------

def test_visit_with_an_issue_to_report_spawns_a_linked_incident(city):
    visit = city.file("wgy", "door_knock_visit", VISIT_WITH_ISSUE)
    sid = visit["id"]
    assert visit["status"] == "closed"
    case = city.case(sid)
    assert case["outcome"] == "resolved" and case["tasks"] == []
    spawned = events(case, "spawned")
    assert len(spawned) == 1 and spawned[0]["form"] == "incident_report"
    child_id = spawned[0]["case"]
    assert child_id != sid
    child = city.case(child_id)
    assert [(e["case"], e["form"]) for e in events(child, "spawned_from")] == [(sid, "door_knock_visit")]
    assert child["form"] == "incident_report" and child["grid"] == GRID and child["created_by"] == "wgy"
    assert {k: child["data"][k] for k in ("category", "description", "urgency", "occurred_at", "location")} == {
        "category": "fire_safety", "description": VISIT_WITH_ISSUE["issue_description"], "urgency": "urgent",
        "occurred_at": VISIT_WITH_ISSUE["visited_at"], "location": WHERE}
    assert child["status"] == "in_progress" and open_nodes(child) == [("triage", ["wgz"])]
    assert [(link.source_id, link.target_id) for link in CaseLink.select()] == [(sid, child_id)]
    assert city.task("wgz", child_id)["form"] == "incident_report"


def test_visit_without_an_issue_is_closed_at_once(city):
    visit = city.file("wgy", "door_knock_visit", VISIT_WITHOUT_ISSUE)
    assert visit["status"] == "closed"
    case = city.case(visit["id"])
    assert (case["outcome"], case["tasks"]) == ("resolved", [])
    assert events(case, "spawned") == [] and case["history"][-1]["node"] == "end_done"
    assert Task.select().count() == 0 and Submission.select().count() == 1


def test_visit_finding_a_poverty_risk_is_copied_to_the_community(city):
    visit = city.file("wgy", "door_knock_visit", {
        **VISIT_WITHOUT_ISSUE, "met_resident": True, "topics": ["poverty_monitoring"],
        "poverty_risk_found": True, "poverty_risk_types": ["illness"]})
    case = city.case(visit["id"])
    assert [(e["node"], e["people"]) for e in events(case, "cc")] == [("cc_poverty", ["sq_shuji"])]
    assert case["status"] == "closed"


# -- 5. operations ----------------------------------------------------------------------------------

def test_transfer_to_another_person_who_then_acts(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    task = city.task("wgz", sid)
    assert "transfer" in [a["key"] for a in task["actions"]]
    case = city.act("wgz", task["id"], "transfer", to="zyz", comment="我在外培训，请志愿者先分流")
    assert open_nodes(case) == [("triage", ["zyz"])]
    assert [(e["to"], e["actor"]) for e in events(case, "transferred")] == [("zyz", "wgz")]
    assert [t for t in city.tasks("wgz") if t["case"] == sid] == []
    refused(city.post("wgz", f"/api/v1/tasks/{task['id']}/actions", {"action": "handle_in_grid"}), 403)
    case = city.work("zyz", sid, "handle_in_grid")
    assert open_nodes(case) == [("grid_handling", ["wgy"])]
    assert events(case, "acted")[-1]["actor"] == "zyz"
    before = city.state(sid)
    refused(city.post("wgy", f"/api/v1/tasks/{city.task('wgy', sid)['id']}/actions",
                      {"action": "transfer", "to": "nobody_here"}), 422, "bad_target")
    assert city.state(sid) == before


def test_transfer_to_somebody_who_cannot_see_the_case_is_refused(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    task = city.task("wgz", sid)
    before = city.state(sid)
    refused(city.post("wgz", f"/api/v1/tasks/{task['id']}/actions", {"action": "transfer", "to": "wgy2"}), 422)
    assert city.state(sid) == before


def test_return_to_the_submitter_who_edits_and_resubmits(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    task = city.task("wgz", sid)
    assert "return" in [a["key"] for a in task["actions"] if a.get("operation")]
    case = city.act("wgz", task["id"], "return", to="submitter", comment="请补充现场照片和准确位置")
    assert case["status"] == "returned"
    assert [(e["node"], e["to"], e["comment"]) for e in events(case, "returned")] == [
        ("triage", "submitter", "请补充现场照片和准确位置")]
    back = city.task("wgy", sid)
    assert [a["key"] for a in back["actions"] if not a.get("operation")] == ["resubmit", "withdraw"]
    revision = city.case(sid, user="wgy")["revision"]
    put = city.client.put(f"/api/v1/submissions/{sid}", headers=city.headers("wgy"), json={
        "data": {**INCIDENT, "description": "城站路与民主路交叉口东侧井盖破损下沉约5厘米"}, "revision": revision})
    assert put.status_code == 200, put.get_json()
    case = city.act("wgy", back["id"], "resubmit")
    assert case["status"] == "in_progress" and open_nodes(case) == [("triage", ["wgz"])]
    assert case["data"]["description"].endswith("约5厘米")


def test_return_to_a_step_already_passed(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    city.work("wgz", sid, "handle_in_grid")
    city.work("wgy", sid, "done", data=HANDLED)
    confirm = city.task("wgz", sid)
    before = city.state(sid)
    refused(city.post("wgz", f"/api/v1/tasks/{confirm['id']}/actions",
                      {"action": "return", "to": "street_whistle", "comment": "退回街道"}), 422, "bad_target")
    assert city.state(sid) == before
    case = city.act("wgz", confirm["id"], "return", to="grid_handling", comment="井盖仍有松动，请重新处置")
    assert open_nodes(case) == [("grid_handling", ["wgy"])]
    assert [(e["node"], e["to"]) for e in events(case, "returned")] == [("close_confirm", "grid_handling")]


def test_add_signer_before_me(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    task = city.task("wgz", sid)
    case = city.act("wgz", task["id"], "add_signer", to={"person": "sq_shuji", "position": "before"},
                    comment="请书记先把关")
    assert open_nodes(case) == [("triage", ["sq_shuji"])]
    assert [(e["signer"], e["position"]) for e in events(case, "signer_added")] == [("sq_shuji", "before")]
    signer = city.task("sq_shuji", sid)
    assert [a["key"] for a in signer["actions"]] == ["agree", "disagree"]
    refused(city.post("wgz", f"/api/v1/tasks/{task['id']}/actions", {"action": "to_community"}), 403)
    case = city.act("sq_shuji", signer["id"], "agree", comment="同意报社区")
    assert open_nodes(case) == [("triage", ["wgz"])]  # back to the one who asked, who decides
    case = city.work("wgz", sid, "to_community")
    assert open_nodes(case) == [("community_handling", ["sq_shuji"])]


def test_add_signer_after_me(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    case = city.work("wgz", sid, "add_signer", to={"person": "sq_shuji", "position": "after"})
    assert open_nodes(case) == [("triage", ["wgz"])]
    case = to_street(city, sid)
    # the decision waits for the added signer
    assert open_nodes(case) == [("triage", ["sq_shuji"])]
    assert [e["signer"] for e in events(case, "signer_turn")] == ["sq_shuji"]
    case = city.work("sq_shuji", sid, "agree")
    assert open_nodes(case) == [("street_whistle", ["jd_ganbu"])]


def test_withdraw_by_the_submitter_before_anyone_acted(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    refused(city.post("wgz", f"/api/v1/submissions/{sid}/actions", {"action": "withdraw"}), 403)
    case = city.case_act("wgy", sid, "withdraw", comment="已自行修复")
    assert (case["status"], case["outcome"], open_nodes(case)) == ("withdrawn", "withdrawn", [])
    assert [t["state"] for t in case["tasks"]] == ["cancelled"]
    assert [t for t in city.tasks("wgz") if t["case"] == sid] == []


def test_withdraw_is_refused_once_somebody_acted(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    city.work("wgz", sid, "handle_in_grid")
    before = city.state(sid)
    refused(city.post("wgy", f"/api/v1/submissions/{sid}/actions", {"action": "withdraw"}), 409)
    assert city.state(sid) == before


def test_urge_twice_within_the_hour_is_refused(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    task = city.task("wgz", sid)
    case = city.case_act("sq_shuji", sid, "urge", task=task["id"], comment="群众反映强烈，请尽快分流")
    assert [(e["actor"], e["people"], e["comment"]) for e in events(case, "urged")] == [
        ("sq_shuji", ["wgz"], "群众反映强烈，请尽快分流")]
    before = city.state(sid)
    again = refused(city.post("sq_shuji", f"/api/v1/submissions/{sid}/actions",
                              {"action": "urge", "task": task["id"]}), 429)
    assert "分钟" in again["message"]
    assert city.state(sid) == before
    refused(city.post("sq_shuji", f"/api/v1/submissions/{sid}/actions", {"action": "urge", "task": 999999}), 422)


def test_comment_on_a_case(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    case = city.case_act("sq_shuji", sid, "comment", comment="该路段上月已报修过一次")
    assert [(e["actor"], e["comment"]) for e in events(case, "commented")] == [("sq_shuji", "该路段上月已报修过一次")]
    assert open_nodes(case) == [("triage", ["wgz"])]
    before = city.state(sid)
    refused(city.post("sq_shuji", f"/api/v1/submissions/{sid}/actions", {"action": "comment", "comment": " "}),
            422)
    assert city.state(sid) == before


def test_escalate_moves_the_task_to_the_same_role_one_level_up(city):
    sid = city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"]
    case = city.work("sq_tiaojie", sid, "escalate", comment="当事人要求街道出面")
    assert open_nodes(case) == [("community_mediation", ["jd_tiaojie"])]
    assert [(e["actor"], e["to"], e["reason"]) for e in events(case, "escalated")] == [
        ("sq_tiaojie", ["jd_tiaojie"], "asked")]
    assert [t for t in city.tasks("sq_tiaojie") if t["case"] == sid] == []
    case = city.work("jd_tiaojie", sid, "record", data=AGREED)
    assert open_nodes(case) == [("follow_up", ["sq_tiaojie"])]


def test_reopen_a_closed_case_by_somebody_who_worked_on_it(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    city.work("wgz", sid, "reject", comment="不属于受理范围")
    before = city.state(sid)
    assert before[1] == "closed"
    refused(city.post("sq_tiaojie", f"/api/v1/submissions/{sid}/actions",
                      {"action": "reopen", "comment": "重新看看"}), 403)  # in scope, never worked on it
    refused(city.post("wgy2", f"/api/v1/submissions/{sid}/actions",
                      {"action": "reopen", "comment": "重新看看"}), 404)
    refused(city.post("wgz", f"/api/v1/submissions/{sid}/actions", {"action": "reopen"}), 422)
    assert city.state(sid) == before
    case = city.case_act("wgz", sid, "reopen", comment="经核实属于受理范围，重新分流")
    assert (case["status"], case["outcome"]) == ("in_progress", None)
    assert open_nodes(case) == [("triage", ["wgz"])]
    assert [(e["actor"], e["node"]) for e in events(case, "reopened")] == [("wgz", "triage")]
    case = city.work("wgz", sid, "handle_in_grid")
    assert open_nodes(case) == [("grid_handling", ["wgy"])]


# -- 6. refusals change nothing ---------------------------------------------------------------------

def test_refused_actions_change_nothing(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    task = city.task("wgz", sid)
    path = f"/api/v1/tasks/{task['id']}/actions"
    # the case shows each caller what they may do: the assignee the node's actions, others nothing
    assert [a["key"] for a in city.case(sid, user="wgz")["tasks"][0]["actions"]][:4] == [
        "handle_in_grid", "to_community", "to_street", "reject"]
    assert city.case(sid, user="sq_shuji")["tasks"][0]["actions"] == []
    before = city.state(sid)
    refused(city.post("sq_shuji", path, {"action": "handle_in_grid"}), 403, "not_assignee")
    refused(city.post("wgz", path, {"action": "whistle"}), 422, "bad_action")
    refused(city.post("wgz", path, {"action": "to_street"}), 422, "comment_required")
    refused(city.post("wgz", path, {"action": "to_street", "comment": "   "}), 422, "comment_required")
    assert city.state(sid) == before

    to_street(city, sid)
    whistle = city.task("jd_ganbu", sid)
    path = f"/api/v1/tasks/{whistle['id']}/actions"
    before = city.state(sid)
    for data in [{}, {"whistle_departments": []}, {"whistle_departments": ["police"]}]:
        body = refused(city.post("jd_ganbu", path, {"action": "whistle", "data": data}), 422, "invalid")
        assert body["errors"] and all(e["path"].startswith("/whistle_departments") for e in body["errors"])
        assert all(CHINESE.search(e["message"]) for e in body["errors"])
    assert city.state(sid) == before


def test_the_second_of_two_actions_on_one_task_is_stale(city):
    city.newcomer("jd_ganbu2", "street_officer", STREET)
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    case = to_street(city, sid)
    assert open_nodes(case) == [("street_whistle", ["jd_ganbu", "jd_ganbu2"])]
    task = city.task("jd_ganbu2", sid)
    city.act("jd_ganbu", task["id"], "done", data=HANDLED)
    before = city.state(sid)
    refused(city.post("jd_ganbu2", f"/api/v1/tasks/{task['id']}/actions",
                      {"action": "whistle", "data": {"whistle_departments": ["health"]}}), 409)
    assert city.state(sid) == before


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@pytest.fixture
def server(app):
    """The app behind a real threaded HTTP server on a free port; yields the port."""
    httpd = make_server(host="127.0.0.1", port=0, app=app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def post_at_once(port: int, requests: list[tuple[str, str, dict]]) -> list[tuple[int, dict]]:
    """POST each (token, path, body) from its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(requests))

    def send(request: tuple[str, str, dict]) -> tuple[int, dict]:
        token, path, body = request
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            barrier.wait(timeout=30)
            connection.request("POST", path, body=payload, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read().decode("utf-8"))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


def test_two_officers_acting_on_one_task_at_once_one_wins(city, server):
    city.newcomer("jd_ganbu2", "street_officer", STREET)
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    to_street(city, sid)
    database.close()  # the server's threads use their own connections
    task = city.task("jd_ganbu", sid)
    path = f"/api/v1/tasks/{task['id']}/actions"
    results = post_at_once(server, [
        (city.tokens["jd_ganbu"], path, {"action": "whistle", "data": {"whistle_departments": ["health"]}}),
        (city.tokens["jd_ganbu2"], path, {"action": "done", "data": HANDLED}),
    ])
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409], results
    loser = next(body for status, body in results if status == 409)
    assert CHINESE.search(loser["message"]), loser
    winner = next(body for status, body in results if status == 200)
    case = city.case(sid)
    acted = [e for e in events(case, "acted") if e["node"] == "street_whistle"]
    assert len(acted) == 1 and acted[0]["action"] in ("whistle", "done")
    assert open_nodes(case) == open_nodes(winner)
    expected = [("dept_handling", ["bm_health"])] if acted[0]["action"] == "whistle" else [("close_confirm", ["wgz"])]
    assert open_nodes(case) == expected


# -- 7. deadlines -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("opened", "deadline", "expected"), [
    # 国庆节 2026: 10月1日至7日放假, 10月10日（周六）上班
    ("2026-09-30T10:00:00+08:00", "P10D", "2026-10-20T23:59:59+08:00"),
    ("2026-10-09T10:00:00+08:00", "P1D", "2026-10-10T23:59:59+08:00"),
    ("2026-10-01T10:00:00+08:00", "P1D", "2026-10-08T23:59:59+08:00"),
    ("2026-10-09T00:30:00+08:00", "P1D", "2026-10-10T23:59:59+08:00"),  # 16:30 UTC the day before
])
def test_working_days_count_holidays_and_make_up_days(opened, deadline, expected):
    start = datetime.fromisoformat(opened).astimezone(UTC)
    assert due(start, {"duration": deadline, "calendar": "working"}, LOCAL) == datetime.fromisoformat(expected)
    assert due(start, {"duration": "P10D", "calendar": "calendar"}, LOCAL) == start + timedelta(days=10)


class Clock:
    """The time the server takes as now (None: the real time), as naive UTC like every stored time."""

    def __init__(self):
        self.now: datetime | None = None

    def set(self, local: str) -> None:
        self.now = datetime.fromisoformat(local).astimezone(UTC).replace(tzinfo=None)

    def __call__(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Control when cases are filed and acted on (the server reads the time through these two names)."""
    c = Clock()
    monkeypatch.setattr(cases, "utcnow", c)
    monkeypatch.setattr(store, "utcnow", c)
    return c


def at(local: str) -> datetime:
    return datetime.fromisoformat(local)


def utc(local: str) -> datetime:
    return datetime.fromisoformat(local).astimezone(UTC)


def test_ten_working_days_over_national_day_then_overdue_and_reminded_once(city, clock):
    clock.set("2026-09-30T10:00:00+08:00")
    sid = city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"]
    task = city.task("sq_tiaojie", sid)
    assert task["node"] == "community_mediation"
    assert task["opened_at"] == "2026-09-30T10:00:00+08:00"
    assert task["due_at"] == "2026-10-20T23:59:59+08:00"

    before = city.state(sid)
    assert store.sweep(ZONE, at("2026-10-20T23:59:58+08:00")) == 0
    assert city.state(sid) == before
    assert city.tasks("sq_tiaojie", overdue=True) == []

    assert store.sweep(ZONE, at("2026-10-21T00:00:00+08:00")) == 1
    case = city.case(sid)
    assert [t["overdue"] for t in case["tasks"]] == [True]
    assert open_nodes(case) == [("community_mediation", ["sq_tiaojie"])]  # on_timeout remind: stays
    assert kinds(case)[-2:] == ["overdue", "reminded"]
    assert events(case, "reminded")[0]["people"] == ["sq_tiaojie"]
    assert [t["case"] for t in city.tasks("sq_tiaojie", overdue=True)] == [sid]

    after = city.state(sid)
    assert store.sweep(ZONE, at("2026-10-21T00:00:00+08:00")) == 0
    assert store.sweep(ZONE, at("2026-11-30T00:00:00+08:00")) == 0
    assert city.state(sid) == after


def test_sweep_through_the_cli(city, clock, runner):
    clock.set("2026-09-30T10:00:00+08:00")
    sid = city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"]
    before = city.state(sid)
    early = runner.invoke(main, ["sweep", "--now", "2026-10-20T23:59:58+08:00"])
    assert early.exit_code == 0, (early.output, early.exception)
    assert "已处理 0 个" in early.output
    assert city.state(sid) == before
    late = runner.invoke(main, ["sweep", "--now", "2026-10-21T09:00:00+08:00"])
    assert late.exit_code == 0, (late.output, late.exception)
    assert "已处理 1 个" in late.output
    again = runner.invoke(main, ["sweep", "--now", "2026-10-21T09:00:00+08:00"])
    assert "已处理 0 个" in again.output
    case = city.case(sid)
    assert kinds(case).count("overdue") == 1 and kinds(case).count("reminded") == 1
    naive = runner.invoke(main, ["sweep", "--now", "2026-10-21T09:00:00"])
    assert naive.exit_code != 0 and CHINESE.search(naive.output)


def test_timeout_escalates_to_the_same_role_one_level_up_exactly_once(city, clock):
    city.newcomer("sq_wgz", "grid_leader", COMMUNITY)  # 社区网格总长: a grid leader one level up
    clock.set("2026-10-09T10:00:00+08:00")  # a Friday; the Saturday after is a make-up working day
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    task = city.task("wgz", sid)
    assert task["due_at"] == "2026-10-10T23:59:59+08:00"
    assert store.sweep(ZONE, utc("2026-10-10T23:59:58+08:00")) == 0
    assert store.sweep(ZONE, utc("2026-10-11T08:00:00+08:00")) == 1
    case = city.case(sid)
    assert open_nodes(case) == [("triage", ["sq_wgz"])]
    assert [(e["reason"], e["to"], e["actor"]) for e in events(case, "escalated")] == [
        ("timeout", ["sq_wgz"], None)]
    moved = city.task("sq_wgz", sid)
    assert moved["id"] == task["id"] and moved["due_at"] == "2026-10-12T23:59:59+08:00"  # a new deadline
    assert [t for t in city.tasks("wgz") if t["case"] == sid] == []
    assert store.sweep(ZONE, utc("2026-10-11T08:00:00+08:00")) == 0
    assert kinds(city.case(sid)).count("escalated") == 1
    # Escalation gives the step a new deadline, but the case has missed one: it is not on time (按期).
    assert Submission.get_by_id(sid).late is True


def test_escalated_deadline_is_right_when_the_sweep_time_is_given_in_local_time(city, clock):
    city.newcomer("sq_wgz", "grid_leader", COMMUNITY)
    clock.set("2026-10-09T10:00:00+08:00")
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    assert store.sweep(ZONE, at("2026-10-11T08:00:00+08:00")) == 1  # as `gridflow sweep --now` passes it
    assert city.task("sq_wgz", sid)["due_at"] == "2026-10-12T23:59:59+08:00"


def test_timeout_without_the_same_role_higher_escalates_to_the_fallback(city, clock):
    # the demo city has no grid leader above the grid: 分流 overdue goes to the node's fallback, the community
    clock.set("2026-10-09T10:00:00+08:00")
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    assert store.sweep(ZONE, utc("2026-10-11T08:00:00+08:00")) == 1
    case = city.case(sid)
    assert open_nodes(case) == [("triage", ["sq_shuji"])]
    assert [(e["reason"], e["to"]) for e in events(case, "escalated")] == [("timeout", ["sq_shuji"])]
    assert kinds(case).count("overdue") == 1


def test_timeout_with_nobody_to_escalate_to_reminds(city, clock):
    # 街道吹哨 has no fallback and nobody holds street_officer above the street: a reminder instead
    clock.set("2026-10-09T10:00:00+08:00")
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    to_street(city, sid)
    assert store.sweep(ZONE, utc("2026-11-30T08:00:00+08:00")) == 1
    case = city.case(sid)
    assert open_nodes(case) == [("street_whistle", ["jd_ganbu"])]
    assert kinds(case)[-2:] == ["overdue", "reminded"]
    assert events(case, "reminded")[-1]["people"] == ["jd_ganbu"]


def test_department_timeout_escalates_from_the_district_to_the_city(city, clock):
    clock.set("2026-10-09T10:00:00+08:00")
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    to_street(city, sid)
    case = city.work("jd_ganbu", sid, "whistle", data={"whistle_departments": ["health"]})
    assert open_nodes(case) == [("dept_handling", ["bm_health"])]
    assert store.sweep(ZONE, at("2026-11-30T00:00:00+08:00")) == 1
    assert open_nodes(city.case(sid)) == [("dept_handling", ["bm_health_450900"])]


def test_sweeps_from_two_threads_at_once_apply_each_timeout_once(city, clock, app):
    clock.set("2026-09-30T10:00:00+08:00")
    sids = [city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"] for _ in range(3)]
    database.close()
    barrier = threading.Barrier(2)

    def sweep() -> int:
        try:
            barrier.wait(timeout=30)
            return store.sweep(ZONE, at("2026-10-21T09:00:00+08:00"))
        finally:
            if not database.is_closed():
                database.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        changed = [f.result() for f in [pool.submit(sweep), pool.submit(sweep)]]
    assert sum(changed) == 3, changed
    for sid in sids:
        history = kinds(city.case(sid))
        assert history.count("overdue") == 1 and history.count("reminded") == 1
    assert Event.select().where(Event.kind == "overdue").count() == 3


def test_sweep_at_the_current_time(city, clock):
    clock.set((datetime.now(UTC) - timedelta(days=60)).isoformat())
    sid = city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"]
    clock.now = None  # back to the real time
    assert store.sweep(ZONE) == 1
    assert kinds(city.case(sid))[-2:] == ["overdue", "reminded"]


def test_cli_sweep_at_the_current_time(city, clock, runner):
    clock.set((datetime.now(UTC) - timedelta(days=60)).isoformat())
    sid = city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"]
    clock.now = None
    result = runner.invoke(main, ["sweep"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "已处理 1 个" in result.output
    assert kinds(city.case(sid))[-2:] == ["overdue", "reminded"]


@pytest.fixture
def shanghai_process(monkeypatch):
    """Run with the process's own time zone set to China's, as a server in China usually is."""
    monkeypatch.setenv("TZ", ZONE)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_deadlines_do_not_depend_on_the_server_process_time_zone(city, clock, shanghai_process):
    clock.set("2026-10-09T01:00:00+08:00")  # Friday 01:00 in China, Thursday 17:00 UTC
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    assert city.task("wgz", sid)["due_at"] == "2026-10-10T23:59:59+08:00"


# -- 8. scope ---------------------------------------------------------------------------------------

def test_people_outside_the_case_subtree_get_404(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    task = city.task("wgz", sid)
    before = city.state(sid)
    for outsider in ["wgy2", "wgz_450902001001002", "bm_health_450903"]:
        refused(city.post(outsider, f"/api/v1/tasks/{task['id']}/actions", {"action": "handle_in_grid"}), 404)
        refused(city.post(outsider, f"/api/v1/submissions/{sid}/actions", {"action": "comment", "comment": "看看"}),
                404)
        city.case(sid, user=outsider, status=404)
        assert [t for t in city.tasks(outsider) if t["case"] == sid] == []
    refused(city.post("wgz", "/api/v1/tasks/999999/actions", {"action": "handle_in_grid"}), 404)
    assert city.state(sid) == before


def test_department_staff_see_the_tasks_of_their_department(city):
    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    to_street(city, sid)
    city.work("jd_ganbu", sid, "whistle", data={"whistle_departments": ["health", "education"]})
    health = city.tasks("bm_health")
    assert [(t["case"], t["node"], t["item"]) for t in health] == [(sid, "dept_handling", "health")]
    assert [a["key"] for a in health[0]["actions"] if not a.get("operation")] == ["done", "not_responsible"]
    assert [(t["case"], t["item"]) for t in city.tasks("bm_education")] == [(sid, "education")]
    for other in ["bm_justice", "bm_health_450900", "bm_health_450903"]:
        assert city.tasks(other) == []
    refused(city.post("bm_justice", f"/api/v1/tasks/{health[0]['id']}/actions",
                      {"action": "done", "data": HANDLED}), 403)
    case = city.act("bm_education", city.task("bm_education", sid)["id"], "not_responsible",
                    comment="不涉及教育部门职责")
    assert open_nodes(case) == [("dept_handling", ["bm_health"])]


def test_a_running_case_keeps_the_flow_version_it_started_with(city):
    from server.definitions.versions import publish
    from server.models import FlowVersion, Submission

    sid = city.file("wgy", "incident_report", INCIDENT)["id"]
    started = Submission.get_by_id(sid).flow_version_id
    changed = json.loads((ROOT / "flows" / "incident_loop.json").read_text(encoding="utf-8"))
    changed["nodes"]["triage"]["title"] = "网格长研判分流（新版）"
    assert publish("flow", changed).created
    newer = Submission.get_by_id(city.file("wgy", "incident_report", INCIDENT)["id"])
    assert newer.flow_version_id != started
    assert FlowVersion.get_by_id(newer.flow_version_id).version == FlowVersion.get_by_id(started).version + 1
    # the first case still shows and runs its own version's steps
    assert city.task("wgz", sid)["title"] == "网格长分级分流"
    assert city.task("wgz", newer.id)["title"] == "网格长研判分流（新版）"
    case = city.act("wgz", city.task("wgz", sid)["id"], "to_community")
    assert Submission.get_by_id(sid).flow_version_id == started and case["status"] == "in_progress"


# -- the demo township's adaptations ---------------------------------------------------------------

def test_the_demo_townships_studio_step_comes_before_the_street_and_only_there(city):
    """玉城街道 adapts the “三二一” flow with a “作退一步想” studio step and the incident form with 楼栋号."""
    from server.definitions.versions import latest_form
    from server.demo import _adaptations

    assert _adaptations() == 2
    adapted = city.client.get(f"/api/v1/forms/incident_report?grid={GRID}", headers=city.headers("wgy")).get_json()
    assert adapted["schema"]["properties"]["building"]["title"] == "楼栋号"
    assert adapted["overlays"] == [{"grid": "450902001", "version": 1}]
    elsewhere = city.client.get("/api/v1/forms/incident_report?grid=450903101001001",
                                headers=city.headers("wgy2")).get_json()
    assert "building" not in elsewhere["schema"]["properties"] and elsewhere["overlays"] == []
    from server import store

    other = store.flow_for(latest_form("dispute_mediation").definition, "/450900/450903/450903101/")
    assert "studio_mediation" not in other.definition["nodes"]

    sid = city.file("sq_tiaojie", "dispute_mediation", DISPUTE)["id"]
    for _ in range(3):
        case = city.work("sq_tiaojie", sid, "record", data=FAILED)
    assert open_nodes(case) == [("studio_mediation", ["jd_tiaojie"])]
    case = city.work("jd_tiaojie", sid, "unresolved", comment="双方仍有分歧")
    assert open_nodes(case) == [("street_mediation", ["jd_tiaojie"])]
    case = city.work("jd_tiaojie", sid, "record", data=AGREED)
    assert open_nodes(case)[0][0] == "follow_up"
    incident = city.file("wgy", "incident_report", {**INCIDENT, "building": "3 栋 2 单元"})
    assert city.case(incident["id"])["overlays"] == [{"grid": "450902001", "version": 1}]
