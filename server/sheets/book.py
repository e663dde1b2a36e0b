"""The workbook plumbing shared by the tree and people sheets: writing, reading, results."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from xml.etree.ElementTree import ParseError

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from peewee import IntegrityError

from ..db import database
from ..grids import GridError
from ..models import GridNode

TREE_SHEET, PEOPLE_SHEET, NOTES_SHEET = "网格", "人员", "说明"
TREE_HEADERS = ["编码", "名称", "层级", "上级编码", "户数", "人口", "边界（GeoJSON）"]
PEOPLE_HEADERS = ["用户名", "姓名", "手机号", "初始密码", "角色", "网格编码", "部门"]
TREE_REQUIRED = ["编码", "名称", "层级", "上级编码"]
PEOPLE_REQUIRED = ["用户名", "姓名", "角色", "网格编码"]
MAX_ROWS = 20_000
MAX_CELL = 32_767  # the most characters an Excel cell holds
CHUNK = 500  # codes or names per IN (…) query
BAD_FILE = (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, TypeError, OSError, ParseError)
COMMON_NOTES = [
    ["整份文件要么全部导入，要么（有任何错误时）一行也不导入；出错时可下载错误清单，改好后重新上传。"],
    [f"表头须在第 1 行，列的顺序不限，多余的列会被忽略；空行会被跳过；每次最多 {MAX_ROWS} 行。"],
]


@dataclass
class RowError:
    sheet: str
    row: int  # 1-based Excel row (the header is row 1); 0 for the whole file
    message: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether the import went through without errors."""
        return not self.errors


# -- writing ----------------------------------------------------------------------------------

def _cell(ws, value, font=None) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"  # text typed by people is never a formula
    if font is not None:
        cell.font = font
    return cell


def _book(sheet: str, headers: list[str], rows, notes: list[list] | None = None) -> bytes:
    """Write a workbook: a data sheet with a bold, frozen header row, and optionally a 说明 sheet."""
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.freeze_panes = "A2"
    for i, header in enumerate(headers, start=1):
        ws.column_dimensions[get_column_letter(i)].width = 40 if "GeoJSON" in header else max(12, 3 * len(header))
    bold = Font(bold=True)
    ws.append([_cell(ws, h, bold) for h in headers])
    for row in rows:
        ws.append([_cell(ws, v) for v in row])
    if notes:
        ns = wb.create_sheet(NOTES_SHEET)
        for letter, width in zip("ABC", (18, 22, 90), strict=True):
            ns.column_dimensions[letter].width = width
        for line in notes:
            ns.append([_cell(ns, v, bold if len(line) == 1 else None) for v in line])
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def error_report(result: ImportResult) -> bytes:
    """Return a workbook listing an import's errors (表, 行号, 错误) for a person to download."""
    return _book("错误", ["表", "行号", "错误"], [[e.sheet, e.row or None, e.message] for e in result.errors])


# -- reading ----------------------------------------------------------------------------------

def _text(value) -> str:
    """A cell as trimmed text; a whole number typed as a number loses its '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read(content: bytes, sheet: str, headers: list[str], required: list[str]):
    """Return (sheet title, [(row number, {header: value})], file-level errors)."""
    title = sheet

    def bad(message):
        return title, [], [RowError(title, 0, message)]

    try:
        wb = openpyxl.load_workbook(BytesIO(content), read_only=True, data_only=True)
    except BAD_FILE:
        return bad("无法打开文件：请上传 Excel 工作簿（.xlsx），可先下载模板再填写")
    try:
        if not wb.worksheets:
            return bad("文件中没有工作表")
        ws = next((s for s in wb.worksheets if s.title.strip() == sheet), wb.worksheets[0])
        title = ws.title
        ws.reset_dimensions()
        rows = ws.iter_rows(values_only=True)
        columns: dict[str, int] = {}
        for i, value in enumerate(next(rows, None) or ()):
            columns.setdefault(_norm(_text(value)), i)  # "边界(GeoJSON)" is "边界（GeoJSON）"
        missing = [h for h in required if _norm(h) not in columns]
        if missing:
            return bad(f"第 1 行的表头缺少列：{'、'.join(missing)}；请对照模板")
        data, picks = [], [(h, columns.get(_norm(h), -1)) for h in headers]
        for number, values in enumerate(rows, start=2):
            record = {h: values[i] if 0 <= i < len(values) else None for h, i in picks}
            if all(_text(v) == "" for v in record.values()):
                continue
            if len(data) == MAX_ROWS:
                return bad(f"数据超过 {MAX_ROWS} 行，请分成几个文件导入")
            data.append((number, record))
        return title, data, []
    except BAD_FILE:
        return bad("文件内容已损坏，无法读取：请用 Excel 或 WPS 重新保存为 .xlsx 后再试")
    finally:
        wb.close()


def _count(value, label: str, fail) -> int | None:
    """A non-negative whole number from a cell (120, 120.0 or "120"), None when empty; problems go to `fail`."""
    text = _text(value)
    if text.isascii() and text.isdigit():
        return int(text)
    if text:
        fail(f"{label}应为不小于 0 的整数，现在是“{text}”")
    return None


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text).replace("(", "（").replace(")", "）").lower()


def _aliases(names: dict[str, str]) -> dict[str, str]:
    """Map a key, a Chinese name, or the name's part before its bracket to the key."""
    out = {_norm(key): key for key in names}
    for key, name in names.items():
        for alias in (_norm(name), _norm(name).split("（")[0]):
            out.setdefault(alias or key, key)
    return out


def _chunks(items):
    items = sorted(items)
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def _nodes(codes, *columns) -> dict[str, GridNode]:
    return {n.code: n for chunk in _chunks(codes)
            for n in GridNode.select(*columns).where(GridNode.code.in_(chunk))}


def _apply(title: str, work, result: ImportResult) -> ImportResult:
    """Run a generator of changes (yielding the row at hand) in one transaction; any error undoes all."""
    last = 0
    try:
        with database.atomic():
            for row in work:
                last = row
    except GridError as exc:
        result.created = result.updated = 0
        result.errors.append(RowError(title, last, f"{exc}（未导入任何内容）"))
    except IntegrityError:
        result.created = result.updated = 0
        result.errors.append(RowError(title, last, "保存时与其他人同时进行的修改冲突，未导入任何内容，请重试"))
    return result


