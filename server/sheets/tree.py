"""The grid tree as a workbook: template, export, and an all-or-nothing import."""

from __future__ import annotations

import json
from functools import partial

from .. import grids
from ..auth import audit
from ..formats import is_grid_code
from ..grids import ancestor_codes, create_node
from ..models import GridNode, Level, Person, dumps
from .book import (
    COMMON_NOTES,
    MAX_CELL,
    TREE_HEADERS,
    TREE_REQUIRED,
    TREE_SHEET,
    ImportResult,
    RowError,
    _aliases,
    _apply,
    _book,
    _count,
    _nodes,
    _norm,
    _read,
    _text,
)


def tree_template() -> bytes:
    """Return an empty grid-tree workbook with its 说明 sheet."""
    levels = grids.level_names()
    names = [*levels.values(), "", "", "", ""]
    notes = [
        ["网格表填写说明"], ["列", "是否必填", "说明"],
        ["编码", "必填", "网格编码：数字、大写字母和连字符（-），全系统唯一。系统中已有的编码表示修改该网格。"],
        ["名称", "必填", "网格名称，如“东一社区第一网格”。"],
        ["层级", "必填", "填下方层级的代码或中文名称（如 street、街道（乡镇）或 街道）；须低于上级网格的层级。"],
        ["上级编码", "顶层网格留空", "上级网格的编码：可以是系统中已有的网格，也可以是本表中的另一行（行的先后不限）。"
                                 "已有网格的上级不能通过导入修改，移动网格请在网格管理页面操作。"],
        ["户数", "选填", "不小于 0 的整数；已有网格留空表示不修改。"],
        ["人口", "选填", "不小于 0 的整数；已有网格留空表示不修改。"],
        ["边界（GeoJSON）", "选填", '含 type 的 GeoJSON 对象文本，如 {"type":"Polygon","coordinates":[…]}；'
                                   "留空表示不修改（超过 32767 个字符的边界不导出）。"],
        [], *COMMON_NOTES, [], ["层级"], ["代码", "中文名称"], *[[k, v] for k, v in levels.items()],
        [], ["示例（请在“网格”表中填写，这里的示例不会被导入）"], TREE_HEADERS,
        ["450902001", "名山街道", names[2], "450902", "", "", ""],
        ["450902001001", "孝坊社区", names[3], "450902001", "3200", "9800", ""],
    ]
    return _book(TREE_SHEET, TREE_HEADERS, [], notes)


def export_tree(scope) -> bytes:
    """Return the in-service nodes the person administers, in the template's columns."""
    condition = scope.admin_condition(GridNode.path)
    nodes = [] if condition is None else list(
        GridNode.select().where(condition & GridNode.retired_at.is_null()))
    levels = grids.level_names()
    rows = []
    for node in sorted(nodes, key=lambda n: n.path):
        boundary = dumps(node.boundary) if node.boundary else None
        rows.append([node.code, node.name, levels.get(node.level, node.level),
                     (ancestor_codes(node) or [None])[-1], node.households, node.population,
                     boundary if boundary and len(boundary) <= MAX_CELL else None])
    return _book(TREE_SHEET, TREE_HEADERS, rows)


def _boundary(value, fail) -> dict | None:
    text = _text(value)
    if not text:
        return None
    try:
        data = json.loads(text, parse_constant=lambda c: float("invalid"))  # NaN, Infinity: not JSON
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return data
    fail('边界不是有效的 GeoJSON：应为含 type 的 JSON 对象，如 {"type":"Polygon",…}')
    return None


# -- the grid tree ----------------------------------------------------------------------------

def import_tree(content: bytes, actor: Person, scope) -> ImportResult:
    """Create and update grid nodes from a workbook, all or nothing."""
    title, rows, errors = _read(content, TREE_SHEET, TREE_HEADERS, TREE_REQUIRED)
    result = ImportResult(errors=errors)
    if errors:
        return result
    names = grids.level_names()
    depths = {lvl.key: lvl.depth for lvl in Level.select()}
    levels = _aliases(names)
    items: dict[str, dict] = {}

    def fail(number, message):
        result.errors.append(RowError(title, number, message))

    for number, cells in rows:
        at = partial(fail, number)
        code, name, parent = _text(cells["编码"]), _text(cells["名称"]), _text(cells["上级编码"])
        level_text = _text(cells["层级"])
        if not code:
            at("编码不能为空")
        elif not is_grid_code(code):
            at(f"编码 {code} 不正确：只能用数字、大写字母和连字符，且不超过 64 个字符")
        elif code in items:
            at(f"编码 {code} 与第 {items[code]['row']} 行重复")
        if not name:
            at("名称不能为空")
        elif len(name) > 128:
            at("名称不能超过 128 个字")
        level = levels.get(_norm(level_text))
        if level is None:
            at(f"层级“{level_text}”未配置，可填：{'、'.join(names.values())}" if level_text else "层级不能为空")
        item = {"row": number, "name": name, "level": level, "parent": parent,
                "households": _count(cells.get("户数"), "户数", at),
                "population": _count(cells.get("人口"), "人口", at),
                "boundary": _boundary(cells.get("边界（GeoJSON）"), at)}
        if is_grid_code(code) and code not in items:
            items[code] = item
    existing = _nodes(set(items) | {i["parent"] for i in items.values() if i["parent"]})
    links = {}  # new node → its parent, also new in the file
    for code, item in items.items():
        at = partial(fail, item["row"])
        level, parent, node = item["level"], item["parent"], existing.get(code)
        if node is not None:
            current = (ancestor_codes(node) or [""])[-1]
            if not scope.is_admin_at(node.path):
                at(f"无权修改网格 {code}（超出您的管理范围）")
            elif node.retired_at is not None:
                at(f"网格 {code} 已撤销，不能导入；如需恢复请在网格管理页面操作")
            elif parent != current:
                at(f"网格 {code} 已存在且上级不同；移动网格请在网格管理页面操作")
            elif level is not None and level != node.level:
                at(f"网格 {code} 已存在，层级是“{names.get(node.level, node.level)}”，与表中不同；"
                   "层级不能通过导入修改")
            else:
                item["changes"] = {k: item[k] for k in ("name", "households", "population", "boundary")
                                   if item[k] not in (None, getattr(node, k))}
            continue
        parent_level = None
        if not parent:
            if not scope.is_root_admin():
                at("无权新建顶层网格（只有管理整棵网格树的管理员可以），请填写上级编码")
        elif parent == code:
            at("上级编码不能是自己")
        elif parent in existing:
            pnode = existing[parent]
            if not scope.is_admin_at(pnode.path):
                at(f"无权在 {parent} 之下添加网格（超出您的管理范围）")
            elif pnode.retired_at is not None:
                at(f"上级网格 {parent} 已撤销")
            else:
                parent_level = pnode.level
        elif parent in items:
            links[code], parent_level = parent, items[parent]["level"]
        else:
            at(f"上级编码 {parent} 不存在（表中和系统中都没有）")
        if level is not None and parent_level is not None and depths.get(parent_level, -1) >= depths[level]:
            at(f"层级“{names[level]}”须低于上级 {parent} 的层级“{names[parent_level]}”")
    ranks, cycles = _ranks(links)
    for cycle in cycles:
        for code in cycle:
            fail(items[code]["row"], f"上级编码构成循环：{' → '.join(cycle + cycle[:1])}")
    if result.errors:
        result.errors.sort(key=lambda e: e.row)
        return result
    new = sorted((c for c in items if c not in existing), key=lambda c: ranks.get(c, 0))
    changed = [c for c in items if items[c].get("changes")]
    result.created, result.updated = len(new), len(changed)

    def work():
        made: dict[str, GridNode] = {}
        for code in new:
            item = items[code]
            yield item["row"]
            parent = (existing.get(item["parent"]) or made[item["parent"]]) if item["parent"] else None
            made[code] = create_node(code, item["name"], item["level"], parent, households=item["households"],
                                     population=item["population"], boundary=item["boundary"])
        for code in changed:
            yield items[code]["row"]
            GridNode.update(**items[code]["changes"]).where(GridNode.id == existing[code].id).execute()
        audit(actor, "tree_imported", f"{title}：{len(rows)} 行", created=len(new), updated=len(changed))

    return _apply(title, work(), result)


def _ranks(links: dict[str, str]) -> tuple[dict[str, int], list[list[str]]]:
    """Count each new node's new ancestors in the file (so parents are made first), and find cycles."""
    ranks: dict[str, int] = {}
    cycles = []
    for start in links:
        path, seen, code = [], set(), start
        while code in links and code not in ranks and code not in seen:
            seen.add(code)
            path.append(code)
            code = links[code]
        if code in seen:
            cycle = path[path.index(code):]
            cycles.append(cycle)
            ranks.update(dict.fromkeys(cycle, 0))
            path = path[:path.index(code)]
        rank = ranks.get(code, 0)
        for c in reversed(path):
            rank += 1
            ranks[c] = rank
    return ranks, cycles


