"""Flow definitions: the graph of nodes, its edges, and the checks a flow must pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..validation import pointer
from .check import _meta_problems, schema_problems, ui_problems
from .files import Problem, Source


def edges(node: dict) -> list[tuple[tuple, str]]:
    """List a node's outgoing references as (location inside the node, target node id)."""
    out: list[tuple[tuple, str]] = []
    kind = node.get("type")
    if kind == "task":
        for i, action in enumerate(node.get("actions") or []):
            if isinstance(action, dict) and "to" in action:
                out.append((("actions", i, "to"), action["to"]))
    elif kind == "branch":
        for i, cond in enumerate(node.get("conditions") or []):
            if isinstance(cond, dict) and "to" in cond:
                out.append((("conditions", i, "to"), cond["to"]))
        if "default" in node:
            out.append((("default",), node["default"]))
    elif kind == "parallel":
        for i, target in enumerate(node.get("branches") or []):
            out.append((("branches", i), target))
        if "branch" in node:
            out.append((("branch",), node["branch"]))
    elif kind in ("join", "cc", "spawn"):
        if "next" in node:
            out.append((("next",), node["next"]))
    return out


def _reachable(start: str, graph: dict[str, list[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        here = todo.pop()
        if here in seen or here not in graph:
            continue
        seen.add(here)
        todo.extend(graph[here])
    return seen


def check_flow(
    source: Source,
    forms: set[str] | None,
    levels: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
) -> list[Problem]:
    """Check one flow: format, references, reachability, ends, joins, roles, step forms."""
    from ..grids import DEFAULT_LEVELS, DEFAULT_ROLES

    problems = _meta_problems(source)
    if problems:
        return problems
    file, doc = str(source.path), source.doc
    nodes: dict[str, Any] = doc["nodes"]
    levels = set(levels if levels is not None else (k for k, _, _ in DEFAULT_LEVELS))
    roles = set(roles if roles is not None else (r[0] for r in DEFAULT_ROLES))

    graph: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        graph[node_id] = []
        for where, target in edges(node):
            if target not in nodes:
                problems.append(Problem(file, pointer(("nodes", node_id) + where),
                                        f"引用了不存在的节点 {target}"))
            else:
                graph[node_id].append(target)
    if doc["start"] not in nodes:
        problems.append(Problem(file, "/start", f"开始节点 {doc['start']} 不存在"))
        return problems

    reached = _reachable(doc["start"], graph)
    for node_id in nodes:
        if node_id not in reached:
            problems.append(Problem(file, pointer(("nodes", node_id)), "从开始节点无法到达此节点"))

    reverse: dict[str, list[str]] = {n: [] for n in nodes}
    for source_id, targets in graph.items():
        for target in targets:
            reverse[target].append(source_id)
    ends = [n for n, node in nodes.items() if node.get("type") == "end"]
    can_end: set[str] = set()
    for end in ends:
        can_end |= _reachable(end, reverse)
    for node_id in nodes:
        if node_id in reached and node_id not in can_end:
            problems.append(Problem(file, pointer(("nodes", node_id)), "此节点没有通往结束节点的路径"))

    for node_id, node in nodes.items():
        at = ("nodes", node_id)
        problems.extend(_node_problems(file, at, node, nodes, graph, forms, levels, roles))
    return problems


def _node_problems(file, at, node, nodes, graph, forms, levels, roles) -> list[Problem]:
    problems: list[Problem] = []
    kind = node["type"]
    if kind == "parallel":
        join = node.get("join")
        if join not in nodes or nodes[join].get("type") != "join":
            problems.append(Problem(file, pointer(at + ("join",)),
                                    f"并行节点的汇合节点 {join} 不存在或不是 join 类型"))
        else:
            if "branches" in node:
                starts = [(("branches", i), b) for i, b in enumerate(node["branches"])]
            else:
                starts = [(("branch",), node.get("branch"))]
            for where, start in starts:
                if start in nodes and join not in _reachable(start, graph):
                    problems.append(Problem(file, pointer(at + where),
                                            f"分支 {start} 无法到达汇合节点 {join}"))
    if kind == "branch":
        for i, cond in enumerate(node.get("conditions") or []):
            if "when" in cond:
                problems.extend(schema_problems(cond["when"], file, at + ("conditions", i, "when")))
            visits = cond.get("visits")
            if visits and visits.get("node") not in nodes:
                problems.append(Problem(file, pointer(at + ("conditions", i, "visits", "node")),
                                        f"计数的节点 {visits.get('node')} 不存在"))
    if kind == "spawn" and forms is not None and node.get("form") not in forms:
        problems.append(Problem(file, pointer(at + ("form",)), f"找不到表单 {node.get('form')}"))
    if kind == "spawn" and "when" in node:
        problems.extend(schema_problems(node["when"], file, at + ("when",)))
    assignees = list(enumerate(node.get("assignees") or []))
    for i, who in assignees:
        problems.extend(_assignee_problems(file, at + ("assignees", i), who, levels, roles))
    if isinstance(node.get("fallback"), dict):
        problems.extend(_assignee_problems(file, at + ("fallback",), node["fallback"], levels, roles))
    if kind == "cc":
        for i, who in enumerate(node.get("to") or []):
            problems.extend(_assignee_problems(file, at + ("to", i), who, levels, roles))
    step_forms = []
    if isinstance(node.get("form"), dict):
        step_forms.append((at + ("form",), node["form"]))
    for i, action in enumerate(node.get("actions") or []):
        if isinstance(action.get("form"), dict):
            step_forms.append((at + ("actions", i, "form"), action["form"]))
    for where, form in step_forms:
        schema = form.get("schema", {})
        problems.extend(schema_problems(schema, file, where + ("schema",)))
        if schema.get("type") != "object":
            problems.append(Problem(file, pointer(where + ("schema", "type")),
                                    "步骤表单的 schema 须为 type: object"))
        problems.extend(ui_problems(schema, schema, form.get("ui", {}), file, where + ("ui",)))
    return problems


def _assignee_problems(file, at, who: dict, levels: set, roles: set) -> list[Problem]:
    problems = []
    if "role" in who and who["role"] not in roles:
        problems.append(Problem(file, pointer(at + ("role",)), f"角色 {who['role']} 未配置"))
    if "level" in who and who["level"] not in levels:
        problems.append(Problem(file, pointer(at + ("level",)), f"层级 {who['level']} 未配置"))
    if "role" in who and "level" not in who:
        problems.append(Problem(file, pointer(at), "按角色指派时须同时写明层级 level"))
    return problems
