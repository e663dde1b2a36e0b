"""Exports of the case list (.xlsx and .csv): heading, headers, typed cells, masking, repeats, filters, streaming.

Every workbook is opened with openpyxl and every CSV read with the csv module, and the cells are
compared one by one with what the cases hold. Cases are filed through the API and worked through
the shipped flows; only their times (and one `late` flag) are set afterwards, so that the rows have
known local times.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from server import ROOT, lists
from server.definitions.versions import latest_form
from server.formats import id_card_check_char
from server.masking import mask_value
from server.models import AuditEntry, Person, Submission, utcnow

ZONE = ZoneInfo("Asia/Shanghai")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FIXED = ["案件编号", "表单", "网格编码", "状态", "结果", "上报人", "上报时间", "办结时间", "是否超期"]
HEADING = re.compile(r"导出人：(?P<name>[^（]+)（(?P<user>[^）]+)）；导出时间：(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d)"
                     r"；筛选条件：(?P<filters>.+)")


def id_card(first17: str) -> str:
    """A valid 18-character ID number (GB 11643 check character) from its first 17 digits."""
    return first17 + id_card_check_char(first17)


WHERE = {"latitude": 22.6551, "longitude": 110.155, "accuracy": 12.0, "address": "玉林市玉州区城站路"}
INCIDENT = {
    "category": "environment_sanitation",
    "urgency": "urgent",
    "description": "幸福小区3栋门口垃圾堆积，异味严重",
    "occurred_at": "2026-03-05T10:30:00+08:00",
    "location": WHERE,
    "source": "resident_report",
    "involved_households": 3,
    "involved_people": 7,
    "is_anonymous": False,
    "reporter_name": "张三",
    "reporter_phone": "13812341234",
}
PLAIN_INCIDENT = {
    "category": "environment_sanitation",
    "urgency": "normal",
    "description": "城站路绿化带内堆放建筑垃圾",
    "occurred_at": "2026-03-04T18:05:00+08:00",
    "location": WHERE,
}
TRICKY = '井盖破损, 居民说"太危险了"\n第二行：请尽快处理'
DISPUTE = {
    "dispute_type": "neighbourhood",
    "parties": [
        {"name": "刘建国", "role": "applicant", "id_card": id_card("45090219700315123"), "phone": "13977770001"},
        {"name": "唐海燕", "role": "respondent", "address": "幸福小区2栋101"},
    ],
    "description": "顶楼住户将餐厨垃圾从下水管道排出，导致底层住户厨房反复堵塞",
    "occurred_on": "2026-03-01",
    "source": "screening",
    "amount": 1234.5,
    "involved_people": 4,
    "risk_level": "medium",
    "has_extreme_behavior": True,
    "risk_factors": ["threat", "group"],
    "police_needed": False,
}
MEMBER_IDS = [id_card("45090219800101123"), id_card("45090219820202124"), id_card("45090219500505125"),
              id_card("45090219520606126"), id_card("45090220100707127")]
VISIT_ONE = {
    "visited_at": "2026-03-06T15:10:00+08:00", "met_resident": True, "head_name": "陈志强",
    "address": "幸福小区1栋302", "phone": "13912345678", "topics": ["info_collection"],
    "residence_type": "registered", "registered_count": 2, "resident_count": 2,
    "members": [
        {"name": "陈志强", "relation": "head", "id_card": MEMBER_IDS[0], "gender": "male",
         "birth_date": "1980-01-01", "phone": "13912345678", "is_party_member": True, "whereabouts": "at_home",
         "occupation": "employed", "health": "healthy"},
        {"name": "黄丽", "relation": "spouse", "id_card": MEMBER_IDS[1], "gender": "female",
         "is_party_member": False, "health": "chronic", "notes": "需定期复诊"},
    ],
    "has_issue": False, "location": WHERE,
}
VISIT_TWO = {
    "visited_at": "2026-03-06T16:40:00+08:00", "met_resident": True, "head_name": "李国庆",
    "address": "幸福小区4栋501", "topics": ["info_collection"],
    "members": [
        {"name": "李国庆", "relation": "head", "id_card": MEMBER_IDS[2]},
        {"name": "周桂英", "relation": "spouse", "id_card": MEMBER_IDS[3], "birth_date": "1952-06-06"},
        {"name": "李小明", "relation": "grandchild", "id_card": MEMBER_IDS[4], "occupation": "student"},
    ],
    "has_issue": False, "location": WHERE,
}
HANDLED = {"handling_result": "已清运垃圾并消毒"}
SATISFIED = {"visit_method": "phone", "satisfaction": "satisfied", "feedback": "已清理干净"}


def utc(*parts) -> datetime:
    """A naive UTC time, as the cases store it."""
    return datetime(*parts)


class World:
    """People of the test tree, cases filed through the API, and signed-in web clients for the exports."""

    def __init__(self, client, people, web):
        self.client, self.people, self.web = client, people, web
        self.browsers: dict[str, object] = {}
        self.ids: dict[str, str] = {}

    def file(self, user: str, form: str, grid: str, data: dict) -> str:
        response = self.client.post(f"/api/v1/forms/{form}/submissions", json={"grid": grid, "data": data},
                                    headers=self.people.headers(user))
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def work(self, user: str, sid: str, action: str, **body) -> dict:
        listed = self.client.get("/api/v1/tasks", headers=self.people.headers(user)).get_json()["items"]
        [task] = [t for t in listed if t["case"] == sid]
        response = self.client.post(f"/api/v1/tasks/{task['id']}/actions", json={"action": action, **body},
                                    headers=self.people.headers(user))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def browser(self, user: str):
        if user not in self.browsers:
            self.browsers[user] = self.web.client(user)
        return self.browsers[user]

    def export(self, user: str, kind: str = "xlsx", **params):
        return self.browser(user).get(f"/reports/cases.{kind}", query_string=params)

    def listed(self, user: str, **params) -> list[str]:
        """The ids of the API list with these filters, paging through every page."""
        found, cursor = [], None
        while True:
            query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
            response = self.client.get("/api/v1/submissions", query_string=query, headers=self.people.headers(user))
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            found += [item["id"] for item in body["items"]]
            cursor = body["next"]
            if cursor is None:
                return found


def set_times(sid: str, created: datetime, closed: datetime | None = None, **more) -> None:
    fields = {"created_at": created, "updated_at": created, **more}
    if closed is not None:
        fields["closed_at"] = closed
    Submission.update(**fields).where(Submission.id == sid).execute()


@pytest.fixture
def world(shipped, people, client, web) -> World:
    """Cases of every shipped kind in G1, one in G2 and one in G3, with known local times and states."""
    people.make("wgy", "grid_worker@G1")
    people.make("wgz", "grid_leader@G1")
    people.make("sq", "community_secretary@M1")
    people.make("boss", "admin@C1")
    people.make("xi", "grid_worker@G3")
    people.make("wgy2", "grid_worker@G2")
    for username, name in (("wgy", "王小网"), ("boss", "赵管理"), ("sq", "孙书记"), ("xi", "西网格员")):
        Person.update(name=name).where(Person.username == username).execute()
    w = World(client, people, web)
    ids = w.ids

    # A: filed, handled in the grid, confirmed and visited (satisfied): closed, resolved.
    ids["A"] = w.file("wgy", "incident_report", "G1", INCIDENT)
    w.work("wgz", ids["A"], "handle_in_grid")
    w.work("wgy", ids["A"], "done", data=HANDLED)
    w.work("wgz", ids["A"], "confirm")
    assert w.work("wgy", ids["A"], "submit", data=SATISFIED)["status"] == "closed"
    set_times(ids["A"], utc(2026, 3, 5, 1, 0), utc(2026, 3, 7, 8, 30))  # 09:00 and 16:30 local
    # B: rejected by the grid leader; filed late on 4 March UTC, which is 5 March local; late.
    ids["B"] = w.file("wgy", "incident_report", "G1", PLAIN_INCIDENT)
    assert w.work("wgz", ids["B"], "reject", comment="重复上报")["outcome"] == "rejected"
    set_times(ids["B"], utc(2026, 3, 4, 17, 0), utc(2026, 3, 4, 23, 59), late=True)
    # C: still open, text with a comma, quotes and a new line, most optional fields left out.
    ids["C"] = w.file("wgy", "incident_report", "G1", {**PLAIN_INCIDENT, "category": "fire_safety",
                                                       "description": TRICKY})
    set_times(ids["C"], utc(2026, 3, 6, 2, 0))
    # D in G3, E in G2: environment sanitation too, outside the G1 worker's scope.
    ids["D"] = w.file("xi", "incident_report", "G3", PLAIN_INCIDENT)
    set_times(ids["D"], utc(2026, 3, 5, 3, 0))
    ids["E"] = w.file("wgy2", "incident_report", "G2", PLAIN_INCIDENT)
    set_times(ids["E"], utc(2026, 3, 3, 3, 0))
    # F: a dispute with a date, a decimal amount, a checkbox list, booleans and parties (a repeat).
    ids["F"] = w.file("wgy", "dispute_mediation", "G1", DISPUTE)
    set_times(ids["F"], utc(2026, 3, 2, 6, 0))
    # V1, V2: door-knock visits with 2 and 3 household members; the flow closes them at once.
    ids["V1"] = w.file("wgy", "door_knock_visit", "G1", VISIT_ONE)
    set_times(ids["V1"], utc(2026, 3, 6, 7, 10), utc(2026, 3, 6, 7, 10))
    ids["V2"] = w.file("wgy", "door_knock_visit", "G1", VISIT_TWO)
    set_times(ids["V2"], utc(2026, 3, 6, 8, 40), utc(2026, 3, 6, 8, 40))
    return w


# -- reading the files ------------------------------------------------------------------------------

def workbook(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == XLSX
    assert "attachment" in response.headers["Content-Disposition"]
    return load_workbook(io.BytesIO(response.get_data()))


def values(sheet) -> list[list]:
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def table(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))


def check_heading(text: str, name: str, username: str, filters: str) -> None:
    match = HEADING.fullmatch(text)
    assert match, text
    assert (match["name"], match["user"], match["filters"]) == (name, username, filters)
    at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M").replace(tzinfo=ZONE)
    assert abs(at - datetime.now(ZONE)) < timedelta(minutes=1, seconds=5)


def titles(key: str) -> list[str]:
    return [f.title for f in lists.form_fields(latest_form(key))]


def shipped_titles(key: str, *names: str) -> list[str]:
    doc = json.loads((ROOT / "forms" / f"{key}.json").read_text(encoding="utf-8"))
    return [doc["schema"]["properties"][n]["title"] for n in names]


def ids_of(rows: list[list]) -> list:
    return [r[0] for r in rows[2:]]


# -- the main sheet ---------------------------------------------------------------------------------

def incident_rows(ids: dict, masked: bool) -> dict[str, list]:
    phone = "138****1234" if masked else "13812341234"
    return {
        ids["A"]: [ids["A"], "事件上报", "G1", "已办结", "办结", "王小网", datetime(2026, 3, 5, 9, 0),
                   datetime(2026, 3, 7, 16, 30), "否", "环境卫生", "紧急", INCIDENT["description"],
                   datetime(2026, 3, 5, 10, 30), "群众反映", 3, 7, "否", "张三", phone],
        ids["B"]: [ids["B"], "事件上报", "G1", "已办结", "不予受理", "王小网", datetime(2026, 3, 5, 1, 0),
                   datetime(2026, 3, 5, 7, 59), "是", "环境卫生", "一般", PLAIN_INCIDENT["description"],
                   datetime(2026, 3, 4, 18, 5), None, None, None, None, None, None],
        ids["C"]: [ids["C"], "事件上报", "G1", "办理中", None, "王小网", datetime(2026, 3, 6, 10, 0),
                   None, "否", "消防安全", "一般", TRICKY, datetime(2026, 3, 4, 18, 5),
                   None, None, None, None, None, None],
    }


def test_xlsx_has_the_heading_the_headers_and_typed_cells_for_each_case(world):
    response = world.export("wgy", form="incident_report")
    assert re.fullmatch(r"attachment; filename=cases-\d{8}-\d{4}\.xlsx", response.headers["Content-Disposition"])
    book = workbook(response)
    assert book.sheetnames == ["案件"]  # the incident form has no repeating group
    sheet = book["案件"]
    rows = values(sheet)
    check_heading(rows[0][0], "王小网", "wgy", "表单：事件上报")
    assert rows[0][1:] == [None] * (len(rows[0]) - 1)
    expected_titles = titles("incident_report")
    assert rows[1] == FIXED + expected_titles
    assert expected_titles == ["事件类别", "紧急程度", "事件描述", "发生（发现）时间", "事件来源", "涉及户数",
                               "涉及人数", "反映人是否要求匿名", "反映人姓名", "反映人联系电话"]
    assert shipped_titles("incident_report", "category", "occurred_at", "reporter_phone") == \
        [rows[1][9], rows[1][12], rows[1][18]]
    expected = incident_rows(world.ids, masked=False)  # the grid worker sees her grid's cases in full
    assert ids_of(rows) == [world.ids[k] for k in ("C", "A", "B")]  # newest first, like the list
    for row in rows[2:]:
        assert row == expected[row[0]]
    # types and formats, not just equal values
    a = next(r for r in sheet.iter_rows(min_row=3) if r[0].value == world.ids["A"])
    for i in (6, 7, 12):
        assert type(a[i].value) is datetime and a[i].number_format == "yyyy-mm-dd hh:mm"
    assert type(a[14].value) is int and type(a[15].value) is int
    assert not a[0].font.b
    assert all(cell.font.b for cell in next(sheet.iter_rows(min_row=2, max_row=2)))


def test_dates_decimals_checkbox_lists_and_booleans_of_a_dispute(world):
    sheet = workbook(world.export("wgy", form="dispute_mediation"))["案件"]
    rows = values(sheet)
    check_heading(rows[0][0], "王小网", "wgy", "表单：矛盾纠纷登记")
    assert rows[1] == FIXED + titles("dispute_mediation")
    assert rows[1][9:] == ["纠纷类型", "纠纷简要情况", "当事人主要诉求", "纠纷发生日期", "纠纷发生地", "纠纷来源",
                           "移交单位", "涉及金额（元）", "涉及人数", "风险等级", "是否有过激言行", "风险情形",
                           "已采取的稳控措施", "是否需要公安等部门协同"]
    assert shipped_titles("dispute_mediation", "occurred_on", "amount", "risk_factors") == \
        [rows[1][12], rows[1][16], rows[1][20]]
    assert rows[2:] == [[world.ids["F"], "矛盾纠纷登记", "G1", "办理中", None, "王小网", datetime(2026, 3, 2, 14, 0),
                         None, "否", "邻里纠纷", DISPUTE["description"], None, datetime(2026, 3, 1), None, "排查发现",
                         None, 1234.5, 4, "中（有激化苗头）", "是", "扬言采取极端行为、涉及人数多，可能引发群体性事件",
                         None, "否"]]
    cells = next(sheet.iter_rows(min_row=3))
    assert cells[12].is_date and cells[12].number_format == "yyyy-mm-dd"
    assert type(cells[16].value) is float and type(cells[17].value) is int


def test_an_admin_gets_sensitive_fields_masked_and_the_grid_people_in_full_each_export_logged(world):
    before = AuditEntry.select().where(AuditEntry.action == "export").count()
    masked = values(workbook(world.export("boss", form="incident_report", grid="G1"))["案件"])
    check_heading(masked[0][0], "赵管理", "boss", "网格：东一社区第一网格；表单：事件上报")
    expected = incident_rows(world.ids, masked=True)
    assert masked[2:] == [expected[world.ids[k]] for k in ("C", "A", "B")]
    assert mask_value("13812341234", "cn-mobile") == "138****1234"
    for user, name in (("wgy", "王小网"), ("sq", "孙书记")):
        full = values(workbook(world.export(user, form="incident_report", grid="G1"))["案件"])
        check_heading(full[0][0], name, user, "网格：东一社区第一网格；表单：事件上报")
        assert full[2:] == [incident_rows(world.ids, masked=False)[world.ids[k]] for k in ("C", "A", "B")]
    logged = list(AuditEntry.select().where(AuditEntry.action == "export").order_by(AuditEntry.id))[before:]
    people = {p.id: p.username for p in Person.select()}
    assert [(people[e.actor_id], e.target, e.detail) for e in logged] == [
        ("boss", "cases.xlsx", {"filters": [["grid", "G1"], ["form", "incident_report"]], "sees_sensitive": False}),
        ("wgy", "cases.xlsx", {"filters": [["grid", "G1"], ["form", "incident_report"]], "sees_sensitive": True}),
        ("sq", "cases.xlsx", {"filters": [["grid", "G1"], ["form", "incident_report"]], "sees_sensitive": True}),
    ]
    assert all(abs(e.at - utcnow()) < timedelta(minutes=1) for e in logged)


# -- the repeat sheet -------------------------------------------------------------------------------

def member_rows(ids: dict, masked: bool) -> list[list]:
    def card(n):
        return MEMBER_IDS[n][:4] + "*" * 10 + MEMBER_IDS[n][-4:] if masked else MEMBER_IDS[n]

    def hidden(value):
        return "***" if masked and value is not None else value

    one, two = ids["V1"], ids["V2"]
    return [
        [two, 1, "李国庆", "户主本人", card(2), None, None, None, None, None, None, None, None],
        [two, 2, "周桂英", "配偶", card(3), None, datetime(1952, 6, 6), None, None, None, None, None, None],
        [two, 3, "李小明", "孙子女/外孙子女", card(4), None, None, None, None, None, "在校学生", None, None],
        [one, 1, "陈志强", "户主本人", card(0), "男", datetime(1980, 1, 1),
         "139****5678" if masked else "13912345678", "是", "常住在家", "在业", hidden("健康"), None],
        [one, 2, "黄丽", "配偶", card(1), "女", None, None, "否", None, None, hidden("慢性病"), hidden("需定期复诊")],
    ]


def test_household_members_go_to_their_own_sheet_linked_by_case_id(world):
    doc = json.loads((ROOT / "forms" / "door_knock_visit.json").read_text(encoding="utf-8"))
    item = doc["schema"]["properties"]["members"]["items"]["properties"]
    order = doc["ui"]["members"]["items"]["ui:order"]
    for user, name, masked in (("boss", "赵管理", True), ("wgy", "王小网", False)):
        book = workbook(world.export(user, form="door_knock_visit"))
        assert book.sheetnames == ["案件", "家庭成员"]
        main, members = values(book["案件"]), values(book["家庭成员"])
        assert ids_of(main) == [world.ids["V2"], world.ids["V1"]]
        assert main[1] == FIXED + titles("door_knock_visit")
        assert "家庭成员" not in main[1]  # the repeat is not a column of the main sheet
        check_heading(members[0][0], name, user, "表单：敲门行动·入户走访")
        assert members[0][0] == main[0][0] and members[0][1:] == [None] * (len(members[0]) - 1)
        assert members[1] == ["案件编号", "序号", *(item[n]["title"] for n in order)]
        assert members[2:] == member_rows(world.ids, masked), user
        born = book["家庭成员"].cell(row=4, column=7)
        assert born.is_date and born.number_format == "yyyy-mm-dd"
        head_phone = main[3][main[1].index("户主联系电话")]  # V1's household phone, on the main sheet
        assert head_phone == ("139****5678" if masked else "13912345678")


def test_dispute_parties_sheet_masks_their_ids_and_phones_for_an_admin(world):
    book = workbook(world.export("boss", form="dispute_mediation"))
    assert book.sheetnames == ["案件", "当事人"]
    parties = values(book["当事人"])
    assert parties[1] == ["案件编号", "序号", "姓名（名称）", "当事人身份", "身份证号", "联系电话", "住址"]
    card = DISPUTE["parties"][0]["id_card"]
    assert parties[2:] == [
        [world.ids["F"], 1, "刘建国", "申请人", card[:4] + "*" * 10 + card[-4:], "139****0001", None],
        [world.ids["F"], 2, "唐海燕", "被申请人", None, None, "幸福小区2栋101"],
    ]


# -- filters ----------------------------------------------------------------------------------------

FILTERS = [
    ({"form": "incident_report", "status": "closed", "f.category": "environment_sanitation"},
     "表单：事件上报；状态：已办结；事件类别：环境卫生", ["A", "B"]),
    ({"form": "incident_report", "f.category": "environment_sanitation"},
     "表单：事件上报；事件类别：环境卫生", ["D", "A", "B", "E"]),
    ({"form": "incident_report", "from": "2026-03-05", "to": "2026-03-05"},
     "表单：事件上报；上报日期：2026-03-05 至 2026-03-05", ["D", "A", "B"]),
    ({"grid": "M1", "outcome": "rejected"}, "网格：东一社区；结果：不予受理", ["B"]),
    ({"status": ["submitted", "in_progress"]}, "状态：已提交、办理中", ["C", "D", "E", "F"]),
    ({"q": "垃圾", "sort": "created_at"}, "关键词：垃圾", ["F", "E", "B", "A", "D"]),
    ({"form": "dispute_mediation", "f.amount.min": "1000", "f.risk_factors": "threat"},
     "表单：矛盾纠纷登记；涉及金额（元）：不小于 1000；风险情形：包含其一：扬言采取极端行为", ["F"]),
    ({"form": "incident_report", "f.involved_people.max": "6"}, "表单：事件上报；涉及人数：不大于 6", []),
    ({"closed_from": "2026-03-06", "closed_to": "2026-03-07"}, "办结日期：2026-03-06 至 2026-03-07", ["V2", "V1", "A"]),
]


def test_an_export_holds_exactly_the_cases_of_the_list_with_the_same_filters(world):
    for params, words, expected in FILTERS:
        listed = world.listed("boss", **params)
        assert listed == [world.ids[k] for k in expected], params
        rows = values(workbook(world.export("boss", **params))["案件"])
        check_heading(rows[0][0], "赵管理", "boss", words)
        assert ids_of(rows) == listed, params
        text = table(world.export("boss", "csv", **params))
        check_heading(text[0][0], "赵管理", "boss", words)
        assert [r[0] for r in text[2:]] == listed, params


def test_an_export_of_every_form_has_only_the_fixed_columns(world):
    rows = values(workbook(world.export("boss"))["案件"])
    check_heading(rows[0][0], "赵管理", "boss", "全部")
    assert rows[1] == FIXED
    assert all(len(r) == len(FIXED) for r in rows)
    assert sorted(ids_of(rows)) == sorted(world.ids.values())
    assert ids_of(rows) == world.listed("boss")
    forms = {r[0]: r[1] for r in rows[2:]}
    assert forms[world.ids["F"]] == "矛盾纠纷登记" and forms[world.ids["V1"]] == "敲门行动·入户走访"


def test_an_export_stays_within_the_exporters_scope(world):
    mine = ids_of(values(workbook(world.export("wgy", form="incident_report"))["案件"]))
    assert world.ids["D"] not in mine and world.ids["E"] not in mine
    assert mine == world.listed("wgy", form="incident_report")
    theirs = ids_of(values(workbook(world.export("xi"))["案件"]))
    assert theirs == [world.ids["D"]]
    csv_rows = table(world.export("wgy", "csv"))
    assert world.ids["D"] not in [r[0] for r in csv_rows[2:]]
    assert {r[0] for r in csv_rows[2:]} == {world.ids[k] for k in ("A", "B", "C", "F", "V1", "V2")}


BAD = [
    {"outcome": "maybe"},
    {"f.category": "fire_safety"},  # a field filter without a form
    {"form": "incident_report", "f.reporter_phone": "13812341234"},  # sensitive
    {"form": "incident_report", "f.nope": "1"},
    {"form": "incident_report", "f.category": "not_an_option"},
    {"form": "incident_report", "f.involved_people.min": "many"},
    {"from": "2026-13-01"},
    {"from": "2026-03-06", "to": "2026-03-05"},
    {"grid": "G3"},  # outside the G1 worker's scope
    {"sort": "sideways"},
]


@pytest.fixture
def worker(shipped, people, web):
    """The G1 grid worker signed in on the web (bad filters need no cases)."""
    people.make("wgy", "grid_worker@G1")
    return web.client("wgy")


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_bad_filters_give_no_file_and_write_no_audit_entry(worker, kind):
    for params in BAD:
        response = worker.get(f"/reports/cases.{kind}", query_string=params)
        assert response.status_code >= 400, params
        assert response.mimetype == "text/html", params
        assert "attachment" not in response.headers.get("Content-Disposition", "")
        assert not response.get_data().startswith(b"PK")
    assert AuditEntry.select().where(AuditEntry.action == "export").count() == 0


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_bad_filters_are_refused_with_422(worker, kind):
    statuses = {json.dumps(params): worker.get(f"/reports/cases.{kind}", query_string=params).status_code
                for params in BAD}
    assert statuses == {json.dumps(params): 422 for params in BAD}


# -- CSV --------------------------------------------------------------------------------------------

def as_text(value) -> str:
    """A cell of the main sheet as the CSV writes it (the incident form has date-times but no dates)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def test_csv_has_the_bom_the_same_heading_and_headers_and_the_values_as_text(world):
    rows = table(world.export("boss", "csv", form="incident_report", grid="G1"))
    check_heading(rows[0][0], "赵管理", "boss", "网格：东一社区第一网格；表单：事件上报")
    assert len(rows[0]) == 1
    assert rows[1] == FIXED + titles("incident_report")
    expected = incident_rows(world.ids, masked=True)
    assert [r[0] for r in rows[2:]] == [world.ids[k] for k in ("C", "A", "B")]
    for row in rows[2:]:
        assert row == [as_text(v) for v in expected[row[0]]]
    a = next(r for r in rows if r[0] == world.ids["A"])
    assert a[6:8] == ["2026-03-05 09:00", "2026-03-07 16:30"] and a[12] == "2026-03-05 10:30"
    assert a[14:16] == ["3", "7"] and a[18] == "138****1234"
    c = next(r for r in rows if r[0] == world.ids["C"])
    assert c[11] == TRICKY  # a comma, quotes and a new line survive the round trip
    full = table(world.export("wgy", "csv", form="incident_report", grid="G1"))
    assert next(r for r in full if r[0] == world.ids["A"])[18] == "13812341234"
    logged = AuditEntry.select().where(AuditEntry.action == "export").order_by(AuditEntry.id)
    assert [(e.actor.username, e.target, e.detail["sees_sensitive"]) for e in logged] == [
        ("boss", "cases.csv", False), ("wgy", "cases.csv", True)]


def test_csv_writes_dates_as_yyyy_mm_dd_and_leaves_the_repeats_out(world):
    rows = table(world.export("wgy", "csv", form="dispute_mediation"))
    assert rows[1] == FIXED + titles("dispute_mediation")
    [f] = rows[2:]
    assert f[:9] == [world.ids["F"], "矛盾纠纷登记", "G1", "办理中", "", "王小网", "2026-03-02 14:00", "", "否"]
    assert f[12] == "2026-03-01" and f[16] == "1234.5" and f[17] == "4"
    assert f[20] == "扬言采取极端行为、涉及人数多，可能引发群体性事件" and f[19] == "是" and f[22] == "否"
    response = world.export("wgy", "csv", form="door_knock_visit")
    visits = table(response)
    assert visits[1] == FIXED + titles("door_knock_visit") and len(visits) == 4
    everything = response.get_data(as_text=True)
    assert "黄丽" not in everything and MEMBER_IDS[1] not in everything  # members are on the workbook's sheet only
    assert re.fullmatch(r"attachment; filename=cases-\d{8}-\d{4}\.csv",
                        world.export("wgy", "csv").headers["Content-Disposition"])


# -- date-times written with another offset ---------------------------------------------------------

def test_a_date_time_stored_in_utc_is_exported_in_local_time(worker, client, people):
    data = {**PLAIN_INCIDENT, "occurred_at": "2026-03-05T02:30:00Z"}  # the API takes any RFC 3339 offset
    filed = client.post("/api/v1/forms/incident_report/submissions", json={"grid": "G1", "data": data},
                        headers=people.headers("wgy"))
    assert filed.status_code == 201, filed.get_json()
    rows = values(workbook(worker.get("/reports/cases.xlsx", query_string={"form": "incident_report"}))["案件"])
    assert rows[1][12] == "发生（发现）时间"
    assert rows[2][12] == datetime(2026, 3, 5, 10, 30)
    text = table(worker.get("/reports/cases.csv", query_string={"form": "incident_report"}))
    assert text[2][12] == "2026-03-05 10:30"


# -- streaming ---------------------------------------------------------------------------------------

def clone(sid: str, n: int, start: datetime) -> None:
    """Insert n copies of a stored case with new ids, a second apart going back from `start`."""
    row = Submission.get_by_id(sid).__data__
    copies = [{**row, "id": str(uuid.uuid4()), "created_at": start - timedelta(seconds=i),
               "updated_at": start - timedelta(seconds=i)} for i in range(n)]
    for at in range(0, n, 400):
        Submission.insert_many(copies[at:at + 400]).execute()


def measured(browser, kind: str, **params) -> tuple[int, int, bytes]:
    """Export while tracing Python memory, consuming the stream chunk by chunk into a file on disk.

    Returns the peak of traced memory, the number of chunks and the file's bytes (read once the
    tracing has stopped, so that the measure holds only what the server side allocated).
    """
    with tempfile.TemporaryFile() as spool:
        tracemalloc.start()
        try:
            response = browser.get(f"/reports/cases.{kind}", query_string=params, buffered=False)
            chunks = 0
            for chunk in response.response:
                spool.write(chunk)
                chunks += 1
            response.close()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert response.status_code == 200
        spool.seek(0)
        return peak, chunks, spool.read()


@pytest.fixture
def many(shipped, people, client, web):
    """One real incident in G1, the G1 worker's signed-in browser, and a way to add copies of the case."""
    people.make("wgy", "grid_worker@G1")
    w = World(client, people, web)
    sid = w.file("wgy", "incident_report", "G1", INCIDENT)
    return w.browser("wgy"), lambda n, start: clone(sid, n, start)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_thousands_of_cases_all_stream_out_and_memory_stays_flat(many):
    browser, more = many
    started = time.monotonic()
    more(999, utc(2026, 1, 1))
    browser.get("/reports/cases.xlsx").get_data()  # warm up: imports and caches are not what is measured
    browser.get("/reports/cases.csv", query_string={"form": "incident_report"}).get_data()
    # The CSV with every column of the form; the workbook with the fixed columns (openpyxl under
    # tracemalloc is slow, and the rows come from the same batches either way).
    csv_1000, _, _ = measured(browser, "csv", form="incident_report")
    xlsx_1000, _, _ = measured(browser, "xlsx")
    more(2000, utc(2025, 12, 1))
    csv_3000, chunks, text = measured(browser, "csv", form="incident_report")
    xlsx_3000, _, book = measured(browser, "xlsx")
    assert time.monotonic() - started < 120  # a generous guard against rows read again and again

    lines = list(csv.reader(io.StringIO(text.decode("utf-8-sig"), newline="")))
    assert lines[1] == FIXED + titles("incident_report")
    assert len(lines) == 2 + 3000 and len({r[0] for r in lines[2:]}) == 3000
    assert all(r[9:12] == ["环境卫生", "紧急", INCIDENT["description"]] and r[18] == "13812341234"
               for r in lines[2:])
    assert chunks >= 3000 // 200  # sent as it is written, 200 rows at a time, not in one piece
    rows = values(load_workbook(io.BytesIO(book), read_only=True)["案件"])
    assert rows[1] == FIXED
    assert [r[0] for r in rows[2:]] == [r[0] for r in lines[2:]]  # every case, in the same order
    assert all(r[1:4] == ["事件上报", "G1", "办理中"] for r in rows[2:])
    # Past one batch of rows, three times the cases take no more memory.
    kb = 1024
    assert csv_3000 < 1.2 * csv_1000 + 256 * kb, (csv_1000, csv_3000)
    assert xlsx_3000 < 1.2 * xlsx_1000 + 256 * kb, (xlsx_1000, xlsx_3000)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_exporting_3000_cases_takes_under_twice_the_memory_of_300(many):
    browser, more = many
    more(299, utc(2026, 1, 1))
    browser.get("/reports/cases.csv", query_string={"form": "incident_report"}).get_data()
    small, _, _ = measured(browser, "csv", form="incident_report")
    more(2700, utc(2025, 12, 1))
    big, _, text = measured(browser, "csv", form="incident_report")
    assert text.count(b"\n") >= 3002
    assert big < 2 * small + 512 * 1024, (small, big)
