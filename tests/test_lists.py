"""Case lists: the web list (/reports/cases) and the API list (/api/v1/submissions) on SQLite and PostgreSQL.

Typed filters, form-field filters of every kind built from the shipped forms, Chinese refusals, the four
orders with keyset pages, scope and masking, the per-form columns and the web filter form's round trip.
Cases are filed through `cases.submit` (the API's path, starting the shipped flows); the flows are worked
through the API; report and close times are then set on the rows where a test needs them at known moments.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from server import cases
from server.cases import move_open_cases
from server.definitions.versions import latest_form, publish
from server.demo_samples import id_card
from server.grids import node_by_code
from server.models import Person, Submission, Task, utcnow

CHINESE = re.compile(r"[\u4e00-\u9fff]")
WHERE = {"latitude": 22.6545, "longitude": 110.1543, "accuracy": 12.0, "address": "城站路12号"}


def at_local(day: str, clock: str = "12:00") -> datetime:
    """The naive UTC moment (as stored) of a local Asia/Shanghai time."""
    return datetime.fromisoformat(f"{day}T{clock}") - timedelta(hours=8)


# -- valid data of the shipped forms (after server/demo_samples.py) ----------------------------------

def given(data: dict) -> dict:
    """The data without the fields a test set to None (left out)."""
    return {k: v for k, v in data.items() if v is not None}


def incident(**over) -> dict:
    return given({"category": "municipal_facility", "urgency": "normal",
                  "description": "路口井盖破损，夜间存在跌落隐患", "occurred_at": "2026-11-20T08:40:00+08:00",
                  "location": WHERE, "source": "grid_patrol", **over})


def dispute(**over) -> dict:
    return given({"dispute_type": "neighbourhood",
                  "parties": [{"name": "刘建国", "role": "applicant"}, {"name": "唐海燕", "role": "respondent"}],
                  "description": "顶楼住户倾倒餐厨垃圾，底层厨房反复堵塞", "occurred_on": "2026-11-10",
                  "source": "screening", "risk_level": "low", **over})


def visit(**over) -> dict:
    return given({"visited_at": "2026-11-18T09:30:00+08:00", "met_resident": True, "head_name": "黄桂英",
                  "address": "城站路12号3栋2单元501", "topics": ["info_collection"], "has_issue": False,
                  "location": WHERE, **over})


def resource(**over) -> dict:
    return given({"category": "materials", "item": "小区健身器材", "description": "为小区活动场地申请一套健身器材",
                  "quantity": 1, "unit": "套", "amount": 38600.00, "beneficiaries": ["all_residents", "elderly"],
                  "beneficiary_count": 1200, "urgency": "normal",
                  "justification": "小区活动场地没有健身设施，居民希望配置",
                  "contact_name": "城站社区书记", "contact_phone": "13877560001", **over})


# -- the people and helpers -----------------------------------------------------------------------------

@pytest.fixture
def city(shipped, people):
    """The shipped forms and flows, and the people of the small tree (see tests/conftest.py)."""
    people.make("wgy", "grid_worker@G1")
    people.make("wgy2", "grid_worker@G2")
    people.make("xi", "grid_worker@G3")
    people.make("wgz", "grid_leader@G1")
    people.make("sq", "community_secretary@M1")
    people.make("tj", "mediator@M1")
    people.make("boss", "admin@C1")
    return people


def file(user: str, form: str, data: dict, grid: str = "G1", at: datetime | None = None) -> str:
    """File a case as the API does (its flow starts); optionally report it at a known UTC moment."""
    person = Person.get(Person.username == user)
    case, created = cases.submit(person, latest_form(form), node_by_code(grid), data)
    assert created
    stored = Submission.get_by_id(case.id).data
    assert sorted(k for k in data if k not in stored) == [], "the test data lost fields hidden by conditions"
    if at is not None:
        Submission.update(created_at=at, updated_at=at).where(Submission.id == case.id).execute()
    return case.id


def act(client, people, user: str, sid: str, action: str, **body) -> dict:
    """Act on the open task of a case that waits for `user`, through the API."""
    [task] = [t for t in Task.select().where((Task.submission == sid) & (Task.state == "open"))
              if user in {a.person.username for a in t.assignees if a.active}]
    response = client.post(f"/api/v1/tasks/{task.id}/actions", json={"action": action, **body},
                           headers=people.headers(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def pairs(params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, dict) else list(params)


def api_list(client, people, params, user: str = "boss"):
    return client.get("/api/v1/submissions?" + urlencode(pairs(params)), headers=people.headers(user))


def listed(client, people, params, user: str = "boss") -> list[str]:
    """The ids of every case an API list shows, in order (one page of up to 200)."""
    response = api_list(client, people, [*pairs(params), ("limit", "200")], user)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["next"] is None
    return [item["id"] for item in body["items"]]


def web_listed(browser, params) -> list[str]:
    """The ids of the cases the web list shows, in order."""
    response = browser.get("/reports/cases?" + urlencode(pairs(params)))
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return Page(response).case_ids()


def expect(client, people, named: dict[str, str], table, user: str = "boss", base=(), browser=None) -> None:
    """Check each (params, expected names) of a table: the API list shows exactly those cases.

    With a signed-in `browser`, the web list (which reads the same filters) is checked too, on every
    third row of the table and the last (each page costs a render).
    """
    back = {sid: name for name, sid in named.items()}
    wrong = []
    for i, (params, names) in enumerate(table):
        query = [*pairs(base), *pairs(params)]
        seen = [("api", listed(client, people, query, user))]
        if browser is not None and (i % 3 == 0 or i == len(table) - 1):
            seen.append(("web", web_listed(browser, query)))
        for where, got in seen:
            if len(got) != len(set(got)) or set(got) != {named[n] for n in names}:
                wrong.append((where, query, sorted(back.get(i, i) for i in got), sorted(names)))
    assert wrong == []


def refusal(client, people, params, user: str = "boss", status: int = 422) -> dict:
    response = api_list(client, people, params, user)
    assert response.status_code == status, response.get_json()
    return response.get_json()


# -- reading pages as a browser does -------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children: list = []

    def walk(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def all(self, tag: str, **attrs) -> list[Node]:
        return [n for n in self.walk() if n.tag == tag and all(n.attrs.get(k) == v for k, v in attrs.items())]

    def by_id(self, ident: str) -> Node | None:
        return next((n for n in self.walk() if n.attrs.get("id") == ident), None)

    def text(self) -> str:
        out = []
        for child in self.children:
            out.append(child.text() if isinstance(child, Node) else child)
        return "".join(out)


class Page(HTMLParser):
    """A page parsed into a small tree: elements by id, table rows, what its forms would send."""

    def __init__(self, response):
        super().__init__(convert_charrefs=True)
        self.html = response.get_data(as_text=True)
        self.root = Node("#root", [], None)
        self.here = self.root
        self.feed(self.html)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.here)
        self.here.children.append(node)
        if tag not in VOID:
            self.here = node

    def handle_startendtag(self, tag, attrs):
        self.here.children.append(Node(tag, attrs, self.here))

    def handle_endtag(self, tag):
        node = self.here
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.here = node.parent

    def handle_data(self, data):
        self.here.children.append(data)

    def by_id(self, ident: str) -> Node:
        node = self.root.by_id(ident)
        assert node is not None, f"no #{ident} on the page"
        return node

    def headers(self) -> list[str]:
        return [th.text().strip() for th in self.by_id("cases").all("th")]

    def rows(self) -> list[list[str]]:
        [body] = self.by_id("cases").all("tbody")
        return [[td.text().strip() for td in tr.all("td")] for tr in body.all("tr") if tr.all("a")]

    def case_ids(self) -> list[str]:
        [body] = self.by_id("cases").all("tbody")
        out = []
        for tr in body.all("tr"):
            links = [a.attrs["href"] for a in tr.all("a") if a.attrs.get("href", "").startswith("/submissions/")]
            if links:
                out.append(links[0].rsplit("/", 1)[1])
        return out

    def sent(self, form_id: str) -> list[tuple[str, str]]:
        """The (name, value) pairs a browser would send when the form is submitted as it stands."""
        out = []
        for node in self.by_id(form_id).walk():
            name = node.attrs.get("name")
            if not name or "disabled" in node.attrs:
                continue
            if node.tag == "input":
                kind = node.attrs.get("type", "text")
                if kind in ("checkbox", "radio"):
                    if "checked" in node.attrs:
                        out.append((name, node.attrs.get("value", "on")))
                elif kind not in ("submit", "button", "file"):
                    out.append((name, node.attrs.get("value", "")))
            elif node.tag == "select":
                options = node.all("option")
                chosen = [o for o in options if "selected" in o.attrs]
                if "multiple" not in node.attrs:  # a single select keeps its last selected option, else its first
                    chosen = chosen[-1:] or options[:1]
                out += [(name, o.attrs.get("value", o.text())) for o in chosen]
        return out

    def link_query(self, ident: str) -> list[tuple[str, str]]:
        href = self.by_id(ident).attrs["href"]
        return parse_qsl(urlsplit(href).query, keep_blank_values=True)


def filled(pairs_: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What a submitted filter form says: the pairs with a value."""
    return [(k, v) for k, v in pairs_ if v]


# -- typed filters -------------------------------------------------------------------------------------

def test_grid_filter_takes_the_whole_subtree_and_refuses_grids_out_of_scope(client, city, web):
    named = {
        "g1": file("wgy", "incident_report", incident()),
        "g2": file("wgy2", "incident_report", incident(), grid="G2"),
        "g3": file("xi", "incident_report", incident(), grid="G3"),
        "m1": file("sq", "resource_request", resource(), grid="M1"),
    }
    expect(client, city, named, [
        ({}, {"g1", "g2", "g3", "m1"}),
        ({"grid": "C1"}, {"g1", "g2", "g3", "m1"}),
        ({"grid": "M1"}, {"g1", "g2", "m1"}),
        ({"grid": "S1"}, {"g1", "g2", "m1"}),
        ({"grid": "G1"}, {"g1"}),
        ({"grid": "D2"}, {"g3"}),
        ({"grid": "G3"}, {"g3"}),
        ({"grid": " G2 "}, {"g2"}),
    ], browser=web.client("boss"))
    expect(client, city, named, [({"grid": "M1"}, {"g1", "g2", "m1"}), ({"grid": "G2"}, {"g2"})], user="sq")
    for user, code in (("wgy", "G3"), ("wgy", "M1"), ("wgy", "G2"), ("sq", "M2"), ("boss", "NOPE")):
        body = refusal(client, city, {"grid": code}, user)
        message = f"网格 {code} 不存在或不在您的管辖范围内"
        assert body["error"] == "invalid" and body["message"] == message
        assert body["errors"] == [{"path": "/grid", "message": message}]
    page = web.client("wgy").get("/reports/cases?grid=G3")
    assert page.status_code == 422
    shown = Page(page)
    assert "网格 G3 不存在或不在您的管辖范围内" in shown.by_id("list-error").text()
    assert shown.case_ids() == [] and named["g3"] not in shown.html


def test_status_and_outcome_filter_one_or_several(client, city, web):
    named = {
        "open": file("wgy", "incident_report", incident()),
        "rejected": file("wgy", "incident_report", incident()),
        "withdrawn": file("wgy", "incident_report", incident()),
        "returned": file("wgy", "incident_report", incident()),
        "visit": file("wgy", "door_knock_visit", visit()),  # the visit flow ends at once: resolved
        "unresolved": file("wgy", "incident_report", incident()),
    }
    act(client, city, "wgz", named["rejected"], "reject", comment="重复上报")
    # 解释说明后结案 (outcome unresolved) takes three unsatisfied follow-ups: a closed case is marked so instead
    act(client, city, "wgz", named["unresolved"], "reject", comment="解释说明后结案")
    Submission.update(outcome="unresolved").where(Submission.id == named["unresolved"]).execute()
    response = client.post(f"/api/v1/submissions/{named['withdrawn']}/actions", json={"action": "withdraw"},
                           headers=city.headers("wgy"))
    assert response.status_code == 200, response.get_json()
    act(client, city, "wgz", named["returned"], "return", to="submitter", comment="请补充照片")
    got = {name: (s.status, s.outcome) for name, s in
           ((n, Submission.get_by_id(sid)) for n, sid in named.items())}
    assert got == {"open": ("in_progress", None), "rejected": ("closed", "rejected"),
                   "withdrawn": ("withdrawn", "withdrawn"), "returned": ("returned", None),
                   "visit": ("closed", "resolved"), "unresolved": ("closed", "unresolved")}
    expect(client, city, named, [
        ({"status": "in_progress"}, {"open"}),
        ({"status": "closed"}, {"rejected", "visit", "unresolved"}),
        ([("status", "closed"), ("status", "withdrawn")], {"rejected", "visit", "unresolved", "withdrawn"}),
        ([("status", "returned"), ("status", "in_progress")], {"returned", "open"}),
        ({"status": "submitted"}, set()),
        ({"status": "done"}, set()),  # flows may name their own statuses: an unknown one matches nothing
        ([("status", "closed"), ("status", "finished")], {"rejected", "visit", "unresolved"}),
        ({"status": ""}, {"open", "rejected", "withdrawn", "returned", "visit", "unresolved"}),
        ({"outcome": "resolved"}, {"visit"}),
        ({"outcome": "rejected"}, {"rejected"}),
        ({"outcome": "withdrawn"}, {"withdrawn"}),
        ({"outcome": "unresolved"}, {"unresolved"}),
        ({"status": "closed", "outcome": "rejected"}, {"rejected"}),
        ({"form": "door_knock_visit"}, {"visit"}),
    ], browser=web.client("boss"))
    body = refusal(client, city, {"outcome": "solved"})
    assert body["message"] == "结果 solved 无效，可选：resolved、unresolved、rejected、withdrawn"
    assert body["errors"] == [{"path": "/outcome", "message": body["message"]}]


def test_step_and_assignee_filters_follow_the_open_tasks(client, city, web):
    named = {
        "triage": file("wgy", "incident_report", incident()),
        "grid": file("wgy", "incident_report", incident()),
        "mediation": file("wgy", "dispute_mediation", dispute()),
        "review": file("sq", "resource_request", resource()),
        "rejected": file("wgy", "incident_report", incident()),
    }
    act(client, city, "wgz", named["grid"], "handle_in_grid")
    act(client, city, "wgz", named["rejected"], "reject", comment="不属于受理范围")
    expect(client, city, named, [
        ({"step": "triage"}, {"triage"}),
        ({"step": "grid_handling"}, {"grid"}),
        ({"step": "community_mediation"}, {"mediation"}),
        ({"step": "community_review"}, {"review"}),
        ({"step": "close_confirm"}, set()),
        ({"assignee": "wgz"}, {"triage"}),
        ({"assignee": "wgy"}, {"grid"}),
        ({"assignee": "tj"}, {"mediation"}),
        ({"assignee": "sq"}, {"review"}),
        ({"assignee": "boss"}, set()),
        ({"assignee": "wgz", "step": "grid_handling"}, set()),
        ({"assignee": "wgy", "step": "grid_handling", "form": "incident_report"}, {"grid"}),
    ], browser=web.client("boss"))
    body = refusal(client, city, {"assignee": "nobody"})
    assert body["message"] == "没有用户 nobody" and body["errors"][0]["path"] == "/assignee"


def test_reported_and_closed_dates_are_local_days_inclusive(client, city, web):
    named = {
        "19 23:59": file("wgy", "incident_report", incident(), at=at_local("2026-11-19", "23:59:59")),
        "20 00:00": file("wgy", "incident_report", incident(), at=at_local("2026-11-20", "00:00")),
        "20 23:30": file("wgy", "incident_report", incident(), at=at_local("2026-11-20", "23:30")),
        "21 00:30": file("wgy", "incident_report", incident(), at=at_local("2026-11-21", "00:30")),
        "22 12:00": file("wgy", "incident_report", incident(), at=at_local("2026-11-22", "12:00")),
        # visits end at once (closed by their flow); they were reported on the 18th
        "closed 20 23:30": file("wgy", "door_knock_visit", visit(), at=at_local("2026-11-18", "09:00")),
        "closed 21 00:30": file("wgy", "door_knock_visit", visit(), at=at_local("2026-11-18", "09:00")),
        "closed 25": file("wgy", "door_knock_visit", visit(), at=at_local("2026-11-18", "09:00")),
    }
    for name, moment in (("closed 20 23:30", at_local("2026-11-20", "23:30")),
                         ("closed 21 00:30", at_local("2026-11-21", "00:30")),
                         ("closed 25", at_local("2026-11-25", "09:00"))):
        assert Submission.get_by_id(named[name]).closed_at is not None
        Submission.update(closed_at=moment).where(Submission.id == named[name]).execute()
    # 23:30 on the 20th in Asia/Shanghai is 15:30 UTC the same day; 00:30 on the 21st is 16:30 UTC on the 20th
    assert Submission.get_by_id(named["21 00:30"]).created_at == datetime(2026, 11, 20, 16, 30)
    closed = {"closed 20 23:30", "closed 21 00:30", "closed 25"}
    expect(client, city, named, [
        ({"from": "2026-11-20", "to": "2026-11-20"}, {"20 00:00", "20 23:30"}),
        ({"from": "2026-11-21", "to": "2026-11-21"}, {"21 00:30"}),
        ({"from": "2026-11-20"}, {"20 00:00", "20 23:30", "21 00:30", "22 12:00"}),
        ({"to": "2026-11-20"}, {"19 23:59", "20 00:00", "20 23:30", *closed}),
        ({"from": "2026-11-19", "to": "2026-11-21"}, {"19 23:59", "20 00:00", "20 23:30", "21 00:30"}),
        ({"from": "2026-11-23"}, set()),
        ({"to": "2026-11-17"}, set()),
        ({"closed_from": "2026-11-20", "closed_to": "2026-11-20"}, {"closed 20 23:30"}),
        ({"closed_from": "2026-11-21", "closed_to": "2026-11-21"}, {"closed 21 00:30"}),
        ({"closed_from": "2026-11-21"}, {"closed 21 00:30", "closed 25"}),
        ({"closed_to": "2026-11-24"}, {"closed 20 23:30", "closed 21 00:30"}),
        ({"closed_from": "2026-11-01", "closed_to": "2026-11-30"}, closed),
        ({"closed_from": "2026-11-20", "from": "2026-11-19"}, set()),
        ({"closed_to": "2026-11-20", "to": "2026-11-18"}, {"closed 20 23:30"}),
    ], browser=web.client("boss"))
    [item] = api_list(client, city, {"from": "2026-11-20", "to": "2026-11-20", "sort": "created_at",
                                     "limit": "1"}).get_json()["items"]
    assert item["created_at"] == "2026-11-20T00:00:00+08:00"
    for params, path, message in (
            ({"from": "2026-13-01"}, "/from", "from 应为日期，如 2024-05-01"),
            ({"to": "20.11.2026"}, "/to", "to 应为日期，如 2024-05-01"),
            ({"from": "2026-11-21", "to": "2026-11-20"}, "/to", "上报日期的结束日期早于开始日期"),
            ({"closed_from": "yesterday"}, "/closed_from", "closed_from 应为日期，如 2024-05-01"),
            ({"closed_from": "2026-11-21", "closed_to": "2026-11-01"}, "/closed_to", "办结日期的结束日期早于开始日期")):
        body = refusal(client, city, params)
        assert body["message"] == message and body["errors"] == [{"path": path, "message": message}]


def test_overdue_lists_cases_with_an_open_step_past_its_deadline(client, city, web):
    named = {
        "late": file("wgy", "incident_report", incident()),
        "in time": file("wgy", "incident_report", incident()),
        "late but done": file("wgy", "incident_report", incident()),
        "closed": file("wgy", "door_knock_visit", visit()),
    }
    past = utcnow() - timedelta(hours=2)
    for name in ("late", "late but done"):
        Task.update(due_at=past).where((Task.submission == named[name]) & (Task.state == "open")).execute()
    act(client, city, "wgz", named["late but done"], "handle_in_grid")  # the late step is done; the next is not late
    expect(client, city, named, [
        ({"overdue": "1"}, {"late"}),
        ({"overdue": "true"}, {"late"}),
        ({"overdue": "0"}, {"late", "in time", "late but done", "closed"}),
        ({"overdue": "1", "step": "triage"}, {"late"}),
    ], browser=(browser := web.client("boss")))
    page = Page(browser.get("/reports/cases?overdue=1"))
    [row] = page.by_id("cases").all("tbody")[0].all("tr", **{"class": "overdue"})
    assert "超期" in row.text() and named["late"] in str([a.attrs for a in row.all("a")])
    assert ("overdue", "1") in page.sent("filters")


def test_q_searches_the_text_of_the_data_but_never_sensitive_values(client, city, web):
    named = {
        "manhole": file("wgy", "incident_report", incident(description="城站路井盖破损，夜间有跌落隐患")),
        "garbage": file("wgy", "incident_report", incident(
            category="environment_sanitation", description="小区东门垃圾清运不及时", source="resident_report",
            is_anonymous=False, reporter_name="周秀兰", reporter_phone="13907751234")),
        "visit": file("wgy", "door_knock_visit", visit(head_name="陈志强")),
        "lights": file("wgy", "incident_report", incident(description="本楼50%的住户反映LED路灯不亮")),
    }
    expect(client, city, named, [
        ({"q": "井盖"}, {"manhole"}),
        ({"q": "周秀兰"}, {"garbage"}),
        ({"q": "陈志强"}, {"visit"}),
        ({"q": "城站路"}, {"manhole", "garbage", "visit", "lights"}),  # the address of the location of each
        ({"q": "城站路", "form": "door_knock_visit"}, {"visit"}),
        ({"q": "13907751234"}, set()),  # a masked phone number cannot be confirmed by searching
        ({"q": "1390775"}, set()),
        ({"q": "没有这个词"}, set()),
        ({"q": "led路灯"}, {"lights"}),  # Latin letters in any case
        ({"q": "50%"}, {"lights"}),  # % and _ are plain characters, not wildcards
        ({"q": "%"}, {"lights"}),
        ({"q": "5_%"}, set()),
        ({"q": "路%灯"}, set()),
        ({"q": "grid_patrol"}, {"manhole", "lights"}),  # a choice is found by its stored value
        ({"q": "  井盖  "}, {"manhole"}),
    ], browser=web.client("boss"))


# -- form-field filters of the shipped forms ---------------------------------------------------------------

def test_incident_report_field_filters(client, city, web):
    named = {
        "fire": file("wgy", "incident_report", incident(
            category="fire_safety", description="楼道堆放杂物，堵塞消防通道", involved_households=5,
            occurred_at="2026-11-20T08:40:00+08:00", source="resident_report", is_anonymous=True)),
        "garbage": file("wgy", "incident_report", incident(
            category="environment_sanitation", urgency="urgent", description="小区东门垃圾清运不及时",
            occurred_at="2026-11-20T23:30:00+08:00", involved_households=120, source="resident_report",
            is_anonymous=False, reporter_name="周秀兰", reporter_phone="13907751234")),
        "manhole": file("wgy", "incident_report", incident(
            occurred_at="2026-11-21T00:10:00+08:00", involved_households=30, source="hotline", is_anonymous=False)),
        "wall": file("wgy", "incident_report", incident(
            category="work_safety", urgency="urgent", description="废旧厂房墙体开裂，有倒塌危险",
            occurred_at="2026-11-19T16:20:00+08:00")),
        "other form": file("wgy", "door_knock_visit", visit()),
    }
    expect(client, city, named, [
        ({}, {"fire", "garbage", "manhole", "wall"}),
        # a choice: equal, one of
        ({"f.category": "fire_safety"}, {"fire"}),
        ([("f.category", "fire_safety"), ("f.category", "work_safety")], {"fire", "wall"}),
        ({"f.urgency": "urgent"}, {"garbage", "wall"}),
        ({"f.urgency": "critical"}, set()),
        ({"f.source": "hotline"}, {"manhole"}),
        # a number: equal, from, to, between
        ({"f.involved_households": "120"}, {"garbage"}),
        ({"f.involved_households": "120.0"}, {"garbage"}),
        ({"f.involved_households.min": "30"}, {"garbage", "manhole"}),
        ({"f.involved_households.max": "30"}, {"fire", "manhole"}),
        ({"f.involved_households.min": "5", "f.involved_households.max": "30"}, {"fire", "manhole"}),
        ({"f.involved_households.min": "6", "f.involved_households.max": "29"}, set()),
        # a date-time, by local date: 23:30 on the 20th belongs to the 20th
        ({"f.occurred_at": "2026-11-20"}, {"fire", "garbage"}),
        ({"f.occurred_at.min": "2026-11-20"}, {"fire", "garbage", "manhole"}),
        ({"f.occurred_at.max": "2026-11-20"}, {"fire", "garbage", "wall"}),
        ({"f.occurred_at.min": "2026-11-21", "f.occurred_at.max": "2026-11-21"}, {"manhole"}),
        # text: contains, equal
        ({"f.description.has": "消防"}, {"fire"}),
        ({"f.description.has": "隐患"}, {"manhole"}),
        ({"f.reporter_name": "周秀兰"}, {"garbage"}),
        ({"f.reporter_name.has": "秀"}, {"garbage"}),
        # a yes/no field
        ({"f.is_anonymous": "true"}, {"fire"}),
        ({"f.is_anonymous": "false"}, {"garbage", "manhole"}),
        ([("f.is_anonymous", "true"), ("f.is_anonymous", "false")], {"fire", "garbage", "manhole"}),
        # several at once, with typed filters
        ({"f.category": "environment_sanitation", "f.urgency": "urgent", "f.involved_households.min": "100"},
         {"garbage"}),
        ({"f.urgency": "urgent", "q": "厂房"}, {"wall"}),
        ({"f.category": "fire_safety", "f.urgency": "urgent"}, set()),
        # an empty value is no filter
        ({"f.category": "", "f.involved_households.min": ""}, {"fire", "garbage", "manhole", "wall"}),
    ], base={"form": "incident_report"}, browser=web.client("boss"))


def test_dispute_mediation_field_filters(client, city, web):
    named = {
        "neighbours": file("tj", "dispute_mediation", dispute(
            occurred_on="2026-11-10", risk_level="medium", has_extreme_behavior=False,
            risk_factors=["long_standing"], involved_people=2)),
        "property": file("tj", "dispute_mediation", dispute(
            dispute_type="property_management", occurred_on="2026-11-05", source="party_application",
            amount=86400.00, involved_people=300, risk_level="high", has_extreme_behavior=True,
            risk_factors=["group", "threat"], police_needed=True)),
        "wages": file("tj", "dispute_mediation", dispute(
            dispute_type="labour", occurred_on="2026-11-12", amount=1500.5, description="工地拖欠农民工工资三个月",
            risk_level="medium", has_extreme_behavior=False, risk_factors=["group", "petition"],
            police_needed=False)),
        "debt": file("tj", "dispute_mediation", dispute(
            dispute_type="contract_debt", occurred_on="2026-11-01", description="邻居借款两万元到期不还")),
    }
    expect(client, city, named, [
        ({"f.dispute_type": "labour"}, {"wages"}),
        ([("f.dispute_type", "labour"), ("f.dispute_type", "neighbourhood")], {"wages", "neighbours"}),
        ({"f.risk_level": "low"}, {"debt"}),
        ([("f.risk_level", "medium"), ("f.risk_level", "high")], {"neighbours", "property", "wages"}),
        # a date: equal, from, to, between (inclusive)
        ({"f.occurred_on": "2026-11-05"}, {"property"}),
        ({"f.occurred_on.min": "2026-11-06", "f.occurred_on.max": "2026-11-12"}, {"neighbours", "wages"}),
        ({"f.occurred_on.min": "2026-11-10"}, {"neighbours", "wages"}),
        ({"f.occurred_on.max": "2026-11-10"}, {"debt", "property", "neighbours"}),
        ({"f.occurred_on.min": "2026-11-13"}, set()),
        # a decimal number (cases without one are left out of a range)
        ({"f.amount.min": "1000"}, {"property", "wages"}),
        ({"f.amount.max": "1500.5"}, {"wages"}),
        ({"f.amount.max": "1500.49"}, set()),
        ({"f.amount": "1500.50"}, {"wages"}),
        ({"f.involved_people.min": "2", "f.involved_people.max": "2"}, {"neighbours"}),
        # a checkbox list: contains one of
        ({"f.risk_factors": "group"}, {"property", "wages"}),
        ({"f.risk_factors": "threat"}, {"property"}),
        ([("f.risk_factors", "long_standing"), ("f.risk_factors", "petition")], {"neighbours", "wages"}),
        ({"f.risk_factors": "vulnerable"}, set()),
        # yes/no
        ({"f.has_extreme_behavior": "true"}, {"property"}),
        ({"f.has_extreme_behavior": "false"}, {"neighbours", "wages"}),
        ({"f.police_needed": "true"}, {"property"}),
        ({"f.police_needed": "false"}, {"wages"}),
        ({"f.description.has": "工资"}, {"wages"}),
    ], base={"form": "dispute_mediation"}, browser=web.client("boss"))


def test_door_knock_visit_field_filters(client, city, web):
    named = {
        "morning": file("wgy", "door_knock_visit", visit(
            visited_at="2026-11-18T09:30:00+08:00", topics=["info_collection", "policy_publicity"],
            policy_items=["pension", "anti_fraud"], registered_count=1, resident_count=1)),
        "late evening": file("wgy", "door_knock_visit", visit(
            visited_at="2026-11-18T23:45:00+08:00", head_name="陈志强", address="大北路88号1栋302",
            topics=["info_collection", "dispute_screening", "hazard_report"], registered_count=4,
            resident_count=3)),
        "next day": file("wgy", "door_knock_visit", visit(
            visited_at="2026-11-19T10:00:00+08:00", met_resident=False, head_name="李国庆", address="福西村三组15号",
            topics=None)),
    }
    # the visit nobody answered has no topics (they are asked only when the resident was met)
    assert "topics" not in Submission.get_by_id(named["next day"]).data
    expect(client, city, named, [
        ({"f.topics": "policy_publicity"}, {"morning"}),
        ({"f.topics": "info_collection"}, {"morning", "late evening"}),
        ([("f.topics", "hazard_report"), ("f.topics", "dispute_screening")], {"late evening"}),
        ([("f.topics", "hazard_report"), ("f.topics", "policy_publicity")], {"morning", "late evening"}),
        ({"f.topics": "livelihood_service"}, set()),
        ({"f.policy_items": "anti_fraud"}, {"morning"}),
        ({"f.visited_at": "2026-11-18"}, {"morning", "late evening"}),
        ({"f.visited_at.min": "2026-11-19"}, {"next day"}),
        ({"f.visited_at.max": "2026-11-18"}, {"morning", "late evening"}),
        ({"f.visited_at.min": "2026-11-17", "f.visited_at.max": "2026-11-19"}, {"morning", "late evening",
                                                                                 "next day"}),
        ({"f.met_resident": "false"}, {"next day"}),
        ({"f.met_resident": "true"}, {"morning", "late evening"}),
        ({"f.has_issue": "false"}, {"morning", "late evening", "next day"}),
        ({"f.head_name.has": "国"}, {"next day"}),
        ({"f.address.has": "大北路"}, {"late evening"}),
        ({"f.registered_count.min": "2"}, {"late evening"}),
        ({"f.resident_count": "1"}, {"morning"}),
    ], base={"form": "door_knock_visit"}, browser=web.client("boss"))


def test_resource_request_field_filters(client, city, web):
    named = {
        "gym": file("sq", "resource_request", resource(expected_date="2026-12-31", deliberated=True)),
        "tutoring": file("sq", "resource_request", resource(
            category="personnel_service", item="四点半课堂志愿辅导", quantity=4, unit="人", amount=0,
            beneficiaries=["children"], beneficiary_count=45)),
        "funds": file("sq", "resource_request", resource(
            category="funds", item="老旧小区路灯维修资金", amount=5000, beneficiaries=["all_residents"],
            quantity=None, unit=None, beneficiary_count=80,
            urgency="urgent", expected_date="2026-12-01", deliberated=False)),
    }
    expect(client, city, named, [
        ({"f.amount": "0"}, {"tutoring"}),
        ({"f.amount.min": "5000"}, {"gym", "funds"}),
        ({"f.amount.max": "5000"}, {"tutoring", "funds"}),
        ({"f.amount.min": "0", "f.amount.max": "0"}, {"tutoring"}),
        ({"f.expected_date.max": "2026-12-15"}, {"funds"}),
        ({"f.expected_date.min": "2026-12-01", "f.expected_date.max": "2026-12-31"}, {"gym", "funds"}),
        ({"f.expected_date": "2026-12-31"}, {"gym"}),
        ({"f.beneficiaries": "elderly"}, {"gym"}),
        ({"f.beneficiaries": "all_residents"}, {"gym", "funds"}),
        ([("f.beneficiaries", "children"), ("f.beneficiaries", "elderly")], {"gym", "tutoring"}),
        ({"f.category": "funds"}, {"funds"}),
        ({"f.urgency": "normal"}, {"gym", "tutoring"}),
        ({"f.item.has": "课堂"}, {"tutoring"}),
        ({"f.deliberated": "true"}, {"gym"}),
        ({"f.deliberated": "false"}, {"funds"}),
        ({"f.beneficiary_count.min": "1000"}, {"gym"}),
    ], base={"form": "resource_request"}, user="sq", browser=web.client("sq"))


GROUP_FORM = {
    "key": "household_check",
    "title": "住户核查",
    "schema": {
        "type": "object",
        "required": ["household"],
        "properties": {
            "household": {
                "type": "object", "title": "住户",
                "required": ["head"],
                "properties": {
                    "head": {"type": "string", "title": "户主"},
                    "size": {"type": "integer", "title": "人口数", "minimum": 1},
                    "kind": {"type": "string", "title": "户别", "oneOf": [
                        {"const": "family", "title": "家庭户"}, {"const": "collective", "title": "集体户"}]},
                    "moved_in": {"type": "string", "format": "date", "title": "入住日期"},
                    "renting": {"type": "boolean", "title": "是否租住"},
                    "phone": {"type": "string", "format": "cn-mobile", "title": "户主电话", "x-sensitive": True},
                },
            },
            "note": {"type": "string", "title": "备注"},
        },
    },
    "ui": {"ui:columns": ["household.head", "household.kind", "household.size", "household.phone"]},
}


def test_fields_inside_a_group_are_filtered_by_their_dotted_path(client, city, web):
    # none of the shipped forms has a (non-repeating) group of fields: a small form has one
    publish("form", GROUP_FORM)
    named = {
        "wang": file("wgy", "household_check", {"household": {
            "head": "王建军", "size": 4, "kind": "family", "moved_in": "2020-05-01", "renting": False,
            "phone": "13812345678"}}),
        "dorm": file("wgy", "household_check", {"household": {
            "head": "城站小区员工宿舍", "size": 12, "kind": "collective", "moved_in": "2023-09-01", "renting": True}}),
        "li": file("wgy", "household_check", {"household": {"head": "李秀兰", "size": 1}}),
    }
    expect(client, city, named, [
        ({"f.household.kind": "family"}, {"wang"}),
        ([("f.household.kind", "family"), ("f.household.kind", "collective")], {"wang", "dorm"}),
        ({"f.household.size.min": "2"}, {"wang", "dorm"}),
        ({"f.household.size.max": "4"}, {"wang", "li"}),
        ({"f.household.size": "12"}, {"dorm"}),
        ({"f.household.head.has": "秀兰"}, {"li"}),
        ({"f.household.moved_in.min": "2021-01-01"}, {"dorm"}),
        ({"f.household.renting": "true"}, {"dorm"}),
        ({"f.household.renting": "false"}, {"wang"}),
    ], base={"form": "household_check"}, browser=(browser := web.client("boss")))
    body = refusal(client, city, {"form": "household_check", "f.household.phone": "13812345678"})
    assert body["message"] == "「户主电话」是敏感信息，不能按它筛选"
    assert body["errors"] == [{"path": "/f.household.phone", "message": body["message"]}]
    for name in ("f.household", "f.size", "f.household.nope"):
        body = refusal(client, city, {"form": "household_check", name: "1"})
        assert body["errors"][0]["path"] == f"/{name}" and name[2:] in body["message"]
    page = Page(browser.get("/reports/cases?form=household_check&f.household.renting=false"))
    assert page.headers() == ["上报时间", "户主", "户别", "人口数", "户主电话", "网格", "状态", "当前环节", "上报人"]
    assert [row[1:5] for row in page.rows()] == [["王建军", "家庭户", "4", "138****5678"]]  # a list masks
    assert "13812345678" not in page.html
    assert ("f.household.renting", "false") in page.sent("filters")
    assert ("f.household.renting", "true") not in page.sent("filters")
    assert "f.household.phone" not in page.html  # a sensitive field is never offered as a filter


def test_a_date_time_sent_in_utc_is_filtered_by_its_local_date(client, city):
    named = {
        # 2026-11-19T16:30Z is 2026-11-20 00:30 in Asia/Shanghai; 2026-11-20T15:30Z is 2026-11-20 23:30
        "just after midnight": file("wgy", "incident_report", incident(occurred_at="2026-11-19T16:30:00Z")),
        "late evening": file("wgy", "incident_report", incident(occurred_at="2026-11-20T15:30:00+00:00")),
        "day before": file("wgy", "incident_report", incident(occurred_at="2026-11-19T15:30:00Z")),
    }
    expect(client, city, named, [
        ({"f.occurred_at": "2026-11-20"}, {"just after midnight", "late evening"}),
        ({"f.occurred_at": "2026-11-19"}, {"day before"}),
    ], base={"form": "incident_report"})


# -- refusals ------------------------------------------------------------------------------------------------

REFUSALS = [
    # (query, the parameter named in the error, the message: Chinese, naming the field by its title or name)
    ({"form": "incident_report", "f.nope": "1"}, "/f.nope", "表单中没有可筛选的字段 nope"),
    ({"form": "incident_report", "f.involved_households.between": "1"}, "/f.involved_households.between",
     "表单中没有可筛选的字段 involved_households.between"),
    ({"form": "incident_report", "f.location.address.has": "城站"}, "/f.location.address.has",
     "表单中没有可筛选的字段 location.address.has"),
    ({"form": "incident_report", "f.photos": "x"}, "/f.photos", "表单中没有可筛选的字段 photos"),
    ({"form": "door_knock_visit", "f.members.name": "黄桂英"}, "/f.members.name",
     "表单中没有可筛选的字段 members.name"),
    ({"form": "incident_report", "f.reporter_phone": "13907751234"}, "/f.reporter_phone",
     "「反映人联系电话」是敏感信息，不能按它筛选"),
    ({"form": "door_knock_visit", "f.phone.has": "139"}, "/f.phone.has", "「户主联系电话」是敏感信息，不能按它筛选"),
    ({"form": "door_knock_visit", "f.special_groups": "elderly_alone"}, "/f.special_groups",
     "「特殊群体」是敏感信息，不能按它筛选"),
    ({"form": "door_knock_visit", "f.per_capita_income.min": "1000"}, "/f.per_capita_income.min",
     "「家庭年人均纯收入（元，估算）」是敏感信息，不能按它筛选"),
    ({"form": "incident_report", "f.involved_households.min": "10", "f.involved_households.max": "5"},
     "/f.involved_households.min", "「涉及户数」的上限小于下限"),
    ({"form": "dispute_mediation", "f.occurred_on.min": "2026-11-10", "f.occurred_on.max": "2026-11-01"},
     "/f.occurred_on.min", "「纠纷发生日期」的上限小于下限"),
    ({"form": "incident_report", "f.involved_households": "十二"}, "/f.involved_households", "「涉及户数」应填数字"),
    ({"form": "resource_request", "f.amount.min": "5k"}, "/f.amount.min", "「金额（元）」应填数字"),
    ({"form": "incident_report", "f.category": "fire"}, "/f.category", "「事件类别」没有选项 fire"),
    ({"form": "incident_report", "f.is_anonymous": "yes"}, "/f.is_anonymous", "「反映人是否要求匿名」没有选项 yes"),
    ({"form": "door_knock_visit", "f.topics": "gossip"}, "/f.topics", "「走访事项」没有选项 gossip"),
    ({"form": "incident_report", "f.description.min": "3"}, "/f.description.min", "「事件描述」不能按范围筛选"),
    ({"form": "incident_report", "f.category.has": "fire"}, "/f.category.has", "「事件类别」不能按“包含”筛选"),
    ({"f.category": "fire_safety"}, "/f.category", "按表单内容筛选时须先选定表单（form）"),
    ({"form": "no_such_form", "f.category": "fire_safety"}, "/f.category", "没有表单 no_such_form"),
    ({"form": "dispute_mediation", "f.occurred_on": "2026-02-30"}, "/f.occurred_on",
     "「纠纷发生日期」应为日期，如 2024-05-01"),
    ({"form": "incident_report", "f.occurred_at.min": "2026/11/20"}, "/f.occurred_at.min",
     "「发生（发现）时间」应为日期，如 2024-05-01"),
    ({"form": "resource_request", "f.expected_date.max": "明天"}, "/f.expected_date.max",
     "「期望到位日期」应为日期，如 2024-05-01"),
    ({"from": "2026-11-31"}, "/from", "from 应为日期，如 2024-05-01"),
    ({"outcome": "closed"}, "/outcome", "结果 closed 无效，可选：resolved、unresolved、rejected、withdrawn"),
    ({"sort": "name"}, "/sort", "排序 name 无效，可选：-created_at、created_at、-updated_at、updated_at"),
    ({"sort": "created_at desc"}, "/sort", "排序 created_at desc 无效"),
]


def test_bad_filters_are_refused_in_chinese_naming_the_field(client, city, web):
    file("wgy", "incident_report", incident())
    browser = web.client("boss")
    wrong = []
    for params, path, message in REFUSALS:
        body = refusal(client, city, params)
        if not (body["error"] == "invalid" and body["message"].startswith(message) and CHINESE.search(message)
                and body["errors"] == [{"path": path, "message": body["message"]}]):
            wrong.append(("api", params, body))
        # the web page says the same above the filter form, lists nothing and offers no export
        page = browser.get("/reports/cases?" + urlencode(params))
        shown = Page(page)
        error = shown.root.by_id("list-error")
        if not (page.status_code == 422 and error is not None and body["message"] in error.text()
                and shown.by_id("filters").tag == "form" and shown.case_ids() == []
                and shown.root.by_id("export-xlsx") is None):
            wrong.append(("web", params, page.status_code, error and error.text()))
    assert wrong == []


def test_nan_and_infinity_are_not_numbers_to_filter_by(client, city):
    file("wgy", "incident_report", incident(involved_households=5))
    wrong = []
    for raw in ("nan", "inf", "-Infinity", "1e400"):
        response = api_list(client, city, {"form": "incident_report", "f.involved_households.min": raw})
        if response.status_code != 422 or response.get_json().get("message") != "「涉及户数」应填数字":
            wrong.append((raw, response.status_code, response.get_json()))
    assert wrong == []


# -- orders and keyset pages ---------------------------------------------------------------------------------

def test_every_order_pages_through_all_cases_without_gaps_or_repeats(client, city):
    created = [at_local("2026-11-20", "09:00")] * 3 + [at_local("2026-11-20", "10:00")] * 2 + [
        at_local("2026-11-19", "08:00"), at_local("2026-11-21", "08:00"), at_local("2026-11-20", "09:00:00.000001")]
    updated = [at_local("2026-11-22", "12:00")] * 2 + [at_local("2026-11-21", f"{h:02d}:00") for h in range(6)]
    sids = []
    for made, touched in zip(created, updated, strict=True):
        sid = file("wgy", "incident_report", incident())
        Submission.update(created_at=made, updated_at=touched).where(Submission.id == sid).execute()
        sids.append(sid)
    file("xi", "incident_report", incident(), grid="G3")  # out of wgy's scope: never on wgy's pages
    rows = {sid: (created[i], updated[i]) for i, sid in enumerate(sids)}
    expected = {
        "-created_at": sorted(sids, key=lambda s: (rows[s][0], s), reverse=True),
        "created_at": sorted(sids, key=lambda s: (rows[s][0], s)),
        "-updated_at": sorted(sids, key=lambda s: (rows[s][1], s), reverse=True),
        "updated_at": sorted(sids, key=lambda s: (rows[s][1], s)),
    }
    cursors = {}
    for sort, want in expected.items():
        for limit in (1, 2, 3, 8):
            seen, cursor, pages = [], None, 0
            while True:
                params = {"sort": sort, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
                response = api_list(client, city, params, "wgy")
                assert response.status_code == 200, response.get_json()
                body = response.get_json()
                assert 1 <= len(body["items"]) <= limit
                seen += [item["id"] for item in body["items"]]
                pages += 1
                cursor = body["next"]
                if cursor is None:
                    break
                cursors[sort] = cursor
                assert pages < 20
            assert seen == want, (sort, limit)
            assert pages == -(-len(sids) // limit)
    default = [item["id"] for item in api_list(client, city, {"limit": "200"}, "wgy").get_json()["items"]]
    assert default == expected["-created_at"]
    for made_for, cursor in cursors.items():
        for other in expected:
            response = api_list(client, city, {"sort": other, "cursor": cursor}, "wgy")
            if other == made_for:
                assert response.status_code == 200
            else:
                assert response.status_code == 400, (made_for, other)
                body = response.get_json()
                assert body["error"] == "bad_cursor" and body["message"] == "分页游标 cursor 无效，请从第一页重新开始"
    for cursor in ("garbage", "eyJ4IjoxfQ", cursors["created_at"][:-4]):  # not ours, or cut short
        response = api_list(client, city, {"cursor": cursor}, "wgy")
        assert response.status_code == 400 and response.get_json()["error"] == "bad_cursor"
    assert api_list(client, city, {"cursor": ""}, "wgy").status_code == 200  # an empty cursor: the first page
    for raw in ("0", "201", "-1", "ten", "1.5", ""):
        body = refusal(client, city, {"limit": raw}, "wgy")
        assert body["errors"] == [{"path": "/limit", "message": "limit 应为 1 到 200 之间的整数"}]


def test_web_list_pages_with_next_page_links_that_keep_the_filters(client, city, web, app):
    app.config["PAGE_SIZE"] = 2
    sids = [file("wgy", "incident_report", incident(category="fire_safety"),
                 at=at_local("2026-11-20", "09:00") if i < 3 else at_local("2026-11-20", f"1{i}:00"))
            for i in range(5)]
    file("wgy", "incident_report", incident(category="work_safety"), at=at_local("2026-11-20", "11:30"))
    browser = web.client("boss")
    filters = [("grid", "M1"), ("form", "incident_report"), ("from", "2026-11-20"), ("to", "2026-11-20"),
               ("f.category", "fire_safety"), ("sort", "created_at")]
    want = sorted(sids, key=lambda s: (Submission.get_by_id(s).created_at, s))
    seen, url, pages = [], "/reports/cases?" + urlencode(filters), 0
    while url:
        page = Page(browser.get(url))
        seen += page.case_ids()
        pages += 1
        link = page.root.by_id("next-page")
        if link is None:
            break
        query = page.link_query("next-page")
        assert sorted(k for k, _ in query if k != "cursor") == sorted(k for k, _ in filters)
        assert sorted(p for p in query if p[0] != "cursor") == sorted(filters)
        assert [k for k, _ in query].count("cursor") == 1 and query[-1][0] == "cursor"
        url = link.attrs["href"]
        assert url.startswith("/reports/cases?")
    assert seen == want and pages == 3
    # the API walks the same pages with the cursors of the web list
    body = api_list(client, city, [*filters, ("limit", "2")]).get_json()
    assert [i["id"] for i in body["items"]] == want[:2]
    last = Page(browser.get("/reports/cases?" + urlencode(filters + [("cursor", body["next"])])))
    assert last.case_ids() == want[2:4]
    bad = browser.get("/reports/cases?" + urlencode([("sort", "-updated_at"), ("cursor", body["next"])]))
    assert bad.status_code in (400, 422)
    assert "分页游标 cursor 无效" in Page(bad).by_id("list-error").text()


# -- scope and masking ----------------------------------------------------------------------------------------

def test_lists_keep_to_the_viewers_scope_and_the_cases_in_their_hands(client, city, web):
    moved = file("wgy", "incident_report", incident(description="井盖破损，网格调整后归西一社区"))
    assert {a.person.username for t in Task.select().where(Task.submission == moved) for a in t.assignees} == {"wgz"}
    # the grids are reorganised: G1's open cases go to G3; the case's step still waits for wgz (of G1)
    assert move_open_cases(Person.get(Person.username == "boss"), node_by_code("G1"), node_by_code("G3")) == 1
    named = {
        "moved": moved,
        "g1": file("wgy", "incident_report", incident()),
        "g3": file("xi", "incident_report", incident(), grid="G3"),
        "closed": file("wgy", "door_knock_visit", visit()),
    }
    expect(client, city, named, [({}, {"g1", "closed"}), ({"grid": "G1"}, {"g1", "closed"})],
           user="wgy", browser=web.client("wgy"))
    expect(client, city, named, [({}, {"g3", "moved"})], user="xi")
    expect(client, city, named, [({}, {"g1", "closed", "moved"}), ({"assignee": "wgz"}, {"g1", "moved"}),
                                 ({"step": "triage"}, {"g1", "moved"}), ({"grid": "G1"}, {"g1", "closed"})],
           user="wgz", browser=web.client("wgz"))
    expect(client, city, named, [({}, {"g1", "closed"}), ({"grid": "M1"}, {"g1", "closed"})], user="sq")
    expect(client, city, named, [({}, {"g1", "g3", "moved", "closed"}), ({"grid": "G3"}, {"g3", "moved"})])
    assert refusal(client, city, {"grid": "G3"}, "wgz")["errors"][0]["path"] == "/grid"


def test_lists_mask_sensitive_fields_even_for_roles_that_see_them(client, city, web):
    sid = file("wgy", "incident_report", incident(
        category="environment_sanitation", description="小区东门垃圾清运不及时", source="resident_report",
        is_anonymous=False, reporter_name="周秀兰", reporter_phone="13907751234"))
    vid = file("wgy", "door_knock_visit", visit(phone="13877561234", special_groups=["elderly_alone"],
                                                 special_group_notes="独居，子女每月回来一次"))
    card = id_card("450902", "19700815", "035")
    did = file("tj", "dispute_mediation", dispute(parties=[
        {"name": "刘建国", "role": "applicant", "id_card": card, "phone": "13807751111"},
        {"name": "唐海燕", "role": "respondent"}]))
    for user in ("sq", "wgy", "tj", "boss"):
        items = {i["id"]: i for i in api_list(client, city, {"limit": "10"}, user).get_json()["items"]}
        assert items[sid]["data"]["reporter_phone"] == "139****1234"
        assert items[vid]["data"]["phone"] == "138****1234"
        [party, _] = items[did]["data"]["parties"]
        assert party["phone"] == "138****1111" and party["id_card"] == card[:4] + "*" * 10 + card[-4:]
        assert party["name"] == "刘建国"
        assert "13907751234" not in str(items) and "13877561234" not in str(items) and card not in str(items)
        assert "独居，子女每月回来一次" not in str(items) and "elderly_alone" not in str(items)
        assert items[sid]["data"]["reporter_name"] == "周秀兰"
        assert items[vid]["data"]["head_name"] == "黄桂英"
    browser = web.client("sq")
    for form in ("incident_report", "door_knock_visit", "dispute_mediation", ""):
        html = browser.get(f"/reports/cases?form={form}").get_data(as_text=True)
        assert "13907751234" not in html and "13877561234" not in html and "独居，子女每月回来一次" not in html
        assert card not in html and "13807751111" not in html
    # the case page itself shows them in full to the community secretary (a role that sees them)
    detail = client.get(f"/api/v1/submissions/{sid}", headers=city.headers("sq")).get_json()
    assert detail["data"]["reporter_phone"] == "13907751234"


# -- the web page: columns and the filter form ----------------------------------------------------------------

def test_per_form_columns_show_titles_and_option_labels(client, city, web):
    sid = file("wgy", "incident_report", incident(category="fire_safety", urgency="urgent",
                                                  description="楼道堆放杂物，堵塞消防通道",
                                                  occurred_at="2026-11-20T23:30:00+08:00"),
               at=at_local("2026-11-21", "08:15"))
    vid = file("wgy", "door_knock_visit", visit(topics=["info_collection", "policy_publicity"],
                                                policy_items=["pension"]), at=at_local("2026-11-18", "10:00"))
    browser = web.client("boss")
    page = Page(browser.get("/reports/cases?form=incident_report"))
    assert page.headers() == ["上报时间", "事件类别", "紧急程度", "发生（发现）时间", "事件描述",
                              "网格", "状态", "当前环节", "上报人"]
    assert page.case_ids() == [sid]
    [row] = page.rows()
    assert row[:5] == ["2026-11-21 08:15", "消防安全", "紧急", "2026-11-20 23:30", "楼道堆放杂物，堵塞消防通道"]
    assert row[5] == "东一社区第一网格" and row[6] == "办理中" and row[7].startswith("网格长分级分流（")
    assert "fire_safety" not in page.by_id("cases").text() and "urgent" not in page.by_id("cases").text()
    page = Page(browser.get("/reports/cases?form=door_knock_visit"))
    assert page.headers() == ["上报时间", "走访时间", "户主姓名", "门牌/住址", "走访事项", "是否发现问题或隐患",
                              "网格", "状态", "当前环节", "上报人"]
    [row] = page.rows()
    assert row[1:6] == ["2026-11-18 09:30", "黄桂英", "城站路12号3栋2单元501", "基础信息采集、法规政策宣传", "否"]
    assert page.case_ids() == [vid]
    page = Page(browser.get("/reports/cases"))
    assert page.headers() == ["上报时间", "表单", "网格", "状态", "当前环节", "上报人"]
    assert [row[:2] for row in page.rows()] == [["2026-11-21 08:15", "事件上报"],
                                                ["2026-11-18 10:00", "敲门行动·入户走访"]]
    assert page.case_ids() == [sid, vid]


def test_the_filter_form_keeps_the_chosen_values_and_the_export_links_carry_them(client, city, web, app):
    app.config["PAGE_SIZE"] = 1
    a = file("wgy", "incident_report", incident(category="fire_safety", involved_households=8,
                                                description="楼道堆放杂物，堵塞消防通道", source="resident_report",
                                                is_anonymous=True), at=at_local("2026-11-20", "09:00"))
    b = file("wgy", "incident_report", incident(category="dispute", involved_households=3,
                                                description="邻里因停车位堵塞消防通道发生争执",
                                                source="resident_report", is_anonymous=True),
             at=at_local("2026-11-20", "10:00"))
    file("wgy", "incident_report", incident(category="dispute", involved_households=3,
                                            description="其他事情需要处理"))
    chosen = [("form", "incident_report"), ("grid", "M1"), ("status", "in_progress"), ("step", "triage"),
              ("assignee", "wgz"), ("from", "2026-11-20"), ("to", "2026-11-20"), ("q", "消防"),
              ("sort", "created_at"), ("f.category", "fire_safety"), ("f.category", "dispute"),
              ("f.involved_households.min", "1"), ("f.involved_households.max", "10"),
              ("f.description.has", "堵塞"), ("f.is_anonymous", "true"), ("f.occurred_at.min", "2026-11-01")]
    browser = web.client("boss")
    response = browser.get("/reports/cases?" + urlencode(chosen))
    assert response.status_code == 200
    page = Page(response)
    assert page.case_ids() == [a]
    # submitting the form as it stands asks for the same list
    assert sorted(filled(page.sent("filters"))) == sorted(chosen)
    assert "open" in page.by_id("filters").all("details")[0].attrs
    for ident in ("export-xlsx", "export-csv"):
        assert sorted(page.link_query(ident)) == sorted(chosen)
    assert page.by_id("export-xlsx").attrs["href"].startswith("/reports/cases.xlsx?")
    assert page.by_id("export-csv").attrs["href"].startswith("/reports/cases.csv?")
    assert page.by_id("list-filters").text() == (
        "筛选条件：网格：东一社区；表单：事件上报；状态：办理中；当前环节：triage；经办人：wgz；"
        "上报日期：2026-11-20 至 2026-11-20；关键词：消防；事件类别：消防安全、矛盾纠纷；事件描述：包含“堵塞”；"
        "涉及户数：1 至 10；反映人是否要求匿名：是；发生（发现）时间：不小于 2026-11-01")
    following = page.link_query("next-page")
    assert sorted(p for p in following if p[0] != "cursor") == sorted(chosen)
    second = Page(browser.get(page.by_id("next-page").attrs["href"]))
    assert second.case_ids() == [b] and second.root.by_id("next-page") is None
    assert sorted(filled(second.sent("filters"))) == sorted(chosen)  # the cursor is not a filter
    assert sorted(second.link_query("export-csv")) == sorted(chosen)
    # overdue and an outcome are kept too
    page = Page(browser.get("/reports/cases?" + urlencode([("outcome", "rejected"), ("overdue", "1")])))
    assert sorted(filled(page.sent("filters"))) == [("outcome", "rejected"), ("overdue", "1"),
                                                    ("sort", "-created_at")]
    assert sorted(page.link_query("export-xlsx")) == [("outcome", "rejected"), ("overdue", "1")]


def test_the_filter_form_keeps_several_statuses(client, city, web):
    file("wgy", "door_knock_visit", visit())
    chosen = [("status", "closed"), ("status", "withdrawn")]
    page = Page(web.client("boss").get("/reports/cases?" + urlencode(chosen)))
    assert sorted(page.link_query("export-csv")) == sorted(chosen)
    assert sorted((k, v) for k, v in filled(page.sent("filters")) if k == "status") == sorted(chosen)


def test_a_refused_filter_keeps_the_other_conditions_in_the_form(client, city, web):
    chosen = [("form", "incident_report"), ("grid", "M1"), ("status", "in_progress"), ("outcome", "resolved"),
              ("sort", "updated_at"), ("overdue", "1"), ("q", "井盖"), ("f.category", "fire_safety"),
              ("f.involved_households.min", "abc")]
    response = web.client("boss").get("/reports/cases?" + urlencode(chosen))
    assert response.status_code == 422
    page = Page(response)
    assert "「涉及户数」应填数字" in page.by_id("list-error").text()
    assert sorted(filled(page.sent("filters"))) == sorted(chosen)
