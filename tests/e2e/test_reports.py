"""The reports pages in Chromium: the dashboard on a phone and a desktop, drilling down, the case list and its export.

The cases are stored through the real submit path (shipped forms and flows), then their outcome
columns are set as the flow store would leave them (closed, withdrawn, rated, late, a step past
its deadline), so that every figure on the dashboard has something to count.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.request import Request, urlopen
from zoneinfo import ZoneInfo

import pytest

from server import ROOT
from server.auth import add_membership, create_person, create_token
from server.db import database
from server.definitions.versions import latest_form, load_paths
from server.grids import node_by_code
from server.models import Person, Submission, Task

from ..conftest import _password_hash
from .conftest import PASSWORD, PHONE, screenshot, scroll_width, sign_in

pytestmark = pytest.mark.e2e

ZONE = ZoneInfo("Asia/Shanghai")
DESKTOP = {"width": 1400, "height": 900}
FIGURES = ("reported", "closed", "closure_rate", "on_time_rate", "avg_handling_hours", "p90_handling_hours",
           "satisfaction_rate", "mediation_success_rate", "overdue_now")
RATES = {"closure_rate", "on_time_rate", "satisfaction_rate", "mediation_success_rate"}
HOURS = {"avg_handling_hours", "p90_handling_hours"}

WHERE = {"latitude": 22.63, "longitude": 110.15}


def incident(category: str, text: str) -> dict:
    return {"category": category, "urgency": "normal", "description": text, "occurred_at": "2026-11-20T09:30:00",
            "location": WHERE, "source": "grid_patrol"}


DISPUTE = {"dispute_type": "neighbourhood", "description": "楼上漏水引发邻里纠纷，双方多次争吵",
           "parties": [{"name": "刘建国", "role": "applicant"}, {"name": "唐海燕", "role": "respondent"}],
           "occurred_on": "2026-11-10", "source": "screening", "risk_level": "low"}
VISIT = {"visited_at": "2026-11-20T10:00:00+08:00", "met_resident": False, "head_name": "李国庆",
         "address": "城站路12号3栋501", "has_issue": False, "location": WHERE, "summary": "户主外出务工，已留联系卡"}

# (key, form, grid, data, (what became of it, after how many hours), rating, late): closed (resolved), unresolved,
# withdrawn, overdue (its open step is a day past its deadline), open, or flowed (left as the flow left it: a visit
# without an issue is closed when it is submitted)
IR = "incident_report"
CASES = [
    ("i1", IR, "G1", incident("fire_safety", "楼道堆放杂物堵塞消防通道"), ("closed", 5), "satisfied", False),
    ("i2", IR, "G1", incident("fire_safety", "小区消防栓被私自圈占"), ("overdue", None), None, False),
    ("i3", IR, "G2", incident("municipal_facility", "城站路井盖破损松动"), ("closed", 30), "unsatisfied", True),
    ("i4", IR, "G3", incident("environment_sanitation", "小区垃圾清运不及时"), ("open", None), None, False),
    ("i5", IR, "G1", incident("dispute", "两户居民因停车位发生纠纷"), ("withdrawn", 2), None, False),
    ("m1", "dispute_mediation", "G1", DISPUTE, ("closed", 50), "basically_satisfied", False),
    ("m2", "dispute_mediation", "G3", {**DISPUTE, "description": "租金押金纠纷，房东拒绝退还"},
     ("unresolved", 10), None, False),
    ("v1", "door_knock_visit", "G2", VISIT, ("flowed", None), None, False),
]


@pytest.fixture
def figures(live_app, staff):
    """The shipped forms, a grid worker in the other district, the cases above, and an API token of the city admin."""
    from server import cases

    with live_app.app_context():
        loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
        assert problems == [] and loaded
        with database.atomic():
            other = create_person("wgy3", PASSWORD, name="赵网格", password_hash=_password_hash())
            add_membership(other, "G3", "grid_worker")
            token = create_token(Person.get(Person.username == "shi_admin"), "e2e")
        worker = Person.get(Person.username == "wgy")
        now = datetime.now(UTC).replace(tzinfo=None)
        year_start = datetime(now.year, 1, 1, tzinfo=ZONE).astimezone(UTC).replace(tzinfo=None)
        ids = {}
        for key, form, grid, data, (fate, hours), rating, late in CASES:
            who = other if grid == "G3" else worker
            case, _ = cases.submit(who, latest_form(form), node_by_code(grid), data)
            ids[key] = case.id
            if fate == "flowed":
                continue
            created = max(now - timedelta(hours=(hours or 0) + 1), year_start + timedelta(minutes=1))
            change = {"created_at": created, "updated_at": now, "rating": rating, "late": late}
            if fate in ("closed", "unresolved", "withdrawn"):
                outcome = {"closed": "resolved"}.get(fate, fate)
                change.update(status="withdrawn" if fate == "withdrawn" else "closed", outcome=outcome,
                              closed_at=created + timedelta(hours=hours), current_nodes=[])
                Task.update(state="cancelled", closed_at=now).where(
                    (Task.submission == case.id) & (Task.state == "open")).execute()
            elif fate == "overdue":
                opened = Task.update(due_at=now - timedelta(days=1)).where(
                    (Task.submission == case.id) & (Task.state == "open")).execute()
                assert opened, f"{form} started no task that could be overdue"
            Submission.update(**change).where(Submission.id == case.id).execute()
    database.close()
    return {"token": token, "ids": ids}


def api_stats(base: str, token: str, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    request = Request(f"{base}/api/v1/stats?{query}", headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def shown(key: str, value) -> str:
    """A figure as the dashboard card shows it."""
    if key in RATES:
        return "—" if value is None else f"{value * 100:.1f}%"
    if key in HOURS:
        if value is None:
            return "—"
        if value < 48:
            return f"{value:.1f}".rstrip("0").rstrip(".") + " 小时"
        return f"{value / 24:.1f} 天"
    return str(value)


def context_page(browser, viewport: dict):
    if viewport == PHONE:
        context = browser.new_context(viewport=PHONE, locale="zh-CN", device_scale_factor=2, is_mobile=True,
                                      has_touch=True)
    else:
        context = browser.new_context(viewport=viewport, locale="zh-CN")
    return context, context.new_page()


def table_rows(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))")


# -- 1. the dashboard ----------------------------------------------------------------------------------

@pytest.mark.parametrize("viewport,name", [(PHONE, "phone"), (DESKTOP, "desktop")])
def test_the_city_dashboard_shows_the_api_figures_with_charts_and_definitions(live_server, figures, browser,
                                                                             viewport, name):
    from playwright.sync_api import expect

    stats = api_stats(live_server, figures["token"], period="year")
    totals = stats["totals"]
    # what the cases above make of the year
    assert (totals["reported"], totals["withdrawn"], totals["closed"], totals["overdue_now"]) == (8, 1, 5, 1)
    assert (totals["closure_rate"], totals["on_time_rate"], totals["satisfaction_rate"]) == (0.7143, 0.8, 0.6667)
    assert (totals["mediation_closed"], totals["mediation_success_rate"]) == (2, 0.5)
    context, page = context_page(browser, viewport)
    try:
        sign_in(page, live_server, "shi_admin")
        page.goto(f"{live_server}/reports/?period=year")
        expect(page.get_by_role("heading", level=1)).to_have_text("统计 · 示范市")
        expect(page.locator("#period-label")).to_have_text(stats["period"]["label"])
        for key in FIGURES:
            card = page.locator(f"#fig-{key}")
            expect(card).to_be_visible()
            expect(card.locator(".fig-value")).to_have_text(shown(key, totals[key]))
        expect(page.locator("#fig-closed small")).to_have_text(f"撤回 {totals['withdrawn']} 件")
        expect(page.locator("#fig-on_time_rate small")).to_have_text(f"按期 {totals['on_time']} 件")
        expect(page.locator("#fig-satisfaction_rate small")).to_have_text(f"回访评价 {totals['rated']} 件")
        # the tables hold the same numbers as the API
        forms = {r[0]: r for r in table_rows(page, "#table-forms")}
        assert {r["title"]: str(r["reported"]) for r in stats["by_form"]} == {k: v[1] for k, v in forms.items()}
        assert sorted(forms) == ["事件上报", "敲门行动·入户走访", "矛盾纠纷登记"], forms
        grids = {r[0]: r for r in table_rows(page, "#table-grids")}
        assert {r["name"]: [str(r["reported"]), shown("closure_rate", r["closure_rate"])] for r in stats["by_grid"]} \
            == {k: v[1:3] for k, v in grids.items()}
        assert grids["甲区"][1] == "6" and grids["乙区"][1] == "2", grids
        # three ECharts drawings with a size
        for chart in ("#chart-trend", "#chart-forms", "#chart-grids"):
            svg = page.locator(f"{chart} svg").first
            expect(svg).to_be_attached(timeout=10_000)
            box = svg.bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0, (chart, box)
        expect(page.locator("#chart-grids svg").first).to_contain_text("甲区")
        # a card's 口径 opens to its definition
        definition = page.locator("#fig-closure_rate details.def p")
        expect(definition).to_be_hidden()
        summary = page.locator("#fig-closure_rate details.def summary")
        if viewport == PHONE:
            summary.tap()
        else:
            summary.click()
        expect(definition).to_be_visible()
        expect(definition).to_contain_text("办结率 = 办结数 ÷（上报数 − 撤回数）")
        if viewport == PHONE:
            assert scroll_width(page) <= PHONE["width"] + 1
            wrap = page.locator("#table-grids").locator("xpath=..")
            expect(wrap).to_have_class(re.compile(r"\btable-wrap\b"))
            assert wrap.evaluate("e => getComputedStyle(e).overflowX") == "auto"
            assert wrap.evaluate("e => e.scrollWidth > e.clientWidth"), "the table fits: nothing scrolls inside"
        screenshot(page, f"reports-dashboard-{name}")
    finally:
        context.close()


# -- 2. drilling down and moving through periods ------------------------------------------------------

def test_drilling_down_to_a_district_and_back_and_moving_through_periods(live_server, figures, browser):
    from playwright.sync_api import expect

    context, page = context_page(browser, DESKTOP)
    heading = page.get_by_role("heading", level=1)
    try:
        sign_in(page, live_server, "shi_admin")
        page.goto(f"{live_server}/reports/?period=year")
        this_year = page.locator("#period-label").inner_text()
        page.locator("#table-grids a.drill", has_text="甲区").click()
        expect(heading).to_have_text("统计 · 甲区")
        crumbs = page.locator("nav.crumbs")
        expect(crumbs).to_have_text("示范市 › 甲区")
        expect(crumbs.locator("[aria-current=page]")).to_have_text("甲区")
        expect(page.locator("#fig-reported .fig-value")).to_have_text("6")
        expect(page.locator("#period-label")).to_have_text(this_year)
        # further down: the street, then up again to the city through the breadcrumb
        page.locator("#table-grids a.drill", has_text="东街道").click()
        expect(crumbs).to_have_text("示范市 › 甲区 › 东街道")
        crumbs.get_by_role("link", name="示范市").click()
        expect(heading).to_have_text("统计 · 示范市")
        expect(page.locator("#fig-reported .fig-value")).to_have_text("8")
        expect(page.locator("#period-label")).to_have_text(this_year)
        # the period before and after
        year = int(this_year.rstrip("年"))
        page.locator("#earlier").click()
        expect(page.locator("#period-label")).to_have_text(f"{year - 1}年")
        expect(page.locator("#fig-reported .fig-value")).to_have_text("0")
        page.locator("#later").click()
        page.locator("#later").click()
        expect(page.locator("#period-label")).to_have_text(f"{year + 1}年")
        # a custom range: from and to, shown as the period
        page.goto(f"{live_server}/reports/?period=year")
        expect(page.locator(".p-custom")).to_have_count(2)
        page.locator("#period").select_option(label="自定义")
        for label in page.locator(".p-custom").all():
            expect(label).to_be_visible()
        today = datetime.now(ZONE).date()
        start = today - timedelta(days=9)
        page.locator("input[name=from]").fill(start.isoformat())
        page.locator("input[name=to]").fill(today.isoformat())
        page.get_by_role("button", name="查看").click()
        expect(page.locator("#period-label")).to_have_text(f"{start.isoformat()} 至 {today.isoformat()}")
        expect(page.locator("#fig-reported .fig-value")).to_have_text("8")
        expect(page.locator("#period")).to_have_value("custom")
    finally:
        context.close()


def test_choosing_a_custom_period_shows_from_and_to_instead_of_the_one_date(live_server, figures, browser):
    from playwright.sync_api import expect

    context, page = context_page(browser, DESKTOP)
    try:
        sign_in(page, live_server, "shi_admin")
        page.goto(f"{live_server}/reports/?period=year")
        expect(page.locator(".p-at")).to_be_visible()
        expect(page.locator(".p-custom").first).to_be_hidden(timeout=1_000)
        page.locator("#period").select_option(label="自定义")
        expect(page.locator(".p-custom").first).to_be_visible()
        expect(page.locator(".p-custom").last).to_be_visible()
        expect(page.locator(".p-at")).to_be_hidden(timeout=1_000)
    finally:
        context.close()


def test_a_custom_range_chosen_after_moving_to_another_period_starts_at_its_from_date(live_server, figures,
                                                                                      browser):
    from playwright.sync_api import expect

    context, page = context_page(browser, DESKTOP)
    try:
        sign_in(page, live_server, "shi_admin")
        page.goto(f"{live_server}/reports/?period=year")
        page.locator("#earlier").click()
        expect(page).to_have_url(re.compile(r"at=\d{4}-01-01"))
        page.locator("#period").select_option(label="自定义")
        today = datetime.now(ZONE).date()
        start = today - timedelta(days=9)
        page.locator("input[name=from]").fill(start.isoformat())
        page.locator("input[name=to]").fill(today.isoformat())
        page.get_by_role("button", name="查看").click()
        expect(page.locator("#period")).to_have_value("custom")
        expect(page.locator("#period-label")).to_have_text(f"{start.isoformat()} 至 {today.isoformat()}",
                                                           timeout=1_000)
    finally:
        context.close()


# -- 3. the case list on a phone ---------------------------------------------------------------------------

def test_the_case_list_filters_by_form_content_and_exports_what_it_shows(live_server, figures, phone, tmp_path):
    from openpyxl import load_workbook
    from playwright.sync_api import expect

    page = phone
    sign_in(page, live_server, "shi_admin")
    page.goto(f"{live_server}/reports/cases")
    rows = page.locator("#cases tbody tr")
    expect(rows).to_have_count(len(CASES))
    page.locator("#filters select[name=form]").select_option(label="事件上报")
    expect(page).to_have_url(re.compile(r"form=incident_report"))
    expect(page.get_by_role("heading", level=1)).to_have_text("案件 · 事件上报")
    expect(rows).to_have_count(5)
    page.get_by_text("按表单内容筛选").click()
    category = page.locator("fieldset", has=page.locator("legend", has_text="事件类别"))
    box = category.get_by_label("消防安全")
    expect(box).to_be_visible()
    box.check()
    page.get_by_role("button", name="筛选", exact=True).click()
    expect(page).to_have_url(re.compile(r"f\.category=fire_safety"))
    expect(rows).to_have_count(2)
    for text in rows.all_inner_texts():
        assert "消防安全" in text and "井盖" not in text, text
    described = page.locator("#list-filters")
    expect(described).to_contain_text("事件上报")
    expect(described).to_contain_text("事件类别")
    expect(described).to_contain_text("消防安全")
    assert scroll_width(page) <= PHONE["width"] + 1
    screenshot(page, "reports-cases-phone")
    with page.expect_download() as waiting:
        page.locator("#export-xlsx").click()
    download = waiting.value
    assert download.suggested_filename.endswith(".xlsx")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    book = load_workbook(saved, read_only=True)
    try:
        sheet = book["案件"]
        table = list(sheet.iter_rows(values_only=True))
    finally:
        book.close()
    assert "市管理员（shi_admin）" in table[0][0] and "筛选条件" in table[0][0] and "消防安全" in table[0][0], table[0]
    heading, data = table[1], [r for r in table[2:] if any(v not in (None, "") for v in r)]
    assert len(data) == rows.count() == 2
    category_column = list(heading).index("事件类别")
    assert [r[category_column] for r in data] == ["消防安全", "消防安全"]
    assert sorted(r[0] for r in data) == sorted([figures["ids"]["i1"], figures["ids"]["i2"]])


# -- 4. a grid worker's own grid ------------------------------------------------------------------------------------

def test_a_grid_worker_sees_only_the_dashboard_of_the_own_grid(live_server, figures, phone):
    from playwright.sync_api import expect

    page = phone
    sign_in(page, live_server, "wgy")
    page.goto(f"{live_server}/reports/?period=year")
    expect(page.get_by_role("heading", level=1)).to_have_text("统计 · 东一社区第一网格")
    mine = sum(1 for c in CASES if c[2] == "G1")
    expect(page.locator("#fig-reported .fig-value")).to_have_text(str(mine))
    expect(page.locator("nav.crumbs")).to_have_text("东一社区第一网格")
    body = page.inner_text("body")
    for elsewhere in ("示范市", "甲区", "乙区", "西一社区", "东一社区第二网格"):
        assert elsewhere not in body, elsewhere
    expect(page.locator("#table-grids a.drill")).to_have_count(0)
    assert scroll_width(page) <= PHONE["width"] + 1
    # another district's dashboard is refused, in words
    response = page.goto(f"{live_server}/reports/?period=year&grid=D2")
    assert response.status == 422
    expect(page.locator("#board-error")).to_contain_text("不在您的管辖范围内")
    expect(page.locator("#figures")).to_have_count(0)
