"""Server-side SVG diagram of a flow definition: layered layout, no JavaScript, stdlib only."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from string import Template

from markupsafe import Markup, escape

from .flows import edges

TITLE_SIZE = 14
KIND_SIZE = 11
LABEL_SIZE = 12
TITLE_WIDTH = 168
LABEL_WIDTH = 170
PAD_X = 14
LINE = 18
LAYER_GAP = 64
NODE_GAP = 30
DUMMY_W = 8
MARGIN = 16
CORNER = 10
SWEEPS = 8

TYPE_LABELS = {"task": "办理", "branch": "判断", "parallel": "并行", "join": "汇合", "cc": "抄送",
               "spawn": "派生", "end": "结束"}
OUTCOMES = {"resolved": "办结", "rejected": "不予受理/驳回", "withdrawn": "撤回"}
CLOSING = set("，。、；：？！）》」』】〕”’…,.;:?!)]}")
OPENING = set("（《「『【〔“‘([{")
FONT = ('system-ui, -apple-system, "Segoe UI", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", '
        '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", sans-serif')

STYLE = Template("""
.flow-diagram{font-family:$font}
.flow-diagram text{fill:#1f2933}
.flow-diagram .node .shape{fill:#fff;stroke:#5b6b7a;stroke-width:1.5}
.flow-diagram .node.branch .shape{fill:#fff8e1;stroke:#b8891a}
.flow-diagram .node.parallel .shape,.flow-diagram .node.join .shape{fill:#3d4b5c;stroke:#2b3643}
.flow-diagram .node.parallel text,.flow-diagram .node.join text{fill:#fff}
.flow-diagram .node.cc .shape,.flow-diagram .node.spawn .shape{fill:#f4f6f8;stroke-dasharray:5 3}
.flow-diagram .node.end .shape{fill:#eef2f7;stroke:#3d4b5c}
.flow-diagram .node.passed .shape{fill:#e3f1e6;stroke:#6f9f7b}
.flow-diagram .node.passed.parallel .shape,.flow-diagram .node.passed.join .shape{fill:#5d8a69;stroke:#4a7455}
.flow-diagram .node.current .shape{stroke:#c0392b;stroke-width:3.5}
.flow-diagram .node .kind{font-size:${kind}px;fill:#6b7785}
.flow-diagram .node.parallel .kind,.flow-diagram .node.join .kind{fill:#d5dce4}
.flow-diagram .node .name{font-size:${title}px}
.flow-diagram .badge rect{fill:#c0392b}
.flow-diagram .badge text{fill:#fff;font-size:11px;font-weight:bold}
.flow-diagram .missing rect{fill:#fff;stroke:#c0392b;stroke-dasharray:3 3}
.flow-diagram .missing text{fill:#c0392b;font-size:14px;font-weight:bold}
.flow-diagram .edge{fill:none;stroke:#7b8794;stroke-width:1.5}
.flow-diagram .edge.loop{stroke:#d35400;stroke-dasharray:6 4}
.flow-diagram .edge.side{stroke:#8e6fb0;stroke-dasharray:6 4}
.flow-diagram .edge.join{stroke:#8e9aa6;stroke-dasharray:2 3}
.flow-diagram .arrow path{fill:#7b8794}
.flow-diagram .arrow.loop path{fill:#d35400}
.flow-diagram .arrow.side path{fill:#8e6fb0}
.flow-diagram .arrow.join path{fill:#8e9aa6}
.flow-diagram .edge-label rect{fill:#fff;fill-opacity:.92;stroke:#dde3ea;stroke-width:.8}
.flow-diagram .edge-label text{font-size:${label}px;fill:#3e4c59}
.flow-diagram .edge-label.loop text{fill:#a04000}
.flow-diagram .start circle{fill:#3d4b5c}
.flow-diagram .start path{fill:none;stroke:#3d4b5c;stroke-width:1.5}
.flow-diagram a:hover .shape,.flow-diagram a:focus .shape{stroke-width:2.5}
.flow-diagram a:hover .name{text-decoration:underline}
""").substitute(font=FONT, kind=KIND_SIZE, title=TITLE_SIZE, label=LABEL_SIZE)


@dataclass
class _Box:
    """A laid-out item: a node, a missing-target placeholder or an edge's dummy point."""

    key: str
    kind: str
    w: float
    h: float
    node_type: str = ""
    lines: list[str] = field(default_factory=list)
    type_label: str = ""
    layer: int = 0
    x: float = 0.0
    y: float = 0.0

    @property
    def top(self) -> float:
        """Top edge."""
        return self.y - self.h / 2

    @property
    def bottom(self) -> float:
        """Bottom edge."""
        return self.y + self.h / 2

    @property
    def left(self) -> float:
        """Left edge."""
        return self.x - self.w / 2

    @property
    def right(self) -> float:
        """Right edge."""
        return self.x + self.w / 2

    def rect(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the box."""
        return self.left, self.top, self.right, self.bottom


@dataclass
class _Edge:
    """One drawn edge: a node reference, or a parallel node's join relation."""

    src: str
    dst: str
    label: str
    kind: str
    order: int
    loop: bool = False
    side: bool = False
    chain: list[str] = field(default_factory=list)
    segments: list[tuple] = field(default_factory=list)
    path: str = ""
    lane: float | None = None
    span: tuple[float, float] = (0.0, 0.0)
    label_box: tuple[float, float, float, float] | None = None
    label_text: str = ""


# -- text ------------------------------------------------------------------------------------------

def _clean(text: object) -> str:
    """Text without control characters (XML cannot carry them)."""
    return re.sub(r"[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]", " ", str(text))


def _char_width(ch: str, size: float) -> float:
    """Estimated advance of one character: CJK and ambiguous-width ~1 em, ASCII ~0.6 em."""
    if ch == " ":
        return size * 0.33
    if ord(ch) < 128:
        return size * 0.6
    if unicodedata.east_asian_width(ch) in ("W", "F", "A"):
        return size * 1.0
    return size * 0.65


def _text_width(text: str, size: float) -> float:
    """Estimated width of a run of text."""
    return sum(_char_width(ch, size) for ch in text)


def _truncate(text: str, size: float, width: float) -> str:
    """Cut text to fit the width, ending with an ellipsis when it was cut."""
    if _text_width(text, size) <= width:
        return text
    room = width - _char_width("…", size)
    out = ""
    for ch in text:
        if _text_width(out + ch, size) > room:
            break
        out += ch
    return out.rstrip() + "…"


def _wrap(text: str, size: float, width: float, max_lines: int = 2) -> list[str]:
    """Wrap text into at most max_lines lines (two balanced lines when that fits), ending with … if cut."""
    text = text.strip()
    if _text_width(text, size) <= width or max_lines < 2:
        return [_truncate(text, size, width)]
    tokens = re.findall(r"[A-Za-z0-9_\-./:@#]+|\s+|.", text)
    best: tuple[float, list[str]] | None = None
    for i in range(1, len(tokens)):
        if tokens[i] in CLOSING or tokens[i - 1] in OPENING:
            continue
        head, tail = "".join(tokens[:i]).rstrip(), "".join(tokens[i:]).strip()
        widest = max(_text_width(head, size), _text_width(tail, size))
        if head and tail and widest <= width and (best is None or widest < best[0]):
            best = (widest, [head, tail])
    if best:
        return best[1]
    lines: list[str] = []
    pos = 0
    while len(lines) < max_lines - 1:
        pos = len(text) - len(text[pos:].lstrip())
        if _text_width(text[pos:], size) <= width:
            break
        take = ""
        for token in re.findall(r"[A-Za-z0-9_\-./:@#]+|\s+|.", text[pos:]):
            if _text_width(take + token, size) > width and not (token in CLOSING and take):
                break
            take += token
        take = take or _truncate(text[pos:], size, width)[:-1] or text[pos]
        lines.append(take.rstrip())
        pos += len(take)
    lines.append(_truncate(text[pos:].strip(), size, width))
    return lines or [""]


# -- labels ----------------------------------------------------------------------------------------

def _title(node_id: str, node: dict) -> str:
    """A node's display title: its title, else its id."""
    title = node.get("title")
    return _clean(title) if isinstance(title, str) and title.strip() else _clean(node_id)


def _type_label(node: dict) -> str:
    """The small Chinese type label of a node (end nodes with their outcome)."""
    kind = node.get("type")
    if not isinstance(kind, str) or not kind:
        return "节点"
    label = TYPE_LABELS.get(kind, _clean(kind))
    outcome = node.get("outcome")
    if kind == "end" and isinstance(outcome, str) and outcome:
        label += "·" + OUTCOMES.get(outcome, _clean(outcome))
    return label


def _visits_label(visits: object, nodes: dict) -> str:
    """Say what a visit-count condition means, e.g. "社区初调 少于 3 次"."""
    if not isinstance(visits, dict):
        return "计数条件"
    counted = visits.get("node")
    name = _title(counted, nodes[counted]) if isinstance(counted, str) and counted in nodes else _clean(counted or "")
    parts = []
    if "gte" in visits:
        parts.append(f"已 {_clean(visits['gte'])} 次")
    if "lt" in visits:
        parts.append(f"少于 {_clean(visits['lt'])} 次")
    return f"{name} {'且'.join(parts) or '计数'}".strip()


def _edge_label(node: dict, where: tuple, nodes: dict) -> str:
    """The label of the edge found at `where` inside the node."""
    kind = node.get("type")
    if kind == "task" and where[0] == "actions":
        action = node["actions"][where[1]]
        return _clean(action.get("title") or action.get("key") or "")
    if kind == "branch" and where[0] == "conditions":
        i = where[1]
        cond = node["conditions"][i]
        parts = []
        if "when" in cond:
            parts.append(f"条件 {i + 1}")
        if "visits" in cond:
            parts.append(_visits_label(cond["visits"], nodes))
        return " 且 ".join(parts) or f"条件 {i + 1}"
    if kind == "branch":
        return "其他"
    if kind == "parallel":
        return "并行" if where[0] == "branches" else "每项一支"
    return ""


# -- graph -----------------------------------------------------------------------------------------

def _node_box(node_id: str, node: dict) -> _Box:
    """Size a node's box from its text."""
    kind = node.get("type") if isinstance(node.get("type"), str) else ""
    lines = _wrap(_title(node_id, node), TITLE_SIZE, TITLE_WIDTH)
    type_label = _type_label(node)
    text_w = max([_text_width(line, TITLE_SIZE) for line in lines] + [_text_width(type_label, KIND_SIZE)])
    h = 31 + LINE * len(lines)
    w = max(text_w + 2 * PAD_X, 96)
    if kind == "branch":
        w += 28
    elif kind in ("parallel", "join"):
        w = max(w + 24, 180)
    elif kind == "end":
        w += h / 2
    return _Box(node_id, "node", round(w), h, kind, lines, type_label)


def _collect(definition: dict) -> tuple[dict[str, _Box], list[_Edge], dict[str, int]]:
    """Boxes for the nodes and missing targets, the edges, and each node's definition index."""
    nodes = _nodes(definition)
    boxes = {node_id: _node_box(node_id, node) for node_id, node in nodes.items()}
    index = {node_id: i for i, node_id in enumerate(nodes)}
    found: list[_Edge] = []

    def target_key(target: object) -> str:
        """The box key of a reference, adding a placeholder box for a missing node."""
        if isinstance(target, str) and target in nodes:
            return target
        key = "\x00missing:" + _clean(target)
        if key not in boxes:
            boxes[key] = _Box(key, "missing", 28, 28, lines=[_clean(target)])
            index[key] = len(index)
        return key

    for node_id, node in nodes.items():
        try:
            refs = edges(node)
        except (AttributeError, TypeError):
            refs = []
        for where, target in refs:
            try:
                label = _edge_label(node, where, nodes)
            except (AttributeError, IndexError, KeyError, TypeError):
                label = ""
            found.append(_Edge(node_id, target_key(target), label, "flow", len(found)))
        if node.get("type") == "parallel" and "join" in node:
            found.append(_Edge(node_id, target_key(node["join"]), "汇合", "join", len(found)))
    return boxes, found, index


def _classify(start: str | None, boxes: dict[str, _Box], found: list[_Edge], index: dict[str, int]
              ) -> tuple[set[str], list[str]]:
    """DFS from start (children in definition order) marking back edges; return reachable and postorder."""
    out: dict[str, list[_Edge]] = {key: [] for key in boxes}
    for edge in found:
        out[edge.src].append(edge)
    for key in out:
        out[key].sort(key=lambda e: (index[e.dst], e.order))
    seen: set[str] = set()
    post: list[str] = []
    roots = ([start] if start in boxes else []) + [k for k in boxes if boxes[k].kind == "node"]
    reachable: set[str] = set()
    for n, root in enumerate(roots):
        if root in seen:
            continue
        seen.add(root)
        on_stack = {root}
        stack = [(root, iter(out[root]))]
        while stack:
            here, children = stack[-1]
            edge = next(children, None)
            if edge is None:
                stack.pop()
                on_stack.discard(here)
                post.append(here)
                continue
            if edge.dst in on_stack:
                edge.loop = True
            elif edge.dst not in seen:
                seen.add(edge.dst)
                on_stack.add(edge.dst)
                stack.append((edge.dst, iter(out[edge.dst])))
        if n == 0 and start in boxes:
            reachable = set(seen)
    return reachable, post


def _assign_layers(boxes: dict[str, _Box], found: list[_Edge], reachable: set[str], post: list[str]) -> None:
    """Longest-path layers over forward edges from start; unreachable nodes go in a last layer."""
    preds: dict[str, list[str]] = {key: [] for key in boxes}
    for edge in found:
        if not edge.loop and edge.src in reachable and edge.dst in reachable:
            preds[edge.dst].append(edge.src)
    topo = [key for key in reversed(post) if key in reachable]
    for key in topo:
        boxes[key].layer = max((boxes[p].layer + 1 for p in preds[key]), default=0)
    last = max((boxes[k].layer for k in reachable), default=-1) + 1
    for key in post:
        if key not in reachable and boxes[key].kind == "node":
            boxes[key].layer = last
    for key in post:
        if key not in reachable and boxes[key].kind != "node":
            srcs = [boxes[e.src].layer for e in found if e.dst == key]
            boxes[key].layer = max(srcs, default=last) + 1


def _add_dummies(boxes: dict[str, _Box], found: list[_Edge]) -> None:
    """Split forward edges that span several layers with dummy points; mark the others as side edges."""
    count = 0
    for edge in found:
        a, b = boxes[edge.src].layer, boxes[edge.dst].layer
        if b <= a:
            edge.side = True
            continue
        for layer in range(a + 1, b):
            key = f"\x00dummy:{count}"
            count += 1
            boxes[key] = _Box(key, "dummy", DUMMY_W, 0, layer=layer)
            edge.chain.append(key)


def _segments(found: list[_Edge]) -> list[tuple[str, str, float]]:
    """Adjacent-layer segments (upper, lower, weight) of the forward edges."""
    out = []
    for edge in found:
        if edge.side:
            continue
        keys = [edge.src] + edge.chain + [edge.dst]
        last = len(keys) - 2
        for i in range(len(keys) - 1):
            weight = 3.0 if last == 0 else 6.0 if 0 < i < last else 1.0
            out.append((keys[i], keys[i + 1], weight))
    return out


def _crossings(layers: list[list[str]], segs: list[tuple[str, str, float]]) -> int:
    """Count crossings between adjacent layers."""
    pos = {key: i for layer in layers for i, key in enumerate(layer)}
    by_layer: dict[int, list[tuple[int, int]]] = {}
    layer_of = {key: n for n, layer in enumerate(layers) for key in layer}
    for up, down, _ in segs:
        by_layer.setdefault(layer_of[up], []).append((pos[up], pos[down]))
    total = 0
    for pairs in by_layer.values():
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1:]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _order(boxes: dict[str, _Box], post: list[str], segs: list[tuple[str, str, float]]) -> list[list[str]]:
    """Order each layer by a few barycenter sweeps, keeping the order with the fewest crossings."""
    depth = max((b.layer for b in boxes.values()), default=0) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for key in reversed(post):
        layers[boxes[key].layer].append(key)
    for key, box in boxes.items():
        if box.kind == "dummy":
            layers[box.layer].append(key)
    ups: dict[str, list[str]] = {k: [] for k in boxes}
    downs: dict[str, list[str]] = {k: [] for k in boxes}
    for up, down, _ in segs:
        downs[up].append(down)
        ups[down].append(up)
    best, best_count = [list(layer) for layer in layers], _crossings(layers, segs)
    for sweep in range(6):
        downward = sweep % 2 == 0
        rng = range(1, depth) if downward else range(depth - 2, -1, -1)
        for n in rng:
            ref = {key: i for i, key in enumerate(layers[n - 1 if downward else n + 1])}
            here = {key: i for i, key in enumerate(layers[n])}

            def bary(key: str, ref=ref, here=here, nbrs=ups if downward else downs) -> tuple[float, int]:
                """Mean position of the neighbours in the reference layer (else the current position)."""
                near = [ref[k] for k in nbrs[key] if k in ref]
                return (sum(near) / len(near) if near else here[key], here[key])
            layers[n].sort(key=bary)
        count = _crossings(layers, segs)
        if count < best_count:
            best, best_count = [list(layer) for layer in layers], count
    return best


def _pack(items: list[_Box], wants: list[float], weights: list[float]) -> list[float]:
    """Centers closest (weighted least squares) to the wanted ones, keeping order and spacing."""
    offsets = [0.0] * len(items)
    blocks: list[list] = []
    for i in range(len(items)):
        blocks.append([i, i, weights[i], weights[i] * wants[i]])
        while len(blocks) > 1:
            prev, cur = blocks[-2], blocks[-1]
            prev_pos, cur_pos = prev[3] / prev[2], cur[3] / cur[2]
            last, first = items[prev[1]], items[cur[0]]
            need = (last.w + first.w) / 2 + (NODE_GAP if "dummy" not in (last.kind, first.kind) else 14)
            if prev_pos + offsets[prev[1]] + need <= cur_pos + 1e-9:
                break
            shift = offsets[prev[1]] + need
            for j in range(cur[0], cur[1] + 1):
                offsets[j] += shift
            prev[1], prev[2], prev[3] = cur[1], prev[2] + cur[2], prev[3] + cur[3] - cur[2] * shift
            blocks.pop()
    out = [0.0] * len(items)
    for first, last, weight, total in blocks:
        for j in range(first, last + 1):
            out[j] = total / weight + offsets[j]
    return out


def _place(boxes: dict[str, _Box], layers: list[list[str]], segs: list[tuple[str, str, float]],
           gaps: list[float]) -> list[tuple[float, float]]:
    """Set x by neighbour-pulling passes and y by layer bands; return each band's (top, bottom)."""
    ups: dict[str, list[tuple[str, float]]] = {k: [] for k in boxes}
    downs: dict[str, list[tuple[str, float]]] = {k: [] for k in boxes}
    for up, down, weight in segs:
        downs[up].append((down, weight))
        ups[down].append((up, weight))
    for layer in layers:
        items = [boxes[k] for k in layer]
        for box, x in zip(items, _pack(items, [0.0] * len(items), [1.0] * len(items)), strict=True):
            box.x = x
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        order = layers[1:] if downward else list(reversed(layers[:-1]))
        for layer in order:
            items = [boxes[k] for k in layer]
            wants, weights = [], []
            for box in items:
                near = (ups if downward else downs)[box.key]
                total = sum(w for _, w in near)
                if total:
                    wants.append(sum(boxes[k].x * w for k, w in near) / total)
                    weights.append(total)
                else:
                    wants.append(box.x)
                    weights.append(0.2)
            for box, x in zip(items, _pack(items, wants, weights), strict=True):
                box.x = x
    left = min((b.left for b in boxes.values()), default=0.0)
    for box in boxes.values():
        box.x = round(box.x - left + MARGIN, 1)
    bands, y = [], 52.0
    for n, layer in enumerate(layers):
        height = max((boxes[k].h for k in layer if boxes[k].kind != "dummy"), default=0)
        bands.append((y, y + height))
        for key in layer:
            boxes[key].y = y + height / 2
            if boxes[key].kind == "dummy":
                boxes[key].h = height
        y += height + gaps[n]
    return bands


def _gaps(boxes: dict[str, _Box], found: list[_Edge], depth: int) -> list[float]:
    """The space below each layer: more when more labelled edges leave it."""
    count = [0] * depth
    for edge in found:
        if edge.label and not edge.side:
            count[boxes[edge.src].layer] += 1
        elif edge.label and boxes[edge.src].layer - boxes[edge.dst].layer == 1:
            count[boxes[edge.dst].layer] += 1
    return [LAYER_GAP + 8 * min(max(c - 1, 0), 3) for c in count]


# -- routing ---------------------------------------------------------------------------------------

def _inset(box: _Box) -> float:
    """How far from the left and right ends the flat top and bottom of a shape begin."""
    if box.node_type == "branch":
        return 20
    if box.node_type == "end":
        return box.h / 2
    return 12


def _right_x(box: _Box, dy: float) -> float:
    """The x of the shape's right outline at dy from its middle."""
    if box.kind == "node" and box.node_type == "branch":
        return box.right - 14 * abs(dy) / (box.h / 2)
    if box.kind == "node" and box.node_type == "end":
        r = box.h / 2
        return box.right - r + (max(r * r - dy * dy, 0)) ** 0.5
    return box.right


def _spread(center: float, count: int, room: float, step: float = 14) -> list[float]:
    """count positions centred on center, step apart at most, within room."""
    if count <= 1:
        return [center] * count
    step = min(step, room / (count - 1)) if room > 0 else 0
    return [center + (i - (count - 1) / 2) * step for i in range(count)]


def _curve(p: tuple[float, float], q: tuple[float, float]) -> tuple:
    """A vertical-tangent cubic from p down to q."""
    mid = (q[1] - p[1]) / 2
    return (p, (p[0], p[1] + mid), (q[0], q[1] - mid), q)


def _line(p: tuple[float, float], q: tuple[float, float]) -> tuple:
    """A straight segment as a cubic."""
    return (p, p, q, q)


def _route_forward(boxes: dict[str, _Box], found: list[_Edge], bands: list[tuple[float, float]]) -> None:
    """Route downward edges through their dummies, ports spread along the boxes' flat ends."""
    outs: dict[str, list[_Edge]] = {}
    ins: dict[str, list[_Edge]] = {}
    for edge in found:
        if not edge.side:
            outs.setdefault(edge.src, []).append(edge)
            ins.setdefault(edge.dst, []).append(edge)
    start_x: dict[int, float] = {}
    end_x: dict[int, float] = {}
    for key, group in outs.items():
        box = boxes[key]
        group.sort(key=lambda e: (boxes[(e.chain or [e.dst])[0]].x, e.order))
        room = box.w - 2 * _inset(box)
        for edge, x in zip(group, _spread(box.x, len(group), room), strict=True):
            start_x[edge.order] = x
    for key, group in ins.items():
        box = boxes[key]
        group.sort(key=lambda e: (boxes[(e.chain or [e.src])[-1]].x, e.order))
        room = box.w - 2 * _inset(box)
        for edge, x in zip(group, _spread(box.x, len(group), room), strict=True):
            end_x[edge.order] = x
    for edge in found:
        if edge.side:
            continue
        src, dst = boxes[edge.src], boxes[edge.dst]
        band_bottom, top = bands[src.layer][1], bands[dst.layer][0]
        point = (start_x[edge.order], src.bottom)
        segs = []
        if band_bottom > point[1] + 0.5:
            segs.append(_line(point, (point[0], band_bottom)))
            point = (point[0], band_bottom)
        for key in edge.chain:
            dummy = boxes[key]
            segs.append(_curve(point, (dummy.x, dummy.top)))
            segs.append(_line((dummy.x, dummy.top), (dummy.x, dummy.bottom)))
            point = (dummy.x, dummy.bottom)
        end = (end_x[edge.order], dst.top)
        if dst.top > top + 0.5:
            segs.append(_curve(point, (end[0], top)))
            segs.append(_line((end[0], top), end))
        else:
            segs.append(_curve(point, end))
        edge.segments = segs
        edge.path = _path(segs)


def _path(segs: list[tuple]) -> str:
    """SVG path data for a list of cubic segments."""
    out = [f"M{_n(segs[0][0][0])},{_n(segs[0][0][1])}"]
    for p0, p1, p2, p3 in segs:
        if p0 == p1 and p2 == p3:
            out.append(f"L{_n(p3[0])},{_n(p3[1])}")
        else:
            out.append(f"C{_n(p1[0])},{_n(p1[1])} {_n(p2[0])},{_n(p2[1])} {_n(p3[0])},{_n(p3[1])}")
    return "".join(out)


def _rounded(points: list[tuple[float, float]]) -> list[tuple]:
    """Cubic segments along a polyline, with rounded corners."""
    pts = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
    segs: list[tuple] = []
    here = pts[0]
    for i in range(1, len(pts) - 1):
        prev, corner, nxt = pts[i - 1], pts[i], pts[i + 1]
        d_in = abs(corner[0] - prev[0]) + abs(corner[1] - prev[1])
        d_out = abs(nxt[0] - corner[0]) + abs(nxt[1] - corner[1])
        r = min(CORNER, d_in / 2, d_out / 2)
        a = (corner[0] - _sign(corner[0] - prev[0]) * r, corner[1] - _sign(corner[1] - prev[1]) * r)
        b = (corner[0] + _sign(nxt[0] - corner[0]) * r, corner[1] + _sign(nxt[1] - corner[1]) * r)
        if a != here:
            segs.append(_line(here, a))
        segs.append((a, corner, corner, b) if r > 0 else _line(a, b))
        here = b
    if pts[-1] != here or not segs:
        segs.append(_line(here, pts[-1]))
    return segs


def _sign(v: float) -> float:
    """-1, 0 or 1."""
    return (v > 0) - (v < 0)


def _rightmost(boxes: dict[str, _Box], layers: list[list[str]]) -> set[str]:
    """Keys of the rightmost real box in each layer."""
    out = set()
    for layer in layers:
        real = [k for k in layer if boxes[k].kind != "dummy"]
        if real:
            out.add(real[-1])
    return out


def _route_side(boxes: dict[str, _Box], layers: list[list[str]], found: list[_Edge],
                bands: list[tuple[float, float]], obstacles: list[tuple[float, float, float, float]]) -> None:
    """Route loops and other upward edges along lanes on the right of everything they pass."""
    side = [e for e in found if e.side]
    if not side:
        return
    right = _rightmost(boxes, layers)

    def gap_above(layer: int) -> float:
        """The middle of the gap above a layer."""
        return (bands[layer][0] + bands[layer - 1][1]) / 2 if layer else bands[0][0] - LAYER_GAP / 2

    def gap_below(layer: int) -> float:
        """The middle of the gap below a layer."""
        last = layer + 1 >= len(bands)
        return bands[layer][1] + LAYER_GAP / 2 if last else (bands[layer][1] + bands[layer + 1][0]) / 2

    laned = []
    for edge in side:
        src, dst = boxes[edge.src], boxes[edge.dst]
        if edge.src not in right and edge.dst not in right and src.layer == dst.layer + 1:
            continue
        y1 = src.y if edge.src in right else gap_above(src.layer)
        y2 = dst.y if edge.dst in right else gap_below(dst.layer)
        lo = min(y1, y2, src.top if edge.src in right else y1, dst.top if edge.dst in right else y2)
        hi = max(y1, y2, src.bottom if edge.src in right else y1, dst.bottom if edge.dst in right else y2)
        edge.span = (lo - 10, hi + 10)
        laned.append(edge)
    placed: list[_Edge] = []
    for edge in sorted(laned, key=lambda e: (e.span[1] - e.span[0], e.order)):
        lo, hi = edge.span
        half = _half_label(edge)
        base = max([b.right for b in boxes.values() if b.top <= hi and b.bottom >= lo]
                   + [r[2] for r in obstacles if r[1] <= hi and r[3] >= lo] + [0.0])
        lane = base + 14 + half
        moved = True
        while moved:
            moved = False
            for other in placed:
                if other.span[0] <= hi and other.span[1] >= lo:
                    need = max(half + _half_label(other) + 6, 12)
                    if abs(lane - other.lane) < need - 1e-6:
                        lane = other.lane + need
                        moved = True
        edge.lane = round(lane, 1)
        placed.append(edge)
    _side_paths(boxes, side, right, (gap_above, gap_below), obstacles)


def _half_label(edge: _Edge) -> float:
    """Half the width of an edge's drawn label (0 without one)."""
    return (_text_width(_label_text(edge), LABEL_SIZE) + 10) / 2 if edge.label else 0.0


def _clear_y(y: float, x0: float, x1: float, obstacles: list[tuple[float, float, float, float]]) -> float:
    """A y near the given one where a horizontal line from x0 to x1 crosses no obstacle."""
    lo, hi = min(x0, x1), max(x0, x1)
    for step in (0, -6, 6, -12, 12, -18, 18):
        if not any(r[0] <= hi and r[2] >= lo and r[1] <= y + step <= r[3] for r in obstacles):
            return y + step
    return y


def _side_paths(boxes: dict[str, _Box], side: list[_Edge], right: set[str],
                gaps: tuple[Callable[[int], float], Callable[[int], float]],
                obstacles: list[tuple[float, float, float, float]]) -> None:
    """Build the paths of side edges once their lanes are known, spreading the endpoints."""
    gap_above, gap_below = gaps
    ends: dict[str, list[tuple]] = {}
    for edge in side:
        src, dst = boxes[edge.src], boxes[edge.dst]
        self_loop = edge.src == edge.dst
        ends.setdefault(edge.src, []).append((edge, "out", dst.y < src.y or self_loop))
        ends.setdefault(edge.dst, []).append((edge, "in", not (dst.y < src.y) and not self_loop))
    where: dict[tuple[int, str], tuple] = {}
    for key, group in ends.items():
        box = boxes[key]
        if key in right:
            group.sort(key=lambda t: (not t[2], (t[0].lane or 0.0) * (1 if t[2] else -1), t[0].order, t[1]))
            ys = _spread(box.y, len(group), box.h - 16, 10)
            for (edge, end, _), y in zip(group, ys, strict=True):
                where[(edge.order, end)] = (_right_x(box, y - box.y), y)
            continue
        for end in ("out", "in"):
            mine = sorted((t for t in group if t[1] == end),
                          key=lambda t: (t[0].lane is not None, t[0].lane or 0.0, t[0].order))
            for k, (edge, _, _) in enumerate(mine):
                x = max(box.right - _inset(box) - k * 10, box.x)
                y = box.top if end == "out" else box.bottom
                gy = gap_above(box.layer) + k * 6 if end == "out" else gap_below(box.layer) - k * 6
                clear = gy if edge.lane is None else _clear_y(gy, x, edge.lane, obstacles)
                where[(edge.order, end)] = (x, y, clear)
    for edge in side:
        start, finish = where[(edge.order, "out")], where[(edge.order, "in")]
        if edge.lane is None:
            edge.segments = [_curve(start[:2], finish[:2])]
            edge.path = _path(edge.segments)
            continue
        points = [start[:2]]
        if len(start) == 3:
            points += [(start[0], start[2]), (edge.lane, start[2])]
        else:
            points.append((edge.lane, start[1]))
        if len(finish) == 3:
            points += [(edge.lane, finish[2]), (finish[0], finish[2])]
        else:
            points.append((edge.lane, finish[1]))
        points.append(finish[:2])
        edge.segments = _rounded(points)
        edge.path = _path(edge.segments)


# -- label placement -----------------------------------------------------------------------------

def _label_text(edge: _Edge) -> str:
    """The label as drawn (truncated to fit)."""
    return _truncate(edge.label, LABEL_SIZE, LABEL_WIDTH)


def _at(seg: tuple, t: float) -> tuple[float, float]:
    """A point on a cubic segment."""
    p0, p1, p2, p3 = seg
    u = 1 - t
    return (u ** 3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t ** 3 * p3[0],
            u ** 3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t ** 3 * p3[1])


def _overlap(a: tuple, b: tuple) -> float:
    """Overlapping area of two rectangles (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _candidates(edge: _Edge) -> list[tuple[float, float]]:
    """Label centres to try, best first: middles of the longer segments (the lane of a side edge) first."""
    segs = [s for s in edge.segments if abs(s[3][0] - s[0][0]) + abs(s[3][1] - s[0][1]) >= 16] or edge.segments
    if edge.side:
        segs = sorted(segs, key=lambda s: (s[0][0] != s[3][0], -abs(s[3][1] - s[0][1])))
    out = []
    if edge.src == edge.dst and edge.lane is not None:
        out.append((edge.lane + _half_label(edge) + 3, (segs[0][0][1] + segs[-1][3][1]) / 2))
    for ts in ((0.5,), (0.35, 0.65), (0.2, 0.8), (0.1, 0.9)):
        for seg in segs:
            out += [_at(seg, t) for t in ts]
    return out


def _place_labels(edges_: list[_Edge], obstacles: list[tuple[float, float, float, float]]) -> None:
    """Place each edge's label at the first candidate that overlaps nothing (else the least-bad one)."""
    taken = list(obstacles)
    for edge in edges_:
        if not edge.label or not edge.segments:
            continue
        text = _label_text(edge)
        w, h = _text_width(text, LABEL_SIZE) + 10, LABEL_SIZE + 6
        best, best_cost = None, None
        for cx, cy in _candidates(edge):
            rect = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            cost = sum(_overlap(rect, other) for other in taken)
            if best_cost is None or cost < best_cost - 1e-6:
                best, best_cost = rect, cost
            if cost == 0:
                break
        edge.label_box = tuple(round(v, 1) for v in best)
        edge.label_text = text
        taken.append((best[0] - 2, best[1] - 1, best[2] + 2, best[3] + 1))


# -- drawing ---------------------------------------------------------------------------------------

def _n(value: float) -> str:
    """A number for SVG: at most one decimal, no trailing .0."""
    text = f"{value:.1f}"
    text = "0.0" if text == "-0.0" else text
    return text[:-2] if text.endswith(".0") else text


def _shape(box: _Box) -> str:
    """The outline of a node."""
    x0, y0, x1, y1 = box.rect()
    kind = box.node_type
    if kind == "branch":
        d = 14
        pts = [(x0, box.y), (x0 + d, y0), (x1 - d, y0), (x1, box.y), (x1 - d, y1), (x0 + d, y1)]
        return f'<polygon class="shape" points="{" ".join(f"{_n(x)},{_n(y)}" for x, y in pts)}"/>'
    rx = {"task": 8, "end": box.h / 2, "parallel": 3, "join": 3, "cc": 4, "spawn": 4}.get(kind, 2)
    return (f'<rect class="shape" x="{_n(x0)}" y="{_n(y0)}" width="{_n(box.w)}" height="{_n(box.h)}" '
            f'rx="{_n(rx)}"/>')


def _node_svg(box: _Box, node: dict, classes: list[str], link: str | None) -> str:
    """A node group: outline, type label, title lines, optional 当前 badge and link."""
    x0, y0 = box.left, box.top
    attrs = (f'class="{escape(" ".join(classes))}" data-node="{escape(box.key)}" id="node-{escape(box.key)}" '
             f'data-x="{_n(x0)}" data-y="{_n(y0)}" data-w="{_n(box.w)}" data-h="{_n(box.h)}"')
    parts = [f"<g {attrs}>"]
    tip = _title(box.key, node)
    if isinstance(node.get("description"), str) and node["description"].strip():
        tip += "：" + _clean(node["description"])
    parts.append(f"<title>{escape(tip)}</title>")
    parts.append(_shape(box))
    parts.append(f'<text class="kind" x="{_n(box.x)}" y="{_n(y0 + 7 + 11)}" text-anchor="middle">'
                 f"{escape(box.type_label)}</text>")
    for i, line in enumerate(box.lines):
        parts.append(f'<text class="name" x="{_n(box.x)}" y="{_n(y0 + 23 + LINE * i + 13)}" '
                     f'text-anchor="middle">{escape(line)}</text>')
    if "current" in classes:
        bx, by = box.right - 10, y0 - 11
        parts.append(f'<g class="badge"><rect x="{_n(bx)}" y="{_n(by)}" width="32" height="17" rx="8.5"/>'
                     f'<text x="{_n(bx + 16)}" y="{_n(by + 12.5)}" text-anchor="middle">当前</text></g>')
    parts.append("</g>")
    svg = "".join(parts)
    if link:
        svg = f'<a href="{escape(link)}">{svg}</a>'
    return svg


def _missing_svg(box: _Box) -> str:
    """A placeholder for a referenced node that does not exist."""
    x0, y0 = box.left, box.top
    name = box.lines[0] if box.lines else ""
    return (f'<g class="missing" data-missing="{escape(name)}" data-x="{_n(x0)}" data-y="{_n(y0)}" '
            f'data-w="{_n(box.w)}" data-h="{_n(box.h)}"><title>{escape(f"不存在的节点 {name}")}</title>'
            f'<rect x="{_n(x0)}" y="{_n(y0)}" width="{_n(box.w)}" height="{_n(box.h)}" rx="4"/>'
            f'<text x="{_n(box.x)}" y="{_n(box.y + 5)}" text-anchor="middle">?</text></g>')


def _edge_kind(edge: _Edge) -> str:
    """The extra class of an edge: join, loop, side, or none."""
    if edge.kind == "join":
        return "join"
    if edge.loop:
        return "loop"
    return "side" if edge.side else ""


def _edge_svg(edge: _Edge, boxes: dict[str, _Box], marker: str) -> str:
    """An edge path with its arrowhead."""
    extra = _edge_kind(edge)
    if edge.kind == "join" and edge.loop:
        extra = "join loop"
    classes = "edge" + (f" {extra}" if extra else "")
    arrow = f"{marker}-{extra.split()[0]}" if extra else marker
    dst = boxes[edge.dst]
    to = dst.lines[0] if dst.kind == "missing" else edge.dst
    return (f'<path class="{classes}" data-from="{escape(edge.src)}" data-to="{escape(to)}" '
            f'd="{edge.path}" marker-end="url(#{arrow})"/>')


def _label_svg(edge: _Edge, boxes: dict[str, _Box]) -> str:
    """An edge label on a small white background."""
    x0, y0, x1, y1 = edge.label_box
    extra = _edge_kind(edge)
    dst = boxes[edge.dst]
    to = dst.lines[0] if dst.kind == "missing" else edge.dst
    tip = f"<title>{escape(edge.label)}</title>" if edge.label_text != edge.label else ""
    return (f'<g class="edge-label{" " + extra if extra else ""}" data-from="{escape(edge.src)}" '
            f'data-to="{escape(to)}">{tip}<rect x="{_n(x0)}" y="{_n(y0)}" width="{_n(x1 - x0)}" '
            f'height="{_n(y1 - y0)}" rx="3"/><text x="{_n((x0 + x1) / 2)}" y="{_n(y0 + 13.5)}" '
            f'text-anchor="middle">{escape(edge.label_text)}</text></g>')


def _markers(marker: str) -> str:
    """Arrowhead markers, one per edge colour."""
    out = []
    for extra in ("", "loop", "side", "join"):
        name = f"{marker}-{extra}" if extra else marker
        out.append(f'<marker id="{name}" class="arrow{" " + extra if extra else ""}" viewBox="0 0 10 10" '
                   f'refX="9" refY="5" markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" '
                   f'orient="auto"><path d="M0,0.5L10,5L0,9.5z"/></marker>')
    return "<defs>" + "".join(out) + "</defs>"


def _marker_id(definition: dict) -> str:
    """A deterministic id prefix for this flow's markers."""
    key = definition.get("key")
    safe = re.sub(r"[^A-Za-z0-9_-]", "", key) if isinstance(key, str) else ""
    return f"flow-arrow-{safe or 'x'}"


def _nodes(definition: dict) -> dict[str, dict]:
    """The definition's nodes by id (anything that is not a node object counts as an empty one)."""
    raw = definition.get("nodes")
    return {str(k): (v if isinstance(v, dict) else {}) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _layout(definition: dict) -> tuple[dict[str, _Box], list[_Edge], _Box | None]:
    """Lay out boxes, route edges and place labels; return the boxes, the edges and the start node's box."""
    start = definition.get("start") if isinstance(definition.get("start"), str) else None
    boxes, found, index = _collect(definition)
    reachable, post = _classify(start, boxes, found, index)
    _assign_layers(boxes, found, reachable, post)
    _add_dummies(boxes, found)
    segs = _segments(found)
    layers = _order(boxes, post, segs)
    bands = _place(boxes, layers, segs, _gaps(boxes, found, len(layers))) if layers else []
    _route_forward(boxes, found, bands)
    solid = [(b.left - 3, b.top - 3, b.right + 3, b.bottom + 3) for b in boxes.values() if b.kind != "dummy"]
    start_box = boxes[start] if start in boxes and boxes[start].kind == "node" else None
    if start_box:
        solid.append((start_box.x - 8, start_box.top - 40, start_box.x + 8, start_box.top))
    right = _rightmost(boxes, layers)
    stubs = [(boxes[k].right, boxes[k].top + 4, boxes[k].right + 10000, boxes[k].bottom - 4)
             for k in sorted({k for e in found if e.side for k in (e.src, e.dst) if k in right})]
    forward = [e for e in found if not e.side]
    _place_labels(forward, solid + stubs)
    labels = [e.label_box for e in forward if e.label_box]
    _route_side(boxes, layers, found, bands, labels)
    _place_labels([e for e in found if e.side], solid + labels)
    return boxes, found, start_box


def _viewbox(boxes: dict[str, _Box], found: list[_Edge], current: set[str]) -> tuple[float, float, float, float]:
    """(x, y, width, height) enclosing every box, edge, label and badge, with a margin."""
    xs, ys = [MARGIN, 120.0], [MARGIN, 40.0]
    for box in boxes.values():
        xs += [box.left, box.right + (24 if box.key in current else 0)]
        ys += [box.top - (12 if box.key in current else 0), box.bottom]
    for edge in found:
        for seg in edge.segments:
            xs += [p[0] for p in seg]
            ys += [p[1] for p in seg]
        if edge.label_box:
            xs += [edge.label_box[0], edge.label_box[2]]
            ys += [edge.label_box[1], edge.label_box[3]]
    x0, y0 = min(xs) - MARGIN, min(ys) - MARGIN
    return x0, y0, max(xs) + MARGIN - x0, max(ys) + MARGIN - y0


def flow_svg(definition: dict, current: Iterable[str] = (), passed: Iterable[str] = (),
             link: Callable[[str], str | None] | None = None, title: str | None = None) -> Markup:
    """Render a flow definition as a standalone, escaped, deterministic SVG diagram."""
    current, passed = {str(c) for c in current}, {str(p) for p in passed}
    nodes = _nodes(definition)
    boxes, found, start_box = _layout(definition)
    x0, y0, width, height = _viewbox(boxes, found, current)
    name = _clean(title if title is not None else definition.get("title") or definition.get("key") or "流程图")
    marker = _marker_id(definition)
    role = "group" if link else "img"  # a picture, or (with links to its steps) a group of links
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-diagram" role="{role}" width="100%" '
           f'viewBox="{_n(x0)} {_n(y0)} {_n(width)} {_n(height)}" style="max-width:{_n(width)}px;height:auto" '
           f'aria-label="{escape(name)}" font-family="{escape(FONT)}">',
           f"<title>{escape(name)}</title>", f"<style>{STYLE}</style>", _markers(marker)]
    if start_box:
        sx, sy = start_box.x, start_box.top
        out.append(f'<g class="start"><circle cx="{_n(sx)}" cy="{_n(sy - 30)}" r="6"/>'
                   f'<path d="M{_n(sx)},{_n(sy - 24)}L{_n(sx)},{_n(sy)}" marker-end="url(#{marker})"/></g>')
    out += [_edge_svg(edge, boxes, marker) for edge in found]
    for key, box in boxes.items():
        if box.kind == "node":
            classes = ["node", box.node_type] if box.node_type in TYPE_LABELS else ["node"]
            classes += ["passed"] if key in passed else []
            classes += ["current"] if key in current else []
            out.append(_node_svg(box, nodes[key], classes, link(key) if link else None))
        elif box.kind == "missing":
            out.append(_missing_svg(box))
    out += [_label_svg(edge, boxes) for edge in found if edge.label_box]
    out.append("</svg>")
    return Markup("".join(out))
