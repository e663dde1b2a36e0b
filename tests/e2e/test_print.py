"""The printable case (台账) in Chromium: print CSS hides the page controls and the case fits A4 paper."""

from __future__ import annotations

import re

import pytest

from .conftest import ARTIFACTS, screenshot, sign_in
from .test_inbox import reported  # noqa: F401 - a fixture: an incident waiting for triage

pytestmark = pytest.mark.e2e


def test_a_case_prints_on_a4_with_its_data_history_and_signature_lines(live_server, reported, browser):  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        sign_in(page, live_server, "wgy")
        page.goto(f"{live_server}/submissions/{reported}")
        page.locator("#print-link").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("事件上报")
        expect(page.locator("#print-data")).to_contain_text("消防安全")
        expect(page.locator("#print-timeline")).to_contain_text("提交")
        expect(page.locator("#print-signatures")).to_contain_text("经办人（签字）")
        page.emulate_media(media="print")
        expect(page.locator(".no-print")).to_be_hidden()
        screenshot(page, "case-print-a4")
        pdf = page.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF")
        pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert 1 <= pages <= 2, pages
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "case-print-a4.pdf").write_bytes(pdf)
    finally:
        context.close()
