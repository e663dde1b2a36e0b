"""The grid tree: levels and roles as configuration, nodes with materialised paths, scope."""

from __future__ import annotations

from peewee import OP, Expression

from .db import database, first, is_postgres, sql
from .models import Department, GridNode, Level, Role, Submission, utcnow

# Shipped defaults (DESIGN.md); a township may rename or add levels and roles.
DEFAULT_LEVELS = (
    ("city", "市", 0),
    ("district", "县（市、区）", 1),
    ("street", "街道（乡镇）", 2),
    ("community", "社区（村）", 3),
    ("grid", "网格", 4),
    ("micro", "微网格", 5),
)

# (key, name, administers its subtree, sees sensitive fields in full). Those who meet the
# households and handle their matters see ID numbers and phones; volunteers, building heads,
# street officers and administrators see them masked.
DEFAULT_ROLES = (
    ("grid_worker", "网格员", False, True),
    ("grid_leader", "网格长", False, True),
    ("building_head", "楼栋长", False, False),
    ("community_secretary", "社区书记", False, True),
    ("mediator", "调解员", False, True),
    ("street_officer", "街道干部", False, False),
    ("department_staff", "部门人员", False, True),
    ("volunteer", "党员志愿者", False, False),
    ("admin", "管理员", True, False),
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
    """Create the default levels, roles and departments in a new database.

    Each table is filled only while it is empty: once configured (a township's own levels,
    say), running `init-db` again never brings back a default that was removed.
    """
    if not Level.select().exists():
        for key, name, depth in DEFAULT_LEVELS:
            Level.create(key=key, name=name, depth=depth)
    if not Role.select().exists():
        for key, name, is_admin, sees_sensitive in DEFAULT_ROLES:
            Role.create(key=key, name=name, is_admin=is_admin, sees_sensitive=sees_sensitive)
    if not Department.select().exists():
        for key, name in DEFAULT_DEPARTMENTS:
            Department.create(key=key, name=name)


def level_keys() -> list[str]:
    """Return the configured level keys, top down."""
    return [lvl.key for lvl in Level.select().order_by(Level.depth)]


def role_keys() -> list[str]:
    """Return the configured role keys."""
    return [r.key for r in Role.select()]


def level_names() -> dict[str, str]:
    """Return the configured levels as key → Chinese name, top down."""
    return {lvl.key: lvl.name for lvl in Level.select().order_by(Level.depth)}


def role_names() -> dict[str, str]:
    """Return the configured roles as key → Chinese name."""
    return {r.key: r.name for r in Role.select().order_by(Role.name)}


def department_names() -> dict[str, str]:
    """Return the configured departments as key → Chinese name."""
    return {d.key: d.name for d in Department.select().order_by(Department.key)}


class GridError(ValueError):
    """A change to the tree that cannot be made; the message is for a person, in Chinese."""


def set_level(key: str, name: str, depth: int | None = None) -> Level:
    """Add a level, or rename it / change its depth while no node uses it."""
    from .formats import is_config_key

    if not is_config_key(key):
        raise GridError(f"层级键 {key} 不正确：用小写字母、数字和下划线，以字母开头")
    level = Level.get_or_none(Level.key == key)
    if depth is None:
        if level is None:
            raise GridError(f"新层级 {key} 须给出深度（0 为最高一级）")
        depth = level.depth
    if depth < 0:
        raise GridError("深度不能为负数")
    taken = Level.get_or_none((Level.depth == depth) & (Level.key != key))
    if taken is not None:
        raise GridError(f"深度 {depth} 已由层级 {taken.key}（{taken.name}）使用")
    if level is None:
        return Level.create(key=key, name=name, depth=depth)
    if depth != level.depth and GridNode.select().where(GridNode.level == key).exists():
        raise GridError(f"已有网格属于层级 {key}，不能再改变它的深度")
    Level.update(name=name, depth=depth).where(Level.key == key).execute()
    return Level.get_by_id(key)


def remove_level(key: str) -> None:
    """Remove a level no node uses."""
    if GridNode.select().where(GridNode.level == key).exists():
        raise GridError(f"已有网格属于层级 {key}，不能删除")
    if not Level.delete().where(Level.key == key).execute():
        raise GridError(f"没有 {key} 这一层级")


def set_role(key: str, name: str, is_admin: bool | None = None, sees_sensitive: bool | None = None) -> Role:
    """Add a role or change its name and what it allows."""
    from .formats import is_config_key

    if not is_config_key(key):
        raise GridError(f"角色键 {key} 不正确：用小写字母、数字和下划线，以字母开头")
    role = Role.get_or_none(Role.key == key)
    if role is None:
        return Role.create(key=key, name=name, is_admin=bool(is_admin), sees_sensitive=bool(sees_sensitive))
    role.name = name
    if is_admin is not None:
        role.is_admin = is_admin
    if sees_sensitive is not None:
        role.sees_sensitive = sees_sensitive
    role.save()
    return role


def set_department(key: str, name: str) -> Department:
    """Add a department or rename it."""
    from .formats import is_config_key

    if not is_config_key(key):
        raise GridError(f"部门键 {key} 不正确：用小写字母、数字和下划线，以字母开头")
    department, created = Department.get_or_create(key=key, defaults={"name": name})
    if not created:
        Department.update(name=name).where(Department.key == key).execute()
        department.name = name
    return department


def create_node(code: str, name: str, level: str, parent: GridNode | None = None,
                **figures) -> GridNode:
    """Add a node under a parent (or as a root) and compute its path."""
    from .formats import is_grid_code

    if not is_grid_code(code):
        raise GridError(f"网格编码 {code} 不正确：只能用数字、大写字母和连字符")
    if GridNode.select().where(GridNode.code == code).exists():
        raise GridError(f"网格编码 {code} 已存在")
    _check_name(name)
    _check_level(level, parent)
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


def _check_name(name: str) -> None:
    if not name.strip():
        raise GridError("网格名称不能为空")
    if len(name) > 128:
        raise GridError("网格名称不能超过 128 个字")


def _check_level(level: str, parent: GridNode | None) -> None:
    """Refuse an unknown level, or a level not below the parent's."""
    depths = {lvl.key: lvl.depth for lvl in Level.select()}
    if level not in depths:
        raise GridError(f"没有 {level} 这一层级")
    if parent is not None and depths.get(parent.level, -1) >= depths[level]:
        raise GridError(f"{parent.name}（{parent.code}）的层级不高于 {level}，不能作为上级")


def children(parent: GridNode | None, include_retired: bool = False) -> list[GridNode]:
    """Return the children of a node (the roots for None), by code."""
    query = GridNode.select(*NODE_COLUMNS).where(
        GridNode.parent.is_null() if parent is None else GridNode.parent == parent)
    if not include_retired:
        query = query.where(GridNode.retired_at.is_null())
    return list(query.order_by(GridNode.code))


def search_nodes(text: str, within: list[str], limit: int = 50) -> list[GridNode]:
    """Find nodes whose code or name contains the text, inside the given subtrees."""
    if not within:
        return []
    text = text.strip()
    matches = GridNode.name.contains(text) | GridNode.code.contains(text.upper())
    scope = in_subtree(GridNode.path, within[0])
    for path in within[1:]:
        scope |= in_subtree(GridNode.path, path)
    return list(GridNode.select(*NODE_COLUMNS).where(matches & scope)
                .order_by(GridNode.depth, GridNode.code).limit(limit))


def rename_node(node: GridNode, name: str, households: int | None = None,
                population: int | None = None) -> GridNode:
    """Change a node's name and figures (its code never changes: cases refer to it)."""
    name = name.strip()
    _check_name(name)
    GridNode.update(name=name, households=households, population=population).where(
        GridNode.id == node.id).execute()
    node.name, node.households, node.population = name, households, population
    return node


def move_node(node: GridNode, parent: GridNode) -> int:
    """Move a subtree under a new parent; paths of its nodes and of their cases follow.

    Memberships point at nodes and follow by themselves. Returns the number of nodes moved.
    """
    if parent.path.startswith(node.path):
        raise GridError(f"不能把 {node.name} 移到它自己或它的下级 {parent.name} 之下")
    if parent.retired_at is not None:
        raise GridError(f"{parent.name} 已撤销，不能作为上级")
    _check_level(node.level, parent)
    old, new = node.path, parent.path + node.code + "/"
    shift = parent.depth + 1 - node.depth
    with database.atomic():
        moved = database.execute_sql(sql(
            'UPDATE "grid_node" SET path = {p} || substr(path, {p}), depth = depth + {p} WHERE ')
            + _prefix_clause("path"), (new, len(old) + 1, shift, old)).rowcount
        # updated_at moves too, so that the monthly figures of those cases' months are rebuilt.
        database.execute_sql(sql('UPDATE "submission" SET grid_path = {p} || substr(grid_path, {p}), '
                                 'updated_at = {p} WHERE ') + _prefix_clause("grid_path"),
                             (new, len(old) + 1, str(utcnow()), old))
        database.execute_sql(sql('UPDATE "task" SET grid_path = {p} || substr(grid_path, {p}) WHERE ')
                             + _prefix_clause("grid_path"), (new, len(old) + 1, old))
        GridNode.update(parent=parent).where(GridNode.id == node.id).execute()
    return moved


def _prefix_clause(column: str) -> str:
    """A WHERE clause matching rows whose path column starts with a parameter."""
    if is_postgres():
        return sql(f"{column} LIKE {{p}} || '%%'")  # psycopg2 reads a lone % as a placeholder
    return sql(f"{column} GLOB {{p}} || '*'")


def open_cases_below(node: GridNode) -> int:
    """Count the cases not yet closed in a node's subtree."""
    return (Submission.select().where(in_subtree(Submission.grid_path, node.path)
                                      & Submission.closed_at.is_null()).count())


def retire_node(node: GridNode) -> int:
    """Retire a node and its subtree; refuse while open cases remain there. Returns nodes retired."""
    open_count = open_cases_below(node)
    if open_count:
        raise GridError(f"{node.name} 及其下级还有 {open_count} 件未办结的案件，"
                        "请先把这些案件移交到其他网格，再撤销")
    return (GridNode.update(retired_at=utcnow())
            .where(in_subtree(GridNode.path, node.path) & GridNode.retired_at.is_null()).execute())


def restore_node(node: GridNode) -> None:
    """Bring a retired node back (its parent must be in service)."""
    if node.parent_id and GridNode.get_by_id(node.parent_id).retired_at is not None:
        raise GridError(f"{node.name} 的上级已撤销，请先恢复上级")
    GridNode.update(retired_at=None).where(GridNode.id == node.id).execute()


NODE_COLUMNS = (GridNode.id, GridNode.code, GridNode.name, GridNode.level, GridNode.parent,
                GridNode.path, GridNode.depth, GridNode.households, GridNode.population,
                GridNode.retired_at, GridNode.created_at)
