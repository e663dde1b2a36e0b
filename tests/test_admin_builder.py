"""The form builder and the flow editor on the web: permissions, drafts, operations, publishing, overlays.

Everything goes through HTTP as a browser would send it: pages are read, their forms parsed
(inputs, checked boxes, selected options, textareas) and posted back with htmx's headers and the
page's CSRF token; outcomes are read from the stored rows (drafts, versions, overlays, submissions)
and from the HTML answered.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from html import unescape
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.security import generate_password_hash

from server import ROOT
from server.definitions import builder, drafts
from server.definitions.builder import with_orders
from server.definitions.diff import flow_changes, form_changes
from server.definitions.jsonlines import pointer_lines
from server.models import (
    Adaptation,
    DefinitionDraft,
    Flow,
    FlowVersion,
    Form,
    FormVersion,
    Overlay,
    Person,
    Submission,
)

SHIPPED_FLOWS = sorted(p.stem for p in (ROOT / "flows").glob("*.json"))

INCIDENT = {  # a valid incident report as the fill page posts it
    "/category": "fire_safety",
    "/urgency": "normal",
    "/description": "三栋楼道堆放杂物，堵塞消防通道",
    "/occurred_at": "2026-11-20T09:30",
    "/location/latitude": "22.6301",
    "/location/longitude": "110.1542",
    "/source": "grid_patrol",
}
INCIDENT_DATA = {  # the same, typed, as the API takes it
    "category": "fire_safety", "urgency": "normal", "description": "三栋楼道堆放杂物，堵塞消防通道",
    "occurred_at": "2026-11-20T09:30:00", "location": {"latitude": 22.6301, "longitude": 110.1542},
}


# -- reading pages as a browser does ------------------------------------------------------------

class FormFields(HTMLParser):
    """The (name, value) pairs a browser would send for the form with a given id, in page order."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.found = False
        self.pairs: list[tuple[str, str]] = []
        self.select: dict | None = None
        self.textarea: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
            self.found = self.found or self.inside
            return
        if not self.inside or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.pairs.append((name, a.get("value") or "on"))
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self.pairs.append((name, a.get("value") or ""))
        elif tag == "select":
            self.select = {"name": name, "options": [], "chosen": None}
        elif tag == "option" and self.select is not None:
            value = a.get("value") or ""
            self.select["options"].append(value)
            if "selected" in a and self.select["chosen"] is None:
                self.select["chosen"] = value
        elif tag == "textarea" and name:
            self.textarea = [name, ""]

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self.select is not None:
            s, self.select = self.select, None
            value = s["chosen"] if s["chosen"] is not None else (s["options"][0] if s["options"] else None)
            if s["name"] and value is not None:
                self.pairs.append((s["name"], value))
        elif tag == "textarea" and self.textarea is not None:
            name, value = self.textarea
            self.textarea = None
            self.pairs.append((name, value[1:] if value.startswith("\n") else value))

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data


def form_fields(html: str, form_id: str) -> list[tuple[str, str]]:
    parser = FormFields(form_id)
    parser.feed(html)
    parser.close()
    assert parser.found, f"no form #{form_id} on the page"
    return parser.pairs


def revision_of(html: str) -> str:
    """The draft revision htmx sends with every builder request (hx-vals on #builder)."""
    return re.search(r'hx-vals=\'\{"_rev": "(\d+)"\}\'', html).group(1)


def changed(pairs: list[tuple[str, str]], **values) -> list[tuple[str, str]]:
    """The pairs with single values replaced (None: left out; a new name: added)."""
    out, done = [], set()
    for name, value in pairs:
        if name in values:
            if name not in done and values[name] is not None:
                out.append((name, values[name]))
            done.add(name)
        else:
            out.append((name, value))
    out += [(n, v) for n, v in values.items() if n not in done and v is not None]
    return out


def text(response) -> str:
    return response.get_data(as_text=True)


def alerts(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<p class="flash (?:error|ok)" role="(?:alert|status)"[^>]*>([^<]*)</p>',
                                            html)]


def changes_listed(html: str) -> list[str]:
    """The readable diff a version page shows."""
    listed = re.search(r'<ul class="changes" id="changes">(.*?)</ul>', html, re.S).group(1)
    return [unescape(t) for t in re.findall(r'<li class="[^"]*">([^<]*)</li>', listed)]


class Browser:
    """A signed-in person's browser: pages, htmx requests with the page's CSRF header, plain form posts."""

    def __init__(self, web, username: str):
        self.client = web.client(username)
        page = text(self.client.get("/account"))
        self.token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)

    def get(self, path: str, htmx: bool = False, **kwargs):
        return self.client.get(path, headers={"HX-Request": "true"} if htmx else {}, **kwargs)

    def hx(self, path: str, data=None, token: bool = True):
        headers = {"HX-Request": "true", **({"X-CSRFToken": self.token} if token else {})}
        return self.client.post(path, data=MultiDict(data or {}), headers=headers)

    def post(self, path: str, data=None, **kwargs):
        pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
        return self.client.post(path, data=MultiDict([*pairs, ("csrf_token", self.token)]), **kwargs)


def draft_of(kind: str, key: str, scope: str = "") -> DefinitionDraft | None:
    return drafts.find(kind, key, scope)


def shipped_doc(folder: str, key: str) -> dict:
    doc = json.loads((ROOT / folder / f"{key}.json").read_text(encoding="utf-8"))
    doc.pop("$schema", None)
    return doc


def q(**args) -> str:
    return "?" + "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in args.items())


@functools.cache
def quick_hash() -> str:
    """A cheap hash of the test password: these tests sign in often, and scrypt's cost is not under test."""
    return generate_password_hash("secret-pass", "pbkdf2:sha256:1000")


def quick_logins() -> None:
    Person.update(password_hash=quick_hash()).execute()


@pytest.fixture
def site(shipped, people, web):
    """The shipped forms and flows, a root, a district and a street administrator, two grid workers."""
    people.make("city", "admin@C1")
    people.make("district", "admin@D1")
    people.make("street", "admin@S1")
    people.make("wgy", "grid_worker@G1")
    people.make("wgy3", "grid_worker@G3")
    Person.update(name="王市管").where(Person.username == "city").execute()
    quick_logins()
    return web


@pytest.fixture
def city(site):
    return Browser(site, "city")


@pytest.fixture
def street(site):
    return Browser(site, "street")


def open_builder(browser: Browser, key: str, grid: str | None = None) -> str:
    response = browser.get(f"/admin/forms/{key}/edit" + (q(grid=grid) if grid else ""))
    assert response.status_code == 200, text(response)
    return text(response)


def panel(browser: Browser, key: str, path: str, grid: str | None = None, step: str | None = None):
    """Select a field in the builder; the panel form's pairs as the browser would post them."""
    base = f"/admin/flows/{key}/step" if step else f"/admin/forms/{key}/edit"
    args = {"path": path, **({"grid": grid} if grid else {}), **({"at": step} if step else {})}
    response = browser.get(f"{base}/field" + q(**args), htmx=True)
    assert response.status_code == 200, text(response)
    html = text(response)
    return [*form_fields(html, "b-panel-form"), ("_rev", revision_of(html))]


def field_url(key: str, grid: str | None = None) -> str:
    return f"/admin/forms/{key}/edit/field" + (q(grid=grid) if grid else "")


# -- who may do what ------------------------------------------------------------------------------

def test_only_a_root_administrator_edits_templates(site):
    district, street_admin, worker = Browser(site, "district"), Browser(site, "street"), Browser(site, "wgy")
    refused = district.get("/admin/forms/incident_report/edit")
    assert refused.status_code == 403
    assert "只有市级管理员可以修改模板" in text(refused)
    assert street_admin.get("/admin/forms/incident_report/edit").status_code == 403
    assert district.get("/admin/flows/incident_loop/edit").status_code == 403
    # an adaptation only inside their own area, never at the root
    assert district.get("/admin/forms/incident_report/edit?grid=D1").status_code == 200
    assert district.get("/admin/forms/incident_report/edit?grid=s1").status_code == 200
    for grid in ("D2", "S2", "G3", "C1", "NOPE"):
        response = district.get(f"/admin/forms/incident_report/edit?grid={grid}")
        assert response.status_code == 404, grid
        assert "不在您的管理范围内" in text(response)
    assert street_admin.get("/admin/forms/incident_report/edit?grid=D1").status_code == 404
    root = Browser(site, "city")
    assert root.get("/admin/forms/incident_report/edit?grid=C1").status_code == 404
    assert root.get("/admin/forms/incident_report/edit").status_code == 200
    # the drafts made by those visits: the root's template draft and the district's two adaptations
    assert {(d.key, d.scope) for d in DefinitionDraft.select()} == {
        ("incident_report", ""), ("incident_report", "D1"), ("incident_report", "S1")}
    # writes are refused to the district administrator as well
    add = district.hx("/admin/forms/incident_report/edit/add", {"kind": "text"})
    assert add.status_code == 403
    assert district.post("/admin/forms/incident_report/publish").status_code == 403
    assert district.post("/admin/forms/new", {"title": "新表", "key": "new_form"}).status_code == 403
    assert district.hx("/admin/flows/incident_loop/edit/add", {"type": "task"}).status_code == 403
    assert draft_of("form", "new_form") is None
    assert draft_of("form", "incident_report").revision == 1
    # a worker is no administrator; a stranger is sent to sign in
    for path in ("/admin/forms", "/admin/forms/incident_report/edit", "/admin/flows",
                 "/admin/forms/incident_report"):
        assert worker.get(path).status_code == 403, path
        anonymous = site.app.test_client().get(path)
        assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_posts_need_the_csrf_token(city):
    open_builder(city, "incident_report")
    before = draft_of("form", "incident_report")
    response = city.hx("/admin/forms/incident_report/edit/add", {"kind": "text"}, token=False)
    assert response.status_code == 400
    assert "页面已过期或来源不明" in text(response)
    for path in ("/admin/forms/incident_report/publish", "/admin/forms/new", "/admin/flows/incident_loop/publish"):
        assert city.client.post(path, data={"title": "x"}).status_code == 400, path
    after = draft_of("form", "incident_report")
    assert (after.revision, after.definition) == (before.revision, before.definition)
    assert FormVersion.select().where(FormVersion.source == "web").count() == 0


# -- new forms ----------------------------------------------------------------------------------

def test_a_new_blank_form_is_a_draft_until_published(city):
    response = city.post("/admin/forms/new", {"title": "独居老人探访记录", "key": "elderly_visit", "source": ""})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/forms/elderly_visit/edit")
    draft = draft_of("form", "elderly_visit")
    assert draft.definition == {"key": "elderly_visit", "title": "独居老人探访记录",
                                "schema": {"type": "object", "properties": {}}, "ui": {}}
    assert draft.updated_by.username == "city"
    listing = text(city.get("/admin/forms"))
    assert "独居老人探访记录" in listing and "草稿，未发布" in listing
    assert Form.get_or_none(Form.key == "elderly_visit") is None
    # a key is made up when none is given
    auto = city.post("/admin/forms/new", {"title": "无标识的表单"})
    assert auto.headers["Location"].endswith("/admin/forms/form_1/edit")
    again = city.post("/admin/forms/new", {"title": "又一个"})
    assert again.headers["Location"].endswith("/admin/forms/form_2/edit")
    # a field, then publishing makes version 1
    assert city.hx("/admin/forms/elderly_visit/edit/add", {"kind": "text", "title": "老人姓名"}).status_code == 200
    published = city.post("/admin/forms/elderly_visit/publish")
    assert published.status_code == 302 and published.headers["Location"].endswith("/admin/forms/elderly_visit")
    version = FormVersion.get(FormVersion.form == Form.get(Form.key == "elderly_visit"))
    assert version.version == 1 and version.source == "web" and version.created_by.username == "city"
    assert version.definition["schema"]["properties"]["field_1"]["title"] == "老人姓名"
    assert draft_of("form", "elderly_visit") is None


def test_a_new_form_as_a_copy_of_a_shipped_form(city):
    response = city.post("/admin/forms/new", {"title": "事件上报（试点）", "key": "incident_pilot",
                                              "source": "incident_report"})
    assert response.status_code == 302
    expected = shipped_doc("forms", "incident_report")
    expected.update(key="incident_pilot", title="事件上报（试点）")
    expected = with_orders(expected)  # every field order stated: jsonb keeps keys in its own order
    assert draft_of("form", "incident_pilot").definition == expected
    page = open_builder(city, "incident_pilot")
    assert "编辑表单：事件上报（试点）" in page and "尚未发布" in page
    assert city.post("/admin/forms/incident_pilot/publish").status_code == 302
    assert FormVersion.get(FormVersion.form == Form.get(Form.key == "incident_pilot")).definition == expected


BAD_NEW_FORMS = [
    ({"title": "坏标识", "key": "1form"}, "表单标识只能用小写英文字母、数字和下划线，以字母开头，至少 2 个字符"),
    ({"title": "坏标识", "key": "a"}, "表单标识只能用小写英文字母、数字和下划线，以字母开头，至少 2 个字符"),
    ({"title": "坏标识", "key": "表单"}, "表单标识只能用小写英文字母、数字和下划线，以字母开头，至少 2 个字符"),
    ({"title": "", "key": "no_title"}, "请填写表单名称"),
    ({"title": "重复", "key": "incident_report"}, "表单标识 incident_report 已被使用"),
    ({"title": "重复草稿", "key": "pending_form"}, "表单标识 pending_form 已被使用"),
    ({"title": "复制", "key": "copy_of", "source": "no_such_form"}, "找不到要复制的表单 no_such_form"),
]


def test_a_bad_new_form_is_refused_in_chinese(city):
    city.post("/admin/forms/new", {"title": "待发布", "key": "pending_form"})
    before = [(d.key, d.revision) for d in DefinitionDraft.select().order_by(DefinitionDraft.key)]
    for form, message in BAD_NEW_FORMS:
        response = city.post("/admin/forms/new", form)
        assert response.status_code == 302 and response.headers["Location"].endswith("/admin/forms"), form
        assert message in alerts(text(city.get("/admin/forms"))), form
        assert [(d.key, d.revision) for d in DefinitionDraft.select().order_by(DefinitionDraft.key)] == before
    assert draft_of("form", "pending_form").definition["title"] == "待发布"
    assert Form.select().where(Form.key.in_(["no_title", "copy_of", "pending_form"])).count() == 0


# -- builder operations -----------------------------------------------------------------------------

@pytest.fixture
def blank(city):
    city.post("/admin/forms/new", {"title": "试验表", "key": "trial"})
    return city


def test_adding_a_field_of_each_kind_stores_its_shape(blank):
    for i, kind in enumerate(builder.KINDS, start=1):
        response = blank.hx("/admin/forms/trial/edit/add", {"kind": kind, "title": f"第{i}项", "parent": ""})
        assert response.status_code == 200, kind
        assert f'id="b-row-field_{i}"' in text(response)  # the new field is listed and selected
        assert f'class="b-row selected" draggable="true" data-path="field_{i}"' in text(response)
    doc = draft_of("form", "trial").definition
    names = [f"field_{i}" for i in range(1, len(builder.KINDS) + 1)]
    assert list(doc["schema"]["properties"]) == names
    assert doc["ui"]["ui:order"] == names
    for name, kind in zip(names, builder.KINDS, strict=True):
        schema, ui = builder.shape(kind, f"第{names.index(name) + 1}项")
        assert doc["schema"]["properties"][name] == schema, kind
        assert doc["ui"].get(name, {}) == ui, kind
    assert draft_of("form", "trial").revision == len(builder.KINDS) + 1
    # inside a group, and a bad kind or a non-group parent is refused
    group = names[list(builder.KINDS).index("group")]
    inner = blank.hx("/admin/forms/trial/edit/add", {"kind": "integer", "title": "人数", "parent": group})
    assert inner.status_code == 200
    doc = draft_of("form", "trial").definition
    assert doc["schema"]["properties"][group]["properties"] == {"field_20": {"title": "人数", "type": "integer"}}
    assert doc["ui"][group]["ui:order"] == ["field_20"]
    for data, message in (({"kind": "colour", "title": "颜色"}, "未知的字段类型 colour"),
                          ({"kind": "text", "parent": "field_1"}, "只有分组和重复组里可以再加字段")):
        refused = blank.hx("/admin/forms/trial/edit/add", data)
        assert refused.status_code == 422 and message in text(refused)
    assert draft_of("form", "trial").definition == doc


def test_an_unknown_kind_without_a_title_is_refused_not_a_crash(blank):
    response = blank.hx("/admin/forms/trial/edit/add", {"kind": "colour"})
    assert response.status_code == 422 and "未知的字段类型 colour" in text(response)


def test_settings_label_required_and_options_through_the_panel(blank):
    blank.hx("/admin/forms/trial/edit/add", {"kind": "select", "title": "类别"})
    pairs = panel(blank, "trial", "field_1")
    assert ("title", "类别") in pairs and ("opt_label", "选项一") in pairs
    response = blank.hx(field_url("trial"), changed(pairs, title="事件类别", required="1", help="请选择一项"))
    assert response.status_code == 200
    doc = draft_of("form", "trial").definition
    assert doc["schema"]["properties"]["field_1"]["title"] == "事件类别"
    assert doc["schema"]["required"] == ["field_1"]
    assert doc["ui"]["field_1"] == {"ui:widget": "select", "ui:help": "请选择一项"}
    # options: add, relabel, reorder, delete — each through the row buttons
    added = blank.hx(field_url("trial"), [*panel(blank, "trial", "field_1"), ("_op", "opt-add")])
    assert added.status_code == 200 and 'value="选项3"' in text(added)
    options = lambda: draft_of("form", "trial").definition["schema"]["properties"]["field_1"]["oneOf"]  # noqa: E731
    assert options() == [{"const": "o1", "title": "选项一"}, {"const": "o2", "title": "选项二"},
                         {"const": "o3", "title": "选项3"}]
    pairs = panel(blank, "trial", "field_1")
    labels = [v for n, v in pairs if n == "opt_label"]
    relabelled = [(n, ("火灾" if v == "选项3" else v) if n == "opt_label" else v) for n, v in pairs]
    assert labels == ["选项一", "选项二", "选项3"]
    blank.hx(field_url("trial"), relabelled)
    assert options()[2] == {"const": "o3", "title": "火灾"}
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_1"), ("_op", "opt-up-2")])
    assert [o["const"] for o in options()] == ["o1", "o3", "o2"]
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_1"), ("_op", "opt-down-0")])
    assert [o["const"] for o in options()] == ["o3", "o1", "o2"]
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_1"), ("_op", "opt-del-1")])
    assert options() == [{"const": "o3", "title": "火灾"}, {"const": "o2", "title": "选项二"}]
    # the last option cannot go
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_1"), ("_op", "opt-del-0")])
    refused = blank.hx(field_url("trial"), [*panel(blank, "trial", "field_1"), ("_op", "opt-del-0")])
    assert refused.status_code == 422 and "选项不能为空，请至少留一个选项" in text(refused)
    assert options() == [{"const": "o2", "title": "选项二"}]
    # not required any more: the box is left unticked
    blank.hx(field_url("trial"), changed(panel(blank, "trial", "field_1"), required=None))
    assert "required" not in draft_of("form", "trial").definition["schema"]


BAD_SETTINGS = [
    ("text", {"min_length": "10", "max_length": "5"}, "字数的下限不能大于上限"),
    ("text", {"max_length": "很多"}, "“很多”不是数字"),
    ("text", {"max_length": "2.5"}, "“2.5”不是整数"),
    ("integer", {"minimum": "1.5"}, "“1.5”不是整数"),
    ("number", {"minimum": "9", "maximum": "1"}, "数值的下限不能大于上限"),
    ("checkboxes", {"min_items": "3", "max_items": "2"}, "个数的下限不能大于上限"),
    ("text", {"key": "Bad-Key"}, "字段标识只能用小写英文字母、数字和下划线，并以字母开头"),
]


def test_bad_limits_are_refused_in_chinese_and_the_draft_is_unchanged(blank):
    for kind in dict.fromkeys(kind for kind, _, _ in BAD_SETTINGS):
        blank.hx("/admin/forms/trial/edit/add", {"kind": kind, "title": kind})
    paths = {row.title: row.ident for row in builder.rows(draft_of("form", "trial").definition)}
    before = draft_of("form", "trial")
    for kind, values, message in BAD_SETTINGS:
        response = blank.hx(field_url("trial"), changed(panel(blank, "trial", paths[kind]), **values))
        assert response.status_code == 422, values
        assert unescape(re.search(r'id="b-panel-error">([^<]*)<', text(response)).group(1)) == message
        after = draft_of("form", "trial")
        assert (after.revision, after.definition) == (before.revision, before.definition), values


def test_good_limits_are_stored_typed(blank):
    blank.hx("/admin/forms/trial/edit/add", {"kind": "text"})
    blank.hx("/admin/forms/trial/edit/add", {"kind": "number"})
    blank.hx(field_url("trial"), changed(panel(blank, "trial", "field_1"), min_length="2", max_length="30"))
    blank.hx(field_url("trial"), changed(panel(blank, "trial", "field_2"), minimum="0", maximum="99.5"))
    props = draft_of("form", "trial").definition["schema"]["properties"]
    assert (props["field_1"]["minLength"], props["field_1"]["maxLength"]) == (2, 30)
    assert (props["field_2"]["minimum"], props["field_2"]["maximum"]) == (0, 99.5)


def test_condition_rows_become_ui_visible_when(blank):
    blank.hx("/admin/forms/trial/edit/add", {"kind": "yesno", "title": "是否有问题"})
    blank.hx("/admin/forms/trial/edit/add", {"kind": "select", "title": "问题类型"})
    blank.hx("/admin/forms/trial/edit/add", {"kind": "textarea", "title": "问题描述"})
    pairs = panel(blank, "trial", "field_3")
    rows = [("cond_field", "field_1"), ("cond_op", "eq"), ("cond_value", "true"),
            ("cond_field", "field_2"), ("cond_op", "in"), ("cond_value", "o1,o2")]
    response = blank.hx(field_url("trial"), [*pairs, *rows, ("cond_mode", "all")])
    assert response.status_code == 200
    ui = draft_of("form", "trial").definition["ui"]["field_3"]
    assert ui["ui:visibleWhen"] == {"allOf": [
        {"properties": {"field_1": {"const": True}}, "required": ["field_1"]},
        {"properties": {"field_2": {"enum": ["o1", "o2"]}}, "required": ["field_2"]}]}
    assert "当 是否有问题 等于 是 且 问题类型 是其中之一 选项一、选项二 时显示" in text(response)
    # the panel shows the rows again, and re-posting them as they are changes nothing
    again = panel(blank, "trial", "field_3")
    assert [v for n, v in again if n == "cond_field"] == ["field_1", "field_2"]
    blank.hx(field_url("trial"), again)
    assert draft_of("form", "trial").definition["ui"]["field_3"] == ui
    # "any" mode, then a row deleted, then all cleared
    blank.hx(field_url("trial"), changed(panel(blank, "trial", "field_3"), cond_mode="any"))
    assert list(draft_of("form", "trial").definition["ui"]["field_3"]["ui:visibleWhen"]) == ["anyOf"]
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_3"), ("_op", "cond-del-0")])
    assert draft_of("form", "trial").definition["ui"]["field_3"]["ui:visibleWhen"] == {
        "properties": {"field_2": {"enum": ["o1", "o2"]}}, "required": ["field_2"]}
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_3"), ("_op", "cond-del-0")])
    assert "ui:visibleWhen" not in draft_of("form", "trial").definition["ui"]["field_3"]
    # a condition on a field that is not there is refused
    refused = blank.hx(field_url("trial"), [*panel(blank, "trial", "field_3"), ("cond_field", "nothing"),
                                            ("cond_op", "eq"), ("cond_value", "x")])
    assert refused.status_code == 422 and "条件里的字段 nothing 不存在" in text(refused)


def test_a_raw_condition_is_kept_by_the_panel_and_cleared_by_its_button(blank):
    blank.hx("/admin/forms/trial/edit/add", {"kind": "integer", "title": "人数"})
    blank.hx("/admin/forms/trial/edit/add", {"kind": "text", "title": "说明"})
    doc = draft_of("form", "trial").definition
    raw = {"anyOf": [{"properties": {"field_1": {"multipleOf": 2}}, "required": ["field_1"]}]}
    doc["ui"]["field_2"] = {"ui:visibleWhen": raw}
    open_builder(blank, "trial")
    assert blank.hx("/admin/forms/trial/edit/json", {"json": json.dumps(doc)}).status_code == 200
    pairs = panel(blank, "trial", "field_2")
    assert json.loads(dict(pairs)["cond_raw"]) == raw
    blank.hx(field_url("trial"), changed(pairs, title="补充说明"))
    ui = draft_of("form", "trial").definition["ui"]["field_2"]
    assert ui["ui:visibleWhen"] == raw
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_2"), ("_op", "cond-clear")])
    assert "ui:visibleWhen" not in draft_of("form", "trial").definition["ui"].get("field_2", {})


def test_the_add_condition_button_shows_a_row_to_fill_in(blank):
    blank.hx("/admin/forms/trial/edit/add", {"kind": "yesno", "title": "是否有问题"})
    blank.hx("/admin/forms/trial/edit/add", {"kind": "text", "title": "说明"})
    before = draft_of("form", "trial").definition
    response = blank.hx(field_url("trial"), [*panel(blank, "trial", "field_2"), ("_op", "cond-add")])
    assert response.status_code == 200
    html = text(response)
    assert 'id="bp-cond-field-0"' in html and "总是显示" in html
    assert draft_of("form", "trial").definition == before  # an empty row is shown, not saved
    # the row as the browser sends it back with a field picked: saved
    pairs = [*form_fields(html, "b-panel-form"), ("_rev", revision_of(html))]
    assert ("cond_field", "") in pairs
    blank.hx(field_url("trial"), changed(pairs, cond_field="field_1", cond_value="true"))
    assert draft_of("form", "trial").definition["ui"]["field_2"]["ui:visibleWhen"] == {
        "properties": {"field_1": {"const": True}}, "required": ["field_1"]}


def test_the_add_branch_condition_button_shows_a_row_to_fill_in(city):
    pairs = node_form(city, "incident_loop", "urgency_check")
    response = city.hx("/admin/flows/incident_loop/edit/node", [*pairs, ("_op", "c-add")])
    assert response.status_code == 200
    assert 'id="fe-c-field-1"' in text(response)
    assert draft_of("flow", "incident_loop").definition["nodes"]["urgency_check"] == \
        shipped_doc("flows", "incident_loop")["nodes"]["urgency_check"]


def test_move_up_and_down_change_the_order(blank):
    for title in ("甲", "乙", "丙"):
        blank.hx("/admin/forms/trial/edit/add", {"kind": "text", "title": title})
    order = lambda: draft_of("form", "trial").definition["ui"]["ui:order"]  # noqa: E731
    assert blank.hx("/admin/forms/trial/edit/move", {"path": "field_3", "to": "up"}).status_code == 200
    assert order() == ["field_1", "field_3", "field_2"]
    blank.hx("/admin/forms/trial/edit/move", {"path": "field_1", "to": "down"})
    assert order() == ["field_3", "field_1", "field_2"]
    blank.hx("/admin/forms/trial/edit/move", {"path": "field_2", "to": "0"})  # dragged to the top
    assert order() == ["field_2", "field_3", "field_1"]
    html = text(blank.hx("/admin/forms/trial/edit/move", {"path": "field_2", "to": "up"}))  # already first
    assert order() == ["field_2", "field_3", "field_1"]
    assert [m for m in re.findall(r'data-path="([^"]+)"', html)] == ["field_2", "field_3", "field_1"]
    for data in ({"path": "nothing", "to": "up"}, {"path": "field_1", "to": "left"}):
        refused = blank.hx("/admin/forms/trial/edit/move", data)
        assert refused.status_code == 422 and "无法移动这个字段" in text(refused)
    assert order() == ["field_2", "field_3", "field_1"]


def test_remove_is_refused_while_a_condition_uses_the_field(blank):
    blank.hx("/admin/forms/trial/edit/add", {"kind": "yesno", "title": "是否有问题"})
    blank.hx("/admin/forms/trial/edit/add", {"kind": "text", "title": "问题说明"})
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_2"), ("cond_field", "field_1"),
                                  ("cond_op", "eq"), ("cond_value", "true")])
    before = draft_of("form", "trial")
    refused = blank.hx("/admin/forms/trial/edit/remove", {"path": "field_1"})
    assert refused.status_code == 422
    assert "「问题说明」的显示条件用到了这个字段，请先修改那些条件再删除" in alerts(text(refused))
    assert draft_of("form", "trial").definition == before.definition
    # without the condition the field goes, with its place in the order
    blank.hx(field_url("trial"), [*panel(blank, "trial", "field_2"), ("_op", "cond-clear")])
    assert blank.hx("/admin/forms/trial/edit/remove", {"path": "field_1"}).status_code == 200
    doc = draft_of("form", "trial").definition
    assert list(doc["schema"]["properties"]) == ["field_2"] and doc["ui"]["ui:order"] == ["field_2"]


def test_a_shipped_field_several_conditions_use_is_not_removed(city):
    open_builder(city, "incident_report")
    refused = city.hx("/admin/forms/incident_report/edit/remove", {"path": "source"})
    assert refused.status_code == 422
    assert alerts(text(refused)) == ["「反映人是否要求匿名」「反映人姓名」「反映人联系电话」的显示条件用到了这个字段，"
                                     "请先修改那些条件再删除"]
    assert draft_of("form", "incident_report").definition == with_orders(shipped_doc("forms", "incident_report"))


def test_a_stale_revision_is_refused_and_nothing_changes(blank):
    html = text(blank.hx("/admin/forms/trial/edit/add", {"kind": "text", "title": "甲"}))
    rev = revision_of(html)
    # another tab adds a field meanwhile
    blank.hx("/admin/forms/trial/edit/add", {"kind": "text", "title": "乙", "_rev": rev})
    before = draft_of("form", "trial")
    assert before.revision == int(rev) + 1
    for path, data in (("/edit/add", {"kind": "integer"}), ("/edit/remove", {"path": "field_1"}),
                       ("/edit/move", {"path": "field_2", "to": "up"}),
                       ("/edit/meta", {"form_title": "新名称"}),
                       ("/edit/field", {"path": "field_1", "title": "改名"})):
        response = blank.hx("/admin/forms/trial" + path, {**data, "_rev": rev})
        assert response.status_code == 409, path
        html = text(response)
        assert "草稿已在别处修改（另一个窗口或另一位管理员），已显示最新内容，请重新操作" in html
        assert revision_of(html) == str(before.revision)  # the latest draft is shown
        after = draft_of("form", "trial")
        assert (after.revision, after.definition) == (before.revision, before.definition)
    # with the current revision it goes through
    assert blank.hx("/admin/forms/trial/edit/meta", {"form_title": "新名称",
                                                      "_rev": str(before.revision)}).status_code == 200
    assert draft_of("form", "trial").definition["title"] == "新名称"


def test_form_meta_title_description_and_flow(blank):
    response = blank.hx("/admin/forms/trial/edit/meta", {"form_title": "  ", "form_description": "x"})
    assert response.status_code == 422 and "表单名称不能为空" in text(response)
    blank.hx("/admin/forms/trial/edit/meta", {"form_title": "走访登记", "form_description": "每月一次",
                                              "form_flow": "visit_followup"})
    doc = draft_of("form", "trial").definition
    assert (doc["title"], doc["description"], doc["flow"]) == ("走访登记", "每月一次", "visit_followup")
    blank.hx("/admin/forms/trial/edit/meta", {"form_title": "走访登记", "form_description": "", "form_flow": ""})
    doc = draft_of("form", "trial").definition
    assert "description" not in doc and "flow" not in doc


# -- the JSON view ------------------------------------------------------------------------------

def test_a_json_syntax_error_names_its_line(city):
    open_builder(city, "incident_report")
    before = draft_of("form", "incident_report")
    good = drafts.text_of(before.definition)
    lines = good.split("\n")
    at = next(i for i, line in enumerate(lines) if line.strip() == '"const": "dispute",')
    lines[at] = lines[at].rstrip(",")  # a missing comma: the error is on the next line
    response = city.hx("/admin/forms/incident_report/edit/json", {"json": "\n".join(lines)})
    assert response.status_code == 422
    html = text(response)
    line, message = re.search(r'<li data-line="(\d+)">([^<]*)</li>', html).groups()
    assert int(line) == at + 2
    assert message.startswith(f"第 {at + 2} 行第 ") and message.endswith("JSON 格式有误（缺少逗号）")
    assert '<details class="card b-json" id="b-json" open>' in html
    assert "&#34;const&#34;: &#34;dispute&#34;\n" in html or '"const": "dispute"\n' in html  # the text comes back
    for bad, reason in (('{"key": "incident_report",}', "键名须用英文双引号括起来，或多了一个逗号"),
                        ('{"key": "incident_report"} x', "结尾有多余的内容"),
                        ("[1, 2]", "定义应是一个 JSON 对象 { … }")):
        refused = city.hx("/admin/forms/incident_report/edit/json", {"json": bad})
        assert refused.status_code == 422 and reason in text(refused)
    after = draft_of("form", "incident_report")
    assert (after.revision, after.definition) == (before.revision, before.definition)


def test_a_meta_schema_error_points_at_the_line_of_the_value(city):
    open_builder(city, "incident_report")
    doc = copy.deepcopy(draft_of("form", "incident_report").definition)
    doc["ui"]["description"]["ui:options"] = "四行"  # ui:options must be an object
    doc["ui"]["ui:order"][3] = 4  # names are strings
    doc["title"] = ""
    body = drafts.text_of(doc)
    lines = pointer_lines(body)
    shown = body.split("\n")
    assert shown[lines["/ui/description/ui:options"] - 1].strip().rstrip(",") == '"ui:options": "四行"'
    assert shown[lines["/ui/ui:order/3"] - 1].strip().rstrip(",") == "4"
    response = city.hx("/admin/forms/incident_report/edit/json", {"json": body})
    assert response.status_code == 422
    found = re.findall(r'<li data-line="(\d+)">([^<]*)</li>', text(response))
    pointers = ["/title", "/ui/description/ui:options", "/ui/ui:order/3"]  # listed by place in the definition
    assert [int(line) for line, _ in found] == [lines[p] for p in pointers]
    for (line, message), pointer in zip(found, pointers, strict=True):
        assert message.startswith(f"第 {line} 行（{pointer}）："), message
    assert draft_of("form", "incident_report").revision == 1


def test_an_invalid_field_schema_in_the_json_view_points_at_its_line(city):
    open_builder(city, "incident_report")
    doc = copy.deepcopy(draft_of("form", "incident_report").definition)
    doc["schema"]["properties"]["involved_people"]["type"] = "intger"
    body = drafts.text_of(doc)
    line = pointer_lines(body)["/schema/properties/involved_people/type"]
    assert body.split("\n")[line - 1].strip().rstrip(",") == '"type": "intger"'
    response = city.hx("/admin/forms/incident_report/edit/json", {"json": body})
    assert response.status_code == 422
    found = re.findall(r'<li data-line="(\d+)">([^<]*)</li>', text(response))
    assert [int(n) for n, _ in found] == [line]
    assert found[0][1].startswith(f"第 {line} 行（/schema/properties/involved_people/type）：")
    assert "intger" in unescape(found[0][1])
    assert draft_of("form", "incident_report").revision == 1


def test_the_json_view_keeps_the_key_and_saves_valid_json(city):
    open_builder(city, "incident_report")
    doc = copy.deepcopy(draft_of("form", "incident_report").definition)
    renamed = {**doc, "key": "other_key"}
    refused = city.hx("/admin/forms/incident_report/edit/json", {"json": json.dumps(renamed, ensure_ascii=False)})
    assert refused.status_code == 422 and "表单标识 key 须保持为 incident_report" in text(refused)
    assert draft_of("form", "incident_report").definition == doc
    doc["schema"]["properties"]["source"]["title"] = "信息来源"
    doc["description"] = "改过的说明"
    saved = city.hx("/admin/forms/incident_report/edit/json", {"json": json.dumps(doc, ensure_ascii=False)})
    assert saved.status_code == 200
    draft = draft_of("form", "incident_report")
    assert draft.definition == doc and draft.revision == 2
    assert "信息来源" in text(saved)


# -- the preview, publishing, versions ---------------------------------------------------------

def test_preview_tries_data_keeps_tests_and_publishing_drops_them(city):
    open_builder(city, "incident_report")
    bad = city.hx("/admin/forms/incident_report/edit/preview", {"/description": "短"})
    assert bad.status_code == 200
    html = text(bad)
    note = re.search(r"有 (\d+) 处不符合要求（这是试填，不会保存为正式提交）", html)
    assert note and int(note.group(1)) >= 4
    assert "「事件描述」至少需要 5 个字" in html
    assert draft_of("form", "incident_report").tests == []
    assert Submission.select().count() == 0
    good = city.hx("/admin/forms/incident_report/edit/preview", INCIDENT)
    assert "试填通过（第 1 次试填；试填记录在发布时丢弃）" in text(good)
    again = city.hx("/admin/forms/incident_report/edit/preview", {**INCIDENT, "/urgency": "urgent"})
    assert "试填通过（第 2 次试填" in text(again)
    tests = draft_of("form", "incident_report").tests
    assert [t["urgency"] for t in tests] == ["normal", "urgent"]
    assert tests[0]["location"] == {"latitude": 22.6301, "longitude": 110.1542}
    assert tests[0]["description"] == INCIDENT["/description"]
    assert Submission.select().count() == 0
    # a change, then publish: the draft and its tests go, version 2 is the admin's, from the web
    city.hx(field_url("incident_report"), changed(panel(city, "incident_report", "description"), title="事件经过"))
    response = city.post("/admin/forms/incident_report/publish")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/forms/incident_report")
    assert draft_of("form", "incident_report") is None
    version = (FormVersion.select().join(Form).where(Form.key == "incident_report")
               .order_by(FormVersion.version.desc()).first())
    assert (version.version, version.source, version.created_by.username) == (2, "web", "city")
    assert version.definition["schema"]["properties"]["description"]["title"] == "事件经过"
    page = text(city.get("/admin/forms/incident_report"))
    assert "已发布新版本：第 2 版（试填记录已丢弃）" in alerts(page)
    rows = re.findall(r"<tr><td>第 (\d+) 版</td><td>([^<]*)</td>", page)
    assert rows == [("2", "王市管"), ("1", "系统导入")]
    assert "网页编辑" in page
    assert changes_listed(page) == ["字段「事件描述」改名为「事件经过」"]


def test_the_preview_redraws_conditions_and_checks_one_field(city):
    open_builder(city, "incident_report")
    shown = city.hx("/admin/forms/incident_report/edit/preview/render", {**INCIDENT, "/source": "resident_report"})
    assert shown.status_code == 200
    assert 'name="/reporter_name"' in text(shown) and 'name="/is_anonymous"' in text(shown)
    hidden = city.hx("/admin/forms/incident_report/edit/preview/render", INCIDENT)
    assert 'name="/reporter_name"' not in text(hidden) and 'name="/description"' in text(hidden)
    checked = city.hx("/admin/forms/incident_report/edit/preview/check",
                      {"_field": "/description", "/description": "短"})
    assert checked.status_code == 200 and "「事件描述」至少需要 5 个字" in text(checked)
    fine = city.hx("/admin/forms/incident_report/edit/preview/check",
                   {"_field": "/description", "/description": "楼道堆放杂物"})
    assert "至少需要" not in text(fine)
    # the preview follows the draft: a field added is tried at once
    city.hx("/admin/forms/incident_report/edit/add", {"kind": "integer", "title": "楼层"})
    added = city.hx("/admin/forms/incident_report/edit/preview/check", {"_field": "/field_1", "/field_1": "三"})
    assert "「楼层」应为整数" in text(added)
    assert draft_of("form", "incident_report").tests == []


def test_the_version_page_compares_any_two_versions(city):
    for title in ("事件经过", "事件详情"):
        city.hx(field_url("incident_report"), changed(panel(city, "incident_report", "description"), title=title))
        assert city.post("/admin/forms/incident_report/publish").status_code == 302
    city.hx("/admin/forms/incident_report/edit/add", {"kind": "phone", "title": "联系电话"})
    city.post("/admin/forms/incident_report/publish")
    versions = {v.version: v.definition for v in FormVersion.select().join(Form).where(Form.key == "incident_report")}
    assert sorted(versions) == [1, 2, 3, 4]

    def listed(url: str) -> list[str]:
        return changes_listed(text(city.get(url)))

    assert listed("/admin/forms/incident_report") == [c.text for c in form_changes(versions[3], versions[4])]
    assert listed("/admin/forms/incident_report?a=1&b=4") == [c.text for c in form_changes(versions[1], versions[4])]
    assert "字段「事件描述」改名为「事件详情」" in listed("/admin/forms/incident_report?a=1&b=3")
    assert listed("/admin/forms/incident_report?a=4&b=1") == [c.text for c in form_changes(versions[4], versions[1])]
    assert "新增字段「联系电话」" in listed("/admin/forms/incident_report?a=2&b=4")
    assert "第 1 版 → 第 4 版的修改" in text(city.get("/admin/forms/incident_report?a=1&b=4"))


def test_the_version_diff_lists_changes_in_the_forms_order(city):
    """Also on PostgreSQL, whose jsonb keeps keys in its own order: the stated ui:order wins."""
    city.hx(field_url("incident_report"), changed(panel(city, "incident_report", "category"), title="事件分类"))
    city.hx(field_url("incident_report"), changed(panel(city, "incident_report", "photos"), title="现场图片"))
    assert city.post("/admin/forms/incident_report/publish").status_code == 302
    page = text(city.get("/admin/forms/incident_report"))
    listed = changes_listed(page)
    assert listed == ["字段「事件类别」改名为「事件分类」", "字段「现场照片」改名为「现场图片」"]


def test_publishing_a_draft_with_check_findings_is_refused(city):
    open_builder(city, "incident_report")
    doc = copy.deepcopy(draft_of("form", "incident_report").definition)
    doc["flow"] = "no_such_flow"
    assert city.hx("/admin/forms/incident_report/edit/json", {"json": json.dumps(doc)}).status_code == 200
    page = open_builder(city, "incident_report")
    assert "找不到流程 no_such_flow" in page and 'id="b-publish" disabled' in page
    response = city.post("/admin/forms/incident_report/publish")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/forms/incident_report/edit")
    assert "/flow：找不到流程 no_such_flow" in alerts(text(city.get(response.headers["Location"])))
    assert FormVersion.select().join(Form).where(Form.key == "incident_report").count() == 1
    assert draft_of("form", "incident_report").definition["flow"] == "no_such_flow"
    # publishing an unchanged draft is refused too
    city.post("/admin/forms/incident_report/discard")
    open_builder(city, "incident_report")
    same = city.post("/admin/forms/incident_report/publish")
    assert "与已发布的最新版本相同，没有可发布的改动" in alerts(text(city.get(same.headers["Location"])))
    assert FormVersion.select().join(Form).where(Form.key == "incident_report").count() == 1


def test_removing_an_option_stored_submissions_use_needs_a_confirmation(city, site, people):
    for category in ("fire_safety", "fire_safety", "dispute"):
        response = site.app.test_client().post(
            "/api/v1/forms/incident_report/submissions", headers=people.headers("wgy"),
            json={"grid": "G1", "data": {**INCIDENT_DATA, "category": category}})
        assert response.status_code == 201, response.get_json()
    pairs = panel(city, "incident_report", "category")
    index = [v for n, v in pairs if n == "opt_value"].index("fire_safety")
    city.hx(field_url("incident_report"), [*pairs, ("_op", f"opt-del-{index}")])
    options = draft_of("form", "incident_report").definition["schema"]["properties"]["category"]["oneOf"]
    assert "fire_safety" not in [o["const"] for o in options]
    response = city.post("/admin/forms/incident_report/publish")
    assert response.status_code == 409
    html = text(response)
    assert re.findall(r'<ul id="impacts"><li>([^<]*)</li></ul>', html) == [
        "「事件类别」删除选项「消防安全」：2 份已有提交用到"]
    assert 'name="confirm" value="1"' in html
    assert FormVersion.select().join(Form).where(Form.key == "incident_report").count() == 1
    assert draft_of("form", "incident_report") is not None
    confirmed = city.post("/admin/forms/incident_report/publish", {"confirm": "1"})
    assert confirmed.status_code == 302
    newest = (FormVersion.select().join(Form).where(Form.key == "incident_report")
              .order_by(FormVersion.version.desc()).first())
    assert newest.version == 2
    assert "fire_safety" not in [o["const"] for o in newest.definition["schema"]["properties"]["category"]["oneOf"]]
    # the stored submissions keep their data and their version
    assert sorted(s.data["category"] for s in Submission.select()) == ["dispute", "fire_safety", "fire_safety"]
    assert {s.version for s in Submission.select()} == {1}


def test_discard_drops_the_draft(city):
    city.hx("/admin/forms/incident_report/edit/add", {"kind": "text"})
    assert draft_of("form", "incident_report") is not None
    response = city.post("/admin/forms/incident_report/discard")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/forms/incident_report")
    assert draft_of("form", "incident_report") is None
    assert "已放弃草稿" in alerts(text(city.get("/admin/forms/incident_report")))


# -- the flow editor ------------------------------------------------------------------------------

def node_form(browser: Browser, key: str, node: str) -> list[tuple[str, str]]:
    response = browser.get(f"/admin/flows/{key}/edit/node?node={node}", htmx=True)
    assert response.status_code == 200, text(response)
    html = text(response)
    return [*form_fields(html, "fe-node-form"), ("_rev", revision_of(html))]


@pytest.mark.parametrize("key", SHIPPED_FLOWS)
def test_every_node_of_every_shipped_flow_survives_its_panel_round_trip(city, key):
    original = shipped_doc("flows", key)
    lost = {}
    for node in original["nodes"]:
        pairs = node_form(city, key, node)
        assert ("node", node) in pairs
        response = city.hx(f"/admin/flows/{key}/edit/node", pairs)
        assert response.status_code == 200, (node, re.findall(r'id="b-panel-error">([^<]*)<', text(response)))
        stored = draft_of("flow", key).definition["nodes"][node]
        if stored != original["nodes"][node]:
            lost[node] = stored
    assert lost == {}
    assert draft_of("flow", key).definition == original


def test_adding_a_step_after_a_node_puts_it_in_between(city):
    city.get("/admin/flows/mediation_321/edit")
    response = city.hx("/admin/flows/mediation_321/edit/add", {"type": "task", "title": "预约调解时间",
                                                               "after": "community_mediation"})
    assert response.status_code == 200
    assert 'id="fe-row-task_1"' in text(response) and 'data-node="task_1"' in text(response)
    doc = draft_of("flow", "mediation_321").definition
    before = shipped_doc("flows", "mediation_321")["nodes"]
    new = doc["nodes"]["task_1"]
    assert new["title"] == "预约调解时间" and new["type"] == "task"
    assert [a["to"] for a in new["actions"]] == ["community_result"]
    assert [(a["key"], a["to"]) for a in doc["nodes"]["community_mediation"]["actions"]] == [
        ("record", "task_1"), ("terminate", "end_unresolved")]
    assert {k: v for k, v in doc["nodes"].items() if k not in ("task_1", "community_mediation")} == {
        k: v for k, v in before.items() if k != "community_mediation"}
    # a step at the end of the list points at the first end; a bad type or place is refused
    city.hx("/admin/flows/mediation_321/edit/add", {"type": "cc", "title": "抄送"})
    assert draft_of("flow", "mediation_321").definition["nodes"]["cc_1"]["next"] == "end_resolved"
    for data, message in (({"type": "robot", "title": "机器人"}, "未知的步骤类型 robot"),
                          ({"type": "task", "after": "nowhere"}, "找不到步骤 nowhere")):
        refused = city.hx("/admin/flows/mediation_321/edit/add", data)
        assert refused.status_code == 422 and message in text(refused)
    # removing the step joins its neighbours again
    city.hx("/admin/flows/mediation_321/edit/remove", {"node": "task_1"})
    city.hx("/admin/flows/mediation_321/edit/remove", {"node": "cc_1"})
    assert draft_of("flow", "mediation_321").definition == shipped_doc("flows", "mediation_321")


def test_a_deadline_of_five_working_days(city):
    pairs = node_form(city, "mediation_321", "community_mediation")
    response = city.hx("/admin/flows/mediation_321/edit/node",
                       changed(pairs, dl_amount="5", dl_unit="D", dl_working="1"))
    assert response.status_code == 200
    node = draft_of("flow", "mediation_321").definition["nodes"]["community_mediation"]
    assert node["deadline"] == {"duration": "P5D", "calendar": "working"}
    city.hx("/admin/flows/mediation_321/edit/node",
            changed(node_form(city, "mediation_321", "community_mediation"), dl_amount="36", dl_unit="H",
                    dl_working=None))
    node = draft_of("flow", "mediation_321").definition["nodes"]["community_mediation"]
    assert node["deadline"] == {"duration": "PT36H"}
    city.hx("/admin/flows/mediation_321/edit/node",
            changed(node_form(city, "mediation_321", "community_mediation"), dl_amount=""))
    assert "deadline" not in draft_of("flow", "mediation_321").definition["nodes"]["community_mediation"]
    refused = city.hx("/admin/flows/mediation_321/edit/node",
                      changed(node_form(city, "mediation_321", "community_mediation"), dl_amount="0"))
    assert refused.status_code == 422 and "期限应是大于 0 的整数" in text(refused)


def test_adding_and_removing_an_action(city):
    pairs = node_form(city, "incident_loop", "close_confirm")
    added = city.hx("/admin/flows/incident_loop/edit/node", [*pairs, ("_op", "act-add")])
    assert added.status_code == 200
    actions = draft_of("flow", "incident_loop").definition["nodes"]["close_confirm"]["actions"]
    assert actions[-1] == {"key": "action_3", "title": "新操作", "to": "return_visit"}
    assert 'id="fe-act-title-2"' in text(added)
    pairs = node_form(city, "incident_loop", "close_confirm")
    titled = [(n, "转交街道" if (n, v) == ("act_title", "新操作") else v) for n, v in pairs]
    city.hx("/admin/flows/incident_loop/edit/node", titled)
    assert draft_of("flow", "incident_loop").definition["nodes"]["close_confirm"]["actions"][-1]["title"] == "转交街道"
    city.hx("/admin/flows/incident_loop/edit/node", [*node_form(city, "incident_loop", "close_confirm"),
                                                     ("_op", "act-del-0")])
    actions = draft_of("flow", "incident_loop").definition["nodes"]["close_confirm"]["actions"]
    assert [a["key"] for a in actions] == ["redo", "action_3"]
    # the last action cannot go
    city.hx("/admin/flows/incident_loop/edit/node", [*node_form(city, "incident_loop", "close_confirm"),
                                                     ("_op", "act-del-0")])
    refused = city.hx("/admin/flows/incident_loop/edit/node", [*node_form(city, "incident_loop", "close_confirm"),
                                                               ("_op", "act-del-0")])
    assert refused.status_code == 422 and "办理步骤至少要有一个操作（如“办结”）" in text(refused)


def test_timeout_auto_takes_the_first_action_until_another_is_picked(city):
    pairs = node_form(city, "incident_loop", "triage")
    first = next(value for name, value in pairs if name == "act_key")
    city.hx("/admin/flows/incident_loop/edit/node", changed(pairs, timeout="auto"))
    node = draft_of("flow", "incident_loop").definition["nodes"]["triage"]
    assert node["on_timeout"] == {"action": "auto", "auto_action": first}
    city.hx("/admin/flows/incident_loop/edit/node", changed(pairs, timeout="auto", auto_action="handle_in_grid"))
    node = draft_of("flow", "incident_loop").definition["nodes"]["triage"]
    assert node["on_timeout"] == {"action": "auto", "auto_action": "handle_in_grid"}
    # the panel now offers the action to pick, and a round trip keeps it
    pairs = node_form(city, "incident_loop", "triage")
    assert ("auto_action", "handle_in_grid") in pairs
    city.hx("/admin/flows/incident_loop/edit/node", pairs)
    assert draft_of("flow", "incident_loop").definition["nodes"]["triage"] == node


def test_choosing_auto_timeout_offers_the_action_to_pick(city):
    pairs = node_form(city, "incident_loop", "triage")
    response = city.hx("/admin/flows/incident_loop/edit/node", changed(pairs, timeout="auto"))
    assert 'name="auto_action"' in text(response)


@pytest.mark.parametrize("key, node, op, new_row", [
    ("incident_loop", "triage", "a-add", 'id="fe-a-who-1"'),
    ("incident_loop", "cc_critical", "t-add", 'id="fe-t-who-2"'),
])
def test_the_add_row_buttons_show_a_new_row(city, key, node, op, new_row):
    response = city.hx(f"/admin/flows/{key}/edit/node", [*node_form(city, key, node), ("_op", op)])
    assert response.status_code == 200
    assert new_row in text(response)


def test_a_fallback_can_be_added_from_the_panel(city):
    pairs = node_form(city, "incident_loop", "street_whistle")
    assert ("fb_who", "") in pairs
    response = city.hx("/admin/flows/incident_loop/edit/node", changed(pairs, fb_who="role"))
    assert response.status_code == 200
    assert 'name="fb_level"' in text(response)


def test_an_unknown_step_type_without_a_title_is_refused_not_a_crash(city):
    response = city.hx("/admin/flows/mediation_321/edit/add", {"type": "robot"})
    assert response.status_code == 422 and "未知的步骤类型 robot" in text(response)


def test_a_stale_flow_revision_is_refused(city):
    pairs = node_form(city, "incident_loop", "triage")
    city.hx("/admin/flows/incident_loop/edit/node", changed(pairs, title="分级分流"))
    before = draft_of("flow", "incident_loop")
    response = city.hx("/admin/flows/incident_loop/edit/node", changed(pairs, title="又改名"))
    assert response.status_code == 409
    assert "草稿已在别处修改" in text(response)
    after = draft_of("flow", "incident_loop")
    assert (after.revision, after.definition) == (before.revision, before.definition)
    assert after.definition["nodes"]["triage"]["title"] == "分级分流"


def test_a_flow_with_a_dangling_target_is_not_published(city):
    city.get("/admin/flows/incident_loop/edit")
    doc = copy.deepcopy(draft_of("flow", "incident_loop").definition)
    doc["nodes"]["triage"]["actions"][0]["to"] = "nowhere"
    saved = city.hx("/admin/flows/incident_loop/edit/json", {"json": json.dumps(doc, ensure_ascii=False)})
    assert saved.status_code == 200
    assert 'id="b-findings"' in text(saved) and "nowhere" in text(saved)
    response = city.post("/admin/flows/incident_loop/publish")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/flows/incident_loop/edit")
    messages = alerts(text(city.get(response.headers["Location"])))
    assert any(m.startswith("/nodes/triage/actions/0/to：") and "nowhere" in m for m in messages), messages
    assert FlowVersion.select().join(Flow).where(Flow.key == "incident_loop").count() == 1
    # the JSON view refuses another key and a broken text
    refused = city.hx("/admin/flows/incident_loop/edit/json", {"json": json.dumps({**doc, "key": "other"})})
    assert refused.status_code == 422 and "流程标识 key 须保持为 incident_loop" in text(refused)
    broken = city.hx("/admin/flows/incident_loop/edit/json", {"json": '{\n\n  "key": "incident_loop"\n  "x": 1}'})
    assert broken.status_code == 422
    assert re.search(r'<li data-line="4">第 4 行第 3 列：JSON 格式有误（缺少逗号）', text(broken))


def test_publishing_a_good_flow_change_makes_a_version(city):
    city.hx("/admin/flows/mediation_321/edit/node",
            changed(node_form(city, "mediation_321", "community_mediation"), dl_amount="5", dl_working="1"))
    city.hx("/admin/flows/mediation_321/edit/meta", {"flow_title": "矛盾纠纷三二一调解", "flow_description": "",
                                                      "flow_start": "risk_check"})
    response = city.post("/admin/flows/mediation_321/publish")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/flows/mediation_321")
    version = (FlowVersion.select().join(Flow).where(Flow.key == "mediation_321")
               .order_by(FlowVersion.version.desc()).first())
    assert (version.version, version.source, version.created_by.username) == (2, "web", "city")
    assert version.definition["title"] == "矛盾纠纷三二一调解" and "description" not in version.definition
    assert version.definition["nodes"]["community_mediation"]["deadline"] == {"duration": "P5D",
                                                                              "calendar": "working"}
    assert Flow.get(Flow.key == "mediation_321").title == "矛盾纠纷三二一调解"
    assert draft_of("flow", "mediation_321") is None
    page = text(city.get("/admin/flows/mediation_321"))
    assert "已发布新版本：第 2 版" in alerts(page)
    assert re.findall(r"<tr><td>第 (\d+) 版</td><td>([^<]*)</td>", page) == [("2", "王市管"), ("1", "系统导入")]
    first = FlowVersion.get((FlowVersion.flow == version.flow) & (FlowVersion.version == 1))
    listed = changes_listed(page)
    assert listed == [c.text for c in flow_changes(first.definition, version.definition)]
    assert "流程名称：矛盾纠纷“三二一”调解 → 矛盾纠纷三二一调解" in listed
    assert any(t.startswith("「社区初调」的时限：") for t in listed)
    assert 'class="flow-diagram"' in page


def test_the_step_form_builder_adds_a_field_to_an_actions_form(city):
    at = "/nodes/community_mediation/actions/0/form"
    editor = text(city.get("/admin/flows/mediation_321/edit?node=community_mediation"))
    link = re.search(r'<a href="([^"]+)" id="fe-act-form-0">', editor).group(1).replace("&amp;", "&")
    assert link == "/admin/flows/mediation_321/step" + q(at=at)
    page = city.get(link)
    assert page.status_code == 200 and "步骤表单：社区初调 · 登记本次调解结果" in text(page)
    before = shipped_doc("flows", "mediation_321")
    form = before["nodes"]["community_mediation"]["actions"][0]["form"]
    response = city.hx("/admin/flows/mediation_321/step/add" + q(at=at), {"kind": "date", "title": "下次调解日期"})
    assert response.status_code == 200
    doc = draft_of("flow", "mediation_321").definition
    new = doc["nodes"]["community_mediation"]["actions"][0]["form"]
    name = builder.new_key(form)
    assert new["schema"]["properties"][name] == {"title": "下次调解日期", "type": "string", "format": "date"}
    assert {k: v for k, v in new["schema"]["properties"].items() if k != name} == form["schema"]["properties"]
    assert new["ui"]["ui:order"][-1] == name
    # the rest of the flow is untouched; no form draft appears
    doc["nodes"]["community_mediation"]["actions"][0]["form"] = form
    assert doc == before
    assert draft_of("form", "mediation_321") is None
    # an action without a form gets one; a bad place is 404
    plain = "/nodes/triage/actions/0/form"
    city.hx("/admin/flows/incident_loop/step/add" + q(at=plain), {"kind": "text", "title": "处置要求"})
    action = draft_of("flow", "incident_loop").definition["nodes"]["triage"]["actions"][0]
    assert action["form"]["schema"]["properties"] == {"field_1": {"title": "处置要求", "type": "string",
                                                                  "maxLength": 200}}
    # its settings through the same panel: required, relabelled
    pairs = panel(city, "incident_loop", "field_1", step=plain)
    city.hx("/admin/flows/incident_loop/step/field" + q(at=plain), changed(pairs, title="处置要求说明", required="1"))
    form = draft_of("flow", "incident_loop").definition["nodes"]["triage"]["actions"][0]["form"]
    assert form["schema"]["properties"]["field_1"]["title"] == "处置要求说明"
    assert form["schema"]["required"] == ["field_1"]
    # the last field removed: the action has no form any more
    city.hx("/admin/flows/incident_loop/step/remove" + q(at=plain), {"path": "field_1"})
    assert "form" not in draft_of("flow", "incident_loop").definition["nodes"]["triage"]["actions"][0]
    for bad in ("/nodes/triage/actions/9/form", "/nodes/nowhere/form", "/schema"):
        assert city.get("/admin/flows/incident_loop/step" + q(at=bad)).status_code == 404, bad


# -- adaptations through the web -----------------------------------------------------------------

def fill_page(browser: Browser, key: str = "incident_report") -> str:
    response = browser.get(f"/forms/{key}/new")
    assert response.status_code == 200
    return text(response)


def label_of(html: str, name: str) -> str | None:
    found = re.search(rf'<label for="f-{name}" class="label">([^<]*)', html)
    return found.group(1).strip() if found else None


def adapt_incident_report(street: Browser) -> int:
    """As the street administrator: relabel 涉及户数, add a field 楼栋号, publish; the effective row id."""
    picked = street.get("/admin/forms/adapt?key=incident_report&grid=S1")
    assert picked.status_code == 302
    assert picked.headers["Location"].endswith("/admin/forms/incident_report/edit?grid=S1")
    page = open_builder(street, "incident_report", "S1")
    assert "本地调整：东街道 · 事件上报" in page
    pairs = panel(street, "incident_report", "involved_households", grid="S1")
    street.hx(field_url("incident_report", "S1"), changed(pairs, title="涉及住户数"))
    added = street.hx("/admin/forms/incident_report/edit/add?grid=S1", {"kind": "text", "title": "楼栋号"})
    assert added.status_code == 200
    response = street.post("/admin/forms/incident_report/publish?grid=S1")
    assert response.status_code == 302, text(response)
    assert draft_of("form", "incident_report", "S1") is None
    adaptation = Adaptation.get(Adaptation.key == "incident_report")
    assert adaptation.grid.code == "S1" and adaptation.overlay_version == 1 and adaptation.conflict is None
    return adaptation.effective


def test_a_street_adaptation_changes_the_fill_page_of_its_grids_only(site, street):
    effective = adapt_incident_report(street)
    row = FormVersion.get_by_id(effective)
    assert (row.version, row.variant, row.overlays) == (1, "S1:1", [{"grid": "S1", "version": 1}])
    assert row.created_by.username == "street"
    overlay = Overlay.get(Overlay.key == "incident_report")
    assert overlay.created_by.username == "street" and overlay.base_version == 1
    assert [v.version for v in FormVersion.select().join(Form).where(
        (Form.key == "incident_report") & (FormVersion.variant == ""))] == [1]
    worker, other = Browser(site, "wgy"), Browser(site, "wgy3")
    here = fill_page(worker)
    assert label_of(here, "involved_households") == "涉及住户数"
    assert label_of(here, "local_1") == "楼栋号"
    assert 'name="_variant" value="S1:1"' in here
    there = fill_page(other)
    assert label_of(there, "involved_households") == "涉及户数"
    assert 'name="/local_1"' not in there and 'name="_variant" value=""' in there
    # a submission made on the adapted page is stored with the adapted version
    sid = str(uuid.uuid4())
    hidden = dict(re.findall(r'<input type="hidden" name="(_version|_variant)" value="([^"]*)"', here))
    response = worker.post("/forms/incident_report/new", {**INCIDENT, "_id": sid, "_grid": "G1", **hidden,
                                                          "/local_1": "3栋", "/involved_households": "4"})
    assert response.status_code == 303, text(response)
    case = Submission.get_by_id(sid)
    assert case.form_version_id == effective
    assert (case.data["local_1"], case.data["involved_households"]) == ("3栋", 4)
    view = text(worker.get(f"/submissions/{sid}"))
    assert "涉及住户数" in view and "3栋" in view


def test_a_page_drawn_for_another_grid_is_redrawn_with_the_grids_version(site, people, street):
    adapt_incident_report(street)
    people.make("both", "grid_worker@G1", "grid_worker@G3")
    quick_logins()
    worker = Browser(site, "both")
    base = text(worker.get("/forms/incident_report/new?grid=G3"))
    hidden = dict(re.findall(r'<input type="hidden" name="(_version|_variant)" value="([^"]*)"', base))
    assert hidden == {"_version": "1", "_variant": ""}
    sid = str(uuid.uuid4())
    response = worker.post("/forms/incident_report/new", {**INCIDENT, "_id": sid, "_grid": "G1", **hidden})
    assert response.status_code == 200
    assert "所选网格使用本地调整后的表单，请核对后再提交。" in text(response)
    assert 'name="_variant" value="S1:1"' in text(response)
    assert Submission.select().count() == 0
    # posted again from the redrawn page, it is filed with the adapted version
    again = dict(re.findall(r'<input type="hidden" name="(_version|_variant|_id)" value="([^"]*)"', text(response)))
    filed = worker.post("/forms/incident_report/new", {**INCIDENT, "_grid": "G1", **again})
    assert filed.status_code == 303, text(filed)
    assert Submission.get_by_id(again["_id"]).form_version.variant == "S1:1"


def test_the_root_administrator_sees_the_adaptation_and_its_changes(site, city, street):
    adapt_incident_report(street)
    page = text(city.get("/admin/forms/incident_report"))
    section = re.search(r'<section class="card" id="adaptations">(.*?)</section>', page, re.S).group(1)
    assert "东街道" in section and "S1" in section and "调整第 1 版" in section and "基于第 1 版" in section
    assert sorted(re.findall(r"<li>([^<]*)</li>", section)) == [
        "字段「涉及户数」改名为「涉及住户数」", "新增字段「楼栋号」"]
    listing = text(city.get("/admin/forms"))
    assert '<span class="tag">东街道</span>' in listing
    # the district above sees it too; the street's own page lists it with its withdraw button
    district = text(Browser(site, "district").get("/admin/forms/incident_report"))
    assert "东街道" in re.search(r'id="adaptations">(.*?)</section>', district, re.S).group(1)
    own = text(street.get("/admin/forms/incident_report"))
    assert 'action="/admin/forms/incident_report/withdraw?grid=S1"' in own


def test_a_new_base_that_removes_the_relabelled_field_conflicts_and_withdraw_restores_the_base(site, city, street):
    effective = adapt_incident_report(street)
    # the city removes 涉及户数 and publishes version 2
    assert city.hx("/admin/forms/incident_report/edit/remove", {"path": "involved_households"}).status_code == 200
    response = city.post("/admin/forms/incident_report/publish")
    assert response.status_code == 302, text(response)
    adaptation = Adaptation.get(Adaptation.key == "incident_report")
    assert adaptation.conflict is not None and adaptation.effective == effective
    message = "字段「涉及住户数」在上级新版本中已删除或改名，本地的修改无法套用"
    assert adaptation.conflict["message"] == message
    # the street administrator sees it on the forms page and in the builder
    listing = text(street.get("/admin/forms"))
    assert "本地调整与上级新版本冲突" in listing and message in listing
    page = open_builder(street, "incident_report", "S1")
    conflicts = re.search(r'<section class="card conflict" role="alert" id="b-conflicts">(.*?)</section>', page, re.S)
    assert conflicts and message in conflicts.group(1)
    # the builder starts from the new base with what still applies: the added field, not the removed one
    draft = draft_of("form", "incident_report", "S1").definition
    assert "involved_households" not in draft["schema"]["properties"]
    assert draft["schema"]["properties"]["local_1"]["title"] == "楼栋号"
    # meanwhile G1 keeps the last adapted version that worked
    worker = Browser(site, "wgy")
    here = fill_page(worker)
    assert label_of(here, "involved_households") == "涉及住户数" and label_of(here, "local_1") == "楼栋号"
    assert 'name="_version" value="1"' in here and 'name="_variant" value="S1:1"' in here
    # withdrawn: G1 uses the base again
    withdrawn = street.post("/admin/forms/incident_report/withdraw?grid=S1")
    assert withdrawn.status_code == 302
    assert Adaptation.select().count() == 0 and Overlay.select().count() == 1  # history kept
    here = fill_page(worker)
    assert label_of(here, "involved_households") is None and 'name="/local_1"' not in here
    assert 'name="_version" value="2"' in here and 'name="_variant" value=""' in here
    assert "已取消本地调整，辖区改用上级版本" in alerts(text(street.get("/admin/forms/incident_report")))


def test_an_adaptation_may_not_hide_a_required_field(street):
    open_builder(street, "incident_report", "S1")
    assert street.hx("/admin/forms/incident_report/edit/remove?grid=S1", {"path": "description"}).status_code == 200
    response = street.post("/admin/forms/incident_report/publish?grid=S1")
    assert response.status_code == 302 and "grid=S1" in response.headers["Location"]
    assert "必填字段「事件描述」不能隐藏（上级要求填写）" in alerts(text(street.get(response.headers["Location"])))
    assert Overlay.select().count() == 0 and Adaptation.select().count() == 0
    assert draft_of("form", "incident_report", "S1") is not None
    # nor a street administrator withdraw or publish for a grid outside their area
    assert street.post("/admin/forms/incident_report/withdraw?grid=S2").status_code == 404
    assert street.post("/admin/forms/incident_report/publish?grid=D1").status_code == 404


def test_a_conflict_is_resolved_by_publishing_the_adaptation_again(site, city, street):
    adapt_incident_report(street)
    city.hx("/admin/forms/incident_report/edit/remove", {"path": "involved_households"})
    city.post("/admin/forms/incident_report/publish")
    assert Adaptation.get().conflict is not None
    open_builder(street, "incident_report", "S1")
    response = street.post("/admin/forms/incident_report/publish?grid=S1")
    assert response.status_code == 302, text(response)
    adaptation = Adaptation.get()
    assert adaptation.conflict is None and adaptation.overlay_version == 2
    row = FormVersion.get_by_id(adaptation.effective)
    assert (row.version, row.variant) == (2, "S1:2")
    here = fill_page(Browser(site, "wgy"))
    assert label_of(here, "local_1") == "楼栋号" and 'name="/involved_households"' not in here
    assert "本地调整与上级新版本冲突" not in text(street.get("/admin/forms"))


def test_an_adaptation_and_a_base_that_both_require_a_field_do_not_conflict(city, street):
    street.hx(field_url("incident_report", "S1"),
              changed(panel(street, "incident_report", "source", grid="S1"), required="1"))
    assert street.post("/admin/forms/incident_report/publish?grid=S1").status_code == 302
    city.hx(field_url("incident_report"), changed(panel(city, "incident_report", "source"), required="1"))
    assert city.post("/admin/forms/incident_report/publish").status_code == 302
    adaptation = Adaptation.get()
    assert adaptation.conflict is None
    required = FormVersion.get_by_id(adaptation.effective).definition["schema"]["required"]
    assert required.count("source") == 1


def test_a_stale_adaptation_draft_does_not_undo_the_new_base(city, street):
    open_builder(street, "incident_report", "S1")  # the street starts adapting version 1
    city.hx("/admin/forms/incident_report/edit/add", {"kind": "text", "title": "备注"})
    assert city.post("/admin/forms/incident_report/publish").status_code == 302  # version 2 adds 备注
    street.hx(field_url("incident_report", "S1"),
              changed(panel(street, "incident_report", "source", grid="S1"), title="信息来源"))
    response = street.post("/admin/forms/incident_report/publish?grid=S1")
    adaptation = Adaptation.get_or_none(Adaptation.key == "incident_report")
    if response.status_code == 302 and adaptation is not None:  # published: it must keep the base's field
        effective = FormVersion.get_by_id(adaptation.effective).definition
        assert effective["schema"]["properties"]["source"]["title"] == "信息来源"
        assert "field_1" in effective["schema"]["properties"]
    assert not any(op["op"] == "remove" for o in Overlay.select() for op in o.patch)


def test_a_street_adapts_a_flow_for_its_grids(site, people, street):
    page = street.get("/admin/flows/incident_loop/edit?grid=S1&node=triage")
    assert page.status_code == 200 and "本地调整：东街道 · 事件闭环" in text(page)
    pairs = node_form(street, "incident_loop", "triage&grid=S1")
    response = street.hx("/admin/flows/incident_loop/edit/node?grid=S1", changed(pairs, dl_amount="2"))
    assert response.status_code == 200
    assert draft_of("flow", "incident_loop", "S1").definition["nodes"]["triage"]["deadline"] == {
        "duration": "P2D", "calendar": "working"}
    assert draft_of("flow", "incident_loop") is None  # the template is not touched
    published = street.post("/admin/flows/incident_loop/publish?grid=S1")
    assert published.status_code == 302
    adaptation = Adaptation.get(Adaptation.kind == "flow")
    row = FlowVersion.get_by_id(adaptation.effective)
    assert (row.version, row.variant) == (1, "S1:1")
    assert row.definition["nodes"]["triage"]["deadline"]["duration"] == "P2D"
    # cases filed at G1 run the adapted flow, at G3 the template
    ids = {}
    for user, grid in (("wgy", "G1"), ("wgy3", "G3")):
        filed = site.app.test_client().post("/api/v1/forms/incident_report/submissions", headers=people.headers(user),
                                            json={"grid": grid, "data": INCIDENT_DATA})
        assert filed.status_code == 201, filed.get_json()
        ids[grid] = filed.get_json()["id"]
    assert Submission.get_by_id(ids["G1"]).flow_version_id == row.id
    assert FlowVersion.get_by_id(Submission.get_by_id(ids["G3"]).flow_version_id).variant == ""
    # a street may not drop a step of the city's flow
    street.get("/admin/flows/incident_loop/edit?grid=S1")
    street.hx("/admin/flows/incident_loop/edit/remove?grid=S1", {"node": "cc_critical"})
    refused = street.post("/admin/flows/incident_loop/publish?grid=S1")
    assert "不能删除上级流程中的步骤「特急事件抄送社区、街道」" in alerts(text(street.get(refused.headers["Location"])))
    assert Overlay.select().where(Overlay.kind == "flow").count() == 1


def test_what_an_adaptation_may_and_may_not_do(site, street):
    open_builder(street, "incident_report", "S1")
    unchanged = street.post("/admin/forms/incident_report/publish?grid=S1")
    assert "与上级版本相比没有改动" in alerts(text(street.get(unchanged.headers["Location"])))
    # an option of the city's may not go
    pairs = panel(street, "incident_report", "category", grid="S1")
    street.hx(field_url("incident_report", "S1"), [*pairs, ("_op", "opt-del-0")])
    refused = street.post("/admin/forms/incident_report/publish?grid=S1")
    messages = alerts(text(street.get(refused.headers["Location"])))
    assert "不能删除字段「事件类别」的上级选项（可以新增选项或改名称）" in messages
    assert Overlay.select().count() == 0
    # an optional field may be hidden and an option added
    street.post("/admin/forms/incident_report/discard?grid=S1")
    street.hx("/admin/forms/incident_report/edit/remove?grid=S1", {"path": "photos"})
    street.hx(field_url("incident_report", "S1"),
              [*panel(street, "incident_report", "category", grid="S1"), ("_op", "opt-add")])
    assert street.post("/admin/forms/incident_report/publish?grid=S1").status_code == 302
    here, there = fill_page(Browser(site, "wgy")), fill_page(Browser(site, "wgy3"))
    assert "现场照片" not in here and "现场照片" in there
    options = FormVersion.get_by_id(Adaptation.get().effective).definition["schema"]["properties"]["category"]["oneOf"]
    assert options[-1] == {"const": "o12", "title": "选项12"}  # after the city's eleven
    assert '<option value="o12">选项12</option>' in here and "选项12" not in there


# -- the case page's diagram ---------------------------------------------------------------------

def test_the_case_page_highlights_the_current_step(site, people):
    worker = Browser(site, "wgy")
    sid = str(uuid.uuid4())
    page = fill_page(worker)
    hidden = dict(re.findall(r'<input type="hidden" name="(_version|_variant)" value="([^"]*)"', page))
    response = worker.post("/forms/incident_report/new", {**INCIDENT, "_id": sid, "_grid": "G1", **hidden})
    assert response.status_code == 303
    case = Submission.get_by_id(sid)
    assert case.current_nodes == ["triage"]
    html = text(worker.get(f"/submissions/{sid}"))
    diagram = re.search(r'<details class="card flow-wrap" id="diagram"[^>]*>(.*?)</details>', html, re.S)
    assert diagram
    groups = re.findall(r'<g class="([^"]*)" data-node="([^"]+)"', diagram.group(1))
    assert {node for _, node in groups} == set(shipped_doc("flows", "incident_loop")["nodes"])
    current = [node for classes, node in groups if "current" in classes.split()]
    assert current == ["triage"]
    assert "当前" in diagram.group(1)


# -- pointer_lines ----------------------------------------------------------------------------

def test_pointer_lines_of_nested_objects_and_arrays():
    body = '{\n  "a": {\n    "b": [\n      1,\n      {"c": 2}\n    ]\n  },\n  "d": []\n}'
    assert pointer_lines(body) == {"": 1, "/a": 2, "/a/b": 3, "/a/b/0": 4, "/a/b/1": 5, "/a/b/1/c": 5, "/d": 8}


def test_pointer_lines_escape_slashes_and_tildes_in_keys():
    body = '{\n"a/b": 1,\n"m~n": {\n "~/": true\n}\n}'
    lines = pointer_lines(body)
    assert lines == {"": 1, "/a~1b": 2, "/m~0n": 3, "/m~0n/~0~1": 4}


def test_pointer_lines_ignore_braces_and_quotes_inside_strings():
    body = '{\n "x": "{ [ } ] \\" ,",\n "y": {"z": "}"},\n "w": null\n}'
    assert json.loads(body)["x"] == '{ [ } ] " ,'
    assert pointer_lines(body) == {"": 1, "/x": 2, "/y": 3, "/y/z": 3, "/w": 4}


def test_pointer_lines_agree_with_the_json_the_builder_shows():
    doc = shipped_doc("forms", "incident_report")
    body = drafts.text_of(doc)
    lines = pointer_lines(body)
    shown = body.split("\n")
    for pointer in ("/schema/properties/category/oneOf/3/title", "/ui/reporter_phone/ui:visibleWhen",
                    "/ui/ui:order/11", "/schema/required/0"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        value = doc
        for part in parts:
            value = value[int(part)] if isinstance(value, list) else value[part]
        line = shown[lines[pointer] - 1]
        if isinstance(value, str) and parts[-1].isdigit():
            assert line.strip().rstrip(",") == json.dumps(value, ensure_ascii=False)
        else:
            assert line.strip().startswith(json.dumps(parts[-1], ensure_ascii=False) + ":")


def test_pointer_lines_of_broken_or_scalar_text():
    assert pointer_lines('  "x"') == {"": 1}
    assert pointer_lines("\n\n7") == {"": 3}
    partial = pointer_lines('{\n "a": 1,\n "b": [')
    assert partial["/a"] == 2  # what was read before the text broke off
