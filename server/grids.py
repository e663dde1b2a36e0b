"""The grid tree: levels and roles as configuration, nodes with materialised paths, scope."""

from __future__ import annotations

from peewee import OP, Expression

from .db import first, is_postgres
from .models import GridNode, Level, Role

# Shipped defaults (DESIGN.md); a township may rename or add levels and roles.
DEFAULT_LEVELS = (
    ("city", "市", 0),
    ("district", "县（市、区）", 1),
    ("street", "街道（乡镇）", 2),
    ("community", "社区（村）", 3),
    ("grid", "网格", 4),
    ("micro", "微网格", 5),
)

DEFAULT_ROLES = (
    ("grid_worker", "网格员", False),
    ("grid_leader", "网格长", False),
    ("building_head", "楼栋长", False),
    ("community_secretary", "社区书记", False),
    ("mediator", "调解员", False),
    ("street_officer", "街道干部", False),
    ("department_staff", "部门人员", False),
    ("volunteer", "党员志愿者", False),
    ("admin", "管理员", True),
)

DEFAULT_DEPARTMENTS = (
    ("public_security", "公安"),
    ("justice", "司法"),
    ("health", "卫健"),
    ("civil_affairs", "民政"),
    ("market_regulation", "市场监管"),
    ("urban_management", "城管"),
    ("education", "教育"),
)


def seed_configuration() -> None:
    """Create the default levels and roles where they do not exist yet."""
    for key, name, depth in DEFAULT_LEVELS:
        if not Level.select().where((Level.key == key) | (Level.depth == depth)).exists():
            Level.create(key=key, name=name, depth=depth)
    for key, name, is_admin in DEFAULT_ROLES:
        Role.get_or_create(key=key, defaults={"name": name, "is_admin": is_admin})


def level_keys() -> list[str]:
    """Return the configured level keys, top down."""
    return [lvl.key for lvl in Level.select().order_by(Level.depth)]


def role_keys() -> list[str]:
    """Return the configured role keys."""
    return [r.key for r in Role.select()]


class GridError(ValueError):
    """A change to the tree that cannot be made; the message is for a person, in Chinese."""


def create_node(code: str, name: str, level: str, parent: GridNode | None = None,
                **figures) -> GridNode:
    """Add a node under a parent (or as a root) and compute its path."""
    from .formats import is_grid_code

    if not is_grid_code(code):
        raise GridError(f"网格编码 {code} 不正确：只能用数字、大写字母和连字符")
    if GridNode.select().where(GridNode.code == code).exists():
        raise GridError(f"网格编码 {code} 已存在")
    if not Level.select().where(Level.key == level).exists():
        raise GridError(f"没有 {level} 这一层级")
    path = (parent.path if parent else "/") + code + "/"
    depth = parent.depth + 1 if parent else 0
    return GridNode.create(code=code, name=name, level=level, parent=parent, path=path,
                           depth=depth, **figures)


def ancestor_codes(node: GridNode) -> list[str]:
    """Return the codes of a node's ancestors, root first (the node itself excluded)."""
    return node.path.strip("/").split("/")[:-1]


def in_subtree(field, path: str) -> Expression:
    """Match rows whose materialised path lies in the subtree at `path` (itself included).

    A case-sensitive prefix match that can use an index: peewee runs OP.LIKE as GLOB on SQLite
    (wildcard `*`) and as LIKE on PostgreSQL (wildcard `%`). Codes hold neither wildcard.
    """
    wildcard = "%" if is_postgres() else "*"
    return Expression(field, OP.LIKE, path + wildcard)


def node_by_code(code: str) -> GridNode | None:
    """Return the node with this code, or None; its boundary (possibly large GeoJSON) is not read."""
    return first(GridNode, 'SELECT id, code, name, level, parent_id, path, depth, households, population, '
                           'retired_at, created_at FROM "grid_node" WHERE code = {p}', code)
