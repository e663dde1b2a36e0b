"""The printable A4 view of a case (台账): data, history, signatures, masking and scope as on the case page."""

from __future__ import annotations

import re
import uuid

import pytest

from server.models import Event

from .test_fill_pages import INCIDENT, post_form, text


@pytest.fixture
def worker(shipped, people, web):
    """The grid worker of G1, signed in on the web."""
    people.make("wgy", "grid_worker@G1")
    return web.client("wgy")


def filed(client) -> str:
    sid = str(uuid.uuid4())
    fields = {**INCIDENT, "/source": "resident_report", "/reporter_name": "李四", "/reporter_phone": "13812345678"}
    response = post_form(client, "incident_report", fields, sid=sid,
                         _shown="/is_anonymous,/reporter_name,/reporter_phone")
    assert response.status_code in (302, 303), text(response)
    return sid


def test_the_print_view_has_the_facts_the_data_the_history_and_room_for_signatures(worker):
    sid = filed(worker)
    page = text(worker.get(f"/submissions/{sid}"))
    assert f'href="/submissions/{sid}/print"' in page
    response = worker.get(f"/submissions/{sid}/print")
    assert response.status_code == 200
    html = text(response)
    assert "<h1>事件上报</h1>" in html
    facts = re.search(r'<table class="facts" id="print-facts">(.*?)</table>', html, re.S).group(1)
    assert sid in facts and "东一社区第一网格" in facts and "第 1 版" in facts
    data = re.search(r'<section class="data" id="print-data">(.*?)</section>\s*(<section|</article)', html, re.S)
    assert "消防安全" in data.group(1) and "群众反映" in data.group(1) and "13812345678" in data.group(1)
    history = re.search(r'id="print-timeline">(.*?)</section>', html, re.S).group(1)
    assert "提交" in history
    signatures = re.search(r'id="print-signatures">(.*?)</section>', html, re.S).group(1)
    assert "经办人（签字）" in signatures and "审核人（签字）" in signatures and "日期" in signatures
    assert 'href="/static/print.css' in html and "打印</button>" in html


def test_the_print_view_masks_and_logs_like_the_case_page_and_hides_cases_out_of_scope(worker, people, web):
    sid = filed(worker)
    people.make("ldz", "building_head@G1")
    masked = text(web.client("ldz").get(f"/submissions/{sid}/print"))
    assert "138****5678" in masked and "13812345678" not in masked and "敏感信息已遮盖" in masked
    assert Event.select().where(Event.kind == "sensitive_viewed").count() == 0
    people.make("sq", "community_secretary@M1")
    full = text(web.client("sq").get(f"/submissions/{sid}/print"))
    assert "13812345678" in full
    logged = Event.get(Event.kind == "sensitive_viewed")
    assert logged.payload == {"channel": "print"}
    people.make("far", "grid_worker@G3")
    assert web.client("far").get(f"/submissions/{sid}/print").status_code == 404
    assert web.client().get(f"/submissions/{sid}/print").status_code in (302, 303)
