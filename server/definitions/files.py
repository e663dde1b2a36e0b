"""Reading definition files and folders, and the problem record every check reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMAS_DIR = Path(__file__).parent / "schemas"


@dataclass(frozen=True)
class Problem:
    """One problem in a definition: the file, the JSON Pointer inside it, and what is wrong."""

    file: str
    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.pointer or '/'}: {self.message}"


@dataclass
class Source:
    """One definition file as read: its kind (form or flow) and its JSON content."""

    path: Path
    kind: str
    doc: dict[str, Any]

    @property
    def key(self) -> str:
        return self.doc.get("key", "")


def meta_schema(kind: str) -> dict:
    """Return the shipped meta-schema of a definition kind (`form` or `flow`)."""
    return json.loads((SCHEMAS_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))


def kind_of(doc: Any) -> str | None:
    """Tell a flow (it has nodes) from a form (it has a schema)."""
    if not isinstance(doc, dict):
        return None
    if "nodes" in doc:
        return "flow"
    if "schema" in doc:
        return "form"
    return None


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """List the `.json` files named or contained (not recursively) in the given paths."""
    files, problems = [], []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.json") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), "", "文件或文件夹不存在"))
    return files, problems


def read_sources(paths: list[Path]) -> tuple[list[Source], list[Problem]]:
    """Read definition files; report unreadable JSON with its line and column."""
    files, problems = expand_paths(paths)
    sources = []
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            problems.append(Problem(str(path), "", "文件不是 UTF-8 编码"))
            continue
        except json.JSONDecodeError as exc:
            problems.append(Problem(
                str(path), "", f"JSON 语法错误（第 {exc.lineno} 行第 {exc.colno} 列）：{exc.msg}"))
            continue
        kind = kind_of(doc)
        if kind is None:
            problems.append(Problem(
                str(path), "", "无法判断定义类型：表单定义须有 schema，流程定义须有 nodes"))
            continue
        sources.append(Source(path, kind, doc))
    return sources, problems
