"""Reports: the case list with its filters and exports, and the dashboard of a grid node's figures."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, Response, current_app, g, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _

from .. import exports, lists, stats
from ..cases import shown_data
from ..definitions.overlays import effective
from ..errors import Refusal
from ..grids import node_by_code
from ..inbox import OUTCOMES, STATUS_LABELS
from ..models import AuditEntry, Form, GridNode, utcnow
from ..web import login_required

bp = Blueprint("reports", __name__, url_prefix="/reports")

DEFINITIONS = {
    "reported": "统计期内上报（提交）的案件数。",
    "closed": "统计期内上报的案件中，到现在已办结（流程结束，含不予受理；不含撤回）的件数。",
    "closure_rate": "办结率 = 办结数 ÷（上报数 − 撤回数）。",
    "on_time_rate": "按期办结率 = 按期办结数 ÷ 办结数；按期办结指办结前没有任何环节超过办理时限。",
    "avg_handling_hours": "平均处理时长 = 已办结案件从上报到办结所用时间的平均数（自然时间）。",
    "p90_handling_hours": "90% 的已办结案件在这一时长内办结（处理时长向上取整到小时后的第 90 百分位，最近秩法）。",
    "satisfaction_rate": "满意率 =（满意 + 基本满意）÷ 参与回访评价的件数；以每件最后一次回访评价为准。",
    "mediation_success_rate": "调解成功率 = 调解案件中结果为“纠纷化解”的件数 ÷ 已办结的调解案件数。",
    "overdue_now": "当前超期：现在仍未办结、且有环节已过办理时限的案件数（不限统计期）。",
}
PERIOD_LABELS = {"week": "周", "month": "月", "quarter": "季度", "year": "年", "custom": "自定义"}


def form_titles() -> dict[str, str]:
    """The title of every form, by key, in the order of their titles."""
    return {f.key: f.title for f in Form.select(Form.key, Form.title).order_by(Form.title)}


def _version_for(key: str, grid: GridNode | None):
    """The form version whose fields a list filters on: the grid's effective one, else the newest."""
    path = grid.path if grid is not None else (g.scope.paths[0] if g.scope.paths else "/")
    return effective("form", key, path)


# -- the case list ----------------------------------------------------------------------------------

@bp.get("/cases")
@login_required
def cases():
    """The cases in the viewer's scope, filtered, sorted and paged; per-form columns and filters."""
    tz = current_app.config["TIMEZONE"]
    error = None
    try:
        query = lists.parse(request.args, g.scope, tz, _version_for)
        rows, following = lists.page(g.scope, query, current_app.config["PAGE_SIZE"], request.args.get("cursor"))
    except Refusal as refusal:  # the form keeps every condition as typed, the wrong one named above it
        error = refusal
        query, rows, following = lists.ListQuery(), [], None
        form = (request.args.get("form") or "").strip()
        query.version = _version_for(form, None) if form else None
    version = query.version
    fields = lists.form_fields(version) if version is not None else []
    shown = lists.columns(version, fields) if version is not None else []
    ids = [c.id for c in rows]
    overdue = lists.overdue_ids(ids)
    data = {c.id: shown_data(c, False) for c in rows}  # lists mask; the case page shows in full, logged
    cells = {c.id: [f.label(lists.value_at(data[c.id], f.path)) for f in shown] for c in rows}
    steps = {sid: _("；").join(_("%(step)s（%(names)s）", step=title, names=_("、").join(names)) if names else title
                              for title, names in held)
             for sid, held in lists.current_steps(ids).items()}
    grids = {n.code: n.name for n in GridNode.select(GridNode.code, GridNode.name)
             .where(GridNode.code.in_({c.grid_code for c in rows}))} if rows else {}
    status = 422 if error else 200
    fields_open = any(k.startswith("f.") for k in request.args)
    titles = form_titles()
    return render_template("reports/cases.html", query=query, version=version, fields_open=fields_open,
                           rows=rows, following=following, fields=fields,
                           shown=shown, steps=steps, overdue=overdue, cells=cells, grids=grids, error=error,
                           titles=titles, forms=titles, statuses=STATUS_LABELS, outcomes=OUTCOMES,
                           sorts=lists.SORT_LABELS, args=request.args), status


def _export(kind: str):
    tz = current_app.config["TIMEZONE"]
    try:
        query = lists.parse(request.args, g.scope, tz, _version_for)
    except Refusal:  # no file: the list page names what is wrong (422)
        return cases()
    columns = exports.case_columns(tz, form_titles())
    repeats = []
    if query.version is not None:
        columns += exports.field_columns(lists.form_fields(query.version))
        repeats = exports.repeat_sheets(query.version) if kind == "xlsx" else []
    now = utcnow()
    local = exports._local(now, tz)
    export = exports.Export(exports.heading(g.person.name, g.person.username, local, query), columns, repeats,
                            g.scope, query)
    AuditEntry.create(actor=g.person.id, action="export", target=f"cases.{kind}",
                      detail={"filters": query.args, "sees_sensitive": any(gr.sees_sensitive for gr in g.scope.grants)})
    name = f"cases-{local:%Y%m%d-%H%M}.{kind}"
    headers = {"Content-Disposition": f"attachment; filename={name}", "Cache-Control": "no-store"}
    if kind == "csv":
        body = exports.csv_stream(export)
        mimetype = "text/csv; charset=utf-8"
    else:
        body = exports.xlsx_stream(export)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(stream_with_context(body), mimetype=mimetype, headers=headers)


@bp.get("/cases.xlsx")
@login_required
def cases_xlsx():
    """The filtered list as an Excel workbook (repeating groups on their own sheets)."""
    return _export("xlsx")


@bp.get("/cases.csv")
@login_required
def cases_csv():
    """The filtered list as CSV."""
    return _export("csv")


# -- the dashboard ----------------------------------------------------------------------------------

def board_args(args, scope, tz: str):
    """Read a dashboard's node, period and form from query arguments; refuse bad ones in Chinese."""
    code = (args.get("grid") or "").strip()
    if code:
        node = node_by_code(code)
        if node is None or not scope.covers(node.path):
            raise Refusal(422, "invalid", f"网格 {code} 不存在或不在您的管辖范围内")
    else:
        if not scope.paths:
            raise Refusal(403, "forbidden", "您没有管辖的网格，看不到统计")
        node = GridNode.get(GridNode.path == scope.paths[0])
    kind = args.get("period") or "month"
    if kind not in stats.PERIODS:
        raise Refusal(422, "invalid", f"统计期 {kind} 无效，可选：{'、'.join(stats.PERIODS)}")
    first = (args.get("from") or args.get("at")) if kind == "custom" else args.get("at")
    try:
        at = date.fromisoformat(first) if first else stats.local_today(tz)
        until = date.fromisoformat(args["to"]) if kind == "custom" and args.get("to") else None
    except ValueError:
        raise Refusal(422, "invalid", "日期应写成 2024-05-01 的形式") from None
    if kind == "custom" and until is not None and until < at:
        raise Refusal(422, "invalid", "结束日期早于开始日期")
    if kind == "custom" and (until or at).toordinal() - at.toordinal() > 366 * 5:
        raise Refusal(422, "invalid", "自定义统计期最长五年")
    form = (args.get("form") or "").strip() or None
    if form and Form.get_or_none(Form.key == form) is None:
        raise Refusal(422, "invalid", f"没有表单 {form}")
    return node, stats.period(kind, at, until), form


def board_json(b: stats.Board, titles: dict[str, str]) -> dict:
    """A dashboard as JSON: the figures in total, by form, by child node and over time."""
    children = {n.path: n for n in GridNode.select().where(GridNode.parent == b.node.id)}
    by_grid = []
    for path, sums in sorted(b.by_child.items(), key=lambda kv: -kv[1].reported):
        child = children.get(path)
        own = path == b.node.path
        by_grid.append({"code": b.node.code if own else (child.code if child else path.strip("/").split("/")[-1]),
                        "name": (b.node.name + "（本级）") if own else (child.name if child else path),
                        "own": own, **sums.figures()})
    return {
        "grid": {"code": b.node.code, "name": b.node.name, "level": b.node.level},
        "period": {"kind": b.period.kind, "from": b.period.start.isoformat(),
                   "to": (b.period.end - timedelta(days=1)).isoformat(),
                   "label": b.period.label, "trend_by": "day" if b.period.by_day else "month"},
        "form": b.form,
        "as_of": b.as_of.isoformat() + "Z" if b.as_of else None,
        "totals": b.totals.figures(),
        "by_form": [{"form": k, "title": titles.get(k, k), **v.figures()}
                    for k, v in sorted(b.by_form.items(), key=lambda kv: -kv[1].reported)],
        "by_grid": by_grid,
        "trend": [{"at": k, **v.figures()} for k, v in b.trend.items()],
    }


def compute(args) -> dict:
    """The dashboard asked for by query arguments, for the viewer's scope."""
    tz, mediation, interval = stats.settings()
    node, per, form = board_args(args, g.scope, tz)
    as_of = stats.ensure_fresh(tz, mediation, interval)
    b = stats.board(node, per, form, tz, mediation)
    b.as_of = as_of
    return board_json(b, form_titles())


@bp.get("/")
@login_required
def index():
    """The dashboard: figures, charts and tables for a node, a period and optionally one form."""
    try:
        board = compute(request.args)
    except Refusal as refusal:
        return render_template("reports/index.html", board=None, error=refusal, args=request.args,
                               forms=form_titles(), periods=PERIOD_LABELS, definitions=DEFINITIONS,
                               chain=[]), refusal.status
    node = node_by_code(board["grid"]["code"])
    chain = [n for n in GridNode.select().where(GridNode.code.in_(node.path.strip("/").split("/")))
             .order_by(GridNode.depth) if g.scope.covers(n.path)]
    per = stats.period(board["period"]["kind"], date.fromisoformat(board["period"]["from"]),
                       date.fromisoformat(board["period"]["to"]))

    def shifted_url(other: stats.Period) -> str:
        dates = ({"from": other.start.isoformat(), "to": (other.end - timedelta(days=1)).isoformat()}
                 if other.kind == "custom" else {"at": other.start.isoformat()})
        return url_for("reports.index", grid=board["grid"]["code"], period=other.kind, form=board["form"], **dates)

    return render_template("reports/index.html", board=board, error=None, args=request.args, forms=form_titles(),
                           periods=PERIOD_LABELS, definitions=DEFINITIONS, chain=chain, shifted_url=shifted_url,
                           as_of=datetime.fromisoformat(board["as_of"].removesuffix("Z")) if board["as_of"] else None,
                           earlier=per.shifted(-1), later=per.shifted(1), has_children=_has_children(board),
                           list_url=url_for("reports.cases", grid=board["grid"]["code"], form=board["form"] or None,
                                            **{"from": board["period"]["from"], "to": board["period"]["to"]}))


def _has_children(board: dict) -> set[str]:
    codes = [r["code"] for r in board["by_grid"] if not r["own"]]
    if not codes:
        return set()
    parents = GridNode.select(GridNode.parent).where(GridNode.parent.in_(
        GridNode.select(GridNode.id).where(GridNode.code.in_(codes))))
    return {n.code for n in GridNode.select(GridNode.code).where(GridNode.id.in_(parents))}


@bp.app_template_filter("rate")
def rate(value) -> str:
    """Show a rate (0–1) as a percentage, or a dash when there is nothing to divide."""
    return "—" if value is None else f"{value * 100:.1f}%"


@bp.app_template_filter("hours")
def hours(value) -> str:
    """Show a handling time in hours as people say it (小时 under two days, else 天)."""
    if value is None:
        return "—"
    if value < 48:
        return _("%(n)s 小时", n=f"{value:.1f}".rstrip("0").rstrip("."))
    return _("%(n)s 天", n=f"{value / 24:.1f}")
