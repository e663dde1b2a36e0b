"""The fill pages through HTTP: submit once per id, errors beside fields, conditions, rows, drafts, views."""

from __future__ import annotations

import io
import re
import uuid

import pytest
from PIL import Image

from server.models import CaseFile, Draft, Event, GridNode, Submission, utcnow

from .conftest import csrf_token

INCIDENT = {
    "/category": "fire_safety",
    "/urgency": "normal",
    "/description": "三栋楼道堆放杂物，堵塞消防通道",
    "/occurred_at": "2026-11-20T09:30",
    "/location/latitude": "22.6301",
    "/location/longitude": "110.1542",
    "/source": "grid_patrol",
    "/involved_households": "12",
}


@pytest.fixture
def worker(shipped, people, web):
    """The grid worker of G1, signed in on the web."""
    people.make("wgy", "grid_worker@G1")
    return web.client("wgy")


def post_form(client, key: str, fields: dict, sid: str | None = None, grid: str = "G1", htmx: bool = False,
              path: str = "new", **extra):
    """Post the fill form as the page would: its CSRF token, client id, version and grid."""
    token = csrf_token(client, f"/forms/{key}/new")
    data = {"csrf_token": token, "_id": sid or str(uuid.uuid4()), "_version": "1", "_grid": grid, **fields,
            **extra}
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(f"/forms/{key}/{path}", data=data, headers=headers)


def text(response) -> str:
    return response.get_data(as_text=True)


def error_beside(html: str, field_id: str) -> str:
    """Return the message shown in a field's error slot."""
    match = re.search(rf'<small class="error" id="{re.escape(field_id)}-e" role="alert">([^<]*)</small>', html)
    assert match, f"no visible error slot for {field_id}"
    return match.group(1)


# -- the page -----------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["door_knock_visit", "incident_report", "dispute_mediation", "resource_request"])
def test_each_shipped_form_renders_with_an_id_and_its_fields(worker, key):
    response = worker.get(f"/forms/{key}/new")
    html = text(response)
    assert response.status_code == 200
    sid = re.search(r'name="_id" value="([^"]+)"', html).group(1)
    assert str(uuid.UUID(sid)) == sid
    assert 'id="fill"' in html and 'name="csrf_token"' in html
    assert re.search(r'<label for="f-[a-z_]+" class="label">', html)
    assert "所属网格：东一社区第一网格" in html  # one grid: preset, not asked
    # another load is another submission
    assert re.search(r'name="_id" value="([^"]+)"', text(worker.get(f"/forms/{key}/new"))).group(1) != sid


def test_a_stranger_is_sent_to_login_and_an_unknown_form_is_404(app, shipped, worker):
    anonymous = app.test_client()
    response = anonymous.get("/forms/incident_report/new")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    missing = worker.get("/forms/no_such_form/new")
    assert missing.status_code == 404
    assert "找不到这张表单" in text(missing)


def test_defaults_fill_a_new_form(worker):
    html = text(worker.get("/forms/incident_report/new"))
    # urgency defaults to 一般; the other options start unchosen
    assert re.search(r'name="/urgency" value="normal" id="[^"]+" checked', html)
    assert not re.search(r'name="/urgency" value="urgent" id="[^"]+" checked', html)
    door = text(worker.get("/forms/door_knock_visit/new"))
    assert re.search(r'name="/met_resident" value="true" id="[^"]+" checked', door)


# -- submitting -------------------------------------------------------------------------------

def test_a_valid_form_is_stored_typed_and_the_page_goes_to_the_submission(worker):
    sid = str(uuid.uuid4())
    response = post_form(worker, "incident_report", INCIDENT, sid=sid)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/submissions/{sid}?new=1")
    case = Submission.get_by_id(sid)
    assert case.data["location"] == {"latitude": 22.6301, "longitude": 110.1542}
    assert case.data["involved_households"] == 12
    assert case.data["occurred_at"] == "2026-11-20T09:30:00"
    assert "involved_people" not in case.data  # empty optional fields are left out
    assert case.grid_code == "G1"
    assert Event.select().where(Event.submission == sid, Event.kind == "submitted").count() == 1
    page = worker.get(response.headers["Location"])
    assert "已提交成功" in text(page) and "三栋楼道堆放杂物" in text(page)


def test_a_double_tap_or_retry_stores_one_submission(worker):
    sid = str(uuid.uuid4())
    first = post_form(worker, "incident_report", INCIDENT, sid=sid)
    again = post_form(worker, "incident_report", INCIDENT, sid=sid)
    htmx = post_form(worker, "incident_report", INCIDENT, sid=sid, htmx=True)
    assert first.status_code == again.status_code == 303
    assert htmx.headers["HX-Redirect"].endswith(f"/submissions/{sid}?new=1")
    assert Submission.select().count() == 1
    assert Event.select().where(Event.kind == "submitted").count() == 1


def test_the_same_id_with_other_data_is_not_stored_and_the_page_keeps_the_values(worker):
    sid = str(uuid.uuid4())
    post_form(worker, "incident_report", INCIDENT, sid=sid)
    response = post_form(worker, "incident_report", {**INCIDENT, "/description": "另一件事情，内容不同"}, sid=sid)
    html = text(response)
    assert Submission.select().count() == 1
    assert "另一件事情，内容不同" in html
    assert "该提交编号已用于另一份内容不同的提交" in html
    new_id = re.search(r'name="_id" value="([^"]+)"', html).group(1)
    assert new_id != sid  # a fresh id so that submitting again files it


def test_errors_are_shown_beside_each_field_in_chinese_and_nothing_is_lost(worker):
    bad = {**INCIDENT, "/description": "短", "/involved_households": "十二", "/location/latitude": "95"}
    del bad["/category"]
    response = post_form(worker, "incident_report", bad)
    html = text(response)
    assert response.status_code == 422
    assert Submission.select().count() == 0
    assert error_beside(html, "f-category") == "「事件类别」为必填项"
    assert error_beside(html, "f-description") == "「事件描述」至少需要 5 个字"
    assert error_beside(html, "f-involved_households") == "「涉及户数」应为整数"
    assert error_beside(html, "f-location-latitude") == "「纬度」不能大于 90"
    assert "有 4 处需要修改" in html
    # what was typed comes back, even what could not be understood
    assert 'value="十二"' in html and ">短</textarea>" in html and 'value="95"' in html
    # the first field with an error takes the focus
    first = re.search(r"<(?:input|select|textarea)[^>]*autofocus", html).group(0)
    assert 'name="/category"' in first


def test_an_htmx_submit_with_errors_swaps_the_form_in_place(worker):
    response = post_form(worker, "incident_report", {"/description": "楼道里有杂物堆放"}, htmx=True)
    html = text(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<form id="fill"')
    assert "<html" not in html
    assert error_beside(html, "f-urgency") == "「紧急程度」为必填项"


def test_a_grid_outside_the_scope_or_retired_is_refused_at_the_grid(worker, tree):
    response = post_form(worker, "incident_report", INCIDENT, grid="G3")
    assert response.status_code == 422
    assert "网格 G3 不存在、已撤销或不在您的管辖范围内" in text(response)
    GridNode.update(retired_at=utcnow()).where(GridNode.code == "G1").execute()
    retired = post_form(worker, "incident_report", INCIDENT, grid="G1")
    assert retired.status_code == 422
    assert Submission.select().count() == 0


def test_a_leader_with_several_grids_chooses_one(shipped, people, web):
    people.make("sq", "community_secretary@M1")
    client = web.client("sq")
    html = text(client.get("/forms/incident_report/new"))
    options = re.findall(r'<option value="(G\d|M\d)"', html)
    assert options == ["M1", "G1", "G2"]
    missing = post_form(client, "incident_report", INCIDENT, grid="")
    assert "请选择您负责的网格" in text(missing)
    assert post_form(client, "incident_report", INCIDENT, grid="G2").status_code == 303


# -- conditions -------------------------------------------------------------------------------

def test_a_hidden_field_is_dropped_and_a_field_that_appears_is_shown_before_submitting(worker):
    # reporter fields show only for residents' reports and hotline calls
    sid = str(uuid.uuid4())
    hidden = post_form(worker, "incident_report", {**INCIDENT, "/reporter_name": "李四"}, sid=sid)
    assert hidden.status_code == 303
    assert "reporter_name" not in Submission.get_by_id(sid).data
    # without JavaScript the page did not show them: it shows them now, and does not submit yet
    fields = {**INCIDENT, "/source": "resident_report"}
    response = post_form(worker, "incident_report", fields, _shown="")
    html = text(response)
    assert "根据您的选择，表单新增了需要填写的项目" in html
    assert 'name="/reporter_name"' in html and 'name="/is_anonymous"' in html
    assert Submission.select().count() == 1
    shown = re.search(r'name="_shown" value="([^"]*)"', html).group(1).split(",")
    assert {"/is_anonymous", "/reporter_name", "/reporter_phone"} <= set(shown)
    # submitted again from that page: stored
    again = post_form(worker, "incident_report", {**fields, "/reporter_name": "李四"}, _shown=",".join(shown))
    assert again.status_code == 303
    stored = Submission.select().order_by(Submission.created_at.desc()).first()
    assert stored.data["reporter_name"] == "李四"


def test_changing_a_watched_field_redraws_the_form_with_the_new_fields(worker):
    html = text(worker.get("/forms/incident_report/new"))
    assert 'name="/reporter_name"' not in html
    watched = re.search(r'<div class="field w-select" id="wf-source" ([^>]*)>', html).group(1)
    assert 'hx-post="/forms/incident_report/render"' in watched
    redrawn = post_form(worker, "incident_report", {"/source": "hotline"}, htmx=True, path="render")
    assert redrawn.status_code == 200
    assert text(redrawn).lstrip().startswith('<form id="fill"')
    assert 'name="/reporter_name"' in text(redrawn)


def test_checking_one_field_shows_only_its_own_error(worker):
    response = post_form(worker, "incident_report", {"/description": "短", "_field": "/description"},
                         htmx=True, path="check")
    html = text(response)
    assert html.lstrip().startswith('<div class="field w-textarea invalid" id="wf-description"')
    assert error_beside(html, "f-description") == "「事件描述」至少需要 5 个字"
    assert "为必填项" not in html  # other fields are not judged yet
    fine = post_form(worker, "incident_report", {"/description": "楼道堆放杂物", "_field": "/description"},
                     htmx=True, path="check")
    assert "invalid" not in text(fine).split(">")[0]
    assert re.search(r'id="f-description-e" role="alert" hidden>', text(fine))


# -- repeat rows ------------------------------------------------------------------------------

def row_names(html: str) -> list[str]:
    return re.findall(r'name="/parties/(\d+)/name" value="([^"]*)"', html)


def test_rows_are_added_removed_and_moved_without_losing_values(worker):
    html = text(worker.get("/forms/dispute_mediation/new"))
    assert len(row_names(html)) == 2  # minItems: both parties
    fields = {"/parties/0": "", "/parties/0/name": "张三", "/parties/1": "", "/parties/1/name": "李四",
              "/description": "邻里漏水纠纷"}
    added = text(post_form(worker, "dispute_mediation", fields, _op="add:/parties"))
    assert row_names(added) == [("0", "张三"), ("1", "李四"), ("2", "")]
    assert "邻里漏水纠纷" in added
    fields.update({"/parties/2": "", "/parties/2/name": "王五"})
    moved = text(post_form(worker, "dispute_mediation", fields, _op="up:/parties/2", htmx=True, path="render"))
    assert row_names(moved) == [("0", "张三"), ("1", "王五"), ("2", "李四")]
    removed = text(post_form(worker, "dispute_mediation", fields, _op="remove:/parties/0"))
    assert row_names(removed) == [("0", "李四"), ("1", "王五")]
    # at the minimum of two rows, rows cannot be removed
    assert 'value="remove:/parties/' not in text(post_form(worker, "dispute_mediation", {
        "/parties/0": "", "/parties/1": ""}, _op="render"))
    assert Submission.select().count() == 0


def test_rows_come_in_the_order_posted_whatever_their_numbers(worker):
    fields = {"/parties/9": "", "/parties/9/name": "甲", "/parties/3": "", "/parties/3/name": "乙"}
    html = text(post_form(worker, "dispute_mediation", fields, _op="render"))
    assert row_names(html) == [("0", "甲"), ("1", "乙")]


# -- drafts -----------------------------------------------------------------------------------

def test_a_draft_is_saved_listed_resumed_and_gone_once_submitted(worker):
    sid = str(uuid.uuid4())
    saved = post_form(worker, "incident_report", {"/description": "正在填写的事件"}, sid=sid, htmx=True,
                      path="draft")
    assert "草稿已自动保存" in text(saved)
    draft = Draft.get_by_id(sid)
    assert draft.data == {"description": "正在填写的事件", "is_anonymous": False} or \
        draft.data["description"] == "正在填写的事件"
    assert draft.grid_code == "G1"
    home = text(worker.get("/"))
    assert f"/forms/incident_report/new?draft={sid}" in home
    mine = text(worker.get("/submissions"))
    assert "正在填写的事件" in mine
    resumed = text(worker.get(f"/forms/incident_report/new?draft={sid}"))
    assert f'name="_id" value="{sid}"' in resumed and "正在填写的事件" in resumed
    assert post_form(worker, "incident_report", INCIDENT, sid=sid).status_code == 303
    assert Draft.select().count() == 0
    assert "草稿已自动保存" not in text(post_form(worker, "incident_report", INCIDENT, sid=sid, path="draft"))
    assert Draft.select().count() == 0  # a late autosave does not bring it back


def test_a_draft_is_private_to_its_author(worker, people, web):
    sid = str(uuid.uuid4())
    post_form(worker, "incident_report", {"/description": "王网格的草稿"}, sid=sid, path="draft")
    people.make("wgz", "grid_leader@G1")
    other = web.client("wgz")
    page = other.get(f"/forms/incident_report/new?draft={sid}")
    assert page.status_code == 302
    assert "王网格的草稿" not in text(other.get("/submissions"))
    post_form(other, "incident_report", {"/description": "覆盖别人的草稿"}, sid=sid, path="draft")
    assert Draft.get_by_id(sid).data["description"] == "王网格的草稿"
    token = csrf_token(other, "/submissions")
    other.post(f"/drafts/{sid}/delete", data={"csrf_token": token})
    assert Draft.select().count() == 1
    token = csrf_token(worker, "/submissions")
    worker.post(f"/drafts/{sid}/delete", data={"csrf_token": token})
    assert Draft.select().count() == 0


def test_rows_and_errors_save_the_draft_too(worker):
    sid = str(uuid.uuid4())
    post_form(worker, "incident_report", {"/description": "写了一半"}, sid=sid)
    assert Draft.get_by_id(sid).data["description"] == "写了一半"


# -- my submissions and the submission page ----------------------------------------------------

def test_my_submissions_lists_mine_only_newest_first_in_pages(worker, people, web):
    for i in range(32):
        post_form(worker, "incident_report", {**INCIDENT, "/description": f"第{i:02d}件事情的描述"})
    people.make("other", "grid_worker@G1")
    post_form(web.client("other"), "incident_report", {**INCIDENT, "/description": "别人提交的事情"})
    first = text(worker.get("/submissions"))
    assert first.count('class="submitted"') == 30
    assert "别人提交的事情" not in first
    following = re.search(r'href="/submissions\?before=([^"]+)"', first).group(1)
    second = text(worker.get(f"/submissions?before={following}"))
    assert second.count('class="submitted"') == 2
    assert worker.get("/submissions?before=garbage").status_code == 400


def test_the_submission_page_shows_labels_and_masks_for_those_without_need(worker, people, web):
    sid = str(uuid.uuid4())
    fields = {**INCIDENT, "/source": "resident_report", "/reporter_name": "李四", "/reporter_phone": "13812345678"}
    post_form(worker, "incident_report", fields, sid=sid, _shown="/is_anonymous,/reporter_name,/reporter_phone")
    own = text(worker.get(f"/submissions/{sid}"))
    assert "消防安全" in own and "群众反映" in own and "13812345678" in own
    assert "第 1 版" in own
    people.make("ldz", "building_head@G1")
    masked = text(web.client("ldz").get(f"/submissions/{sid}"))
    assert "138****5678" in masked and "13812345678" not in masked
    assert Event.select().where(Event.kind == "sensitive_viewed").count() == 0
    people.make("sq", "community_secretary@M1")
    full = text(web.client("sq").get(f"/submissions/{sid}"))
    assert "13812345678" in full
    assert Event.select().where(Event.kind == "sensitive_viewed").count() == 1
    people.make("far", "grid_worker@G3")
    assert web.client("far").get(f"/submissions/{sid}").status_code == 404


# -- photos without JavaScript ------------------------------------------------------------------

def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def test_a_plain_form_uploads_its_photos_with_the_submit(worker):
    sid = str(uuid.uuid4())
    token = csrf_token(worker, "/forms/incident_report/new")
    data = {"csrf_token": token, "_id": sid, "_version": "1", "_grid": "G1", **INCIDENT,
            "_upload/photos": (io.BytesIO(jpeg()), "现场.jpg")}
    response = worker.post("/forms/incident_report/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    case = Submission.get_by_id(sid)
    assert len(case.data["photos"]) == 1
    assert CaseFile.select().where(CaseFile.submission == sid).count() == 1
    with worker.get(f"/attachments/{case.data['photos'][0]}/thumb") as thumb:
        assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"


def test_a_photo_picked_with_htmx_comes_back_as_a_thumbnail_in_its_field(worker):
    token = csrf_token(worker, "/forms/incident_report/new")
    data = {"csrf_token": token, "_version": "1", "_field": "/photos",
            "_upload/photos": [(io.BytesIO(jpeg()), "a.jpg"), (io.BytesIO(b"not an image"), "b.jpg")]}
    response = worker.post("/forms/incident_report/upload", data=data, content_type="multipart/form-data",
                           headers={"HX-Request": "true"})
    html = text(response)
    assert html.lstrip().startswith('<div class="field w-photo invalid" id="wf-photos"')
    assert len(re.findall(r'<input type="hidden" name="/photos" value="[0-9a-f]{64}">', html)) == 1
    assert "文件「b.jpg」不是可接受的类型" in error_beside(html, "f-photos")


@pytest.mark.parametrize("key", ["door_knock_visit", "incident_report", "dispute_mediation", "resource_request"])
def test_a_fill_page_weighs_under_100_kb_compressed(worker, key):
    import gzip

    from server import ROOT

    html = worker.get(f"/forms/{key}/new").get_data()
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html.decode())
    assert {"gridflow.css", "vendor/htmx/htmx.min.js", "fill.js"} <= set(assets)
    total = len(gzip.compress(html, 6)) + sum(len(gzip.compress((ROOT / "static" / a).read_bytes(), 6))
                                              for a in assets)
    assert total < 100_000


# -- a grid picker inside a form ----------------------------------------------------------------

GRID_FORM = {
    "key": "handover",
    "title": "移交登记",
    "schema": {"type": "object", "properties": {
        "target": {"type": "string", "format": "grid-code", "title": "移交到的网格"},
        "note": {"type": "string", "title": "说明", "readOnly": True, "default": "按规定移交"},
    }, "required": ["target"]},
    "ui": {"target": {"ui:widget": "grid"}},
}


@pytest.fixture
def grid_form(app, tree):
    from server.definitions.versions import publish

    publish("form", GRID_FORM)


def test_a_grid_field_offers_only_grids_in_scope_and_the_server_checks_again(grid_form, people, web, client):
    people.make("sq", "community_secretary@M1")
    page = web.client("sq")
    html = text(page.get("/forms/handover/new"))
    picker = re.search(r'<select id="f-target" name="/target".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([A-Z0-9]+)"', picker) == ["M1", "G1", "G2"]
    outside = post_form(page, "handover", {"/target": "G3"}, grid="M1")
    assert outside.status_code == 422
    assert error_beside(text(outside), "f-target") == "「移交到的网格」：网格 G3 不存在、已撤销或不在您的管辖范围内"
    # the API checks the same
    response = client.post("/api/v1/forms/handover/submissions", headers=people.headers("sq"),
                           json={"grid": "M1", "data": {"target": "G3"}})
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"path": "/target", "message": "「移交到的网格」：网格 G3 不存在、已撤销或不在您的管辖范围内"}]
    inside = post_form(page, "handover", {"/target": "G2", "/note": "改过的说明"}, grid="M1")
    assert inside.status_code == 303
    case = Submission.get()
    assert case.data == {"target": "G2", "note": "按规定移交"}  # read-only: the default, not the post
