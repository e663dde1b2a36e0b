"""Excel import and export of the grid tree and of people, with templates and error reports."""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import Response, abort, g, render_template, request

from ... import auth, sheets
from ...web import admin_required
from . import bp

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
KINDS = {"grids": ("网格", "tree_template", "export_tree", "import_tree"),
         "people": ("人员", "people_template", "export_people", "import_people")}


def _download(content: bytes, filename: str) -> Response:
    return Response(content, mimetype=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "no-store"})


def _kind(kind: str):
    if kind not in KINDS:
        abort(404)
    label, *functions = KINDS[kind]
    return label, *(getattr(sheets, name) for name in functions)


@bp.get("/import")
@admin_required
def import_page():
    """Offer the templates, the exports and the two upload forms."""
    return render_template("admin/import.html", result=None, kind=None)


@bp.get("/templates/<kind>.xlsx")
@admin_required
def template_download(kind: str):
    """Download an empty import template with Chinese headers and a sheet of explanations."""
    label, template, _, _ = _kind(kind)
    return _download(template(), f"{label}导入模板.xlsx")


@bp.get("/export/<kind>.xlsx")
@admin_required
def export_download(kind: str):
    """Download the tree or the people this administrator manages."""
    label, _, export, _ = _kind(kind)
    auth.audit(g.person, f"{kind}_exported", g.person.username)
    return _download(export(g.scope), f"{label}导出.xlsx")


@bp.post("/import/<kind>")
@admin_required
def import_upload(kind: str):
    """Import an uploaded workbook: everything, or nothing with a per-row error report."""
    label, _, _, run = _kind(kind)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        result = sheets.ImportResult(errors=[sheets.RowError(label, 0, "请选择要导入的 .xlsx 文件")])
    else:
        with upload.stream:  # a large upload is spooled to a temporary file: close it now
            content = upload.read()
        result = run(content, g.person, g.scope)
    status = 200 if result.ok else 422
    errors_json = json.dumps([e.__dict__ for e in result.errors], ensure_ascii=False)
    return render_template("admin/import.html", result=result, kind=kind, label=label,
                           errors_json=errors_json), status


@bp.post("/import/errors.xlsx")
@admin_required
def error_report_download():
    """Turn the errors shown on the page into a workbook to download."""
    try:
        rows = json.loads(request.form.get("errors", "[]"))
        errors = [sheets.RowError(str(r["sheet"]), int(r["row"]), str(r["message"])) for r in rows][:20000]
    except (ValueError, KeyError, TypeError):
        errors = []
    return _download(sheets.error_report(sheets.ImportResult(errors=errors)), "导入错误报告.xlsx")
