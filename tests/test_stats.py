"""The dashboard figures (server/stats.py, GET /api/v1/stats, /reports/) against plain SQL of our own.

A city on conftest's tree (C1 → D1/D2 → S1/S2 → M1/M2 → G1/G2 in M1, G3 in M2) gets cases of the four
shipped forms, worked through the real flows by the right people: incidents closed after return visits
rated 满意 / 基本满意, a resource request made late by a sweep and rated 不满意, one made late by acting
after its deadline, mediations ending 化解 and 未化解, a withdrawn and a rejected case, open cases, cases
overdue now, cases filed at a community, a street and the city themselves. Then each case's created_at
and closed_at are moved with SQL to a chosen local moment of 2025 (and two across the 2026-01/02 boundary),
keeping the handling time chosen for it. The city is built once into a SQLite file; each test gets a copy
(SQLite) or the same rows loaded into the emptied PostgreSQL database, so both databases run every test.

`Truth` recomputes every figure with hand-written SQL on "submission" and "task" (never server.stats) and
the tests compare it with the API and the web dashboard: whole months (read from the monthly roll-up),
partial months (read from the cases) and both combined, at the city, a district, a street, a community and
a grid, by form, by child node and over time.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest

from server import ROOT, cases, create_app, stats, store
from server.auth import add_membership, create_person, create_token
from server.cli import main
from server.db import bind, database, is_postgres, migrate_schema, open_database, sqlite_url
from server.definitions.versions import forget_versions, load_paths
from server.grids import create_node, seed_configuration
from server.models import MODELS

from .conftest import TREE, _password_hash, _truncate_postgres, need, postgres_url

ZONE = "Asia/Shanghai"
LOCAL = ZoneInfo(ZONE)
CHINESE = re.compile(r"[\u4e00-\u9fff]")

FIGURES = ("reported", "withdrawn", "closed", "closure_rate", "on_time", "on_time_rate", "avg_handling_hours",
           "p90_handling_hours", "rated", "satisfied", "satisfaction_rate", "mediation_closed",
           "mediation_resolved", "mediation_success_rate", "overdue_now")

PEOPLE = {
    "admin": ["admin@C1"],
    "gw1": ["grid_worker@G1"], "gl1": ["grid_leader@G1"],
    "gw2": ["grid_worker@G2"], "gl2": ["grid_leader@G2"],
    "gw3": ["grid_worker@G3"], "gl3": ["grid_leader@G3"],
    "sq1": ["community_secretary@M1"], "sq2": ["community_secretary@M2"],
    "tj1": ["mediator@M1"], "tj2": ["mediator@M2"], "tjs1": ["mediator@S1"], "tjc": ["mediator@C1"],
    "jd1": ["street_officer@S1"], "bm1": ["department_staff:civil_affairs@S1"],
}

# -- data for the shipped forms and their steps ----------------------------------------------------------

WHERE = {"latitude": 22.6551, "longitude": 110.155, "accuracy": 12.0, "address": "示范市甲区东街道东一路"}
INCIDENT = {"category": "municipal_facility", "urgency": "normal", "description": "东一路与民主路交叉口井盖破损",
            "occurred_at": "2025-03-01T08:40:00+08:00", "location": WHERE, "source": "grid_patrol"}
HANDLED = {"handling_result": "已更换井盖并设置警示标志"}
SATISFIED = {"visit_method": "phone", "satisfaction": "satisfied", "feedback": "井盖已修好"}
BASIC = {"visit_method": "door", "satisfaction": "basically_satisfied"}
UNSATISFIED = {"visit_method": "door", "satisfaction": "unsatisfied", "unsatisfied_reasons": ["not_solved"]}
DISPUTE = {"dispute_type": "neighbourhood",
           "parties": [{"name": "刘建国", "role": "applicant"}, {"name": "唐海燕", "role": "respondent"}],
           "description": "顶楼住户将餐厨垃圾从下水管道排出，导致底层住户厨房反复堵塞",
           "occurred_on": "2025-03-01", "source": "screening", "risk_level": "low"}
FAILED = {"mediation_date": "2025-03-02", "mediator_name": "李调解", "mediation_method": "studio",
          "mediation_result": "fail", "fail_reason": "双方对疏通费用分担分歧较大"}
AGREED = {"mediation_date": "2025-03-05", "mediator_name": "张调解", "mediation_method": "joint",
          "mediation_result": "success", "agreement_type": "oral", "agreement": "顶楼住户停止倾倒并承担疏通费用"}
FOLLOWED_UP = {"followup_date": "2025-03-10", "followup_method": "phone", "performance": "fulfilled",
               "satisfaction": "satisfied"}
RESOURCE = {"category": "funds", "item": "长者饭堂运营补贴", "description": "为社区长者饭堂申请运营补贴，用于送餐上门",
            "amount": 3000, "beneficiaries": ["elderly"], "beneficiary_count": 120, "urgency": "normal",
            "justification": "社区独居老人较多，送餐需求大", "contact_name": "王伟", "contact_phone": "13877560001"}
APPROVED = {"provider_department": "civil_affairs", "review_opinion": "需求真实，社区有承接能力"}
DELIVERED = {"delivered_on": "2025-03-20", "delivery_notes": "补贴已拨付到社区账户", "delivered_amount": 3000}
EVALUATED = {"received_as_requested": True, "satisfaction": "satisfied"}
VISIT = {"visited_at": "2025-03-01T10:00:00+08:00", "met_resident": False, "head_name": "李国庆",
         "address": "东一路12号3栋501", "has_issue": False, "location": WHERE, "summary": "户主外出务工，已留联系卡"}
VISIT_WITH_ISSUE = {"visited_at": "2025-03-01T15:10:00+08:00", "met_resident": True, "head_name": "陈志强",
                    "address": "东一路88号1栋302", "topics": ["dispute_screening", "hazard_report"],
                    "has_issue": True, "issue_type": "fire_safety", "issue_description": "楼道堆放电动车电池和杂物",
                    "need_report": True, "issue_urgency": "urgent", "location": WHERE}

# Where each case is moved to: its local filing moment and its handling time in seconds (None: still open).
SCHEDULE = {
    "late_resource": ("2025-03-10 00:10:00", 9 * 86400 + 1),  # Monday 00:10 local is Sunday 16:10 UTC
    "inc_satisfied": ("2025-01-15 10:00:00", 3600),
    "inc_basic": ("2025-02-10 09:00:00", 3601),
    "inc_withdrawn": ("2025-02-20 08:00:00", 1800),
    "inc_rejected": ("2025-03-16 23:50:00", 7200),
    "inc_open": ("2025-03-17 00:05:00", None),
    "visit_plain": ("2025-04-01 00:00:00", 0),
    "visit_issue": ("2025-05-05 12:00:00", 60),
    "spawned": ("2025-05-05 12:00:01", None),
    "med_resolved": ("2025-04-15 14:00:00", 5 * 86400),
    "med_unresolved": ("2025-05-20 10:00:00", 30 * 86400),
    "inc_community": ("2025-06-30 23:59:59", 2 * 86400 + 3600),
    "inc_reopened": ("2025-06-01 08:00:00", None),
    "res_resolved": ("2025-08-08 08:08:00", 86399),
    "inc_handling": ("2025-10-01 09:00:00", None),
    "inc_late_g3": ("2025-03-12 11:00:00", 36000),
    "med_basic_g3": ("2025-04-30 23:30:00", 3 * 86400),
    "med_open_g3": ("2025-12-31 23:59:00", None),
    "res_rejected_g3": ("2025-01-01 00:00:00", 5 * 3600),
    "overdue_g3": ("2025-11-11 11:11:00", None),
    "overdue_g1": ("2025-07-07 07:07:00", None),
    "own_m1": ("2025-03-11 15:00:00", 600),
    "own_s1": ("2025-04-02 10:00:00", 0),
    "own_c1": ("2025-02-25 10:00:00", 0),
    "early": ("2024-12-31 23:59:59", 0),
    "tz_jan": ("2026-01-31 23:30:00", 0),  # 15:30 UTC
    "tz_feb": ("2026-02-01 00:30:00", 60),  # 16:30 UTC on 31 January
}

# The periods asked for, with the local days [start, end) they must cover.
PERIODS = {
    "year": ({"period": "year", "at": "2025-06-15"}, date(2025, 1, 1), date(2026, 1, 1), "2025年"),
    "quarter": ({"period": "quarter", "at": "2025-05-05"}, date(2025, 4, 1), date(2025, 7, 1), "2025年第2季度"),
    "month": ({"period": "month", "at": "2025-03-31"}, date(2025, 3, 1), date(2025, 4, 1), "2025年3月"),
    "week": ({"period": "week", "at": "2025-03-12"}, date(2025, 3, 10), date(2025, 3, 17),
             "2025-03-10 至 2025-03-16"),
    "custom": ({"period": "custom", "from": "2025-02-15", "to": "2025-05-10"}, date(2025, 2, 15), date(2025, 5, 11),
               "2025-02-15 至 2025-05-10"),
}
NODES = ("C1", "D1", "S1", "M1", "G1")  # city, district, street (roll-up), community and grid (cases)
FORMS = (None, "incident_report", "dispute_mediation")


# -- driving the API -------------------------------------------------------------------------------------

class Api:
    """Act as the people of the city through the API."""

    def __init__(self, client, tokens: dict[str, str]):
        self.client = client
        self.tokens = tokens

    def headers(self, user: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def file(self, user: str, form: str, data: dict, grid: str) -> str:
        response = self.client.post(f"/api/v1/forms/{form}/submissions", json={"grid": grid, "data": data},
                                    headers=self.headers(user))
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def case(self, sid: str) -> dict:
        response = self.client.get(f"/api/v1/submissions/{sid}", headers=self.headers("admin"))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def work(self, user: str, sid: str, action: str, node: str | None = None, **body) -> dict:
        """Act on the person's one open task of a case."""
        response = self.client.get("/api/v1/tasks?state=open&limit=200", headers=self.headers(user))
        assert response.status_code == 200, response.get_json()
        mine = [t for t in response.get_json()["items"] if t["case"] == sid and node in (None, t["node"])]
        assert len(mine) == 1, (user, sid, node, response.get_json()["items"])
        response = self.client.post(f"/api/v1/tasks/{mine[0]['id']}/actions", json={"action": action, **body},
                                    headers=self.headers(user))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def case_act(self, user: str, sid: str, action: str, **body) -> dict:
        response = self.client.post(f"/api/v1/submissions/{sid}/actions", json={"action": action, **body},
                                    headers=self.headers(user))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def get_stats(self, user: str = "admin", **params):
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return self.client.get(f"/api/v1/stats?{query}", headers=self.headers(user))

    def stats(self, user: str = "admin", **params) -> dict:
        response = self.get_stats(user, **params)
        assert response.status_code == 200, (params, response.get_json())
        return response.get_json()


class Clock:
    """The time cases are filed and acted at (None: the real time), as naive UTC."""

    def __init__(self):
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC).replace(tzinfo=None)


def outcome(case: dict) -> tuple:
    return case["status"], case["outcome"]


def incident_closed_in_grid(api: Api, worker: str, leader: str, grid: str, visit: dict) -> str:
    sid = api.file(worker, "incident_report", INCIDENT, grid)
    api.work(leader, sid, "handle_in_grid")
    api.work(worker, sid, "done", data=HANDLED)
    api.work(leader, sid, "confirm")
    case = api.work(worker, sid, "submit", data=visit)
    assert outcome(case) == ("closed", "resolved")
    return sid


def drive(api: Api, clock: Clock) -> dict[str, str]:
    """Work the cases of the city through the shipped flows; return their ids by name."""
    s: dict[str, str] = {}
    # Made late by a sweep 15 days on (社区审核 has 3 working days; it reminds and stays), then finished.
    s["late_resource"] = sid = api.file("gw1", "resource_request", RESOURCE, "G1")
    assert store.sweep(ZONE, datetime.now(UTC) + timedelta(days=15)) == 1
    assert [t["overdue"] for t in api.case(sid)["tasks"]] == [True]
    api.work("sq1", sid, "approve", data=APPROVED)
    api.work("bm1", sid, "delivered", data=DELIVERED)
    case = api.work("sq1", sid, "submit", data={**EVALUATED, "satisfaction": "unsatisfied"})
    assert outcome(case) == ("closed", "resolved")

    # Late without a sweep: 分流 done 30 days after filing, long past its one working day.
    clock.now = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    s["inc_late_g3"] = sid = api.file("gw3", "incident_report", INCIDENT, "G3")
    clock.now = None
    api.work("gl3", sid, "handle_in_grid")
    api.work("gw3", sid, "done", data=HANDLED)
    api.work("gl3", sid, "confirm")
    assert outcome(api.work("gw3", sid, "submit", data=SATISFIED)) == ("closed", "resolved")

    # Overdue now: filed 60 days ago and never touched (no sweep runs after this).
    clock.now = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=60)
    s["overdue_g3"] = api.file("gw3", "incident_report", INCIDENT, "G3")
    s["overdue_g1"] = api.file("gw1", "resource_request", RESOURCE, "G1")
    clock.now = None

    s["inc_satisfied"] = incident_closed_in_grid(api, "gw1", "gl1", "G1", SATISFIED)
    s["inc_basic"] = incident_closed_in_grid(api, "gw1", "gl1", "G1", BASIC)
    s["inc_withdrawn"] = sid = api.file("gw1", "incident_report", INCIDENT, "G1")
    assert outcome(api.case_act("gw1", sid, "withdraw", comment="已自行修复")) == ("withdrawn", "withdrawn")
    s["inc_rejected"] = sid = api.file("gw1", "incident_report", INCIDENT, "G1")
    assert outcome(api.work("gl1", sid, "reject", comment="重复上报")) == ("closed", "rejected")
    s["inc_open"] = api.file("gw1", "incident_report", INCIDENT, "G1")
    s["visit_plain"] = sid = api.file("gw1", "door_knock_visit", VISIT, "G1")
    assert outcome(api.case(sid)) == ("closed", "resolved")
    s["visit_issue"] = sid = api.file("gw1", "door_knock_visit", VISIT_WITH_ISSUE, "G1")
    visit = api.case(sid)
    assert outcome(visit) == ("closed", "resolved")
    s["spawned"] = next(e["case"] for e in visit["history"] if e["kind"] == "spawned")

    s["med_resolved"] = sid = api.file("tj1", "dispute_mediation", DISPUTE, "G1")
    api.work("tj1", sid, "record", data=AGREED)
    assert outcome(api.work("tj1", sid, "done", data=FOLLOWED_UP)) == ("closed", "resolved")
    s["med_unresolved"] = sid = api.file("tj1", "dispute_mediation", DISPUTE, "G2")
    for mediator, times in (("tj1", 3), ("tjs1", 2)):
        for _ in range(times):
            api.work(mediator, sid, "record", data=FAILED)
    case = api.work("tjc", sid, "record", data={**FAILED, "referral_path": "litigation"})
    assert outcome(case) == ("closed", "unresolved")

    s["inc_community"] = sid = api.file("gw2", "incident_report", INCIDENT, "G2")
    api.work("gl2", sid, "to_community")
    api.work("sq1", sid, "done", data=HANDLED)
    api.work("gl2", sid, "confirm")
    assert outcome(api.work("gw2", sid, "submit", data=BASIC)) == ("closed", "resolved")
    s["inc_reopened"] = sid = api.file("gw2", "incident_report", INCIDENT, "G2")
    api.work("gl2", sid, "handle_in_grid")
    api.work("gw2", sid, "done", data=HANDLED)
    api.work("gl2", sid, "confirm")
    case = api.work("gw2", sid, "submit", data=UNSATISFIED)  # 不满意: back to the grid, rated, still open
    assert outcome(case) == ("in_progress", None)
    s["res_resolved"] = sid = api.file("gw2", "resource_request", RESOURCE, "G2")
    api.work("sq1", sid, "approve", data=APPROVED)
    api.work("bm1", sid, "delivered", data=DELIVERED)
    assert outcome(api.work("sq1", sid, "submit", data=EVALUATED)) == ("closed", "resolved")
    s["inc_handling"] = sid = api.file("gw2", "incident_report", INCIDENT, "G2")
    api.work("gl2", sid, "handle_in_grid")

    s["med_basic_g3"] = sid = api.file("tj2", "dispute_mediation", DISPUTE, "G3")
    api.work("tj2", sid, "record", data=AGREED)
    case = api.work("tj2", sid, "done", data={**FOLLOWED_UP, "satisfaction": "basically_satisfied"})
    assert outcome(case) == ("closed", "resolved")
    s["med_open_g3"] = sid = api.file("tj2", "dispute_mediation", DISPUTE, "G3")
    api.work("tj2", sid, "record", data=FAILED)
    s["res_rejected_g3"] = sid = api.file("gw3", "resource_request", RESOURCE, "G3")
    assert outcome(api.work("sq2", sid, "reject", comment="不属于资源下放范围")) == ("closed", "rejected")

    # Filed at a community, a street and the city themselves (the `own` rows of by_grid).
    s["own_m1"] = sid = api.file("sq1", "incident_report", INCIDENT, "M1")
    assert outcome(api.work("sq1", sid, "reject", comment="不属于受理范围")) == ("closed", "rejected")
    s["own_s1"] = api.file("jd1", "door_knock_visit", VISIT, "S1")
    s["own_c1"] = api.file("admin", "door_knock_visit", VISIT, "C1")
    s["early"] = api.file("gw1", "door_knock_visit", VISIT, "G1")
    s["tz_jan"] = api.file("gw2", "door_knock_visit", VISIT, "G2")
    s["tz_feb"] = sid = api.file("gw2", "incident_report", INCIDENT, "G2")
    api.case_act("gw2", sid, "withdraw")
    assert sorted(s) == sorted(SCHEDULE)
    return s


def utc_text(local: str) -> str:
    moment = datetime.fromisoformat(local).replace(tzinfo=LOCAL).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def spread(ids: dict[str, str]) -> None:
    """Move every case to its scheduled local moment, keeping the scheduled handling time (SQLite)."""
    for name, (local, seconds) in SCHEDULE.items():
        closed = database.execute_sql('SELECT closed_at FROM "submission" WHERE id = ?', (ids[name],)).fetchone()[0]
        assert (closed is None) == (seconds is None), (name, closed)
        created = datetime.fromisoformat(local)
        finished = None if seconds is None else utc_text((created + timedelta(seconds=seconds)).isoformat())
        database.execute_sql('UPDATE "submission" SET created_at = ?, closed_at = ?, updated_at = ? WHERE id = ?',
                             (utc_text(local), finished, finished or utc_text(local), ids[name]))


# -- the city, built once --------------------------------------------------------------------------------

@dataclass
class Template:
    path: Path
    rows: dict
    tokens: dict[str, str]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Template:
    folder = tmp_path_factory.mktemp("stats-city")
    url = sqlite_url(folder / "city.db")
    bind(open_database(url))
    migrate_schema()
    with database.atomic():
        seed_configuration()
    database.close()
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret",
                      "INSTANCE_PATH": str(folder / "instance")})
    with app.app_context():
        nodes = {}
        with database.atomic():
            for code, name, level, parent in TREE:
                nodes[code] = create_node(code, name, level, nodes.get(parent))
        loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
        assert problems == [] and len(loaded) == 8
        tokens = {}
        with database.atomic():
            for username, grants in PEOPLE.items():
                person = create_person(username, "secret-pass", password_hash=_password_hash())
                for grant in grants:
                    role, _, code = grant.partition("@")
                    role, _, department = role.partition(":")
                    add_membership(person, code, role, department or None)
                tokens[username] = create_token(person, "test")
        clock = Clock()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cases, "utcnow", clock)
            patch.setattr(store, "utcnow", clock)
            ids = drive(Api(app.test_client(), tokens), clock)
        spread(ids)
        rows = {model: list(model.select().dicts()) for model in MODELS}
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    database.obj.close_all()
    return Template(folder / "city.db", rows, tokens, ids)


def _restore_rows(rows: dict) -> None:
    """Load the template's rows into the emptied PostgreSQL database and move its sequences on."""
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
def db_url(request, tmp_path, template) -> str:
    """Override conftest's: a database holding the city of this module."""
    if request.param == "sqlite":
        target = tmp_path / "gridflow.db"
        shutil.copyfile(template.path, target)
        return sqlite_url(target)
    url, problem = postgres_url()
    if problem:
        need(problem)
    bind(open_database(url))
    _truncate_postgres()
    _restore_rows(template.rows)
    forget_versions()
    database.close()
    return url


@pytest.fixture
def api(client, template) -> Api:
    return Api(client, template.tokens)


@pytest.fixture
def truth(app) -> Truth:
    return Truth(app)


# -- the figures, independently ----------------------------------------------------------------------------

def local_midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL).astimezone(UTC).replace(tzinfo=None)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _moment(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


class Truth:
    """Every figure of a node, period and form, from hand-written SQL on the cases and their tasks."""

    def __init__(self, app):
        self.mediation = [f.strip() for f in app.config["MEDIATION_FORMS"].split(",") if f.strip()]
        assert self.mediation == ["dispute_mediation"]
        self.p = "%s" if is_postgres() else "?"

    def _time(self, moment: datetime):
        return moment if is_postgres() else str(moment)  # as peewee writes them: no ".000000"

    def path(self, code: str) -> str:
        return database.execute_sql(f'SELECT path FROM "grid_node" WHERE code = {self.p}', (code,)).fetchone()[0]

    def children(self, code: str) -> list[tuple[str, str]]:
        return list(database.execute_sql(
            f'SELECT c.code, c.path FROM "grid_node" c JOIN "grid_node" n ON c.parent_id = n.id '
            f'WHERE n.code = {self.p} ORDER BY c.code', (code,)).fetchall())

    def _where(self, path: str, form: str | None, exact: bool, column: str = "grid_path") -> tuple[str, list]:
        if exact:
            clause, params = f"{column} = {self.p}", [path]
        else:
            clause, params = f"substr({column}, 1, {len(path)}) = {self.p}", [path]
        if form:
            clause += f" AND {column.replace('grid_path', 'form')} = {self.p}"
            params.append(form)
        return clause, params

    def figures(self, path: str, start: date, end: date, form: str | None = None, exact: bool = False,
                overdue: bool = True) -> dict:
        """The figures of the cases reported on local days [start, end) under a path (or exactly at it)."""
        p = self.p
        where, params = self._where(path, form, exact)
        where += f" AND created_at >= {p} AND created_at < {p}"
        params += [self._time(local_midnight_utc(start)), self._time(local_midnight_utc(end))]
        closed = "closed_at IS NOT NULL AND COALESCE(outcome, '') <> 'withdrawn'"
        med = ", ".join(p for _ in self.mediation)
        counts = database.execute_sql(
            f"""SELECT COUNT(*),
                       COUNT(CASE WHEN outcome = 'withdrawn' THEN 1 END),
                       COUNT(CASE WHEN {closed} THEN 1 END),
                       COUNT(CASE WHEN {closed} AND late = {p} THEN 1 END),
                       COUNT(rating),
                       COUNT(CASE WHEN rating IN ('satisfied', 'basically_satisfied') THEN 1 END),
                       COUNT(CASE WHEN {closed} AND form IN ({med}) THEN 1 END),
                       COUNT(CASE WHEN {closed} AND form IN ({med}) AND outcome = 'resolved' THEN 1 END)
                FROM "submission" WHERE {where}""",
            [False, *self.mediation, *self.mediation, *params]).fetchone()
        reported, withdrawn, n_closed, on_time, rated, satisfied, med_closed, med_resolved = (int(v) for v in counts)
        spans = database.execute_sql(f'SELECT created_at, closed_at FROM "submission" WHERE {where} AND {closed}',
                                     params).fetchall()
        seconds = [int((_moment(b) - _moment(a)).total_seconds() + 0.5) for a, b in spans]  # to the second
        assert all(s >= 0 for s in seconds), seconds
        assert len(seconds) == n_closed
        hours = sorted(-(-s // 3600) for s in seconds)

        def rate(part: int, whole: int):
            return round(part / whole, 4) if whole else None

        return {
            "reported": reported, "withdrawn": withdrawn, "closed": n_closed,
            "closure_rate": rate(n_closed, reported - withdrawn),
            "on_time": on_time, "on_time_rate": rate(on_time, n_closed),
            "avg_handling_hours": round(sum(seconds) / n_closed / 3600, 2) if n_closed else None,
            "p90_handling_hours": hours[(9 * len(hours) + 9) // 10 - 1] if hours else None,
            "rated": rated, "satisfied": satisfied, "satisfaction_rate": rate(satisfied, rated),
            "mediation_closed": med_closed, "mediation_resolved": med_resolved,
            "mediation_success_rate": rate(med_resolved, med_closed),
            "overdue_now": self.overdue(path, form, exact) if overdue else 0,
        }

    def overdue(self, path: str, form: str | None = None, exact: bool = False) -> int:
        """Open cases under a path with an open task past its deadline now (whenever reported)."""
        where, params = self._where(path, form, exact, "s.grid_path")
        now = self._time(datetime.now(UTC).replace(tzinfo=None))
        return database.execute_sql(
            f"""SELECT COUNT(*) FROM "submission" s WHERE {where} AND s.closed_at IS NULL AND EXISTS (
                    SELECT 1 FROM "task" t WHERE t.submission_id = s.id AND t.state = 'open'
                    AND t.due_at < {self.p})""", [*params, now]).fetchone()[0]

    def forms(self, path: str, start: date, end: date) -> set[str]:
        """The forms with a case reported in the period under a path, or an overdue case there now."""
        p = self.p
        rows = database.execute_sql(
            f'SELECT DISTINCT form FROM "submission" WHERE substr(grid_path, 1, {len(path)}) = {p} '
            f"AND created_at >= {p} AND created_at < {p}",
            (path, self._time(local_midnight_utc(start)), self._time(local_midnight_utc(end)))).fetchall()
        forms = {r[0] for r in rows}
        for (form,) in database.execute_sql('SELECT DISTINCT form FROM "submission"').fetchall():
            if self.overdue(path, form):
                forms.add(form)
        return forms

    def totals(self, code: str, start: date, end: date, form: str | None = None) -> dict:
        return self.figures(self.path(code), start, end, form)

    def by_form(self, code: str, start: date, end: date, form: str | None = None) -> dict[str, dict]:
        path = self.path(code)
        keys = [form] if form else sorted(self.forms(path, start, end))
        rows = {k: self.figures(path, start, end, k) for k in keys}
        return {k: v for k, v in rows.items() if v["reported"] or v["overdue_now"]}

    def by_grid(self, code: str, start: date, end: date, form: str | None = None) -> dict[str, dict]:
        rows = {child: self.figures(path, start, end, form) for child, path in self.children(code)}
        rows[code] = self.figures(self.path(code), start, end, form, exact=True)  # filed at the node itself
        return {k: v for k, v in rows.items() if v["reported"] or v["overdue_now"]}

    def trend(self, code: str, start: date, end: date, form: str | None = None) -> dict[str, dict]:
        """By local day for periods up to 62 days, else by local month; buckets with cases only."""
        path, rows = self.path(code), {}
        by_day = (end - start).days <= 62
        day = start if by_day else start.replace(day=1)
        while day < end:
            following = day + timedelta(days=1) if by_day else next_month(day)
            figures = self.figures(path, max(day, start), min(following, end), form, overdue=False)
            if figures["reported"]:  # (a trend point has no overdue count: that is a figure of now)
                rows[day.isoformat() if by_day else day.strftime("%Y-%m")] = figures
            day = following
        return rows


def compare(got: dict, want: dict, where: str, problems: list[str], skip: tuple[str, ...] = ()) -> None:
    for key in FIGURES:
        if key not in skip and got.get(key) != want[key]:
            problems.append(f"{where}: {key} is {got.get(key)!r}, independent SQL says {want[key]!r}")


def rows_by(items: list[dict], key: str) -> dict[str, dict]:
    keys = [r[key] for r in items]
    assert len(keys) == len(set(keys)), keys
    return {r[key]: r for r in items}


def combinations():
    for name, (params, start, end, _) in PERIODS.items():
        for code in NODES:
            for form in FORMS:
                yield name, params, start, end, code, form


# -- 1. the city as built --------------------------------------------------------------------------------

def test_the_flows_left_the_cases_as_the_figures_need_them(template, app):
    ids = {v: k for k, v in template.ids.items()}
    rows = database.execute_sql('SELECT id, status, outcome, late, rating, grid_code FROM "submission"').fetchall()
    state = {ids[r[0]]: (r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows}
    assert len(state) == len(SCHEDULE)
    assert {k for k, v in state.items() if v[2]} == {"late_resource", "inc_late_g3"}
    assert {k: v[3] for k, v in state.items() if v[3]} == {
        "late_resource": "unsatisfied", "inc_satisfied": "satisfied", "inc_basic": "basically_satisfied",
        "med_resolved": "satisfied", "inc_community": "basically_satisfied", "inc_reopened": "unsatisfied",
        "res_resolved": "satisfied", "inc_late_g3": "satisfied", "med_basic_g3": "basically_satisfied"}
    assert state["med_unresolved"][:2] == ("closed", "unresolved")
    assert state["inc_withdrawn"][:2] == state["tz_feb"][:2] == ("withdrawn", "withdrawn")
    assert {k for k, v in state.items() if v[1] == "rejected"} == {"inc_rejected", "res_rejected_g3", "own_m1"}
    assert (state["own_m1"][4], state["own_s1"][4], state["own_c1"][4]) == ("M1", "S1", "C1")
    assert state["spawned"][4] == "G1" and state["spawned"][0] == "in_progress"


def test_the_city_figures_for_2025_as_counted_by_hand(api, truth):
    """The year's figures at the city, counted from SCHEDULE by hand: guards the fixture and Truth alike."""
    hand = {
        "reported": 24, "withdrawn": 1, "closed": 16, "closure_rate": round(16 / 23, 4),
        "on_time": 14, "on_time_rate": 0.875, "avg_handling_hours": round(4392661 / 16 / 3600, 2),
        "p90_handling_hours": 217,  # 16 closed: the 15th of 0,0,0,1,1,1,2,2,5,10,24,49,72,120,217,720
        "rated": 9, "satisfied": 7, "satisfaction_rate": round(7 / 9, 4),
        "mediation_closed": 3, "mediation_resolved": 2, "mediation_success_rate": 0.6667, "overdue_now": 2,
    }
    assert truth.totals("C1", date(2025, 1, 1), date(2026, 1, 1)) == hand
    assert {k: api.stats(grid="C1", period="year", at="2025-01-01")["totals"][k] for k in FIGURES} == hand


# -- 2. the API against independent SQL ------------------------------------------------------------------

def test_totals_match_independent_sql_for_every_period_node_and_form(api, truth):
    problems: list[str] = []
    for name, params, start, end, code, form in combinations():
        board = api.stats(grid=code, form=form, **params)
        where = f"{name} {code} form={form}"
        label = PERIODS[name][3]
        assert board["period"] == {"kind": name, "from": start.isoformat(),
                                   "to": (end - timedelta(days=1)).isoformat(), "label": label,
                                   "trend_by": "day" if (end - start).days <= 62 else "month"}, where
        assert board["grid"]["code"] == code and board["form"] == form
        compare(board["totals"], truth.totals(code, start, end, form), where, problems)
    assert not problems, "\n".join(problems)


def test_a_custom_range_cutting_months_combines_roll_up_and_cases(api, truth, app):
    """Ranges whose ends cut months: head and tail from the cases, the months between from the roll-up."""
    problems: list[str] = []
    for first, last in [("2025-02-15", "2025-05-10"), ("2025-01-20", "2025-12-30"), ("2024-12-31", "2025-12-31"),
                        ("2025-03-02", "2025-06-30"), ("2025-03-10", "2025-03-16"), ("2024-12-01", "2026-02-01")]:
        start, end = date.fromisoformat(first), date.fromisoformat(last) + timedelta(days=1)
        for code in ("C1", "D1", "S1", "M1", "G3"):
            for form in FORMS:
                board = api.stats(grid=code, period="custom", form=form, **{"from": first, "to": last})
                compare(board["totals"], truth.totals(code, start, end, form), f"{first}..{last} {code} {form}",
                        problems)
    assert not problems, "\n".join(problems)
    # the roll-up has rows for whole months down to the community, and none below ...
    depths = database.execute_sql('SELECT DISTINCT depth FROM "stat_month" ORDER BY depth').fetchall()
    assert [d[0] for d in depths] == [0, 1, 2, 3]
    # ... and is really read: 100 cases planted in its March 2025 row of the city show where March is whole
    database.execute_sql('UPDATE "stat_month" SET reported = reported + 100 WHERE month = \'2025-03\' AND '
                         "form = 'incident_report' AND node = (SELECT id FROM \"grid_node\" WHERE code = 'C1')")
    march = truth.totals("C1", date(2025, 3, 1), date(2025, 4, 1))["reported"]
    assert api.stats(grid="C1", period="month", at="2025-03-05")["totals"]["reported"] == march + 100
    assert api.stats(grid="C1", period="custom", **{"from": "2025-03-01", "to": "2025-03-30"})["totals"][
        "reported"] == truth.totals("C1", date(2025, 3, 1), date(2025, 3, 31))["reported"]
    assert api.stats(grid="D1", period="month", at="2025-03-05")["totals"]["reported"] == truth.totals(
        "D1", date(2025, 3, 1), date(2025, 4, 1))["reported"]


def test_by_form_rows_match_independent_sql(api, truth):
    problems: list[str] = []
    for name, params, start, end, code, form in combinations():
        board = api.stats(grid=code, form=form, **params)
        got = rows_by(board["by_form"], "form")
        want = truth.by_form(code, start, end, form)
        where = f"{name} {code} form={form}"
        assert sorted(got) == sorted(want), where
        for key, row in got.items():
            compare(row, want[key], f"{where} by_form {key}", problems)
        assert [r["reported"] for r in board["by_form"]] == sorted((r["reported"] for r in board["by_form"]),
                                                                   reverse=True)
    titles = {r["form"]: r["title"] for r in api.stats(grid="C1", period="year", at="2025-01-01")["by_form"]}
    assert titles == {"incident_report": "事件上报", "dispute_mediation": "矛盾纠纷登记",
                      "resource_request": "资源需求申报", "door_knock_visit": "敲门行动·入户走访"}
    assert not problems, "\n".join(problems)


def test_by_grid_rows_match_independent_sql_and_drill_down_to_the_childs_own_dashboard(api, truth):
    problems: list[str] = []
    for name, params, start, end, code, form in combinations():
        board = api.stats(grid=code, form=form, **params)
        got = rows_by(board["by_grid"], "code")
        want = truth.by_grid(code, start, end, form)
        where = f"{name} {code} form={form}"
        assert sorted(got) == sorted(want), where
        for child, row in got.items():
            compare(row, want[child], f"{where} by_grid {child}", problems)
            assert row["own"] == (child == code), (where, row)
            if not row["own"]:  # drill down: the child's own dashboard says the same
                below = api.stats(grid=child, form=form, **params)
                compare(row, below["totals"], f"{where} by_grid {child} vs its dashboard", problems)
    assert not problems, "\n".join(problems)
    city = api.stats(grid="C1", period="year", at="2025-01-01")
    assert {r["code"]: (r["name"], r["own"]) for r in city["by_grid"]} == {
        "D1": ("甲区", False), "D2": ("乙区", False), "C1": ("示范市（本级）", True)}


def buckets(start: date, end: date) -> list[str]:
    by_day = (end - start).days <= 62
    out, day = [], start if by_day else start.replace(day=1)
    while day < end:
        out.append(day.isoformat() if by_day else day.strftime("%Y-%m"))
        day = day + timedelta(days=1) if by_day else next_month(day)
    return out


EMPTY = {key: (None if key.endswith(("_rate", "_hours")) else 0) for key in FIGURES}


def check_trend(board: dict, want: dict[str, dict], start: date, end: date, where: str, problems: list[str]) -> None:
    """Trend points in order, one per day or month of the period at most; those with cases as counted here.

    Points without cases may be left out or shown as zeros.
    """
    got = rows_by(board["trend"], "at")
    points = buckets(start, end)
    assert set(got) <= set(points), (where, sorted(set(got) - set(points)))
    assert list(got) == sorted(got, key=points.index), where
    assert set(want) <= set(got), (where, sorted(set(want) - set(got)))
    for key, row in got.items():
        if key in want:
            compare(row, want[key], f"{where} trend {key}", problems, skip=("p90_handling_hours",))
        else:
            compare(row, EMPTY, f"{where} trend {key} (no cases)", problems)


def test_trend_by_month_for_a_year_and_longer_ranges(api, truth):
    problems: list[str] = []
    asks = [({"period": "year", "at": "2025-06-15"}, date(2025, 1, 1), date(2026, 1, 1)),
            ({"period": "quarter", "at": "2025-06-01"}, date(2025, 4, 1), date(2025, 7, 1)),
            ({"period": "custom", "from": "2025-02-15", "to": "2025-05-10"}, date(2025, 2, 15), date(2025, 5, 11))]
    for params, start, end in asks:
        for code in NODES + ("D2",):
            for form in FORMS:
                board = api.stats(grid=code, form=form, **params)
                assert board["period"]["trend_by"] == "month"
                check_trend(board, truth.trend(code, start, end, form), start, end, f"{params} {code} {form}",
                            problems)
    assert not problems, "\n".join(problems)
    year = api.stats(grid="C1", period="year", at="2025-01-01")
    assert [r["at"] for r in year["trend"] if r["reported"]] == [
        "2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-10", "2025-11",
        "2025-12"]


def test_trend_by_day_for_a_month_and_a_week(api, truth):
    problems: list[str] = []
    asks = [({"period": "month", "at": "2025-03-01"}, date(2025, 3, 1), date(2025, 4, 1)),
            ({"period": "month", "at": "2025-04-30"}, date(2025, 4, 1), date(2025, 5, 1)),
            ({"period": "week", "at": "2025-03-16"}, date(2025, 3, 10), date(2025, 3, 17)),
            ({"period": "custom", "from": "2025-02-20", "to": "2025-04-05"}, date(2025, 2, 20), date(2025, 4, 6))]
    for params, start, end in asks:
        for code in NODES:
            for form in FORMS:
                board = api.stats(grid=code, form=form, **params)
                assert board["period"]["trend_by"] == "day"
                check_trend(board, truth.trend(code, start, end, form), start, end, f"{params} {code} {form}",
                            problems)
    assert not problems, "\n".join(problems)
    week = api.stats(grid="C1", period="week", at="2025-03-12")
    assert [(r["at"], r["reported"]) for r in week["trend"] if r["reported"]] == [
        ("2025-03-10", 1), ("2025-03-11", 1), ("2025-03-12", 1), ("2025-03-16", 1)]


def test_trend_rows_give_the_90th_percentile_wherever_they_are_read_from(api, truth):
    problems: list[str] = []
    for params, start, end in [({"period": "year", "at": "2025-01-01"}, date(2025, 1, 1), date(2026, 1, 1)),
                               ({"period": "month", "at": "2025-03-01"}, date(2025, 3, 1), date(2025, 4, 1))]:
        for code in ("C1", "G1"):
            want = truth.trend(code, start, end)
            for row in api.stats(grid=code, **params)["trend"]:
                if row["at"] in want and row["p90_handling_hours"] != want[row["at"]]["p90_handling_hours"]:
                    problems.append(f"{params} {code} {row['at']}: {row['p90_handling_hours']!r} "
                                    f"!= {want[row['at']]['p90_handling_hours']!r}")
    assert not problems, "\n".join(problems)


# -- 3. the roll-up and its freshness ----------------------------------------------------------------------

def test_after_a_rebuild_whole_months_equal_the_same_span_asked_as_a_custom_range(api, truth, app):
    months = stats.rebuild(app.config["TIMEZONE"], tuple(truth.mediation))
    assert months[0] == "2024-12" and months[-1] == "2026-02" and len(months) == 15
    # the roll-up holds what the cases say, month by month, for every kept node
    for code in ("C1", "D1", "D2", "S1", "S2", "M1", "M2"):
        kept = database.execute_sql(
            'SELECT m.month, SUM(m.reported), SUM(m.closed), SUM(m.rated) FROM "stat_month" m '
            'JOIN "grid_node" n ON n.id = m.node WHERE n.code = ' + truth.p + " GROUP BY m.month ORDER BY m.month",
            (code,)).fetchall()
        want = []
        for month in months:
            start = date.fromisoformat(month + "-01")
            f = truth.totals(code, start, next_month(start))
            if f["reported"]:
                want.append((month, f["reported"], f["closed"], f["rated"]))
        assert [tuple(int(v) if i else v for i, v in enumerate(r)) for r in kept] == want, code
    assert database.execute_sql('SELECT COUNT(*) FROM "stat_month" m JOIN "grid_node" n ON n.id = m.node '
                                "WHERE n.level = 'grid'").fetchone()[0] == 0
    for code in ("C1", "D1", "S1", "M1", "G1", "G3"):
        for form in FORMS:
            year = api.stats(grid=code, period="year", at="2025-07-01", form=form)
            same = api.stats(grid=code, period="custom", form=form, **{"from": "2025-01-01", "to": "2025-12-31"})
            for part in ("totals", "by_form", "by_grid", "trend"):
                assert year[part] == same[part], (code, form, part)
            assert {k: year["totals"][k] for k in FIGURES} == truth.totals(code, date(2025, 1, 1), date(2026, 1, 1),
                                                                           form)
            # one day more at the start (the last day of 2024, read from the cases) adds exactly that day
            longer = api.stats(grid=code, period="custom", form=form, **{"from": "2024-12-31", "to": "2025-12-31"})
            day = truth.totals(code, date(2024, 12, 31), date(2025, 1, 1), form)
            assert longer["totals"]["reported"] == year["totals"]["reported"] + day["reported"], (code, form)
            assert {k: longer["totals"][k] for k in FIGURES} == truth.totals(
                code, date(2024, 12, 31), date(2026, 1, 1), form)
    # a street's row for its community (roll-up) is the community's own dashboard (cases), and so below
    street = rows_by(api.stats(grid="S1", period="year", at="2025-01-01")["by_grid"], "code")
    community = api.stats(grid="M1", period="year", at="2025-01-01")
    assert {k: street["M1"][k] for k in FIGURES} == community["totals"]
    grids = rows_by(community["by_grid"], "code")
    assert {k: grids["G1"][k] for k in FIGURES} == api.stats(grid="G1", period="year", at="2025-01-01")["totals"]
    assert street["S1"]["own"] and street["S1"]["reported"] == 1  # the visit filed at the street itself


def when(board: dict) -> datetime:
    return datetime.fromisoformat(board["as_of"].removesuffix("Z"))


def close_the_reopened_incident(api: Api, template: Template) -> None:
    sid = template.ids["inc_reopened"]
    api.work("gw2", sid, "done", data=HANDLED)
    api.work("gl2", sid, "confirm")
    assert outcome(api.work("gw2", sid, "submit", data=SATISFIED)) == ("closed", "resolved")


def test_a_case_closed_now_shows_in_the_next_call_with_sweep_seconds_zero(app, api, truth, template):
    # The test app leaves SWEEP_SECONDS at its setting (60 by default): set 0 so every call refreshes.
    app.config["SWEEP_SECONDS"] = 0
    before = api.stats(grid="C1", period="year", at="2025-06-01")
    close_the_reopened_incident(api, template)  # reported 2025-06-01, closed now, rated 满意 this time
    problems: list[str] = []
    for code in ("C1", "D1", "S1", "M1", "G2"):
        for name in ("year", "quarter"):
            params, start, end, _ = PERIODS[name]
            compare(api.stats(grid=code, **params)["totals"], truth.totals(code, start, end), f"{name} {code}",
                    problems)
    assert not problems, "\n".join(problems)
    after = api.stats(grid="C1", period="year", at="2025-06-01")
    assert after["totals"]["closed"] == before["totals"]["closed"] + 1
    assert after["totals"]["satisfied"] == before["totals"]["satisfied"] + 1
    assert after["totals"]["rated"] == before["totals"]["rated"]
    assert when(after) > when(before)


def test_gridflow_sweep_refreshes_the_months_whose_cases_changed(app, api, truth, template, runner):
    app.config["SWEEP_SECONDS"] = 3600  # a long interval: dashboards keep the roll-up they have
    first = api.stats(grid="C1", period="year", at="2025-06-01")
    close_the_reopened_incident(api, template)
    stale = api.stats(grid="C1", period="year", at="2025-06-01")
    assert stale["as_of"] == first["as_of"]
    assert stale["totals"]["closed"] == first["totals"]["closed"]  # June 2025 is still the roll-up's old one
    raw = api.stats(grid="G2", period="year", at="2025-06-01")  # a grid is read from the cases: already there
    assert {k: raw["totals"][k] for k in FIGURES} == truth.totals("G2", date(2025, 1, 1), date(2026, 1, 1))
    result = runner.invoke(main, ["sweep"])
    assert result.exit_code == 0, (result.output, result.exception)
    # two overdue cases swept (one escalated, one reminded: Nov and Jul 2025) and the closed one (Jun 2025)
    assert "已处理 2 个案件的到期事项；已更新 3 个月的统计" in result.output
    fresh = api.stats(grid="C1", period="year", at="2025-06-01")
    assert when(fresh) > when(first)
    assert fresh["totals"]["closed"] == first["totals"]["closed"] + 1
    problems: list[str] = []
    for code in ("C1", "D1", "D2", "S1"):
        compare(api.stats(grid=code, period="year", at="2025-06-01")["totals"],
                truth.totals(code, date(2025, 1, 1), date(2026, 1, 1)), code, problems)
    assert not problems, "\n".join(problems)


# -- 4. scope and errors ------------------------------------------------------------------------------------

def refused(response, status: int = 422) -> dict:
    body = response.get_json()
    assert response.status_code == status, body
    assert body["error"] == "invalid" and CHINESE.search(body["message"]), body
    return body


def test_a_grid_worker_sees_only_the_figures_of_their_grid(api, truth):
    mine = api.stats("gw1", period="year", at="2025-01-01")
    assert mine["grid"] == {"code": "G1", "name": "东一社区第一网格", "level": "grid"}
    problems: list[str] = []
    compare(mine["totals"], truth.totals("G1", date(2025, 1, 1), date(2026, 1, 1)), "gw1", problems)
    assert problems == [] and mine["totals"]["reported"] == 11
    assert [r["code"] for r in mine["by_grid"]] == ["G1"] and mine["by_grid"][0]["own"]
    for other in ("D2", "G2", "M1", "C1", "G3"):
        body = refused(api.get_stats("gw1", grid=other, period="year", at="2025-01-01"))
        assert other in body["message"]
    secretary = api.stats("sq1", period="year", at="2025-01-01")
    assert secretary["grid"]["code"] == "M1" and {r["code"] for r in secretary["by_grid"]} == {"G1", "G2", "M1"}
    refused(api.get_stats("sq1", grid="G3"))


BAD = [
    ({"period": "decade"}, "decade"),
    ({"period": "month", "at": "2025-13-01"}, "2024-05-01"),
    ({"period": "year", "at": "soon"}, "2024-05-01"),
    ({"period": "custom", "from": "2025-05-01", "to": "2025-04-30"}, "结束日期早于开始日期"),
    ({"period": "custom", "from": "2025-05-01", "to": "31/05/2025"}, "2024-05-01"),
    ({"period": "custom", "from": "2019-01-01", "to": "2025-01-02"}, "五年"),
    ({"period": "month", "form": "no_such_form"}, "no_such_form"),
    ({"grid": "NOPE"}, "NOPE"),
]


def test_bad_parameters_are_refused_in_chinese(api, web):
    browser = web.client("admin")
    for params, said in BAD:
        assert said in refused(api.get_stats(**params))["message"], params
        page = browser.get("/reports/?" + urlencode(params))
        assert page.status_code == 422, params
        error = parse(page.get_data(as_text=True)).by_id("board-error")
        assert error is not None and said in error.text() and CHINESE.search(error.text()), params


# -- 5. the web dashboard -------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Element:
    def __init__(self, tag: str, attrs: dict, parent: Element | None):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        found = []
        for child in self.children:
            if isinstance(child, Element):
                if tag in (None, child.tag) and (cls is None or cls in child.attrs.get("class", "").split()):
                    found.append(child)
                found.extend(child.all(tag, cls))
        return found

    def one(self, tag: str | None = None, cls: str | None = None) -> Element:
        found = self.all(tag, cls)
        assert len(found) == 1, (tag, cls, len(found))
        return found[0]

    def by_id(self, ident: str) -> Element | None:
        return next((e for e in self.all() if e.attrs.get("id") == ident), None)


class Tree(HTMLParser):
    def __init__(self):
        super().__init__()
        self.root = self.current = Element("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(html: str) -> Element:
    tree = Tree()
    tree.feed(html)
    tree.close()
    return tree.root


def shown_rate(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def shown_hours(value) -> str:
    if value is None:
        return "—"
    if value < 48:
        return f"{value:.1f}".rstrip("0").rstrip(".") + " 小时"
    return f"{value / 24:.1f} 天"


CARDS = {
    "reported": lambda t: str(t["reported"]),
    "closed": lambda t: str(t["closed"]),
    "closure_rate": lambda t: shown_rate(t["closure_rate"]),
    "on_time_rate": lambda t: shown_rate(t["on_time_rate"]),
    "avg_handling_hours": lambda t: shown_hours(t["avg_handling_hours"]),
    "p90_handling_hours": lambda t: shown_hours(t["p90_handling_hours"]),
    "satisfaction_rate": lambda t: shown_rate(t["satisfaction_rate"]),
    "mediation_success_rate": lambda t: shown_rate(t["mediation_success_rate"]),
    "overdue_now": lambda t: str(t["overdue_now"]),
}
NAMED = {"closure_rate": "办结率", "on_time_rate": "按期办结率", "avg_handling_hours": "平均处理时长",
         "satisfaction_rate": "满意率", "mediation_success_rate": "调解成功率", "overdue_now": "超期",
         "p90_handling_hours": "90", "reported": "上报", "closed": "办结"}


def cells(table: Element) -> list[list[str]]:
    return [[td.text().strip() for td in tr.all("td")] for tr in table.one("tbody").all("tr")]


def check_page(page: Element, board: dict) -> None:
    """The figure cards and the three tables of a dashboard page say what the API says."""
    t = board["totals"]
    for key, shown in CARDS.items():
        card = page.by_id(f"fig-{key}")
        assert card is not None, key
        assert card.one("strong", "fig-value").text().strip() == shown(t), (key, card.text(), t)
        definition = card.one("details", "def").one("p").text().strip()
        assert definition and CHINESE.search(definition) and NAMED[key] in definition, (key, definition)
        assert card.attrs.get("title") == definition, key
    closed_card = page.by_id("fig-closed").text()
    assert (f"撤回 {t['withdrawn']} 件" in closed_card) == bool(t["withdrawn"])
    assert f"按期 {t['on_time']} 件" in page.by_id("fig-on_time_rate").text()
    assert f"回访评价 {t['rated']} 件" in page.by_id("fig-satisfaction_rate").text()
    assert f"调解办结 {t['mediation_closed']} 件" in page.by_id("fig-mediation_success_rate").text()
    assert page.by_id("period-label").text() == board["period"]["label"]
    assert cells(page.by_id("table-trend")) == [
        [r["at"], str(r["reported"]), str(r["closed"]), shown_rate(r["closure_rate"]),
         shown_rate(r["satisfaction_rate"])] for r in board["trend"]]
    assert cells(page.by_id("table-forms")) == [
        [r["title"], str(r["reported"]), shown_rate(r["closure_rate"]), shown_rate(r["on_time_rate"]),
         shown_hours(r["avg_handling_hours"]), shown_hours(r["p90_handling_hours"]),
         shown_rate(r["satisfaction_rate"]), str(r["overdue_now"])] for r in board["by_form"]] or [
        ["这一期没有案件。"]]
    assert cells(page.by_id("table-grids")) == [
        [r["name"], str(r["reported"]), shown_rate(r["closure_rate"]), shown_rate(r["on_time_rate"]),
         shown_hours(r["avg_handling_hours"]), shown_hours(r["p90_handling_hours"]),
         shown_rate(r["satisfaction_rate"]), shown_rate(r["mediation_success_rate"]), str(r["overdue_now"])]
        for r in board["by_grid"]] or [["这一期没有案件。"]]


DASHBOARDS = [
    {"grid": "C1", "period": "year", "at": "2025-06-15"},
    {"grid": "S1", "period": "custom", "from": "2025-02-15", "to": "2025-05-10"},
    {"grid": "M1", "period": "month", "at": "2025-03-01", "form": "incident_report"},
    {"grid": "D2", "period": "quarter", "at": "2025-04-01"},
    {"grid": "G1", "period": "week", "at": "2025-03-12"},
]


def test_the_web_dashboard_shows_the_api_numbers_with_their_definitions(api, web):
    browser = web.client("admin")
    for params in DASHBOARDS:
        response = browser.get("/reports/?" + urlencode(params))
        assert response.status_code == 200, params
        page = parse(response.get_data(as_text=True))
        board = api.stats(**params)
        check_page(page, board)
        crumbs = [a.text() for a in page.one("nav", "crumbs").all("a")]
        assert crumbs[-1] == board["grid"]["name"] and crumbs[0] == "示范市"
    year = parse(browser.get("/reports/?grid=C1&period=year&at=2025-06-15").get_data(as_text=True))
    assert year.by_id("fig-p90_handling_hours").one("span", "fig-label").text() == "90% 在此时长内办结"
    assert year.by_id("fig-reported").one("strong", "fig-value").text() == "24"


def test_drill_down_links_lead_to_the_childs_dashboard(api, web):
    browser = web.client("admin")
    for params in DASHBOARDS[:4]:
        board = api.stats(**params)
        page = parse(browser.get("/reports/?" + urlencode(params)).get_data(as_text=True))
        links = page.by_id("table-grids").all("a", "drill")
        rows = [r for r in board["by_grid"] if not r["own"]]
        assert [a.text() for a in links] == [r["name"] for r in rows], params
        for link, row in zip(links, rows, strict=True):
            url = urlsplit(link.attrs["href"])
            assert url.path == "/reports/"
            query = dict(parse_qsl(url.query))
            assert query["grid"] == row["code"]
            below = api.stats(**query)
            assert below["period"] == board["period"] and below["form"] == board["form"]
            assert {k: row[k] for k in FIGURES} == below["totals"], (params, row["code"])
            child = parse(browser.get(link.attrs["href"]).get_data(as_text=True))
            assert child.by_id("fig-reported").one("strong", "fig-value").text() == str(row["reported"])
            check_page(child, below)


def test_form_links_of_a_custom_period_keep_the_period(api, web):
    params = {"grid": "C1", "period": "custom", "from": "2025-02-15", "to": "2025-05-10"}
    board = api.stats(**params)
    page = parse(web.client("admin").get("/reports/?" + urlencode(params)).get_data(as_text=True))
    links = page.by_id("table-forms").all("a")
    assert len(links) == len(board["by_form"]) > 1
    for link, row in zip(links, board["by_form"], strict=True):
        below = api.stats(**dict(parse_qsl(urlsplit(link.attrs["href"]).query)))
        assert below["period"] == board["period"] and below["form"] == row["form"]
        assert {k: row[k] for k in FIGURES} == below["totals"]


def test_a_grid_worker_on_the_web_gets_their_grid_and_is_refused_other_nodes(api, web):
    browser = web.client("gw1")
    page = parse(browser.get("/reports/?period=year&at=2025-01-01").get_data(as_text=True))
    check_page(page, api.stats("gw1", period="year", at="2025-01-01"))
    assert page.by_id("table-grids").all("a", "drill") == []
    refused_page = browser.get("/reports/?grid=D2&period=year&at=2025-01-01")
    assert refused_page.status_code == 422
    assert "D2" in parse(refused_page.get_data(as_text=True)).by_id("board-error").text()


# -- 6. local months -------------------------------------------------------------------------------------------

def test_a_case_belongs_to_the_local_month_and_day_it_was_reported(api, truth):
    """tz_jan: 2026-01-31 23:30 local (15:30 UTC), a visit; tz_feb: 2026-02-01 00:30 local, withdrawn."""
    for code in ("C1", "D1", "S1", "M1", "G2"):  # roll-up above the community, cases from there down
        jan = api.stats(grid=code, period="month", at="2026-01-10")
        feb = api.stats(grid=code, period="month", at="2026-02-10")
        assert [(r["form"], r["reported"], r["withdrawn"]) for r in jan["by_form"] if r["reported"]] == [
            ("door_knock_visit", 1, 0)]  # (forms with cases overdue now have rows too, with nothing reported)
        assert [(r["form"], r["reported"], r["withdrawn"]) for r in feb["by_form"] if r["reported"]] == [
            ("incident_report", 1, 1)]
        assert [r["at"] for r in jan["trend"] if r["reported"]] == ["2026-01-31"]
        assert [r["at"] for r in feb["trend"] if r["reported"]] == ["2026-02-01"]
        assert {k: jan["totals"][k] for k in FIGURES} == truth.totals(code, date(2026, 1, 1), date(2026, 2, 1))
        assert {k: feb["totals"][k] for k in FIGURES} == truth.totals(code, date(2026, 2, 1), date(2026, 3, 1))
        year = api.stats(grid=code, period="year", at="2026-03-01")
        assert [(r["at"], r["reported"], r["withdrawn"]) for r in year["trend"] if r["reported"]] == [
            ("2026-01", 1, 0), ("2026-02", 1, 1)]
        for day, form in (("2026-01-31", "door_knock_visit"), ("2026-02-01", "incident_report")):
            one = api.stats(grid=code, period="custom", **{"from": day, "to": day})
            assert [r["form"] for r in one["by_form"] if r["reported"]] == [form] and one["totals"]["reported"] == 1
        across = api.stats(grid=code, period="custom", **{"from": "2026-01-15", "to": "2026-02-15"})
        assert [(r["at"], r["reported"]) for r in across["trend"] if r["reported"]] == [
            ("2026-01-31", 1), ("2026-02-01", 1)]
        week = api.stats(grid=code, period="week", at="2026-01-31")  # Mon 26 Jan – Sun 1 Feb
        assert week["totals"]["reported"] == 2
    kept = database.execute_sql(
        'SELECT m.month, m.form, m.reported FROM "stat_month" m JOIN "grid_node" n ON n.id = m.node '
        "WHERE n.code = 'C1' AND m.month >= '2026-01' ORDER BY m.month").fetchall()
    assert [tuple(r) for r in kept] == [("2026-01", "door_knock_visit", 1), ("2026-02", "incident_report", 1)]
    assert api.stats(grid="C1", period="month", at="2024-12-01")["totals"]["reported"] == 1  # 'early', 23:59:59


# -- moving nodes and cases ------------------------------------------------------------------------------------

def test_moving_a_community_moves_its_figures_in_the_roll_up(app, api, web, truth):
    app.config["SWEEP_SECONDS"] = 0
    api.stats(grid="C1", period="year", at="2025-01-01")  # the roll-up exists before the move
    browser = web.client("admin")
    response = web.post(browser, "/admin/grids/M2/move", {"parent": "S1"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert truth.path("M2") == "/C1/D1/S1/M2/"
    problems: list[str] = []
    for code in ("C1", "D1", "D2", "S1", "S2"):
        compare(api.stats(grid=code, period="year", at="2025-01-01")["totals"],
                truth.totals(code, date(2025, 1, 1), date(2026, 1, 1)), code, problems, skip=("overdue_now",))
    assert not problems, "\n".join(problems)


def test_moving_open_cases_moves_their_overdue_count(app, api, web, truth):
    browser = web.client("admin")
    response = web.post(browser, "/admin/grids/G3/cases/move", {"target": "G2"})
    assert response.status_code == 302, response.get_data(as_text=True)
    moved = database.execute_sql(f'SELECT COUNT(*) FROM "submission" WHERE grid_code = {truth.p}', ("G3",))
    assert moved.fetchone()[0] == 3  # the closed ones stay
    assert truth.overdue(truth.path("G2")) == 1 and truth.overdue(truth.path("D2")) == 0
    problems: list[str] = []
    for code in ("C1", "D1", "D2", "G2", "G3"):
        got = api.stats(grid=code, period="year", at="2025-01-01")["totals"]["overdue_now"]
        if got != truth.overdue(truth.path(code)):
            problems.append(f"{code}: {got} != {truth.overdue(truth.path(code))}")
    assert not problems, "\n".join(problems)

