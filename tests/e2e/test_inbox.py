"""An officer's inbox and case page on a phone (390×844): open a task, act on it with a comment, see the timeline."""

from __future__ import annotations

import pytest

from server import ROOT
from server.auth import add_membership, create_person
from server.db import database
from server.definitions.versions import latest_form, load_paths
from server.grids import node_by_code
from server.models import Person, Submission

from ..conftest import _password_hash
from .conftest import PASSWORD, PHONE, screenshot, scroll_width, sign_in

pytestmark = pytest.mark.e2e

INCIDENT = {"category": "fire_safety", "urgency": "normal", "description": "三栋楼道堆放杂物，堵塞消防通道",
            "occurred_at": "2026-11-20T09:30:00", "location": {"latitude": 22.63, "longitude": 110.15},
            "source": "grid_patrol"}


@pytest.fixture
def reported(live_app, staff):
    """The shipped forms; a grid leader at G1; an incident reported by the grid worker, waiting for triage."""
    from server import cases

    with live_app.app_context():
        loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
        assert problems == [] and loaded
        with database.atomic():
            leader = create_person("wgz", PASSWORD, name="张网格长", password_hash=_password_hash())
            add_membership(leader, "G1", "grid_leader")
            boss = create_person("sj", PASSWORD, name="李书记", password_hash=_password_hash())
            add_membership(boss, "M1", "community_secretary")
        worker = Person.get(Person.username == "wgy")
        case, _ = cases.submit(worker, latest_form("incident_report"), node_by_code("G1"), INCIDENT)
    database.close()
    return case.id


def test_an_officer_acts_on_a_task_from_the_inbox_and_sees_the_timeline(live_server, reported, phone):
    from playwright.sync_api import expect

    page = phone
    sign_in(page, live_server, "wgz")
    menu = page.locator("header.top").get_by_role("link", name="待办")
    expect(menu.locator(".count")).to_have_text("1")
    expect(page.locator("#my-tasks")).to_contain_text("待办 1 件")
    menu.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的待办")
    row = page.locator("#inbox li").first
    expect(row).to_contain_text("网格长分级分流")
    expect(row).to_contain_text("事件上报")
    expect(row).to_contain_text("东一社区第一网格")
    assert scroll_width(page) <= PHONE["width"]
    screenshot(page, "inbox-390x844")
    row.get_by_role("link").click()
    expect(page.locator("#steps")).to_contain_text("网格长分级分流")
    expect(page.locator("#steps")).to_contain_text("张网格长")
    # the action's form opens in place; 上报社区 takes an optional comment
    page.get_by_role("link", name="上报社区").click()
    form = page.locator("#act-form")
    expect(form).to_be_visible()
    form.get_by_label("意见").fill("涉及多户，需社区协调物业清理")
    form.get_by_role("button", name="确定上报社区").click()
    expect(page.locator(".flash.ok")).to_contain_text("已办理：上报社区")
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("张网格长")
    expect(timeline).to_contain_text("涉及多户，需社区协调物业清理")
    expect(timeline).to_contain_text("上报社区")
    expect(page.locator("#steps")).to_contain_text("社区处置")
    expect(page.locator("#steps")).to_contain_text("李书记")
    assert scroll_width(page) <= PHONE["width"]
    screenshot(page, "case-after-action-390x844")
    # done: the task is in 已办, not in 待办
    page.goto(live_server + "/tasks?tab=done")
    expect(page.locator("#inbox li").first).to_contain_text("网格长分级分流")
    page.goto(live_server + "/tasks")
    expect(page.locator("#inbox")).to_contain_text("这里没有事项")
    with database.atomic():
        case = Submission.get_by_id(reported)
    assert case.current_nodes == ["community_handling"]


def test_a_required_comment_is_asked_for_beside_the_field(live_server, reported, phone):
    from playwright.sync_api import expect

    page = phone
    sign_in(page, live_server, "wgz")
    page.goto(f"{live_server}/submissions/{reported}")
    page.get_by_role("link", name="不予受理").click()
    form = page.locator("#act-form")
    comment = form.get_by_label("意见")
    expect(comment).to_have_attribute("required", "")
    comment.evaluate("el => el.form.noValidate = true")  # let the server judge, as an old browser would
    form.get_by_role("button", name="确定不予受理").click()
    expect(page.locator("#act-form small.error")).to_contain_text("须填写意见")
    expect(page.locator("#act-form .flash.error")).to_have_count(0)
    expect(page.locator("#steps")).to_contain_text("网格长分级分流")  # nothing changed
