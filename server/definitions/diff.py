"""Readable differences between two versions of a form or a flow: what a person would call a change."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..rendering import choose_widget, options_of, ordered, type_of
from ..validation import resolve_local, show_value

LIMITS = {"minLength": "最少字数", "maxLength": "最多字数", "minimum": "最小值", "maximum": "最大值",
          "minItems": "最少项数", "maxItems": "最多项数", "pattern": "格式", "format": "格式类型",
          "multipleOf": "倍数"}


@dataclass(frozen=True)
class Change:
    """One change: where (a JSON Pointer into the data, or a node key), what kind, and a Chinese sentence."""

    where: str
    kind: str  # added, removed, changed
    text: str
    risk: str | None = None  # "field", "type" or "option": existing data may no longer fit
    value: Any = None  # the removed option's value

    def __hash__(self) -> int:
        return hash((self.where, self.kind, self.text))

    def as_dict(self) -> dict:
        return {"where": self.where, "kind": self.kind, "text": self.text}


def form_changes(old: dict, new: dict) -> list[Change]:
    """List the changes from one form definition to another, field by field, top to bottom."""
    out: list[Change] = []
    for key, label in (("title", "表单名称"), ("description", "填写说明"), ("flow", "办理流程")):
        if old.get(key) != new.get(key):
            out.append(Change("", "changed", f"{label}：{_shown(old.get(key))} → {_shown(new.get(key))}"))
    _fields(old["schema"], new["schema"], old.get("ui") or {}, new.get("ui") or {}, (), out)
    return out


def _fields(old_root: dict, new_root: dict, old_ui: dict, new_ui: dict, path: tuple, out: list[Change],
            old_schema: dict | None = None, new_schema: dict | None = None) -> None:
    old_schema = resolve_local(old_root, old_schema if old_schema is not None else old_root)
    new_schema = resolve_local(new_root, new_schema if new_schema is not None else new_root)
    old_props, new_props = old_schema.get("properties") or {}, new_schema.get("properties") or {}
    old_req, new_req = set(old_schema.get("required") or []), set(new_schema.get("required") or [])
    names = ordered(list(new_props), new_ui.get("ui:order"))
    for name in names + [n for n in ordered(list(old_props), old_ui.get("ui:order")) if n not in new_props]:
        here = path + (name,)
        where = "/" + "/".join(str(p) for p in here)
        o_ui = old_ui.get(name) if isinstance(old_ui.get(name), dict) else {}
        n_ui = new_ui.get(name) if isinstance(new_ui.get(name), dict) else {}
        if name not in old_props:
            title = _title(resolve_local(new_root, new_props[name]), n_ui, name)
            out.append(Change(where, "added", f"新增字段「{title}」" + ("（必填）" if name in new_req else "")))
            continue
        if name not in new_props:
            title = _title(resolve_local(old_root, old_props[name]), o_ui, name)
            out.append(Change(where, "removed", f"删除字段「{title}」", risk="field"))
            continue
        o, n = resolve_local(old_root, old_props[name]), resolve_local(new_root, new_props[name])
        title = _title(n, n_ui, name)
        before = _title(o, o_ui, name)
        if before != title:
            out.append(Change(where, "changed", f"字段「{before}」改名为「{title}」"))
        if (name in old_req) != (name in new_req):
            out.append(Change(where, "changed", f"「{title}」改为" + ("必填" if name in new_req else "选填")))
        o_kind, n_kind = type_of(o), type_of(n)
        o_widget, n_widget = choose_widget(o, o_ui), choose_widget(n, n_ui)
        if o_kind != n_kind or o_widget != n_widget:
            out.append(Change(where, "changed", f"「{title}」的填写方式：{o_widget} → {n_widget}",
                              risk="type" if o_kind != n_kind else None))
        _options(o, n, o_ui, n_ui, title, where, out)
        for key, label in LIMITS.items():
            if o.get(key) != n.get(key):
                out.append(_was(where, title, label, o.get(key), n.get(key)))
        if bool(o.get("x-sensitive")) != bool(n.get("x-sensitive")):
            now_sensitive = "标为敏感信息" if n.get("x-sensitive") else "不再是敏感信息"
            out.append(Change(where, "changed", f"「{title}」{now_sensitive}"))
        if o_ui.get("ui:visibleWhen") != n_ui.get("ui:visibleWhen"):
            text = "显示条件已修改" if o_ui.get("ui:visibleWhen") and n_ui.get("ui:visibleWhen") else (
                "增加了显示条件" if n_ui.get("ui:visibleWhen") else "去掉了显示条件（总是显示）")
            out.append(Change(where, "changed", f"「{title}」{text}"))
        for key, label in (("ui:help", "帮助文字"), ("ui:placeholder", "示例文字"), ("description", "说明")):
            before_text = o_ui.get(key) if key.startswith("ui:") else o.get(key)
            after_text = n_ui.get(key) if key.startswith("ui:") else n.get(key)
            if before_text != after_text:
                out.append(_was(where, title, label, before_text, after_text))
        if n_kind == "object" and o_kind == "object":
            _fields(old_root, new_root, o_ui, n_ui, here, out, o, n)
        items_o, items_n = o.get("items"), n.get("items")
        if n_kind == "array" and isinstance(items_o, dict) and isinstance(items_n, dict):
            if type_of(resolve_local(new_root, items_n)) == "object":
                _fields(old_root, new_root, o_ui.get("items") or {}, n_ui.get("items") or {}, here + ("*",), out,
                        items_o, items_n)


def _options(o: dict, n: dict, o_ui: dict, n_ui: dict, title: str, where: str, out: list[Change]) -> None:
    items_o = o.get("items") if isinstance(o.get("items"), dict) else {}
    items_n = n.get("items") if isinstance(n.get("items"), dict) else {}
    before = dict(options_of(o, o_ui) or options_of(items_o, o_ui.get("items") or {}) or [])
    after = dict(options_of(n, n_ui) or options_of(items_n, n_ui.get("items") or {}) or [])
    if not before and not after:
        return
    out.extend(_keyed(where, before, after, f"「{title}」新增选项「{{new}}」",
                      f"「{title}」的选项「{{old}}」改为「{{new}}」", f"「{title}」删除选项「{{old}}」"))
    for value, label in before.items():
        if value not in after:
            out[:] = [c for c in out if c.text != f"「{title}」删除选项「{label}」"]
            out.append(Change(where, "removed", f"「{title}」删除选项「{label}」", risk="option", value=value))


def _keyed(where: str, before: dict, after: dict, added: str, changed: str, removed: str) -> list[Change]:
    """Changes between two keyed collections (options by value, actions by key), by their labels."""
    out = []
    for key, label in after.items():
        if key not in before:
            out.append(Change(where, "added", added.format(new=label)))
        elif before[key] != label:
            out.append(Change(where, "changed", changed.format(old=before[key], new=label)))
    for key, label in before.items():
        if key not in after:
            out.append(Change(where, "removed", removed.format(old=label)))
    return out


def affected(changes: list[Change], datas) -> dict[Change, int]:
    """Count, for each risky change, the submissions whose data it touches (a removed field or option
    they use, a field whose type changed and that they filled). `datas` yields each case's data once."""
    risky = [c for c in changes if c.risk]
    counts = dict.fromkeys(risky, 0)
    if not risky:
        return counts
    for data in datas:
        for change in risky:
            values = _values_at(data, change.where.split("/")[1:])
            if change.risk == "option":
                values = [v for v in values for v in (v if isinstance(v, list) else [v]) if v == change.value]
            if values:
                counts[change] += 1
    return counts


def _values_at(data: Any, parts: list[str]) -> list:
    if not parts:
        return [data]
    head, rest = parts[0], parts[1:]
    if head == "*":
        return [v for row in data for v in _values_at(row, rest)] if isinstance(data, list) else []
    if isinstance(data, dict) and head in data:
        return _values_at(data[head], rest)
    return []


def flow_changes(old: dict, new: dict) -> list[Change]:
    """List the changes from one flow definition to another, step by step."""
    out: list[Change] = []
    if old.get("title") != new.get("title"):
        out.append(Change("", "changed", f"流程名称：{_shown(old.get('title'))} → {_shown(new.get('title'))}"))
    if old.get("start") != new.get("start"):
        out.append(Change("", "changed", f"开始步骤：{old.get('start')} → {new.get('start')}"))
    o_nodes, n_nodes = old.get("nodes") or {}, new.get("nodes") or {}
    for key in list(n_nodes) + [k for k in o_nodes if k not in n_nodes]:
        if key not in o_nodes:
            out.append(Change(key, "added", f"新增步骤「{n_nodes[key].get('title', key)}」"))
            continue
        if key not in n_nodes:
            out.append(Change(key, "removed", f"删除步骤「{o_nodes[key].get('title', key)}」"))
            continue
        o, n = o_nodes[key], n_nodes[key]
        title = n.get("title", key)
        if o.get("title") != n.get("title"):
            out.append(Change(key, "changed", f"步骤「{o.get('title', key)}」改名为「{title}」"))
        for field, label in (("deadline", "时限"), ("assignees", "办理人"), ("mode", "办理方式"),
                             ("fallback", "无人时改由"), ("on_timeout", "超时处理"), ("conditions", "判断条件"),
                             ("default", "默认去向"), ("next", "下一步"), ("to", "抄送给"), ("map", "数据对照")):
            if o.get(field) != n.get(field):
                out.append(_was(key, title, label, o.get(field), n.get(field)))
        o_actions = {a["key"]: _Action(a) for a in o.get("actions") or []}
        n_actions = {a["key"]: _Action(a) for a in n.get("actions") or []}
        out.extend(_keyed(key, o_actions, n_actions, f"「{title}」新增操作「{{new}}」",
                          f"「{title}」的操作「{{new}}」已修改", f"「{title}」删除操作「{{old}}」"))
    return out


class _Action(dict):
    """An action compared whole, shown by its title."""

    def __str__(self) -> str:
        return self.get("title", self.get("key", ""))


def _was(where: str, title: str, label: str, before: Any, after: Any) -> Change:
    shown = _readable.get(label, _shown)
    return Change(where, "changed", f"「{title}」的{label}：{shown(before)} → {shown(after)}")


_UNITS = {"W": "周", "D": "天", "H": "小时", "M": "分钟"}


def _deadline(value: Any) -> str:
    """A deadline as a person says it: 10 个工作日, 3 天, 48 小时 (anything unusual as written)."""
    if not isinstance(value, dict) or not isinstance(value.get("duration"), str):
        return _shown(value)
    match = re.fullmatch(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", value["duration"])
    if not match or sum(1 for g in match.groups() if g) != 1:
        return value["duration"]
    amount, unit = next((g, u) for g, u in zip(match.groups(), "WDHM", strict=True) if g)
    if unit == "D" and value.get("calendar") == "working":
        return f"{amount} 个工作日"
    return f"{amount} {_UNITS[unit]}"


def _label_of(names: dict) -> Any:
    return lambda value: names.get(value, _shown(value)) if isinstance(value, str) else _shown(value)


def _who(value: Any) -> str:
    """Assignees as a person says them: 社区（村）调解员、公安（街道（乡镇））、提交人 (default names)."""
    from ..grids import DEFAULT_DEPARTMENTS, DEFAULT_LEVELS, DEFAULT_ROLES

    levels = {k: n for k, n, _ in DEFAULT_LEVELS}
    roles = {r[0]: r[1] for r in DEFAULT_ROLES}
    departments = {k: n for k, n in DEFAULT_DEPARTMENTS}
    specs = value if isinstance(value, list) else [value]
    out = []
    for spec in specs:
        if not isinstance(spec, dict):
            return _shown(value)
        level = levels.get(spec.get("level"), spec.get("level") or "")
        if spec.get("submitter"):
            out.append("提交人")
        elif "department" in spec:
            out.append(f"{level}{departments.get(spec['department'], spec['department'])}")
        elif "role" in spec:
            out.append(f"{level}{roles.get(spec['role'], spec['role'])}")
        elif "person" in spec:
            out.append(f"用户 {spec['person']}")
        else:
            out.append(_shown(spec))
    return "、".join(out) if out else "（无）"


_readable = {
    "时限": _deadline,
    "办理人": _who,
    "无人时改由": lambda v: _who(v) if v is not None else "（无）",
    "抄送给": _who,
    "办理方式": _label_of({"any": "或签", "all": "会签", "sequence": "依次审批"}),
    "超时处理": lambda v: {"remind": "提醒", "escalate": "督办上报", "auto": "自动办理"}.get(
        (v or {}).get("action"), _shown(v)) if isinstance(v, dict) or v is None else _shown(v),
}


def _title(schema: dict, ui: dict, name: str) -> str:
    return ui.get("ui:title") or schema.get("title") or name


def _shown(value: Any) -> str:
    if value is None:
        return "（无）"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        return text if len(text) <= 80 else text[:77] + "…"
    return show_value(value)
