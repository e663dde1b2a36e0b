"""The demo city: a five-level grid tree of 玉林市, people for every role, tokens, sample cases."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import click

from .auth import add_membership, create_token, hash_password
from .db import database
from .grids import DEFAULT_DEPARTMENTS, create_node, node_by_code, seed_configuration
from .models import ApiToken, GridNode, Person, utcnow

CITY = ("450900", "玉林市")

DISTRICTS = {
    "450902": ("玉州区", {
        "450902001": ("玉城街道", ["城站社区", "大北社区", "广场社区", "东门社区"]),
        "450902002": ("南江街道", ["江岸社区", "南江社区", "岭塘社区", "新民社区"]),
        "450902003": ("名山街道", ["名山社区", "大塘社区", "茂林社区", "文峰社区"]),
    }),
    "450903": ("福绵区", {
        "450903101": ("福绵镇", ["福西社区", "福东社区", "石坡村", "新塘村"]),
        "450903102": ("成均镇", ["成均社区", "东中村", "平山村", "大旺村"]),
        "450903103": ("樟木镇", ["樟木社区", "大垌村", "樟木村", "贵明村"]),
    }),
}

GRID_NAMES = ["第一网格", "第二网格", "第三网格", "第四网格", "第五网格"]
MICRO_PER_GRID = 3  # micro-grids (楼栋) in the first two grids of each street's first community

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏"
    "卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾"
    "侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红玲建国志强海燕春梅"
    "晓东丽娟振华文斌德明秀珍春华海涛淑珍国庆红梅"
)

# Memorable logins, one of each role along the first branch of the tree.
MEMORABLE = [
    ("admin", "市管理员", "admin", "450900", None),
    ("shi_tiaojie", "市级调解员", "mediator", "450900", None),
    ("qu_admin", "玉州区管理员", "admin", "450902", None),
    ("jd_admin", "玉城街道管理员", "admin", "450902001", None),
    ("jd_ganbu", "玉城街道干部", "street_officer", "450902001", None),
    ("jd_tiaojie", "玉城街道调解员", "mediator", "450902001", None),
    ("sq_shuji", "城站社区书记", "community_secretary", "450902001001", None),
    ("sq_tiaojie", "城站社区调解员", "mediator", "450902001001", None),
    ("wgz", "第一网格网格长", "grid_leader", "450902001001001", None),
    ("wgy", "第一网格网格员", "grid_worker", "450902001001001", None),
    ("zyz", "党员志愿者", "volunteer", "450902001001001", None),
    ("ldz", "1栋楼栋长", "building_head", "45090200100100101", None),
    ("wgy2", "福绵镇福西社区网格员", "grid_worker", "450903101001001", None),
] + [
    (f"bm_{key}", f"玉州区{name}部门人员", "department_staff", "450902", key)
    for key, name in DEFAULT_DEPARTMENTS
]


@dataclass
class DemoResult:
    """What the demo built: whether it was new, counts, and the tokens of memorable logins."""

    created: bool
    nodes: int = 0
    people: int = 0
    samples: int = 0
    adaptations: int = 0
    history: int = 0
    tokens: dict[str, str] = field(default_factory=dict)


class _Names:
    def __init__(self, seed: int = 4509):
        self.rng = random.Random(seed)
        self.phones: set[str] = set()

    def person(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.sample(GIVEN, self.rng.choice((1, 2))))

    def phone(self) -> str:
        while True:
            number = self.rng.choice(("138", "139", "150", "177", "186")) + f"{self.rng.randrange(10**8):08d}"
            if number not in self.phones:
                self.phones.add(number)
                return number


def _build_tree() -> list[GridNode]:
    city = create_node(CITY[0], CITY[1], "city", households=810000, population=2770000)
    nodes = [city]
    for d_code, (d_name, streets) in DISTRICTS.items():
        district = create_node(d_code, d_name, "district", city)
        nodes.append(district)
        for s_code, (s_name, communities) in streets.items():
            street = create_node(s_code, s_name, "street", district)
            nodes.append(street)
            for ci, c_name in enumerate(communities, start=1):
                community = create_node(f"{s_code}{ci:03d}", c_name, "community", street)
                nodes.append(community)
                for gi, g_name in enumerate(GRID_NAMES, start=1):
                    grid = create_node(f"{community.code}{gi:03d}", f"{c_name}{g_name}", "grid",
                                       community, households=380 + 17 * gi, population=1000 + 41 * gi)
                    nodes.append(grid)
                    if ci == 1 and gi <= 2:
                        for mi in range(1, MICRO_PER_GRID + 1):
                            nodes.append(create_node(f"{grid.code}{mi:02d}", f"{g_name}{mi}栋", "micro",
                                                     grid, households=60 + mi))
    return nodes


ROLES_BY_LEVEL = {
    "city": ["admin", "mediator"],
    "district": ["admin"],
    "street": ["admin", "street_officer", "mediator"],
    "community": ["community_secretary", "mediator"],
    "grid": ["grid_worker", "grid_leader", "volunteer"],
    "micro": ["building_head"],
}

LOGIN_PREFIX = {"admin": "gly", "mediator": "tjy", "street_officer": "jdgb", "community_secretary": "sj",
                "grid_worker": "wgy", "grid_leader": "wgz", "volunteer": "zyz", "building_head": "ldz",
                "department_staff": "bm"}


def _people(nodes: list[GridNode], password_hash: str) -> int:
    names = _Names()
    taken = {m[3] + m[2] + (m[4] or "") for m in MEMORABLE}
    count = 0
    for username, label, role, code, dept in MEMORABLE:
        person = Person.create(username=username, name=f"{names.person()}（{label}）", phone=names.phone(),
                               password_hash=password_hash)
        add_membership(person, code, role, dept)
        count += 1
    for node in nodes:
        roles = [(r, None) for r in ROLES_BY_LEVEL[node.level]]
        if node.level in ("city", "district"):
            roles += [("department_staff", key) for key, _ in DEFAULT_DEPARTMENTS]
        for role, dept in roles:
            if node.code + role + (dept or "") in taken:
                continue
            suffix = f"_{dept}" if dept else ""
            person = Person.create(username=f"{LOGIN_PREFIX[role]}{suffix}_{node.code}", name=names.person(),
                                   phone=names.phone(), password_hash=password_hash)
            add_membership(person, node.code, role, dept)
            count += 1
    return count


def _tokens() -> dict[str, str]:
    """Make fresh API tokens for the memorable logins, revoking the previous demo tokens."""
    people = list(Person.select().where(Person.username.in_([m[0] for m in MEMORABLE])))
    ApiToken.update(revoked_at=utcnow()).where(
        (ApiToken.name == "demo") & ApiToken.person.in_(people) & ApiToken.revoked_at.is_null()).execute()
    return {p.username: create_token(p, "demo") for p in people}


STREET = "450902001"  # 玉城街道: the demo's township with its own adaptations


def _adaptations() -> int:
    """The demo township's adaptations: a studio mediation step (黄山“作退一步想”) and a 楼栋号 field."""
    import copy

    from .definitions.overlays import publish_overlay
    from .definitions.versions import latest_flow, latest_form

    street = node_by_code(STREET)
    admin = Person.get_or_none(Person.username == "jd_admin")
    made = 0
    flow = latest_flow("mediation_321")
    if flow is not None and street is not None:
        doc = copy.deepcopy(flow.definition)
        doc["nodes"]["studio_mediation"] = {
            "type": "task", "title": "“作退一步想”工作室调解",
            "description": "社区三次初调未成的，先请街道“作退一步想”工作室调解（志愿服务队、法治明白人参与），"
                           "仍未化解再由镇（街道）深调。",
            "assignees": [{"role": "mediator", "level": "street"}], "mode": "any",
            "fallback": {"role": "street_officer", "level": "street"},
            "deadline": {"duration": "P5D", "calendar": "working"}, "on_timeout": {"action": "remind"},
            "actions": [{"key": "resolved", "title": "调解成功", "to": "follow_up", "comment": "required"},
                        {"key": "unresolved", "title": "未成功，转镇（街道）深调", "to": "street_mediation",
                         "comment": "required"}],
        }
        doc["nodes"]["community_result"]["default"] = "studio_mediation"
        publish_overlay("flow", "mediation_321", street, doc, admin)
        made += 1
    form = latest_form("incident_report")
    if form is not None and street is not None:
        doc = copy.deepcopy(form.definition)
        doc["schema"]["properties"]["building"] = {"type": "string", "title": "楼栋号", "maxLength": 50,
                                                   "description": "如 3 栋 2 单元"}
        order = doc.setdefault("ui", {}).setdefault("ui:order", list(doc["schema"]["properties"]))
        if "building" not in order:
            order.insert(order.index("location") + 1 if "location" in order else len(order), "building")
        publish_overlay("form", "incident_report", street, doc, admin)
        made += 1
    return made


def build_demo(password: str = "gridflow", history: int = 0) -> DemoResult:
    """Build the demo city once, with `history` past cases; later runs only renew the demo tokens."""
    from .demo_history import create_history
    from .demo_samples import create_samples

    with database.atomic():
        seed_configuration()
        result = DemoResult(created=node_by_code(CITY[0]) is None)
        if result.created:
            nodes = _build_tree()
            result.nodes = len(nodes)
            result.people = _people(nodes, hash_password(password))
            result.adaptations = _adaptations()
            result.samples = create_samples()
            result.history = create_history(history) if history else 0
        result.tokens = _tokens()
    return result


def print_logins(result: DemoResult, password: str) -> None:
    """Print the demo logins and tokens for the person starting the demo."""
    if result.created:
        click.echo(f"演示城市已建成：{result.nodes} 个网格节点，{result.people} 个账号，"
                   f"{result.samples} 条示例记录，玉城街道的 {result.adaptations} 项属地调整。")
        if result.history:
            click.echo(f"另有过去一年的 {result.history} 个历史案件（已按流程办理），统计页有数可看。")
    else:
        click.echo("演示城市已存在，仅更新了演示令牌。")
    click.echo(f"\n演示账号（密码均为 {password}）与 API 令牌：")
    labels = {m[0]: (m[1], m[2], m[3]) for m in MEMORABLE}
    for username, token in sorted(result.tokens.items(), key=lambda kv: list(labels).index(kv[0])):
        label, role, code = labels[username]
        click.echo(f"  {username:<22} {label:<16} {role}@{code}\n  {'':<22} 令牌 {token}")
    click.echo("\n网页登录：启动服务后在浏览器打开 /login（如 http://127.0.0.1:5000/login）。")
    click.echo("其余账号按“角色缩写_网格编码”命名，"
               "如 wgy_450902002001003（网格员）、sj_450903101002（社区书记）。")
