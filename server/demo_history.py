"""A year of past cases for the demo city, filed and handled through the real engine, so the dashboards have figures."""

from __future__ import annotations

import copy
import logging
import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from . import store
from .cases import submit
from .definitions.versions import latest_form
from .demo import GIVEN, SURNAMES
from .demo_samples import SAMPLES
from .errors import Refusal
from .models import CaseLink, FlowVersion, GridNode, Membership, Person, Submission, Task, TaskAssignee, utcnow

log = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("6f1c7d9e-3a41-4c8e-9d55-4509a0000001")
ZONE = ZoneInfo("Asia/Shanghai")

# Shares of each form among the past cases (door-knocking is the everyday work; see the seeds).
FORMS = {"door_knock_visit": 0.40, "incident_report": 0.33, "dispute_mediation": 0.15, "resource_request": 0.12}

INCIDENTS = [
    ("environment_sanitation", "小区垃圾桶满溢未及时清运，周边有异味"),
    ("environment_sanitation", "背街小巷有人乱倒建筑垃圾，影响通行"),
    ("municipal_facility", "路灯连续多晚不亮，居民夜间出行不便"),
    ("municipal_facility", "人行道地砖松动塌陷，老人容易绊倒"),
    ("fire_safety", "楼道内有人给电动车飞线充电，存在火灾隐患"),
    ("fire_safety", "商铺门前堆放纸箱杂物，堵塞消防通道"),
    ("security_hazard", "出租屋人员流动频繁，疑似有不明人员聚集"),
    ("property_management", "电梯故障多日未修，高层老人上下楼困难"),
    ("illegal_construction", "顶楼住户私自加建彩钢棚"),
    ("food_drug_safety", "流动摊贩无证售卖熟食，卫生状况差"),
    ("work_safety", "临街广告牌松动，大风天气有坠落危险"),
    ("livelihood_service", "独居老人家中水管爆裂，需要帮助维修"),
]
DISPUTES = [
    ("neighbourhood", "楼上住户装修噪音扰民，双方多次争吵"),
    ("neighbourhood", "相邻两户因排水沟堵塞互相指责，矛盾升级"),
    ("marriage_family", "赡养老人费用分担问题，兄弟姐妹之间发生争执"),
    ("property_management", "业主对物业费上调不满，拒交物业费"),
    ("land_forest", "两户村民因宅基地边界划分发生争议"),
    ("labour", "装修工人讨要拖欠工资，与包工头发生争执"),
    ("damage_compensation", "电动车与行人碰擦，双方就赔偿金额未能谈拢"),
    ("contract_debt", "邻里之间借款到期未还，双方关系紧张"),
]
TEXTS = {
    "handling_result": ["已联系相关单位到场处置，问题已解决，群众认可", "已现场督促整改完毕，拍照留存",
                        "已协调物业和施工方当天处理完毕", "已上门核实并完成处置，将持续跟踪"],
    "whistle_requirements": ["请相关部门三个工作日内到场联合处置", "请按职责分工各自落实并反馈结果"],
    "feedback": ["处理及时，感谢网格员", "问题解决了，希望以后多来看看", "办理有点慢，但结果满意"],
    "process_notes": ["分别听取双方意见后面对面协商", "在“作退一步想”工作室组织双方调解"],
    "agreement": ["双方自愿达成调解协议，约定按期履行", "双方各退一步，当场达成一致并签字"],
    "fail_reason": ["双方分歧较大，未能达成一致", "一方拒绝到场，调解未果"],
    "referral_notes": ["已告知当事人诉讼途径并提供法律援助联系方式"],
    "followup_notes": ["协议已按约定履行，双方关系缓和"],
    "review_opinion": ["经党群议事会讨论，情况属实，同意上报"],
    "coordination_opinion": ["同意，请相关部门按需下放"],
    "delivery_notes": ["已按申请内容下放到社区，社区已签收", "已安排人员到社区开展服务"],
    "evaluation_notes": ["资源到位及时，居民满意"],
}
# Opinions for actions that require one.
COMMENTS = {
    "": ["情况已核实，按流程办理"],
    "to_community": ["涉及多个小区，网格力量不足，请社区协调"],
    "to_street": ["需要多个部门联合处置，请街道吹哨"],
    "back_to_grid": ["属网格职责范围，请网格员就地处置"],
    "back_to_community": ["社区可以协调解决，请社区先行处置"],
    "reject": ["经核实不属于网格事项，已告知群众反映渠道", "重复上报，已并入原案件办理"],
    "redo": ["现场复核问题仍然存在，请重新处置"],
    "return": ["请补充党群议事会记录和预算明细"],
    "not_responsible": ["不属于本部门职责，建议由属地协调"],
    "cannot_provide": ["库存不足，请资源直管办公室另行调配"],
    "terminate": ["当事人已起诉，终止调解"],
}
# How often each action is chosen at each step of the shipped flows; other steps take their first action.
CHOICES = {
    "triage": {"handle_in_grid": 0.55, "to_community": 0.25, "to_street": 0.12, "reject": 0.08},
    "grid_handling": {"done": 0.86, "to_community": 0.14},
    "community_handling": {"done": 0.8, "to_street": 0.15, "back_to_grid": 0.05},
    "street_whistle": {"whistle": 0.6, "done": 0.35, "back_to_community": 0.05},
    "dept_handling": {"done": 0.92, "not_responsible": 0.08},
    "close_confirm": {"confirm": 0.92, "redo": 0.08},
    "unsatisfied_review": {"reopen": 0.4, "close": 0.6},
    "community_mediation": {"record": 0.95, "terminate": 0.05},
    "street_mediation": {"record": 0.95, "terminate": 0.05},
    "community_review": {"approve": 0.82, "return": 0.1, "reject": 0.08},
    "supplement": {"resubmit": 0.85, "withdraw": 0.15},
    "street_approval": {"approve": 0.86, "return": 0.05, "reject": 0.09},
    "delivery": {"delivered": 0.94, "cannot_provide": 0.06},
}
# Option shares for fields of step forms; other options are chosen evenly.
SHARES = {
    "satisfaction": {"satisfied": 0.8, "basically_satisfied": 0.13, "unsatisfied": 0.07},
    "mediation_result": {"success": 0.72, "fail": 0.28},
    "performance": {"fulfilled": 0.86, "in_progress": 0.1, "not_fulfilled": 0.04},
}
LATE_SHARE = 0.03  # steps done after their deadline (2 in 5 of the last six weeks' steps: a backlog)
BACKLOG = timedelta(days=45)
STEPS_PER_CASE = 40  # a guard against a flow that never ends


class _History:
    """The random choices and the clock of one history run."""

    def __init__(self, seed: int, end: datetime):
        self.rng = random.Random(seed)
        self.end = end
        self.zone = store.zone()

    def pick(self, shares: dict):
        return self.rng.choices(list(shares), weights=list(shares.values()))[0]

    def name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.sample(GIVEN, self.rng.choice((1, 2))))

    def local(self, moment: datetime) -> datetime:
        return moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZONE)

    # -- the cases ------------------------------------------------------------------------------

    def moment(self, days: int) -> datetime:
        """A working-hours moment in the last `days` days (naive UTC)."""
        day = self.local(self.end).date() - timedelta(days=self.rng.randrange(1, days))
        local = datetime(day.year, day.month, day.day, self.rng.randrange(8, 18), self.rng.randrange(60),
                         tzinfo=ZONE)
        return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    def data(self, form: str, at: datetime) -> dict:
        """Data for a past case of a shipped form: a sample of the form, varied."""
        samples = [d for f, _a, _c, d in SAMPLES if f == form]
        local = self.local(at)
        if form == "door_knock_visit":
            data = copy.deepcopy(samples[1] if self.rng.random() < 0.15 else self.rng.choice(samples[::2]))
            data["visited_at"] = local.isoformat(timespec="minutes")
            data["head_name"] = self.name()
            if data.get("members"):
                data["members"][0]["name"] = data["head_name"]
        elif form == "incident_report":
            data = copy.deepcopy(self.rng.choice(samples))
            data["category"], data["description"] = self.rng.choice(INCIDENTS)
            data["urgency"] = self.pick({"normal": 0.78, "urgent": 0.18, "critical": 0.04})
            data["occurred_at"] = (local - timedelta(minutes=self.rng.randrange(20, 300))).isoformat(
                timespec="minutes")
            if data.get("reporter_name"):
                data["reporter_name"] = self.name()
        elif form == "dispute_mediation":
            data = copy.deepcopy(samples[0])
            data["dispute_type"], data["description"] = self.rng.choice(DISPUTES)
            data["occurred_on"] = (local - timedelta(days=self.rng.randrange(1, 20))).date().isoformat()
            data["risk_level"] = self.pick({"low": 0.6, "medium": 0.32, "high": 0.08})
            for party in data["parties"]:
                party["name"] = self.name()
        else:
            data = copy.deepcopy(self.rng.choice(samples))
            data["beneficiary_count"] = self.rng.randrange(20, 1500)
            if data.get("amount"):
                data["amount"] = float(self.rng.randrange(20, 900) * 100)
            if data.get("expected_date"):
                data["expected_date"] = (local + timedelta(days=self.rng.randrange(30, 90))).date().isoformat()
        return data

    # -- the steps ------------------------------------------------------------------------------

    def step_data(self, schema: dict, case: Submission, at: datetime) -> dict:
        """Fill an action's step form the way a worker would: every field (hidden ones are dropped)."""
        out = {}
        for key, field in (schema.get("properties") or {}).items():
            options = [o["const"] for o in field.get("oneOf", []) if "const" in o] or field.get("enum") or []
            items = field.get("items") or {}
            item_options = [o["const"] for o in items.get("oneOf", []) if "const" in o] or items.get("enum") or []
            if key in SHARES:
                out[key] = self.pick(SHARES[key])
            elif options:
                out[key] = self.rng.choice(options)
            elif field.get("type") == "array" and item_options:
                out[key] = self.rng.sample(item_options, self.rng.choice((1, 1, 2)))
            elif field.get("type") == "array":
                continue  # photos: none in the demo's history
            elif field.get("format") == "date":
                out[key] = self.local(at).date().isoformat()
            elif field.get("type") in ("number", "integer"):
                out[key] = (case.data or {}).get("amount") or 0
            elif field.get("type") == "boolean":
                out[key] = self.rng.random() < 0.92
            elif key == "mediator_name":
                out[key] = self.name()
            elif field.get("type") == "string":
                out[key] = self.rng.choice(TEXTS.get(key, ["已按要求办理完毕"]))
        return out

    def delay(self, task: Task, clock: datetime) -> timedelta:
        """How long a step waits before somebody acts on it: mostly within its deadline."""
        span = (task.due_at - clock) if task.due_at and task.due_at > clock else timedelta(days=2)
        late = LATE_SHARE if clock < self.end - BACKLOG else 0.4
        share = self.rng.uniform(1.05, 3) if self.rng.random() < late else self.rng.uniform(0.03, 0.7)
        return max(span * share, timedelta(minutes=10))

    def play(self, case: Submission, clock: datetime) -> None:
        """Handle a case step by step from `clock` until it ends or its next step lies in the future."""
        case = Submission.get_by_id(case.id)
        flow = FlowVersion.get_by_id(case.flow_version_id).definition if case.flow_version_id else None
        for child in CaseLink.select().where(CaseLink.source == case.id):  # e.g. a visit's incident
            self.play(Submission.get_by_id(child.target_id), clock)
        for _ in range(STEPS_PER_CASE):
            case = Submission.get_by_id(case.id)
            if flow is None or case.status in ("closed", "withdrawn"):
                return
            task = (Task.select().where((Task.submission == case.id) & (Task.state == "open"))
                    .order_by(Task.opened_at, Task.id).first())
            if task is None:
                return
            clock = max(clock, task.opened_at) + self.delay(task, max(clock, task.opened_at))
            if clock >= self.end:
                return  # still waiting today
            sweep(self.zone, clock)
            case, task = Submission.get_by_id(case.id), Task.get_by_id(task.id)
            holder = (TaskAssignee.select().where((TaskAssignee.task == task.id) & TaskAssignee.active)
                      .order_by(TaskAssignee.id).first())
            if task.state != "open" or holder is None:
                continue
            node = flow["nodes"].get(task.node) or {}
            actions = {a["key"]: a for a in node.get("actions", [])}
            if not actions:
                return
            shares = {k: v for k, v in CHOICES.get(task.node, {}).items() if k in actions}
            key = self.pick(shares) if shares else next(iter(actions))
            action = actions[key]
            form = (action.get("form") or {}).get("schema") or {}
            comment = self.rng.choice(COMMENTS.get(key, COMMENTS[""])) if action.get("comment") == "required" else None
            try:
                store.act(Person.get_by_id(holder.person_id), case, key, self.zone, task=task,
                          data=self.step_data(form, case, clock), comment=comment, now=clock)
            except Refusal as exc:  # a township's own step the history does not know how to fill
                log.warning("demo history: %s on case %s refused: %s", key, case.id, exc.message)
                return


def sweep(zone: str, now: datetime) -> None:
    """Mark what fell due by `now`, as the timer would have."""
    while store.sweep(zone, now) == 500:
        pass


def _author(form: str, grid: GridNode) -> tuple[Person, GridNode] | None:
    """Who files a case of a form in a grid: its grid worker; the community secretary asks for resources."""
    node, role = (grid.parent, "community_secretary") if form == "resource_request" else (grid, "grid_worker")
    member = (Membership.select().where((Membership.node == node.id) & (Membership.role == role))
              .order_by(Membership.id).first())
    return (Person.get_by_id(member.person_id), node) if member else None


def create_history(cases: int, days: int = 365, seed: int = 4509, end: datetime | None = None) -> int:
    """File `cases` past cases over the last `days` days and handle each through its flow; return how many."""
    history = _History(seed, end or utcnow())
    grids = list(GridNode.select().where(GridNode.level == "grid").order_by(GridNode.code))
    if not grids:
        return 0
    plan = sorted((history.moment(days), history.pick(FORMS), history.rng.choice(grids)) for _ in range(cases))
    filed = 0
    for i, (at, form, grid) in enumerate(plan):
        version = latest_form(form)
        who = _author(form, grid)
        if version is None or who is None:
            continue
        person, node = who
        sid = str(uuid.uuid5(NAMESPACE, f"{i}"))
        try:
            case, created = submit(person, version, node, history.data(form, at), sid, now=at)
        except Refusal as exc:
            log.warning("demo history: %s case refused: %s %s", form, exc.message,
                        [e.as_dict() for e in exc.errors])
            continue
        filed += created
        if created:
            history.play(case, at)
    sweep(history.zone, history.end)
    return filed
