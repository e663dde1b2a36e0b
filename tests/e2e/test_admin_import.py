"""Excel import of people through the admin pages, in a real browser at phone size."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import openpyxl
import pytest

from server.models import GridNode, Membership, Person

from .conftest import PHONE, screenshot, scroll_width, sign_in

pytestmark = pytest.mark.e2e

HEADERS = ["用户名", "姓名", "手机号", "初始密码", "角色", "网格编码", "部门"]


def open_import_page(page) -> None:
    """From the home page: 管理 in the header → the Excel 导入导出 tile."""
    from playwright.sync_api import expect

    page.locator("header.top").get_by_role("link", name="管理", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("管理")
    page.get_by_role("link", name=re.compile("^Excel 导入导出")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Excel 导入导出")
    assert page.url.endswith("/admin/import")


def download_people_template(page) -> bytes:
    """Click 下载导入模板 in the 人员 section; return the workbook's bytes after checking its name."""
    section = page.locator("#import-people")
    with page.expect_download() as info:
        section.get_by_role("link", name="下载导入模板").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == "人员导入模板.xlsx"
    return Path(download.path()).read_bytes()


def fill(template: bytes, rows: list[list]) -> bytes:
    """Write rows under the header of the 人员 sheet of a downloaded template."""
    book = openpyxl.load_workbook(BytesIO(template))
    sheet = book["人员"]
    for row in rows:
        sheet.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def upload_people(page, content: bytes) -> None:
    section = page.locator("#import-people")
    section.get_by_label("选择 .xlsx 文件").set_input_files(
        {"name": "人员.xlsx", "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "buffer": content})
    section.get_by_role("button", name="导入人员").click()


def roles_of(username: str) -> set[tuple[str, str, str | None]]:
    return {(m.role, m.node.code, m.department) for m in Membership.select(Membership, GridNode).join(GridNode)
            .join_from(Membership, Person).where(Person.username == username)}


def test_admin_downloads_the_template_fills_it_and_imports_two_people(live_server, staff, phone):
    from playwright.sync_api import expect

    sign_in(phone, live_server, "shi_admin")
    open_import_page(phone)
    assert scroll_width(phone) <= PHONE["width"], "the import page scrolls sideways on a phone"
    screenshot(phone, "admin-import-390x844")

    template = download_people_template(phone)
    assert template[:2] == b"PK"  # a zip, as .xlsx files are
    book = openpyxl.load_workbook(BytesIO(template))
    assert book.sheetnames[0] == "人员"
    header = [cell.value for cell in next(book["人员"].iter_rows(min_row=1, max_row=1))]
    assert header == HEADERS
    assert book["人员"].max_row == 1  # an empty template: the examples live on the 说明 sheet

    content = fill(template, [
        ["lisi", "李四", "13900139001", "Lisi-2024-grid", "网格员", "G2", None],
        ["zhaowu", "赵五", None, "Zhaowu-2024-mz", "部门人员", "D1", "民政"],
    ])
    upload_people(phone, content)
    result = phone.locator("#import-result")
    expect(result.get_by_role("status")).to_contain_text("新增 2", timeout=15_000)
    expect(result.get_by_role("status")).to_contain_text("人员导入成功")
    expect(phone.locator("#import-errors")).to_have_count(0)
    assert scroll_width(phone) <= PHONE["width"], "the import result scrolls sideways on a phone"
    screenshot(phone, "admin-import-done-390x844")

    assert roles_of("lisi") == {("grid_worker", "G2", None)}
    assert roles_of("zhaowu") == {("department_staff", "D1", "civil_affairs")}
    assert Person.get(Person.username == "lisi").phone == "13900139001"

    phone.goto(live_server + "/admin/people")
    expect(phone.get_by_role("heading", level=1)).to_have_text("人员管理")
    rows = phone.locator("#people-rows li")
    lisi = rows.filter(has=phone.get_by_role("link", name="李四", exact=True))
    zhaowu = rows.filter(has=phone.get_by_role("link", name="赵五", exact=True))
    expect(lisi).to_contain_text("网格员@东一社区第二网格")
    expect(zhaowu).to_contain_text("部门人员（民政）@甲区")
    expect(phone.locator("#people-rows")).to_contain_text("共 5 人")
    assert scroll_width(phone) <= PHONE["width"], "the people list scrolls sideways on a phone"
    screenshot(phone, "admin-people-after-import-390x844")

    # the new grid worker signs in with the initial password from the workbook
    phone.locator("header.top").get_by_role("button", name="退出").click()
    expect(phone).to_have_url(re.compile(r"/login$"))
    sign_in(phone, live_server, "lisi", "Lisi-2024-grid")
    expect(phone.get_by_role("heading", level=1)).to_have_text("您好，李四")
    expect(phone.locator("ul.plain li")).to_have_text([re.compile(r"网格员\s*·\s*东一社区第二网格")])
    screenshot(phone, "imported-person-home-390x844")


def test_a_bad_file_lists_the_row_errors_and_imports_nothing(live_server, staff, phone):
    from playwright.sync_api import expect

    people_before = Person.select().count()
    memberships_before = Membership.select().count()
    sign_in(phone, live_server, "qu_admin")
    open_import_page(phone)
    content = fill(download_people_template(phone), [
        ["nopass", "缺密码", None, None, "网格员", "G1", None],  # row 2: a new account without a password
        ["nogrid", "无网格", None, "Nogrid-2024-x", "网格员", "G9", None],  # row 3: no such grid
        ["outside", "越权", None, "Outside-2024-x", "网格员", "G3", None],  # row 4: G3 is in 乙区, not 甲区
        ["fine", "没问题", None, "Fine-2024-grid", "网格员", "G1", None],  # row 5: would have been fine
    ])
    upload_people(phone, content)
    result = phone.locator("#import-result")
    expect(result.get_by_role("alert")).to_contain_text("没有导入任何内容", timeout=15_000)
    expect(result.get_by_role("alert")).to_contain_text("3 处错误")
    errors = phone.locator("#import-errors tbody tr")
    expect(errors).to_have_count(3)
    expect(errors.nth(0).locator("td")).to_have_text(["人员", "2", re.compile("nopass.*初始密码")])
    expect(errors.nth(1).locator("td")).to_have_text(["人员", "3", re.compile("网格编码 G9 不存在")])
    expect(errors.nth(2).locator("td")).to_have_text(["人员", "4", re.compile("G3.*管理范围")])
    expect(result.get_by_role("button", name="下载错误报告")).to_be_visible()
    assert scroll_width(phone) <= PHONE["width"], "the import error list scrolls sideways on a phone"
    screenshot(phone, "admin-import-errors-390x844")

    assert Person.select().count() == people_before
    assert Membership.select().count() == memberships_before
    assert not Person.select().where(Person.username.in_(["nopass", "nogrid", "outside", "fine"])).exists()
    phone.goto(live_server + "/admin/people?q=fine")
    expect(phone.locator("#people-rows")).to_contain_text("没有找到人员")
