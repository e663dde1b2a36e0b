"""People as a workbook: template, export, and an all-or-nothing import of accounts and roles."""

from __future__ import annotations

from .. import grids
from ..auth import add_membership, audit, create_person, hash_password, password_problem, update_person
from ..formats import is_cn_mobile
from ..grids import NODE_COLUMNS
from ..models import GridNode, Membership, Person
from .book import (
    COMMON_NOTES,
    PEOPLE_HEADERS,
    PEOPLE_REQUIRED,
    PEOPLE_SHEET,
    ImportResult,
    RowError,
    _aliases,
    _apply,
    _book,
    _chunks,
    _nodes,
    _norm,
    _read,
    _text,
)


def people_template() -> bytes:
    """Return an empty people workbook with its 说明 sheet."""
    roles, departments = grids.role_names(), grids.department_names()
    notes = [
        ["人员表填写说明"], ["列", "是否必填", "说明"],
        ["用户名", "必填", "登录用的账号，不含空格，不超过 64 个字符。一人有多个职务时写多行，用户名相同。"],
        ["姓名", "新账号必填", "已有账号填写则修改姓名，留空则不变。同一用户名的各行须一致。"],
        ["手机号", "选填", "11 位中国大陆手机号，不能与其他账号重复；可用手机号登录。"],
        ["初始密码", "新账号必填", "至少 8 位，只用于新建账号；已有账号的密码不会被导入修改，请在人员管理页面重置。"],
        ["角色", "必填", "填下方角色的代码或中文名称；与网格编码同时留空表示只建账号、不安排职务（限根网格管理员）。"],
        ["网格编码", "必填", "在该网格担任此角色；网格须在您的管理范围内且未撤销。"],
        ["部门", "部门人员必填", "角色为部门人员时填写下方部门的代码或中文名称，其他角色留空。"],
        [], ["导入只新增账号和职务、修改姓名和手机号，不会删除已有职务。"], *COMMON_NOTES,
        [], ["角色"], ["代码", "中文名称"], *[[k, v] for k, v in roles.items()],
        [], ["部门"], ["代码", "中文名称"], *[[k, v] for k, v in departments.items()],
        [], ["示例（请在“人员”表中填写，这里的示例不会被导入）"], PEOPLE_HEADERS,
        ["zhangsan", "张三", "13800138000", "Zs-2024-grid", roles.get("grid_worker", "网格员"), "450902001001", ""],
        ["zhangsan", "", "", "", roles.get("department_staff", "部门人员"), "450902001",
         departments.get("civil_affairs", "民政")],
    ]
    return _book(PEOPLE_SHEET, PEOPLE_HEADERS, [], notes)


def export_people(scope) -> bytes:
    """Return one row per membership of the active people the person may administer."""
    condition = scope.admin_condition(GridNode.path)
    found: dict[int, list] = {}
    if condition is not None:
        inside = Membership.select(Membership.person).join(GridNode).where(condition)
        query = (Membership.select(Person.id, Person.username, Person.name, Person.phone, Membership.role,
                                   Membership.department, GridNode.code, GridNode.path)
                 .join_from(Membership, Person).join_from(Membership, GridNode)
                 .where(Membership.person.in_(inside) & Person.active).tuples())
        for pid, *row in query:
            found.setdefault(pid, []).append(row)
    people = [rows for rows in found.values() if scope.can_administer_person([r[-1] for r in rows])]
    if scope.is_root_admin():
        alone = Person.select(Person.username, Person.name, Person.phone).where(
            Person.id.not_in(Membership.select(Membership.person)) & Person.active).tuples()
        people += [[(*p, None, None, None, "")] for p in alone]
    roles, departments = grids.role_names(), grids.department_names()
    rows = sorted((r for rows in people for r in rows), key=lambda r: (r[0], r[6], r[3] or "", r[4] or ""))
    return _book(PEOPLE_SHEET, PEOPLE_HEADERS, [
        (user, name, phone, None, roles.get(role, role), code, departments.get(dept, dept))
        for user, name, phone, role, dept, code, _ in rows])


# -- people -----------------------------------------------------------------------------------

def _agree(username: str, rows: list[dict], key: str, label: str, fail) -> str:
    """The value rows of one person give for a column; rows that disagree with the first are errors."""
    value, first = "", 0
    for item in rows:
        if item[key] and not value:
            value, first = item[key], item["row"]
        elif item[key] and item[key] != value:
            fail(item["row"], f"账号 {username} 的{label}与第 {first} 行不一致")
    return value


def import_people(content: bytes, actor: Person, scope) -> ImportResult:
    """Create people and give them memberships from a workbook, all or nothing."""
    title, rows, errors = _read(content, PEOPLE_SHEET, PEOPLE_HEADERS, PEOPLE_REQUIRED)
    result = ImportResult(errors=errors)
    if errors:
        return result

    def fail(number, message):
        result.errors.append(RowError(title, number, message))

    role_names, dept_names = grids.role_names(), grids.department_names()
    roles, departments = _aliases(role_names), _aliases(dept_names)
    groups: dict[str, list[dict]] = {}
    for number, cells in rows:
        username, role_text, dept_text = _text(cells["用户名"]), _text(cells["角色"]), _text(cells.get("部门"))
        item = {"row": number, "name": _text(cells["姓名"]), "phone": _text(cells.get("手机号")),
                "password": _text(cells.get("初始密码")), "code": _text(cells["网格编码"]),
                "role": roles.get(_norm(role_text)), "department": departments.get(_norm(dept_text)),
                "asks": bool(role_text or _text(cells["网格编码"]))}
        if not username or len(username) > 64 or any(c.isspace() for c in username):
            fail(number, "用户名不能为空、不能含空格，且不超过 64 个字符")
        if len(item["name"]) > 64:
            fail(number, "姓名不能超过 64 个字")
        if item["phone"] and not is_cn_mobile(item["phone"]):
            fail(number, f"手机号 {item['phone']} 不正确：应为 11 位中国大陆手机号")
        if role_text and item["role"] is None:
            fail(number, f"角色“{role_text}”未配置，可填：{'、'.join(role_names.values())}")
        elif bool(role_text) != bool(item["code"]):
            fail(number, "角色和网格编码须同时填写（只建账号、不安排职务时同时留空）")
        elif item["role"] == "department_staff" and item["department"] is None:
            fail(number, f"部门“{dept_text}”未配置，可填：{'、'.join(dept_names.values())}" if dept_text
                 else f"部门人员须填写部门，可填：{'、'.join(dept_names.values())}")
        elif item["role"] != "department_staff" and dept_text:
            fail(number, "只有角色为部门人员时才填写部门，请清空部门")
        if username and not any(c.isspace() for c in username):
            groups.setdefault(username, []).append(item)
    nodes = _nodes({i["code"] for items in groups.values() for i in items if i["code"]}, *NODE_COLUMNS)
    known = {p.username: p for chunk in _chunks(groups) for p in Person.select().where(Person.username.in_(chunk))}
    held: dict[int, list] = {}
    for chunk in _chunks(p.id for p in known.values()):
        for pid, node_id, role, dept, path in Membership.select(
                Membership.person, Membership.node, Membership.role, Membership.department, GridNode.path
        ).join(GridNode).where(Membership.person.in_(chunk)).tuples():
            held.setdefault(pid, []).append(((node_id, role, dept), path))
    phones = {i["phone"] for items in groups.values() for i in items if i["phone"]}
    phone_owner = {p.phone: p.username for chunk in _chunks(phones)
                   for p in Person.select(Person.username, Person.phone).where(Person.phone.in_(chunk))}
    phone_rows: dict[str, tuple[str, int]] = {}
    plans = []
    for username, items in groups.items():
        first, person = items[0]["row"], known.get(username)
        name = _agree(username, items, "name", "姓名", fail)
        phone = _agree(username, items, "phone", "手机号", fail)
        memberships = []
        for item in items:
            node = nodes.get(item["code"])
            if not item["code"] or item["role"] is None:
                continue
            if node is None:
                fail(item["row"], f"网格编码 {item['code']} 不存在")
            elif not scope.is_admin_at(node.path):
                fail(item["row"], f"无权在网格 {item['code']} 安排职务（超出您的管理范围）")
            elif node.retired_at is not None:
                fail(item["row"], f"网格 {item['code']} 已撤销")
            elif (key := (node.id, item["role"], item["department"])) not in memberships:
                memberships.append(key)
                item["key"] = key
        password = ""
        if person is not None:
            paths = [path for _, path in held.get(person.id, [])]
            if not scope.can_administer_person(paths):
                fail(first, f"账号 {username} 有您管理范围以外的职务，请联系上级管理员" if paths
                     else f"账号 {username} 没有任何职务，只有管理整棵网格树的管理员可以修改")
            have = {key for key, _ in held.get(person.id, [])}
            memberships = [m for m in memberships if m not in have]
        else:
            password = _agree(username, items, "password", "初始密码", fail)
            if not name:
                fail(first, f"新账号 {username} 须填写姓名")
            if not password:
                fail(first, f"新账号 {username} 须填写初始密码")
            elif problem := password_problem(password, username):
                fail(next(i["row"] for i in items if i["password"]), f"初始密码不合格：{problem}")
            if not any(i["asks"] for i in items) and not scope.is_root_admin():
                fail(first, f"新账号 {username} 须填写角色和网格编码（没有职务的账号只有根网格管理员可以导入）")
        if phone:
            row = next(i["row"] for i in items if i["phone"])
            if phone_owner.get(phone, username) != username:
                fail(row, f"手机号 {phone} 已被其他账号使用")  # never name an account the admin may not see
            elif phone_rows.setdefault(phone, (username, row))[0] != username:
                fail(row, f"手机号 {phone} 与第 {phone_rows[phone][1]} 行账号 {phone_rows[phone][0]} 的重复")
        changes = person is not None and ((name and name != person.name) or (phone and phone != person.phone))
        if person is None or changes or memberships:
            plans.append({"username": username, "items": items, "person": person, "name": name,
                          "phone": phone, "password": password, "memberships": memberships})
    if result.errors:
        result.errors.sort(key=lambda e: e.row)
        return result
    hashes = {pw: hash_password(pw) for pw in {plan["password"] for plan in plans if plan["person"] is None}}
    result.created = sum(plan["person"] is None for plan in plans)
    result.updated = len(plans) - result.created
    codes = {node.id: code for code, node in nodes.items()}

    def work():
        for plan in plans:
            items, person, name, phone = plan["items"], plan["person"], plan["name"], plan["phone"]
            yield items[0]["row"]
            if person is None:
                person = create_person(plan["username"], plan["password"], name=name, phone=phone or None,
                                       password_hash=hashes[plan["password"]])
            elif (name and name != person.name) or (phone and phone != person.phone):
                update_person(person, name or person.name, phone or person.phone)
            for key in plan["memberships"]:
                yield next(i["row"] for i in items if i.get("key") == key)
                add_membership(person, codes[key[0]], key[1], key[2])
        audit(actor, "people_imported", f"{title}：{len(rows)} 行", created=result.created, updated=result.updated)

    return _apply(title, work(), result)
