"""The index page in a real browser at phone size."""

from __future__ import annotations

import pytest

from server import ROOT
from server.definitions.versions import load_paths

from .conftest import screenshot

pytestmark = pytest.mark.e2e


def test_index_lists_the_published_forms_in_chinese_at_phone_width(live_app, live_server, phone):
    with live_app.app_context():
        loaded, problems = load_paths([ROOT / "forms", ROOT / "flows"])
    assert problems == [] and loaded
    phone.goto(live_server + "/")
    assert phone.locator("html").get_attribute("lang") == "zh-CN"
    items = phone.locator("ul.forms li strong").all_inner_texts()
    assert set(items) == {"敲门行动·入户走访", "事件上报", "矛盾纠纷登记", "资源需求申报"}
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"
    assert screenshot(phone, "home-390x844").stat().st_size > 1000
