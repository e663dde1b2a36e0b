"""The flow diagram: well-formed SVG, one group per node and one path per edge, loops, states, layout."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from markupsafe import Markup

from server.definitions.diagram import flow_svg
from server.definitions.flows import edges

ROOT = Path(__file__).resolve().parent.parent
FLOWS = sorted((ROOT / "flows").glob("*.json"))
SVG = "{http://www.w3.org/2000/svg}"


def load(name: str) -> dict:
    """A shipped flow definition."""
    return json.loads((ROOT / "flows" / f"{name}.json").read_text(encoding="utf-8"))


def parse(svg: str) -> ET.Element:
    """The SVG as an XML tree (fails on anything not well-formed)."""
    return ET.fromstring(str(svg))


def classes(el: ET.Element) -> list[str]:
    """The element's class list."""
    return el.get("class", "").split()


def node_groups(root: ET.Element) -> dict[str, ET.Element]:
    """Node groups by data-node."""
    found = [el for el in root.iter(f"{SVG}g") if el.get("data-node") is not None]
    groups = {el.get("data-node"): el for el in found}
    assert len(groups) == len(found), "a node was drawn twice"
    return groups


def edge_paths(root: ET.Element) -> list[ET.Element]:
    """The edge paths."""
    return [el for el in root.iter(f"{SVG}path") if "edge" in classes(el)]


def box(el: ET.Element) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a node or placeholder group from its data attributes."""
    x, y, w, h = (float(el.get(f"data-{k}")) for k in "xywh")
    return x, y, x + w, y + h


def boxes(root: ET.Element) -> list[tuple[float, float, float, float]]:
    """Boxes of all nodes and placeholders."""
    return [box(el) for el in root.iter(f"{SVG}g") if el.get("data-x") is not None]


def label_boxes(root: ET.Element) -> list[tuple[float, float, float, float]]:
    """Background boxes of the edge labels."""
    out = []
    for group in root.iter(f"{SVG}g"):
        if "edge-label" in classes(group):
            rect = group.find(f"{SVG}rect")
            x, y, w, h = (float(rect.get(k)) for k in ("x", "y", "width", "height"))
            out.append((x, y, x + w, y + h))
    return out


def overlap(a: tuple, b: tuple) -> bool:
    """Whether two rectangles overlap (touching is fine)."""
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.01 and min(a[3], b[3]) - max(a[1], b[1]) > 0.01


def assert_no_overlap(rects: list[tuple]) -> None:
    """No two rectangles overlap."""
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not overlap(a, b), (a, b)


def labels(root: ET.Element) -> dict[tuple[str, str], list[str]]:
    """Edge label texts by (from, to)."""
    out: dict[tuple[str, str], list[str]] = {}
    for group in root.iter(f"{SVG}g"):
        if "edge-label" in classes(group):
            out.setdefault((group.get("data-from"), group.get("data-to")), []).append(
                group.find(f"{SVG}text").text)
    return out


def all_text(root: ET.Element) -> str:
    """Every <text> in the drawing."""
    return "\n".join(t.text or "" for t in root.iter(f"{SVG}text"))


def expected_edges(definition: dict) -> Counter:
    """(from, to) of every reference plus every parallel node's join relation."""
    out: Counter = Counter()
    for node_id, node in definition["nodes"].items():
        for _, target in edges(node):
            out[(node_id, target)] += 1
        if node.get("type") == "parallel":
            out[(node_id, node["join"])] += 1
    return out


def path_points(d: str) -> list[tuple[float, float]]:
    """All coordinate pairs in path data."""
    nums = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d)]
    return list(zip(nums[0::2], nums[1::2], strict=True))


# -- shipped flows ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FLOWS, ids=[p.stem for p in FLOWS])
def test_shipped_flow_renders_every_node_edge_and_label(path):
    definition = json.loads(path.read_text(encoding="utf-8"))
    svg = flow_svg(definition)
    assert isinstance(svg, Markup)
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("width") == "100%" and root.get("role") == "img"
    linked = parse(flow_svg(definition, link=lambda node: f"#{node}"))
    assert linked.get("role") == "group"  # links inside an img role would be hidden from screen readers
    assert "flow-diagram" in classes(root)
    assert len(root.get("viewBox").split()) == 4
    assert root.get("aria-label") == definition["title"]
    assert root.find(f"{SVG}title").text == definition["title"]
    assert "Noto Sans CJK SC" in root.find(f"{SVG}style").text

    groups = node_groups(root)
    assert set(groups) == set(definition["nodes"])
    for node_id, group in groups.items():
        assert group.get("id") == f"node-{node_id}"
        assert "node" in classes(group) and definition["nodes"][node_id]["type"] in classes(group)
        assert "current" not in classes(group) and "passed" not in classes(group)

    drawn = Counter((p.get("data-from"), p.get("data-to")) for p in edge_paths(root))
    assert drawn == expected_edges(definition)
    found = labels(root)
    for node_id, node in definition["nodes"].items():
        for action in node.get("actions", []):
            assert action["title"] in found[(node_id, action["to"])]
        if node["type"] == "branch":
            assert "其他" in found[(node_id, node["default"])]

    assert_no_overlap(boxes(root))
    assert_no_overlap(label_boxes(root))
    for label in label_boxes(root):
        for node_box in boxes(root):
            assert not overlap(label, node_box), (label, node_box)
    assert len(root.findall(f".//{SVG}g[@class='start']")) == 1


@pytest.mark.parametrize("path", FLOWS, ids=[p.stem for p in FLOWS])
def test_forward_edges_point_down_and_loops_go_round_the_right(path):
    definition = json.loads(path.read_text(encoding="utf-8"))
    root = parse(flow_svg(definition))
    groups = node_groups(root)
    for edge in edge_paths(root):
        src, dst = box(groups[edge.get("data-from")]), box(groups[edge.get("data-to")])
        if "loop" in classes(edge):
            assert dst[1] <= src[1]
            points = path_points(edge.get("d"))
            assert points[0][0] > (src[0] + src[2]) / 2 and points[-1][0] > (dst[0] + dst[2]) / 2
            assert "loop" in edge.get("marker-end")
        else:
            assert dst[1] > src[3], edge.attrib


def test_mediation_321_loops_are_classed_loop_with_visit_labels():
    root = parse(flow_svg(load("mediation_321")))
    loops = {(p.get("data-from"), p.get("data-to")) for p in edge_paths(root) if "loop" in classes(p)}
    assert loops == {("community_result", "community_mediation"), ("street_result", "street_mediation")}
    found = labels(root)
    assert found[("community_result", "community_mediation")] == ["社区初调 少于 3 次"]
    assert found[("street_result", "street_mediation")] == ["镇（街道）深调 少于 2 次"]
    assert found[("community_result", "follow_up")] == ["条件 1"]
    assert found[("risk_check", "community_mediation")] == ["其他"]
    loop_labels = [g for g in root.iter(f"{SVG}g") if "edge-label" in classes(g) and "loop" in classes(g)]
    assert len(loop_labels) == 2
    groups = node_groups(root)
    for path in edge_paths(root):
        if "loop" in classes(path):
            ends = [box(groups[path.get(k)]) for k in ("data-from", "data-to")]
            assert max(x for x, _ in path_points(path.get("d"))) > max(b[2] for b in ends)


def test_incident_loop_parallel_join_and_reopen_loops():
    definition = load("incident_loop")
    root = parse(flow_svg(definition))
    paths = edge_paths(root)
    joins = [p for p in paths if "join" in classes(p)]
    assert [(p.get("data-from"), p.get("data-to")) for p in joins] == [("dispatch", "dept_join")]
    found = labels(root)
    assert found[("dispatch", "dept_join")] == ["汇合"]
    assert found[("dispatch", "dept_handling")] == ["每项一支"]
    assert found[("satisfaction_check", "unsatisfied_review")] == ["条件 1 且 回访评价 已 3 次"]
    assert found[("reopen_route", "street_whistle")] == ["街道吹哨 已 1 次"]
    loops = {(p.get("data-from"), p.get("data-to")) for p in paths if "loop" in classes(p)}
    assert {("reopen_route", "street_whistle"), ("reopen_route", "community_handling"),
            ("reopen_route", "grid_handling")} <= loops
    assert ("dept_join", "close_confirm") not in loops
    text = all_text(root)
    assert "结束·不予受理/驳回" in text and "结束·办结" in text and "结束·unresolved" in text
    assert "并行" in text and "汇合" in text and "抄送" in text and "判断" in text


def test_parallel_with_fixed_branches_labels_each_branch():
    definition = {
        "key": "p", "title": "并行", "start": "fork",
        "nodes": {
            "fork": {"type": "parallel", "branches": ["a", "b"], "join": "meet"},
            "a": {"type": "task", "title": "甲", "actions": [{"key": "ok", "title": "好", "to": "meet"}]},
            "b": {"type": "task", "title": "乙", "actions": [{"key": "ok", "title": "好", "to": "meet"}]},
            "meet": {"type": "join", "next": "done"},
            "done": {"type": "end", "outcome": "withdrawn"},
        },
    }
    root = parse(flow_svg(definition))
    found = labels(root)
    assert found[("fork", "a")] == ["并行"] and found[("fork", "b")] == ["并行"]
    assert found[("fork", "meet")] == ["汇合"]
    assert "结束·撤回" in all_text(root)
    assert "meet" in all_text(root)  # a node without a title shows its id


# -- states, links, escaping -----------------------------------------------------------------------

def test_current_marks_that_node_only_with_a_badge():
    root = parse(flow_svg(load("mediation_321"), current=["community_mediation"]))
    groups = node_groups(root)
    marked = [node_id for node_id, g in groups.items() if "current" in classes(g)]
    assert marked == ["community_mediation"]
    badges = [g for g in root.iter(f"{SVG}g") if "badge" in classes(g)]
    assert len(badges) == 1
    assert badges[0] in list(groups["community_mediation"])
    assert badges[0].find(f"{SVG}text").text == "当前"
    assert ".node.current" in root.find(f"{SVG}style").text


def test_passed_nodes_are_classed_passed():
    root = parse(flow_svg(load("mediation_321"), passed=["risk_check", "cc_high_risk"],
                          current=["community_mediation"]))
    groups = node_groups(root)
    assert sorted(k for k, g in groups.items() if "passed" in classes(g)) == ["cc_high_risk", "risk_check"]
    assert "passed" not in classes(groups["community_mediation"])
    assert [k for k, g in groups.items() if "current" in classes(g)] == ["community_mediation"]


def test_link_wraps_nodes_in_anchors():
    def link(node_id):
        return f"/cases/7?step={node_id}&view=1" if node_id.endswith("mediation") else None

    root = parse(flow_svg(load("mediation_321"), link=link))
    anchors = list(root.iter(f"{SVG}a"))
    linked = {a.find(f"{SVG}g").get("data-node"): a.get("href") for a in anchors}
    assert linked == {n: f"/cases/7?step={n}&view=1"
                      for n in ("community_mediation", "street_mediation", "city_mediation")}
    assert len(node_groups(root)) == len(load("mediation_321")["nodes"])


def test_everything_is_escaped():
    nasty = '<b>&"\'</b>'
    definition = {
        "key": "nasty", "title": f"流程{nasty}", "start": "a",
        "nodes": {
            "a": {"type": "task", "title": f"步骤{nasty}", "description": nasty,
                  "actions": [{"key": "go", "title": f"动作{nasty}", "to": "b"}]},
            "b": {"type": "end", "title": nasty, "outcome": f"odd{nasty}"},
        },
    }
    svg = str(flow_svg(definition, current=["a"], link=lambda n: f'/x?a=1&b="{n}"<'))
    assert "<b>" not in svg
    root = parse(svg)
    assert root.get("aria-label") == f"流程{nasty}"
    text = all_text(root)
    assert f"动作{nasty}" in text and f"结束·odd{nasty}" in text
    assert f"步骤{nasty}" in text
    assert {a.get("href") for a in root.iter(f"{SVG}a")} == {'/x?a=1&b="a"<', '/x?a=1&b="b"<'}
    assert parse(flow_svg(definition, title="标题 <i>&")).find(f"{SVG}title").text == "标题 <i>&"


def test_control_characters_are_dropped():
    definition = {"key": "c", "title": "t\x00\x1b", "start": "a",
                  "nodes": {"a": {"type": "end", "title": "x\x07y"}}}
    root = parse(flow_svg(definition))
    assert "x y" in all_text(root)


def test_output_is_deterministic_across_processes():
    definition = load("incident_loop")
    first = flow_svg(definition, current=["close_confirm"], passed=["triage"])
    assert first == flow_svg(definition, current=["close_confirm"], passed=["triage"])
    code = ("import json,sys; from server.definitions.diagram import flow_svg; "
            "d=json.load(open(sys.argv[1], encoding='utf-8')); "
            "sys.stdout.buffer.write(str(flow_svg(d, current=['close_confirm'], passed=['triage'])).encode())")
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code, str(ROOT / "flows" / "incident_loop.json")],
                              cwd=ROOT, env=env, capture_output=True, check=True)
        outputs.add(done.stdout.decode())
    assert outputs == {str(first)}


# -- odd definitions -------------------------------------------------------------------------------

def test_single_end_node():
    root = parse(flow_svg({"key": "one", "title": "一", "start": "done",
                           "nodes": {"done": {"type": "end", "title": "办结", "outcome": "resolved"}}}))
    assert list(node_groups(root)) == ["done"]
    assert edge_paths(root) == []
    assert "结束·办结" in all_text(root)


def test_self_loop_is_a_loop():
    definition = {"key": "s", "title": "自环", "start": "a", "nodes": {
        "a": {"type": "task", "title": "反复", "actions": [
            {"key": "again", "title": "再来", "to": "a"}, {"key": "ok", "title": "完成", "to": "z"}]},
        "z": {"type": "end", "outcome": "resolved"}}}
    root = parse(flow_svg(definition))
    (loop,) = [p for p in edge_paths(root) if "loop" in classes(p)]
    assert (loop.get("data-from"), loop.get("data-to")) == ("a", "a")
    assert labels(root)[("a", "a")] == ["再来"]


def test_missing_target_gets_a_placeholder():
    definition = {"key": "m", "title": "缺", "start": "a", "nodes": {
        "a": {"type": "task", "title": "甲", "actions": [
            {"key": "go", "title": "去", "to": "nowhere"}, {"key": "ok", "title": "完成", "to": "z"}]},
        "b": {"type": "cc", "next": "nowhere"},
        "z": {"type": "end"}}}
    root = parse(flow_svg(definition))
    missing = [g for g in root.iter(f"{SVG}g") if g.get("data-missing") is not None]
    assert [g.get("data-missing") for g in missing] == ["nowhere"]
    assert sorted((p.get("data-from"), p.get("data-to")) for p in edge_paths(root)) == [
        ("a", "nowhere"), ("a", "z"), ("b", "nowhere")]
    assert_no_overlap(boxes(root))


def test_missing_start_and_junk_do_not_raise():
    for definition in ({"nodes": {}}, {}, {"start": "x", "nodes": {"a": {"type": "end"}}},
                       {"start": "a", "nodes": {"a": {"type": "task", "actions": [{"key": "k"}, "junk"]}}},
                       {"start": "a", "nodes": {"a": {"type": "branch", "conditions": [
                           {"visits": {"node": "a", "gte": 2}, "to": "a"}, {"visits": "odd", "to": "a"}]}}},
                       {"start": "a", "nodes": {"a": "not a node"}}):
        parse(flow_svg(definition))


def test_unreachable_nodes_go_in_a_last_layer():
    definition = {"key": "u", "title": "u", "start": "a", "nodes": {
        "a": {"type": "task", "title": "甲", "actions": [{"key": "ok", "title": "好", "to": "z"}]},
        "z": {"type": "end"},
        "lost": {"type": "cc", "title": "孤立", "next": "a"}}}
    root = parse(flow_svg(definition))
    groups = node_groups(root)
    assert box(groups["lost"])[1] > max(box(groups["a"])[3], box(groups["z"])[3])


def test_long_titles_wrap_to_two_lines_and_long_labels_truncate():
    long = "这是一个非常非常非常长的步骤名称，用来检查换行和截断是否正常工作" * 2
    definition = {"key": "l", "title": "长", "start": "a", "nodes": {
        "a": {"type": "task", "title": long, "actions": [{"key": "ok", "title": long, "to": "z"}]},
        "z": {"type": "end"}}}
    root = parse(flow_svg(definition))
    names = [t.text for t in node_groups(root)["a"].iter(f"{SVG}text") if "name" in classes(t)]
    assert len(names) == 2 and names[1].endswith("…")
    (label,) = [g for g in root.iter(f"{SVG}g") if "edge-label" in classes(g)]
    assert label.find(f"{SVG}text").text.endswith("…")
    assert label.find(f"{SVG}title").text == long


# -- size ------------------------------------------------------------------------------------------

def test_chain_of_60_nodes():
    nodes = {f"n{i}": {"type": "task", "title": f"第 {i} 步",
                       "actions": [{"key": "ok", "title": "下一步", "to": f"n{i + 1}"}]} for i in range(59)}
    nodes["n59"] = {"type": "end", "outcome": "resolved"}
    root = parse(flow_svg({"key": "chain", "title": "长链", "start": "n0", "nodes": nodes}))
    groups = node_groups(root)
    assert len(groups) == 60 and len(edge_paths(root)) == 59
    tops = [box(groups[f"n{i}"])[1] for i in range(60)]
    assert tops == sorted(tops) and len(set(tops)) == 60
    assert_no_overlap(boxes(root))


def random_flow(rng: random.Random, size: int) -> dict:
    """A random flow: a tree from the start plus extra forward references and loops; leaves are ends."""
    ids = [f"s{i}" for i in range(size)]
    targets: dict[str, list[str]] = {n: [] for n in ids}
    for i in range(1, size):
        targets[ids[rng.randrange(max(0, i - 3), i)]].append(ids[i])
    for i, node_id in enumerate(ids[:-1]):
        if targets[node_id] and rng.random() < 0.3:
            targets[node_id].append(rng.choice(ids[i + 1:]))
        if targets[node_id] and rng.random() < 0.15:
            targets[node_id].append(ids[rng.randrange(0, i + 1)])
    nodes: dict = {}
    for i, node_id in enumerate(ids):
        to = targets[node_id]
        kinds = ["task", "task", "cc", "spawn", "parallel"] if len(to) == 1 else ["task", "branch", "parallel"]
        kind = rng.choice(kinds) if to else "end"
        if kind == "end":
            nodes[node_id] = {"type": "end", "title": f"结束{i}", "outcome": rng.choice(["resolved", "rejected"])}
        elif kind == "task":
            nodes[node_id] = {"type": "task", "title": f"任务 {i} " + "长" * rng.randint(0, 20),
                              "actions": [{"key": f"a{k}", "title": f"动作{k}·{t}", "to": t} for k, t in enumerate(to)]}
        elif kind == "branch":
            conds = [{"when": {}, "to": t} if k % 2 else {"visits": {"node": t, "lt": 3}, "to": t}
                     for k, t in enumerate(to[:-1])]
            nodes[node_id] = {"type": "branch", "title": f"判断{i}", "conditions": conds, "default": to[-1]}
        elif kind == "parallel":
            nodes[node_id] = {"type": "parallel", "branches": to, "join": ids[-1]}
        else:
            nodes[node_id] = {"type": kind, "next": to[0]}
    return {"key": "random", "title": "随机", "start": ids[0], "nodes": nodes}


@pytest.mark.parametrize("seed", range(12))
def test_random_flows_render_without_overlaps(seed):
    rng = random.Random(seed)
    definition = random_flow(rng, rng.randint(5, 45))
    root = parse(flow_svg(definition, current=[rng.choice(list(definition["nodes"]))]))
    assert set(node_groups(root)) == set(definition["nodes"])
    drawn = Counter((p.get("data-from"), p.get("data-to")) for p in edge_paths(root))
    assert drawn == expected_edges(definition)
    assert_no_overlap(boxes(root))


@pytest.mark.parametrize("seed", range(8))
def test_arbitrary_graphs_with_cycles_and_missing_targets_render(seed):
    rng = random.Random(1000 + seed)
    ids = [f"n{i}" for i in range(rng.randint(1, 25))]
    nodes: dict = {}
    for node_id in ids:
        to = [rng.choice([*ids, "gone"]) for _ in range(rng.randint(0, 3))]
        kind = rng.choice(["task", "cc", "end"]) if to else "end"
        if kind == "task":
            nodes[node_id] = {"type": "task", "actions": [{"key": f"a{k}", "title": t, "to": t}
                                                          for k, t in enumerate(to)]}
        elif kind == "cc":
            nodes[node_id] = {"type": "cc", "next": to[0]}
        else:
            nodes[node_id] = {"type": "end"}
    definition = {"key": "any", "title": "任意", "start": rng.choice(ids), "nodes": nodes}
    root = parse(flow_svg(definition, current=ids[:1], passed=ids[1:3]))
    assert set(node_groups(root)) == set(ids)
    assert Counter((p.get("data-from"), p.get("data-to")) for p in edge_paths(root)) == expected_edges(definition)
    assert_no_overlap(boxes(root))
