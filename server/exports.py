"""Exports of a case list to .xlsx and .csv: Chinese headers, option labels, dates as dates, repeats apart.

Rows are read a keyset page at a time and written as they come (openpyxl's write-only mode
spools each sheet to a temporary file; CSV is streamed to the client), so memory stays flat
however many cases a list holds.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from . import lists
from .cases import shown_data
from .definitions.versions import compiled
from .inbox import OUTCOMES, STATUS_LABELS
from .models import FormVersion, Submission
from .rendering import choose_widget, type_of
from .scope import Scope

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"


@dataclass(frozen=True)
class Column:
    """A column of an export: its Chinese header and how a case (and its shown data) gives its value."""

    header: str
    value: Callable[[Submission, Any], Any]


@dataclass(frozen=True)
class RepeatSheet:
    """A repeating group of the form, exported on its own sheet, one row per item, linked by case id."""

    title: str
    path: tuple[str, ...]
    fields: list[lists.FieldSpec]


def _local(moment: datetime | None, tz: str) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def case_columns(tz: str, forms: dict[str, str]) -> list[Column]:
    """The columns every case has."""
    return [
        Column("案件编号", lambda c, d: c.id),
        Column("表单", lambda c, d: forms.get(c.form, c.form)),
        Column("网格编码", lambda c, d: c.grid_code),
        Column("状态", lambda c, d: str(STATUS_LABELS.get(c.status, c.status))),
        Column("结果", lambda c, d: str(OUTCOMES.get(c.outcome, c.outcome)) if c.outcome else ""),
        Column("上报人", lambda c, d: c.created_by.name),
        Column("上报时间", lambda c, d: _local(c.created_at, tz)),
        Column("办结时间", lambda c, d: _local(c.closed_at, tz)),
        Column("是否超期", lambda c, d: "是" if c.late else "否"),
    ]


def cell_value(spec: lists.FieldSpec, value: Any) -> Any:
    """A field's value as a spreadsheet holds it: labels for choices, dates as dates, numbers as numbers."""
    if value is None or value == "" or value == []:
        return None
    if spec.kind == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    if spec.kind == "datetime" and isinstance(value, str):
        from .store import zone

        return lists.local_moment(value, zone()) or value
    if spec.kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return spec.label(value)


def field_columns(fields: list[lists.FieldSpec]) -> list[Column]:
    """One column per field of the form, headed by its title."""
    return [Column(f.title, lambda c, d, f=f: cell_value(f, lists.value_at(d, f.path))) for f in fields]


def repeat_sheets(version: FormVersion) -> list[RepeatSheet]:
    """The form's repeating groups (top level and inside groups), each with its item's fields."""
    form = compiled(version)
    out: list[RepeatSheet] = []

    def walk(path: tuple[str, ...]) -> None:
        schema = form.schema_at(path) if path else form.resolve(form.schema)
        for name in (schema.get("properties") or {}):
            here = path + (name,)
            sub = form.schema_at(here)
            widget = choose_widget(sub, form.ui_at(here))
            if widget == "repeat":
                out.append(RepeatSheet(form.title_at(here), here, _item_fields(form, here)))
            elif type_of(sub) == "object" and widget == "group":
                walk(here)

    walk(())
    return out


def _item_fields(form, path: tuple[str, ...]) -> list[lists.FieldSpec]:
    item = form.schema_at(path + ("*",))
    ui = form.ui_at(path + ("*",))
    out = []
    for name in lists.ordered_names(item, ui):
        here = path + ("*", name)
        sub, sub_ui = form.schema_at(here), form.ui_at(here)
        spec = lists.spec_for(here, (sub_ui.get("ui:title") or sub.get("title") or name), sub, sub_ui)
        if spec is not None:
            out.append(spec)
    return out


@dataclass
class Export:
    """What an export writes: the header line, the columns, the repeat sheets and the cases."""

    heading: str
    columns: list[Column]
    repeats: list[RepeatSheet]
    scope: Scope
    query: lists.ListQuery

    def rows(self) -> Iterator[tuple[Submission, Any]]:
        """Each case of the list with its data as this person may see it (masked unless they may see it)."""
        for case in lists.each(self.scope, self.query):
            yield case, shown_data(case, self.scope.sees_sensitive_at(case.grid_path))


def heading(person_name: str, username: str, at: datetime, query: lists.ListQuery) -> str:
    """The first line of an export: who exported when, with which filters."""
    return f"导出人：{person_name}（{username}）；导出时间：{at:%Y-%m-%d %H:%M}；筛选条件：{query.describe()}"


def write_xlsx(export: Export, target) -> int:
    """Write an export as a workbook (write-only: rows go to disk as they come); return the cases written."""
    book = Workbook(write_only=True)
    main = book.create_sheet("案件")
    bold = Font(bold=True)
    main.append([export.heading])
    main.append([_header(main, c.header, bold) for c in export.columns])
    sheets = []
    for repeat in export.repeats:
        sheet = book.create_sheet(_sheet_title(repeat.title, sheets))
        sheet.append([export.heading])
        sheet.append([_header(sheet, h, bold) for h in ["案件编号", "序号", *(f.title for f in repeat.fields)]])
        sheets.append((repeat, sheet))
    count = 0
    for case, data in export.rows():
        main.append([_cell(main, col.value(case, data)) for col in export.columns])
        for repeat, sheet in sheets:
            items = lists.value_at(data, repeat.path)
            skip = len(repeat.path) + 1  # the item's fields are named from the repeat's path and `*`
            for i, item in enumerate(items if isinstance(items, list) else [], start=1):
                values = [cell_value(f, lists.value_at(item, f.path[skip:])) for f in repeat.fields]
                sheet.append([case.id, i, *(_cell(sheet, v) for v in values)])
        count += 1
    book.save(target)
    return count


def _sheet_title(title: str, taken: list) -> str:
    name = "".join(ch for ch in title if ch not in "[]:*?/\\")[:28] or "明细"
    names = {s.title for _, s in taken} | {"案件"}
    base, n = name, 2
    while name in names:
        name, n = f"{base}{n}", n + 1
    return name


def _header(sheet, text: str, bold: Font) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=text)
    cell.font = bold
    return cell


def _cell(sheet, value: Any):
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATETIME_FORMAT
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATE_FORMAT
        return cell
    return value


def xlsx_stream(export: Export, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """Write the workbook to a temporary file, then stream it out in chunks."""
    with tempfile.TemporaryFile() as spool:
        write_xlsx(export, spool)
        spool.seek(0)
        while block := spool.read(chunk):
            yield block


def csv_stream(export: Export) -> Iterator[bytes]:
    """Stream an export as CSV (UTF-8 with BOM so Excel reads the Chinese), a line at a time.

    CSV has one table: repeating groups are left to the .xlsx export's second sheet.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    yield "\ufeff".encode()
    writer.writerow([export.heading])
    writer.writerow([c.header for c in export.columns])
    yield flush()
    for n, (case, data) in enumerate(export.rows(), start=1):
        writer.writerow([_text(col.value(case, data)) for col in export.columns])
        if n % 200 == 0:
            yield flush()
    yield flush()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
