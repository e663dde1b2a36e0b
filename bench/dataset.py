"""Generate a realistic city for scale benchmarks: grid tree, people, a million cases with tasks and events."""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import multiprocessing
import os
import random
import sys
import time
import traceback
import uuid
from bisect import bisect
from datetime import date, datetime, timedelta
from itertools import accumulate
from json import encoder as json_encoder
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import peewee  # noqa: E402

from server.demo import GIVEN, SURNAMES  # noqa: E402
from server.engine.core import pointer_get, pointer_set, predicate  # noqa: E402
from server.formats import id_card_check_char  # noqa: E402
from server.grids import DEFAULT_DEPARTMENTS, DEFAULT_LEVELS, DEFAULT_ROLES  # noqa: E402
from server.workdays import is_workday, parse_duration  # noqa: E402

PASSWORD = "gridflow-bench"
LOCAL = timedelta(hours=8)  # Asia/Shanghai: no daylight saving since 1991
SHARES = {"door_knock_visit": 0.55, "incident_report": 0.28, "dispute_mediation": 0.09, "resource_request": 0.08}
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
DEPARTMENTS = [key for key, _ in DEFAULT_DEPARTMENTS]
DEPARTMENT_NAMES = dict(DEFAULT_DEPARTMENTS)
LEVEL_NAMES = {key: name for key, name, _ in DEFAULT_LEVELS}
ROLE_NAMES = {key: name for key, name, *_ in DEFAULT_ROLES}
LEVEL_ORDER = [key for key, _, _ in DEFAULT_LEVELS]
NULL = "\\N"

log = logging.getLogger("dataset")

# -- names and words ---------------------------------------------------------------------------------

CITY_NAME = "桂南市"
CITY_CENTRE = (22.63, 110.15)
DISTRICT_NAMES = ["城东区", "城西区", "江南区", "江北区", "新城区", "高新区", "临江区", "青山区", "白沙区", "龙湖区"]
STREET_WORDS = ("东门 西关 南湖 北山 新华 人民 解放 建设 和平 文昌 长安 金城 朝阳 振兴 "
                "友谊 光明 胜利 幸福 中山 滨江 明月 清水 石桥 桃源 荷花 凤凰 龙泉 松林 "
                "华侨 红星 新村 沙田 白云 玉泉 丰收 团结 民主 育才 鹿鸣 锦绣").split()
COMMUNITY_WORDS = ("东风 南苑 西苑 北苑 花园 翠竹 梧桐 银杏 桂花 紫荆 星光 阳光 春晖 秋实 "
                   "金桥 银河 碧水 青松 馨苑 雅居 城站 大北 广场 江岸 岭塘 新民 名山 大塘 "
                   "茂林 文峰 福西 福东 石坡 新塘 东中 平山 大旺 樟木 贵明 双拥 向阳 红旗 "
                   "前进 永安 太平 仁里 德胜 宝山 金花 水口").split()
ROADS = ("人民路 解放路 中山路 建设路 文化路 新民路 江滨路 工业路 教育路 园林路 一环路 二环路 民主路 城站路 大北路 "
         "东明路 西江路 南环路 北流路 金港路 荔枝路 桂花巷 育才巷 清风街 健康路").split()
PLACES = ["小区东门", "农贸市场门口", "学校路口", "公园入口", "公交站台", "地下车库", "沿街商铺", "村道旁", "社区广场",
          "菜市场", "老旧小区", "工地附近", "河堤步道", "停车场", "十字路口"]
CAUSES = ["楼上漏水", "噪音扰民", "占用公共通道", "宠物扰民", "争抢停车位", "装修施工", "排水管堵塞", "晾晒衣物滴水",
          "空调外机噪音", "种菜占用绿地"]
CN_DIGITS = "零一二三四五六七八九"

INCIDENT_TEXTS = {
    "dispute": ["{addr}两户居民因{cause}发生争执，双方情绪激动", "{addr}租户与房东因押金退还问题发生纠纷"],
    "security_hazard": ["{place}夜间路灯损坏，存在治安隐患", "{place}有可疑人员多次出没，群众反映不安全",
                        "{place}监控探头损坏，需尽快修复"],
    "work_safety": ["{place}施工现场未设置安全围挡，存在坠物风险", "{place}小作坊违规使用液化气瓶",
                    "{place}脚手架搭设不规范，工人未系安全带"],
    "fire_safety": ["{addr}楼道堆放杂物，堵塞消防通道", "{addr}楼道内有电动车违规充电",
                    "{place}消防栓被遮挡，灭火器过期"],
    "environment_sanitation": ["{place}垃圾清运不及时，群众反映有异味", "{place}污水外溢，影响居民出行",
                               "{place}有人乱倒建筑垃圾"],
    "municipal_facility": ["{place}井盖破损，夜间存在行人跌落隐患", "{place}路面塌陷，车辆通行困难",
                           "{place}路灯不亮已有一周"],
    "food_drug_safety": ["{place}流动摊贩售卖无证食品", "{place}小餐馆后厨卫生条件差，群众举报"],
    "property_management": ["{addr}电梯频繁故障，物业维修不及时", "{addr}小区门禁损坏，外来车辆随意进出",
                            "{addr}二次供水水质浑浊"],
    "illegal_construction": ["{addr}住户在楼顶违规搭建彩钢棚", "{place}有人占用绿地私搭乱建"],
    "livelihood_service": ["{addr}独居老人行动不便，需要上门帮扶", "{addr}居民反映医保缴费遇到困难",
                           "{place}公交站台遮雨棚损坏"],
    "other": ["{place}有流浪犬伤人隐患", "{place}广告牌松动，大风天气存在坠落风险"],
}
HANDLING = ["已现场处置，问题已解决", "已联系物业整改，现已恢复正常", "已督促责任人清理完毕，通道畅通",
            "已协调{dept}现场处置完毕", "已安排维修人员修复，恢复正常使用", "已约谈当事双方，达成谅解",
            "已设置警示标志并完成修复", "已联合执法，责令限期整改到位"]
REJECT_REASONS = ["重复上报，已合并到同一事件办理", "不属于本网格职责范围，已告知反映人通过12345热线反映",
                  "经现场核实，情况不属实"]
ROUTE_NOTES = ["情况复杂，网格内无法处置", "涉及多个部门职责，需街道协调", "请社区协调物业处理", "请尽快处置"]
WITHDRAW_NOTES = ["问题已自行解决", "重复提交", "填报有误，重新上报", None]
DISPUTE_TEXTS = {
    "neighbourhood": ["{a}与{b}因{cause}多次发生口角，矛盾有激化苗头", "两户邻居因{cause}产生矛盾，多次协商未果"],
    "marriage_family": ["{a}与配偶因家庭琐事长期不和，对子女抚养存在分歧", "{a}兄妹因老人赡养问题产生矛盾"],
    "property_management": ["业主与物业公司就物业费上调发生争议", "部分业主因公共收益分配不透明与物业产生纠纷"],
    "land_forest": ["{a}与{b}两户因宅基地边界不清发生争执", "两个村民小组因山林权属问题产生纠纷"],
    "labour": ["{n}名务工人员反映施工单位拖欠工资", "{a}在工作中受伤，与用工单位就赔偿问题协商未果"],
    "damage_compensation": ["{a}家中被楼上漏水浸泡，双方就赔偿金额未能达成一致",
                            "交通事故造成{a}受伤，双方对赔偿金额有争议"],
    "contract_debt": ["{a}向{b}借款到期未还，双方发生争执", "{a}与装修公司因工程质量和尾款支付产生纠纷"],
    "other": ["{a}与{b}因琐事发生纠纷，需要调解"],
}
CLAIMS = ["要求对方赔偿损失", "要求停止侵害、恢复原状", "要求支付拖欠工资", "要求对方赔礼道歉", "要求物业公开收支明细",
          "要求按约定归还借款", "要求明确边界并签订协议"]
ORGANISATIONS = ["某物业服务有限公司", "某建筑劳务有限公司", "某装饰工程有限公司", "某商贸有限公司", "小区业主委员会"]
AGREEMENTS = ["双方自愿达成协议，由{b}一次性赔偿{a}损失{x}元", "双方互谅互让，约定今后互不干扰，已当场握手言和",
              "{b}承诺于本月底前付清全部款项", "双方同意重新划定边界，并签字确认"]
FAIL_REASONS = ["双方分歧较大，未能达成一致", "一方拒不到场调解", "双方对赔偿金额差距较大",
                "当事人情绪激动，需要再次调解"]
MEASURES = ["网格员已上门安抚双方情绪，约定到调解室面谈", "已请双方亲属协助做思想工作", "已通报派出所，加强巡逻"]
RESOURCE_ITEMS = {
    "funds": [("老旧小区微改造资金", (20000, 200000)), ("长者饭堂运营补贴", (5000, 60000)),
              ("社区文化活动经费", (2000, 20000))],
    "materials": [("小区健身器材", (8000, 60000)), ("防汛应急物资", (2000, 30000)), ("电动车集中充电桩", (5000, 50000)),
                  ("便民服务箱", (500, 5000))],
    "venue": [("党群服务中心活动室使用", (0, 5000)), ("四点半课堂场地", (0, 20000))],
    "personnel_service": [("四点半课堂志愿辅导", (0, 8000)), ("心理咨询服务", (2000, 30000)),
                          ("法律顾问驻点", (0, 12000))],
    "policy": [("老旧小区加装电梯政策指导", (0, 0)), ("就业创业扶持政策宣讲", (0, 0))],
    "project": [("背街小巷改造项目", (80000, 800000)), ("雨污分流改造项目", (100000, 900000)),
                ("智慧安防小区建设", (50000, 400000))],
}
UNITS = {"materials": ["套", "批", "台"], "venue": ["间", "平方米"], "personnel_service": ["人", "人次"],
         "project": ["项"]}
PROVIDERS = {"funds": ["civil_affairs"], "materials": ["urban_management", "civil_affairs"],
             "venue": ["education", "civil_affairs"], "personnel_service": ["justice", "health", "education"],
             "policy": ["civil_affairs"], "project": ["urban_management"]}
JUSTIFICATIONS = ["经党群议事会协商，居民普遍反映有此需求", "辖区内群众需求迫切，社区自身无力解决"]
VISIT_SUMMARIES = ["住户情况稳定，无特殊诉求", "已宣传防范电信诈骗知识", "老人身体尚可，已登记送餐需求",
                   "户主外出务工，已留联系卡，下周再访", "已登记新增人口信息", "住户反映的问题已当场解答"]
COMPANIONS = ["楼栋长", "党员志愿者", "社区民警", "网格长"]
NEEDS = ["希望社区长者饭堂能送餐上门", "咨询孩子入学政策", "希望帮忙办理居住证", "想了解灵活就业社保缴费",
         "申请临时救助", "希望小区增设休闲座椅"]
RISK_NOTES = ["家中主要劳动力患病，收入骤减", "子女上学支出较大", "务工收入不稳定"]
SPECIAL_NOTES = ["独居老人行动不便，需每周探访", "子女在外务工，每月回来一次", "残疾人，需关注康复服务"]

# -- weights of the option codes people choose (checked against the loaded forms) ---------------------

WEIGHTS = {
    "door_knock_visit": {
        "topics": {"info_collection": 5, "policy_publicity": 5, "dispute_screening": 3, "hazard_report": 2,
                   "poverty_monitoring": 2, "livelihood_service": 3},
        "residence_type": {"registered": 7, "separated": 2, "floating": 2},
        "members.relation": {"head": 6, "spouse": 5, "child": 6, "parent": 2, "grandchild": 2, "grandparent": 1,
                             "sibling": 1, "child_in_law": 1, "other": 0.5},
        "members.gender": {"male": 1, "female": 1},
        "members.whereabouts": {"at_home": 7, "migrant_work": 2, "studying_away": 1, "other": 0.3},
        "members.occupation": {"employed": 5, "farming": 2, "student": 2, "preschool": 1, "retired": 2,
                               "unemployed": 0.5, "unable_to_work": 0.3},
        "members.health": {"healthy": 8, "chronic": 2, "serious_illness": 0.3, "disabled": 0.3},
        "special_groups": {"elderly_alone": 3, "empty_nest": 3, "left_behind_elderly": 1, "disabled": 1,
                           "left_behind_child": 1, "low_income": 1, "extreme_poverty": 0.2, "poverty_monitoring": 0.5,
                           "serious_illness": 0.5, "entitled_group": 0.5},
        "policy_items": {"education": 1, "pension": 2, "medical_insurance": 2, "work_safety": 1, "anti_fraud": 4,
                         "laws": 1, "other": 0.3},
        "poverty_risk_types": {"illness": 3, "disability": 1, "schooling": 1, "disaster": 0.3, "accident": 0.5,
                               "unstable_employment": 2, "lack_of_labour": 1, "industry_failure": 0.3,
                               "income_drop": 1, "other": 0.3},
        "need_categories": {"employment": 2, "medical": 2, "elderly_care": 3, "education": 1, "housing": 1,
                            "social_assistance": 1, "legal": 1, "documents": 1, "environment": 2, "other": 0.5},
        "issue_type": {"dispute": 2, "security_hazard": 1, "work_safety": 0.5, "fire_safety": 2,
                       "environment_sanitation": 3, "municipal_facility": 2, "food_drug_safety": 0.3,
                       "property_management": 2, "illegal_construction": 0.5, "livelihood_service": 1, "other": 0.5},
        "issue_urgency": {"normal": 8, "urgent": 2, "critical": 0.3},
    },
    "incident_report": {
        "category": {"dispute": 1.5, "security_hazard": 1, "work_safety": 0.7, "fire_safety": 1.5,
                     "environment_sanitation": 3, "municipal_facility": 2.5, "food_drug_safety": 0.4,
                     "property_management": 2, "illegal_construction": 0.8, "livelihood_service": 1.5, "other": 0.6},
        "urgency": {"normal": 75, "urgent": 20, "critical": 5},
        "source": {"grid_patrol": 45, "resident_report": 25, "door_knock": 4, "hotline": 12, "video_monitoring": 5,
                   "department_transfer": 5, "other": 3},
    },
    "dispute_mediation": {
        "dispute_type": {"neighbourhood": 35, "marriage_family": 15, "property_management": 12, "land_forest": 8,
                         "labour": 8, "damage_compensation": 10, "contract_debt": 8, "other": 4},
        "source": {"screening": 35, "party_application": 30, "resident_report": 15, "department_transfer": 15,
                   "other": 5},
        "transfer_from": {"public_security": 4, "justice": 2, "civil_affairs": 1, "market_regulation": 1,
                          "urban_management": 1, "court": 2, "petition": 2, "other": 0.5},
        "risk_level": {"low": 60, "medium": 30, "high": 10},
        "risk_factors": {"physical_conflict": 2, "threat": 1, "group": 1, "vulnerable": 1, "long_standing": 3,
                         "petition": 1, "other": 0.5},
    },
    "resource_request": {
        "category": {"funds": 3, "materials": 3, "venue": 1, "personnel_service": 2, "policy": 0.5, "project": 1},
        "beneficiaries": {"all_residents": 4, "elderly": 3, "children": 2, "disabled": 1, "needy": 1,
                          "new_employment": 0.5, "other": 0.3},
        "urgency": {"normal": 85, "urgent": 15},
    },
}

# How long each step takes: median hours, spread (lognormal sigma), the share that drags on and for how
# many days. Deadlines (from the flows) decide which of these become late.
DURATIONS = {
    "triage": (3, 1.0, 0.035, (2, 6)),
    "grid_handling": (20, 1.1, 0.04, (12, 25)),
    "community_handling": (60, 0.9, 0.05, (14, 30)),
    "street_whistle": (20, 0.8, 0.06, (3, 8)),
    "dept_handling": (70, 0.8, 0.06, (14, 28)),
    "close_confirm": (5, 1.0, 0.03, (3, 6)),
    "return_visit": (24, 0.7, 0.03, (4, 9)),
    "unsatisfied_review": (40, 0.6, 0.08, (4, 10)),
    "community_mediation": (110, 0.55, 0.07, (15, 30)),
    "street_mediation": (130, 0.55, 0.07, (15, 30)),
    "city_mediation": (150, 0.55, 0.07, (15, 35)),
    "follow_up": (150, 0.5, 0.05, (16, 40)),
    "community_review": (24, 0.7, 0.04, (4, 9)),
    "supplement": (48, 0.7, 0.06, (7, 14)),
    "street_approval": (48, 0.6, 0.05, (7, 14)),
    "delivery": (120, 0.55, 0.05, (15, 30)),
    "evaluation": (40, 0.6, 0.04, (7, 12)),
}
DEFAULT_DURATION = (24, 0.8, 0.05, (5, 10))
BENCH_DENSITY = 1.8  # households per grid in the bench community, against an ordinary one
STUCK_SHARE = 0.036  # cases left lying at some step long past its deadline (older ones less often)
WITHDRAW_SHARE = {"incident_report": 0.02, "dispute_mediation": 0.012, "resource_request": 0.012}
WHISTLE = {"urban_management": 3, "market_regulation": 1.5, "public_security": 1.5, "civil_affairs": 1, "health": 1,
           "justice": 1, "education": 1}
UNSATISFIED_REASONS = {"not_solved": 4, "too_slow": 2, "attitude": 1, "other": 1}
TERMINATE_REASONS = {"withdrawn": 2, "refused": 3, "litigation_started": 2, "other": 0.5}
REFERRALS = {"litigation": 4, "arbitration": 2, "administrative": 1, "petition": 0.5, "other": 0.5}
METHODS = {"on_site": 4, "studio": 3, "joint": 1, "remote": 1}
HOUR_WEIGHTS = [1, 0.5, 0.3, 0.3, 0.3, 0.5, 1.5, 4, 8, 10, 10, 9, 6, 5, 7, 9, 9, 8, 6, 4, 3, 2.5, 2, 1.5]
MONTH_WEIGHTS = [0.9, 0.7, 1.0, 1.0, 1.0, 1.05, 1.1, 1.1, 1.0, 0.9, 1.0, 0.95]


# -- small helpers ---------------------------------------------------------------------------------------

def _unencodable(value):
    """Refuse what JSON cannot hold (the data we make never has it)."""
    raise TypeError(f"not JSON: {value!r}")


# The C encoder made once (json.dumps makes one per call): compact, Chinese kept, as server.models.dumps.
_encode = json_encoder.c_make_encoder(None, _unencodable, json_encoder.encode_basestring, None, ":", ",", False,
                                      False, True)


def to_json(value) -> str:
    """Serialise to JSON exactly as server.models.dumps does (compact, ensure_ascii=False)."""
    return "".join(_encode(value, 0))


def stamp(moment: datetime) -> str:
    """Format a naive UTC time as peewee stores it on SQLite (and PostgreSQL reads it)."""
    return moment.isoformat(" ")


def iso(moment: datetime) -> str:
    """Format a naive UTC time as the engine writes times into the flow state (aware UTC)."""
    return moment.isoformat() + "+00:00"


def local_iso(moment: datetime) -> str:
    """Format a naive UTC time as local time with its offset, as a form's date-time field holds it."""
    return (moment + LOCAL).isoformat(timespec="seconds") + "+08:00"


def local_day(moment: datetime) -> str:
    """Return the local calendar date of a naive UTC time, ISO formatted."""
    return (moment + LOCAL).date().isoformat()


def cn_number(n: int) -> str:
    """Write 1–99 in Chinese numerals: 3 → 三, 12 → 十二, 40 → 四十."""
    if n < 10:
        return CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else CN_DIGITS[tens]) + "十" + (CN_DIGITS[ones] if ones else "")


def escape(text: str) -> str:
    """Escape a value for PostgreSQL's COPY text format."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


class Weighted:
    """Option codes with weights, drawn quickly (cumulative weights, bisect)."""

    def __init__(self, weights: dict):
        self.codes = list(weights)
        self.cum = list(accumulate(weights.values()))
        self.total = self.cum[-1]

    def one(self, rng: random.Random):
        """Draw one code."""
        return self.codes[bisect(self.cum, rng.random() * self.total)]

    def some(self, rng: random.Random, k: int) -> list:
        """Draw up to k distinct codes, kept in the form's order."""
        k = min(k, len(self.codes))
        chosen: set = set()
        for _ in range(k * 4):
            chosen.add(self.one(rng))
            if len(chosen) >= k:
                break
        return [c for c in self.codes if c in chosen]


def lognormal_hours(rng: random.Random, spec: tuple) -> float:
    """Draw how many hours a step takes from its (median, spread, long share, long days) spec."""
    median, sigma, long_share, (low, high) = spec
    if rng.random() < long_share:
        return rng.uniform(low, high) * 24
    return min(rng.lognormvariate(math.log(median), sigma), 20 * 24)


# -- the calendar ----------------------------------------------------------------------------------------

class Calendar:
    """The period's days with how many cases each gets, and deadlines counted in working days."""

    def __init__(self, end: date, years: int, now: datetime):
        self.now = now
        self.first = end - timedelta(days=round(365.25 * years) - 1)
        self.days = [self.first + timedelta(days=i) for i in range((end - self.first).days + 1)]
        span_start = self.first - timedelta(days=10)
        span = [span_start + timedelta(days=i) for i in range((end - span_start).days + 500)]
        flags = [is_workday(d) for d in span]
        self.workdays = [d for d, ok in zip(span, flags, strict=True) if ok]
        self.base = span_start.toordinal()
        self.counted = list(accumulate(int(ok) for ok in flags))  # working days up to and including a day
        self.workday_flags = dict(zip(span, flags, strict=True))
        self.dues: dict[tuple[int, int], datetime] = {}

    def weight(self, day: date, index: int) -> float:
        """How busy a day is: growth over the period, the month, and working day or not."""
        growth = 0.7 + 0.6 * index / max(1, len(self.days) - 1)
        weekday = 1.0 if self.workday_flags[day] else 0.45
        return growth * MONTH_WEIGHTS[day.month - 1] * weekday

    def counts(self, total: int) -> list[int]:
        """Share the cases out over the days (the last day only up to now), exactly `total` in all."""
        weights = [self.weight(d, i) for i, d in enumerate(self.days)]
        now_hour = (self.now + LOCAL).hour
        weights[-1] *= sum(HOUR_WEIGHTS[:now_hour]) / sum(HOUR_WEIGHTS)
        cum = list(accumulate(weights))
        out, given = [], 0
        for c in cum:
            upto = round(total * c / cum[-1])
            out.append(upto - given)
            given = upto
        return out

    def due(self, start: datetime, days: int) -> datetime:
        """The end (23:59:59 local) of the Nth working day after the start's local day, as naive UTC."""
        if days <= 0:
            return start
        key = ((start + LOCAL).toordinal(), days)
        found = self.dues.get(key)
        if found is None:
            day = self.workdays[self.counted[key[0] - self.base] + days - 1]
            found = self.dues[key] = datetime(day.year, day.month, day.day, 15, 59, 59)
        return found


# -- the grid tree ---------------------------------------------------------------------------------------

class Tree:
    """The grid tree as lists indexed by node id (ids from 1), and where each grid lies."""

    def __init__(self):
        self.code, self.name, self.level, self.parent = [None], [None], [None], [None]
        self.path, self.depth, self.households, self.population = [None], [None], [None], [None]
        self.centre = [None]
        self.kids: dict[int, list[int]] = {}
        self.by_level: dict[str, list[int]] = {key: [] for key in LEVEL_ORDER}
        self.chain: dict[int, list[tuple[str, int]]] = {}  # grid → (level, node) root first
        self.roads: dict[int, list[str]] = {}
        self.bench = 0  # the community of the well-known accounts

    def add(self, rng: random.Random, code: str, name: str, level: str, parent: int | None, spread: float) -> int:
        """Add a node under a parent, with its path built as server/grids.py builds it."""
        ident = len(self.code)
        self.code.append(code)
        self.name.append(name)
        self.level.append(level)
        self.parent.append(parent)
        self.path.append((self.path[parent] if parent else "/") + code + "/")
        self.depth.append(self.depth[parent] + 1 if parent else 0)
        self.households.append(None)
        self.population.append(None)
        lat, lng = self.centre[parent] if parent else CITY_CENTRE
        self.centre.append((lat + rng.uniform(-spread, spread), lng + rng.uniform(-spread, spread)))
        self.by_level[level].append(ident)
        if parent:
            self.kids.setdefault(parent, []).append(ident)
        return ident

    def __len__(self) -> int:
        return len(self.code) - 1


def community_sizes(rng: random.Random, communities: int, grids: int) -> list[int]:
    """How many grids each community has: about 4 to 19 (10 at the defaults), exactly `grids` in all."""
    weights = [rng.uniform(0.45, 1.6) for _ in range(communities)]
    total = sum(weights)
    sizes = [max(1, int(w / total * grids)) for w in weights]
    while sum(sizes) < grids:
        sizes[rng.randrange(communities)] += 1
    while sum(sizes) > grids:
        i = rng.randrange(communities)
        if sizes[i] > 1:
            sizes[i] -= 1
    return sizes


def build_tree(rng: random.Random, total: int) -> Tree:
    """Build 1 city → districts → 10 streets each → 10 communities each → grids, `total` nodes in all."""
    districts = max(1, round(total / 1100))
    grids = total - 1 - 111 * districts
    if grids < 100 * districts:
        raise SystemExit(f"--nodes {total} is too small for {districts} district(s): "
                         f"need at least {211 * districts + 1}")
    sizes = iter(community_sizes(rng, 100 * districts, grids))
    tree = Tree()
    city = tree.add(rng, "4509", CITY_NAME, "city", None, 0)
    for d in range(1, districts + 1):
        d_name = DISTRICT_NAMES[d - 1] if d <= len(DISTRICT_NAMES) else f"第{d}区"
        district = tree.add(rng, f"4509{d:03d}", d_name, "district", city, 0.12)
        for s, word in enumerate(rng.sample(STREET_WORDS, 10), start=1):
            street = tree.add(rng, f"{tree.code[district]}{s:03d}", word + "街道", "street", district, 0.03)
            for c, c_word in enumerate(rng.sample(COMMUNITY_WORDS, 10), start=1):
                c_name = c_word + "社区"
                community = tree.add(rng, f"{tree.code[street]}{c:03d}", c_name, "community", street, 0.008)
                for g in range(1, next(sizes) + 1):
                    grid = tree.add(rng, f"{tree.code[community]}{g:03d}", f"{c_name}第{cn_number(g)}网格",
                                    "grid", community, 0.002)
                    tree.households[grid] = rng.randint(220, 520)
                    tree.population[grid] = int(tree.households[grid] * rng.uniform(2.4, 3.1))
                    tree.chain[grid] = [("city", city), ("district", district), ("street", street),
                                        ("community", community), ("grid", grid)]
                    tree.roads[grid] = rng.sample(ROADS, 2)
    # The well-known accounts work in the community with the most grids, made a dense, busy one (high-rises):
    # its secretary's inbox is the one benchmarks open.
    tree.bench = max(tree.by_level["community"], key=lambda c: (len(tree.kids[c]), -c))
    for grid in tree.kids[tree.bench]:
        tree.households[grid] = int(tree.households[grid] * BENCH_DENSITY)
        tree.population[grid] = int(tree.population[grid] * BENCH_DENSITY)
    for level in ("community", "street", "district", "city"):
        for node in tree.by_level[level]:
            kids = tree.kids.get(node, [])
            tree.households[node] = sum(tree.households[k] for k in kids)
            tree.population[node] = sum(tree.population[k] for k in kids)
    return tree


def tree_rows(tree: Tree, created: str) -> list[tuple]:
    """The grid_node rows of the tree."""
    return [(i, tree.code[i], tree.name[i], tree.level[i], tree.parent[i], tree.path[i], tree.depth[i],
             tree.households[i], tree.population[i], None, None, created) for i in range(1, len(tree) + 1)]


# -- people ----------------------------------------------------------------------------------------------

PREFIX = {"admin": "gly", "mediator": "tjy", "street_officer": "jdgb", "community_secretary": "sj",
          "grid_worker": "wgy", "grid_leader": "wgz", "volunteer": "zyz", "building_head": "ldz",
          "department_staff": "bm"}


class People:
    """Everyone who signs in: person and membership rows, and who holds which role at which node."""

    def __init__(self, rng: random.Random, tree: Tree, password_hash: str, start: datetime, now: datetime):
        self.rng, self.tree, self.hash, self.start, self.now = rng, tree, password_hash, start, now
        self.rows: list[tuple] = []
        self.memberships: list[tuple] = []
        self.names: list[str | None] = [None]
        self.hold: dict[tuple, list[int]] = {}  # (node, role, department) → person ids, ascending
        self.known: dict[str, dict] = {}
        self._taken: dict[str, int] = {}

    def person_name(self) -> str:
        """A Chinese name: a surname and one or two given characters."""
        return self.rng.choice(SURNAMES) + "".join(self.rng.sample(GIVEN, self.rng.choice((1, 2))))

    def add(self, role: str, node: int, department: str | None = None, username: str | None = None,
            active: bool = True) -> int:
        """Create a person holding one role at one node."""
        ident = len(self.names)
        if username is None:
            base = f"{PREFIX[role]}{'_' + department if department else ''}_{self.tree.code[node]}"
            n = self._taken.get(base, 0) + 1
            self._taken[base] = n
            username = base if n == 1 else f"{base}_{n}"
        else:
            self.known[username] = {"role": role, "node": self.tree.code[node], "node_name": self.tree.name[node],
                                    "level": self.tree.level[node], "department": department}
        name = self.person_name()
        self.names.append(name)
        rng = self.rng
        phone = None if rng.random() < 0.12 else (
            ("138", "139", "150", "177", "186")[ident % 5] + f"{(ident * 7919 + 1234567) % 100_000_000:08d}")
        created = self.start - timedelta(days=rng.uniform(30, 700))
        login = stamp(self.now - timedelta(days=rng.uniform(0, 20))) if rng.random() < 0.7 else None
        self.rows.append((ident, username, name, phone, self.hash, active, 0, login, stamp(created)))
        self.grant(ident, role, node, department)
        return ident

    def grant(self, person: int, role: str, node: int, department: str | None = None) -> None:
        """Give a person a role at a node (a membership)."""
        created = self.start - timedelta(days=self.rng.uniform(1, 30))
        self.memberships.append((len(self.memberships) + 1, person, node, role, department, stamp(created)))
        if self.rows[person - 1][5]:
            self.hold.setdefault((node, role, department), []).append(person)

    def __len__(self) -> int:
        return len(self.rows)


def fixed_people(tree: Tree) -> int:
    """Roughly how many people the roles that must be filled need (the rest are volunteers)."""
    return (4 + 15 * len(tree.by_level["district"]) + 12 * len(tree.by_level["street"])
            + 4 * len(tree.by_level["community"]) + int(1.13 * len(tree.by_level["grid"])))


def build_people(rng: random.Random, tree: Tree, total: int, password_hash: str, start: datetime,
                 now: datetime) -> tuple[People, int]:
    """Staff every node; the well-known bench_* accounts sit in the busiest community. Returns it too."""
    if total < fixed_people(tree):
        raise SystemExit(f"--people {total} is too few for {len(tree)} nodes: need at least {fixed_people(tree)}")
    people = People(rng, tree, password_hash, start, now)
    bench = tree.bench
    bench_street = tree.parent[bench]
    bench_district = tree.parent[bench_street]
    city = tree.by_level["city"][0]
    people.add("admin", city, username="bench_city")
    people.add("admin", city)
    for _ in range(2):
        people.add("mediator", city)
    for district in tree.by_level["district"]:
        people.add("admin", district, username="bench_district" if district == bench_district else None)
        for dept in DEPARTMENTS:
            for _ in range(2):
                people.add("department_staff", district, dept)
    for street in tree.by_level["street"]:
        for i in range(rng.randint(2, 4)):
            people.add("street_officer", street, username="bench_street" if street == bench_street and i == 0 else None)
        for _ in range(rng.choice((1, 1, 2))):
            people.add("mediator", street)
        for dept in DEPARTMENTS:
            named = "bench_dept" if street == bench_street and dept == "urban_management" else None
            people.add("department_staff", street, dept, username=named)
    for community in tree.by_level["community"]:
        staff_community(rng, people, tree, community, community == bench)
    for grid in tree.by_level["grid"]:
        people.add("grid_worker", grid, username="bench_worker" if grid == tree.kids[bench][0] else None)
        if rng.random() < 0.12:
            people.add("grid_worker", grid)
    grids = tree.by_level["grid"]
    cum = list(accumulate(tree.households[g] for g in grids))
    for _ in range(total - len(people)):
        grid = rng.choices(grids, cum_weights=cum)[0]
        if rng.random() < 0.7:
            people.add("volunteer", grid, active=rng.random() > 0.01)
        else:
            people.add("building_head", grid, active=rng.random() > 0.01)
    return people, bench


def staff_community(rng: random.Random, people: People, tree: Tree, community: int, bench: bool) -> None:
    """A secretary, a mediator or two, and grid leaders (the secretary in small or bench communities)."""
    secretary = people.add("community_secretary", community, username="bench_secretary" if bench else None)
    for i in range(rng.choice((1, 1, 1, 1, 2))):
        people.add("mediator", community, username="bench_mediator" if bench and i == 0 else None)
    grids = tree.kids[community]
    if bench or rng.random() < 0.35:
        for grid in grids:
            people.grant(secretary, "grid_leader", grid)
        return
    leaders = max(1, round(len(grids) / 4))
    per = math.ceil(len(grids) / leaders)
    for i in range(0, len(grids), per):
        leader = people.add("grid_leader", grids[i])
        for grid in grids[i + 1:i + per]:
            people.grant(leader, "grid_leader", grid)


# -- form data -------------------------------------------------------------------------------------------

def option_codes(schema: dict, prefix: str = "") -> dict[str, list]:
    """Map each field with options (oneOf const / enum, also of array items and repeats) to its codes."""
    out: dict[str, list] = {}
    for name, prop in (schema.get("properties") or {}).items():
        key = prefix + name
        target = prop.get("items") if prop.get("type") == "array" and isinstance(prop.get("items"), dict) else prop
        if "oneOf" in target:
            out[key] = [o["const"] for o in target["oneOf"] if "const" in o]
        elif "enum" in target:
            out[key] = list(target["enum"])
        if target.get("type") == "object":
            out.update(option_codes(target, key + "."))
    return out


class Filler:
    """Fills in the four shipped forms as the people of a grid would."""

    def __init__(self, rng: random.Random, tree: Tree, people: People, definitions: dict[str, dict]):
        self.rng, self.tree, self.people = rng, tree, people
        self.w: dict[str, dict[str, Weighted]] = {}
        for form, fields in WEIGHTS.items():
            codes = option_codes(definitions[form]["schema"])
            for field, weights in fields.items():
                unknown = set(weights) - set(codes.get(field, ()))
                if unknown:
                    raise SystemExit(f"{form}.{field}: codes not in the loaded form: {sorted(unknown)}")
            self.w[form] = {field: Weighted(weights) for field, weights in fields.items()}

    def name(self) -> str:
        """A Chinese name, drawn from this chunk's random stream."""
        return self.rng.choice(SURNAMES) + "".join(self.rng.sample(GIVEN, self.rng.choice((1, 2))))

    def mobile(self) -> str:
        """A mainland mobile number (format cn-mobile)."""
        rng = self.rng
        return rng.choice(("138", "139", "150", "158", "177", "186", "189")) + f"{rng.randrange(10**8):08d}"

    def id_card(self, birth: date, male: bool) -> str:
        """A valid resident ID number for a birth date (format cn-id-card, GB 11643 check digit)."""
        rng = self.rng
        serial = f"{rng.randrange(100):02d}{rng.randrange(0, 10, 2) + (1 if male else 0)}"
        first17 = f"4509{rng.randint(1, 10):02d}{birth:%Y%m%d}{serial}"
        return first17 + id_card_check_char(first17)

    def birth(self, low: int = 18, high: int = 85) -> date:
        """A birth date between `low` and `high` years before the case's day."""
        return self.today - timedelta(days=self.rng.randint(low * 365, high * 365))

    def address(self, grid: int) -> str:
        """A street address on one of the grid's roads."""
        rng = self.rng
        return (f"{rng.choice(self.tree.roads[grid])}{rng.randint(1, 180)}号{rng.randint(1, 12)}栋"
                f"{rng.randint(1, 4)}单元{rng.randint(1, 18)}{rng.randint(1, 4):02d}")

    def place(self, grid: int) -> str:
        """A landmark on one of the grid's roads."""
        return self.rng.choice(self.tree.roads[grid]) + self.rng.choice(PLACES)

    def location(self, grid: int) -> dict:
        """A GPS fix near the grid's centre (format of the forms' location field)."""
        rng = self.rng
        lat, lng = self.tree.centre[grid]
        spot = {"latitude": round(lat + rng.uniform(-0.002, 0.002), 6),
                "longitude": round(lng + rng.uniform(-0.002, 0.002), 6), "accuracy": round(rng.uniform(5, 40), 1)}
        if rng.random() < 0.6:
            spot["address"] = self.place(grid)
        return spot

    def incident_text(self, category: str, grid: int) -> str:
        """A one-sentence description of an incident of a category."""
        return self.rng.choice(INCIDENT_TEXTS[category]).format(
            addr=self.address(grid), place=self.place(grid), cause=self.rng.choice(CAUSES))

    def fill(self, form: str, grid: int, at: datetime) -> dict:
        """Fill in a form at a grid, submitted at `at` (naive UTC)."""
        self.today = (at + LOCAL).date()
        return getattr(self, form)(grid, at)

    def door_knock_visit(self, grid: int, at: datetime) -> dict:
        """敲门行动·入户走访: topics, household, needs and sometimes an issue to report."""
        rng, w = self.rng, self.w["door_knock_visit"]
        met = rng.random() < 0.86
        d: dict = {"visited_at": local_iso(at - timedelta(minutes=rng.uniform(3, 240))), "met_resident": met}
        if rng.random() < 0.2:
            d["companions"] = rng.choice(COMPANIONS)
        d["head_name"] = self.name()
        d["address"] = self.address(grid)
        if met and rng.random() < 0.55:
            d["phone"] = self.mobile()
        topics: list = []
        if met:
            topics = d["topics"] = w["topics"].some(rng, rng.choice((1, 1, 2, 2, 2, 3, 3, 4)))
            if "info_collection" in topics:
                d["residence_type"] = w["residence_type"].one(rng)
                registered = rng.randint(1, 6)
                d["registered_count"] = registered
                d["resident_count"] = max(0, registered + rng.choice((-1, 0, 0, 0, 1)))
                if rng.random() < 0.6:
                    d["members"] = [self.member(d["head_name"] if i == 0 else None) for i in range(rng.randint(1, 4))]
        if rng.random() < 0.22:
            d["special_groups"] = w["special_groups"].some(rng, rng.choice((1, 1, 2)))
            if rng.random() < 0.6:
                d["special_group_notes"] = rng.choice(SPECIAL_NOTES)
        if "policy_publicity" in topics:
            d["policy_items"] = w["policy_items"].some(rng, rng.randint(1, 3))
            d["letter_delivered"] = rng.random() < 0.8
        if "poverty_monitoring" in topics:
            found = d["poverty_risk_found"] = rng.random() < 0.08
            if found:
                d["poverty_risk_types"] = w["poverty_risk_types"].some(rng, rng.choice((1, 1, 2)))
            if rng.random() < 0.7:
                d["per_capita_income"] = rng.randrange(4000, 16000, 100)
            if found and rng.random() < 0.7:
                d["poverty_risk_notes"] = rng.choice(RISK_NOTES)
        if met and rng.random() < 0.2:
            d["need_categories"] = w["need_categories"].some(rng, rng.choice((1, 1, 2)))
            d["need_description"] = rng.choice(NEEDS)
            d["need_resolved"] = rng.random() < 0.35
        issue = rng.random() < (0.12 if {"hazard_report", "dispute_screening"} & set(topics) else 0.04)
        d["has_issue"] = issue
        if issue:
            d["issue_type"] = w["issue_type"].one(rng)
            d["issue_description"] = self.incident_text(d["issue_type"], grid)
            d["need_report"] = rng.random() < 0.45
            if d["need_report"]:
                d["issue_urgency"] = w["issue_urgency"].one(rng)
        d["location"] = self.location(grid)
        if rng.random() < 0.6:
            d["contact_card_given"] = rng.random() < 0.8
        if rng.random() < 0.5:
            d["summary"] = rng.choice(VISIT_SUMMARIES)
        return d

    def member(self, name: str | None) -> dict:
        """One household member of a visit's 家庭成员 repeat."""
        rng, w = self.rng, self.w["door_knock_visit"]
        relation = "head" if name else w["members.relation"].one(rng)
        gender = w["members.gender"].one(rng)
        birth = self.birth(1 if relation in ("child", "grandchild") else 18, 90)
        m: dict = {"name": name or self.name(), "relation": relation, "gender": gender}
        if rng.random() < 0.7:
            m["id_card"] = self.id_card(birth, gender == "male")
        m["birth_date"] = birth.isoformat()
        if rng.random() < 0.4:
            m["phone"] = self.mobile()
        m["is_party_member"] = rng.random() < 0.1
        m["whereabouts"] = w["members.whereabouts"].one(rng)
        m["occupation"] = w["members.occupation"].one(rng)
        m["health"] = w["members.health"].one(rng)
        if rng.random() < 0.1:
            m["notes"] = rng.choice(SPECIAL_NOTES)
        return m

    def incident_report(self, grid: int, at: datetime) -> dict:
        """事件上报: category, urgency, where, and who reported it."""
        rng, w = self.rng, self.w["incident_report"]
        category = w["category"].one(rng)
        d: dict = {"category": category, "urgency": w["urgency"].one(rng),
                   "description": self.incident_text(category, grid),
                   "occurred_at": local_iso(at - timedelta(hours=rng.uniform(0.2, 36))),
                   "location": self.location(grid)}
        if rng.random() < 0.92:
            source = d["source"] = w["source"].one(rng)
            if source in ("resident_report", "hotline"):
                anonymous = d["is_anonymous"] = rng.random() < 0.2
                if not anonymous:
                    d["reporter_name"] = self.name()
                    if rng.random() < 0.8:
                        d["reporter_phone"] = self.mobile()
        if rng.random() < 0.3:
            d["involved_households"] = rng.choice((1, 1, 2, 3, 5, 10, 20, 60, 120))
        if rng.random() < 0.25:
            d["involved_people"] = rng.choice((1, 2, 3, 5, 8, 20, 50, 200))
        return d

    def party(self, role: str, organisation: bool) -> dict:
        """A party to a dispute: a person (ID card, phone, address) or an organisation."""
        rng = self.rng
        if organisation:
            p = {"name": rng.choice(ORGANISATIONS), "role": role}
            if rng.random() < 0.5:
                p["phone"] = self.mobile()
            return p
        male = rng.random() < 0.5
        p = {"name": self.name(), "role": role}
        if rng.random() < 0.75:
            p["id_card"] = self.id_card(self.birth(20, 80), male)
        if rng.random() < 0.85:
            p["phone"] = self.mobile()
        if rng.random() < 0.5:
            p["address"] = f"{rng.choice(ROADS)}{rng.randint(1, 180)}号"
        return p

    def dispute_mediation(self, grid: int, at: datetime) -> dict:
        """矛盾纠纷登记: type, parties, source and risk."""
        rng, w = self.rng, self.w["dispute_mediation"]
        kind = w["dispute_type"].one(rng)
        organised = kind in ("property_management", "labour", "contract_debt") and rng.random() < 0.4
        parties = [self.party("applicant", False), self.party("respondent", organised)]
        for _ in range(rng.choice((0, 0, 0, 0, 1, 2))):
            parties.append(self.party("other_party", False))
        a, b = parties[0]["name"], parties[1]["name"]
        d: dict = {"dispute_type": kind, "parties": parties,
                   "description": rng.choice(DISPUTE_TEXTS[kind]).format(
                       a=a, b=b, cause=rng.choice(CAUSES), n=rng.randint(3, 40))}
        if rng.random() < 0.7:
            d["claims"] = rng.choice(CLAIMS)
        d["occurred_on"] = local_day(at - timedelta(days=rng.uniform(0, 30)))
        if rng.random() < 0.6:
            d["dispute_place"] = self.address(grid)
        source = d["source"] = w["source"].one(rng)
        if source == "department_transfer":
            d["transfer_from"] = w["transfer_from"].one(rng)
        if kind in ("labour", "damage_compensation", "contract_debt", "property_management") and rng.random() < 0.6:
            d["amount"] = rng.randrange(500, 300_000, 100)
        if rng.random() < 0.5:
            d["involved_people"] = rng.randint(5, 300) if kind in ("labour", "property_management") else len(parties)
        risk = d["risk_level"] = w["risk_level"].one(rng)
        if risk != "low":
            d["has_extreme_behavior"] = rng.random() < (0.35 if risk == "high" else 0.08)
            if rng.random() < 0.8:
                d["risk_factors"] = w["risk_factors"].some(rng, rng.choice((1, 1, 2)))
            if rng.random() < 0.7:
                d["stabilisation_measures"] = rng.choice(MEASURES)
            d["police_needed"] = rng.random() < (0.5 if risk == "high" else 0.1)
        return d

    def resource_request(self, grid: int, at: datetime) -> dict:
        """资源需求申报: what, how much, for whom."""
        rng, w = self.rng, self.w["resource_request"]
        category = w["category"].one(rng)
        item, (low, high) = rng.choice(RESOURCE_ITEMS[category])
        d: dict = {"category": category, "item": item,
                   "description": f"为{self.tree.name[self.tree.parent[grid]]}申请{item}，用于改善居民生活条件"}
        if category in UNITS:
            d["quantity"] = rng.choice((1, 1, 1, 2, 3, 4, 5, 10, 20))
            d["unit"] = rng.choice(UNITS[category])
        d["amount"] = rng.randrange(low, high + 1, 100) if high else 0
        d["beneficiaries"] = w["beneficiaries"].some(rng, rng.choice((1, 1, 2)))
        d["beneficiary_count"] = rng.choice((30, 45, 80, 120, 300, 600, 1200, 3000))
        d["urgency"] = w["urgency"].one(rng)
        d["justification"] = rng.choice(JUSTIFICATIONS)
        if rng.random() < 0.4:
            d["capacity"] = "社区有专人负责管理维护，场地已落实"
        if rng.random() < 0.5:
            d["expected_effect"] = f"惠及辖区{d['beneficiary_count']}名群众"
        if rng.random() < 0.7:
            d["deliberated"] = rng.random() < 0.8
        if rng.random() < 0.6:
            d["expected_date"] = local_day(at + timedelta(days=rng.randint(15, 90)))
        d["contact_name"] = self.name()
        d["contact_phone"] = self.mobile()
        return d


def sensitive_tree(paths) -> dict:
    """Turn a form's sensitive paths (server.masking.sensitive_paths) into a nested lookup."""
    root: dict = {}
    for path, _fmt in paths:
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = True
    return root


def search_text(data, sensitive: dict) -> str:
    """The same text as server.cases.search_text: the values in order, sensitive ones left out."""
    out: list[str] = []
    _collect(data, sensitive, out)
    return "\n".join(out)


def _collect(value, sensitive, out: list[str]) -> None:
    """Append the searchable values under `value` to `out`, skipping the sensitive ones."""
    kind = type(value)  # exact types: JSON data holds nothing else, and a bool is not a number here
    if kind is dict:
        for key, item in value.items():
            below = sensitive.get(key) if sensitive else None
            if below is True:
                continue
            kind = type(item)
            if kind is str:
                out.append(item)
            elif kind is int or kind is float:
                out.append(str(item))
            elif kind is dict or kind is list:
                _collect(item, below, out)
    elif kind is list:
        below = sensitive.get("*") if sensitive else None
        for item in value:
            _collect(item, below, out)
    elif kind is str:
        out.append(value)
    elif kind is int or kind is float:
        out.append(str(value))


# -- flows -----------------------------------------------------------------------------------------------

class Task:
    """A task of a simulated case, as the Task row and the flow state's task hold it."""

    __slots__ = ("ident", "key", "node", "title", "token", "mode", "people", "assignees", "everyone", "opened",
                 "due", "overdue", "escalations", "specs", "item", "visit", "state", "closed_at", "closed_by",
                 "action", "plan", "lag")


class Case:
    """One case's flow played through as the engine would have recorded it, up to now."""

    def __init__(self, maker: Maker, sid: str, form: str, grid: int, creator: int, created: datetime, data: dict):
        self.m, self.sid, self.form, self.grid = maker, sid, form, grid
        self.creator, self.created, self.data = creator, created, data
        self.flow = maker.flow_of[form]
        self.nodes = self.flow["nodes"]
        self.chain = maker.tree.chain[grid]
        self.tokens: dict = {}
        self.open: dict[str, Task] = {}
        self.tasks: list[Task] = []
        self.visits: dict = {}
        self.passed: list = []
        self.parallels: dict = {}
        self.facts: dict = {}
        self.items: dict = {}
        self.acted = self.seq = 0
        self.ended: dict | None = None
        self.steps: list[tuple[datetime, list]] = []  # (when, the events of that engine call)
        self.current: list = []
        self.cc: list[tuple] = []
        self.spawns: list[tuple[str, dict]] = []
        self.late = False
        self.rating = None
        self.stuck_at = 0
        self.withdraw_at: datetime | None = None
        self.opened_count = 0

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Start the flow at submission, then act and sweep deadlines in time order until the end or now."""
        rng, now = self.m.rng, self.m.now
        self.step(self.created)
        self.enter(self.flow["start"], self.new_token(None, None), self.created)
        if not self.open:
            return
        age = (now - self.created).days
        if rng.random() < STUCK_SHARE + 0.05 * math.exp(-age / 200):
            self.stuck_at = rng.choice((1, 1, 2, 2, 3))
            first = next(iter(self.open.values()))
            if self.stuck_at == 1:
                first.plan = None
        if rng.random() < WITHDRAW_SHARE.get(self.form, 0):
            first = next(iter(self.open.values()))
            span = (first.plan - self.created) if first.plan else timedelta(hours=8)
            self.withdraw_at = self.created + span * rng.uniform(0.05, 0.9)
        while self.open and not self.ended:
            at, what, task = self.next_happening()
            if at is None or at > now:
                return
            if what == "withdraw":
                self.withdraw(at)
            elif what == "sweep":
                self.sweep(task, at)
            else:
                self.act(task, at)

    def next_happening(self) -> tuple:
        """The earliest of: a task acted on, a deadline swept, the submitter withdrawing."""
        best: tuple = (None, None, None)
        for task in self.open.values():
            if task.due is not None and not task.overdue:
                moment = task.due + task.lag
                if best[0] is None or moment < best[0]:
                    best = (moment, "sweep", task)
            if task.plan is not None and (best[0] is None or task.plan < best[0]):
                best = (task.plan, "act", task)
        if self.withdraw_at is not None and self.acted == 0 and (best[0] is None or self.withdraw_at < best[0]):
            best = (self.withdraw_at, "withdraw", None)
        return best

    def step(self, at: datetime) -> None:
        """Begin a step: one engine call (start, an action, a sweep), its events written together."""
        self.current = []
        self.steps.append((at, self.current))

    def event(self, kind: str, node: str | None, actor: int | None = None, comment: str | None = None,
              payload: dict | None = None) -> None:
        """Record an event of the current step."""
        self.current.append((kind, node, actor, comment, payload))

    def next_id(self, prefix: str) -> str:
        """Number a token, task or parallel as the engine does (k1, t2, p3 …)."""
        self.seq += 1
        return f"{prefix}{self.seq}"

    def new_token(self, parallel: str | None, item) -> str:
        """Add a token: a position of the case in the graph."""
        key = self.next_id("k")
        self.tokens[key] = {"node": None, "parallel": parallel, "item": item}
        return key

    def view(self) -> dict:
        """The data conditions look at: the form's data with the step forms' data on top."""
        return {**self.data, **self.facts} if self.facts else self.data

    # -- moving through the graph (as server/engine/core.py does) -----------------------------------

    def enter(self, key: str, token: str, at: datetime) -> None:
        """Move a token into a node and on through automatic nodes, until it waits or the flow ends."""
        while not self.ended:
            node = self.nodes[key]
            if token in self.tokens:
                self.tokens[token]["node"] = key
            kind = node["type"]
            if kind == "task":
                self.open_task(key, node, token, at)
                return
            if kind == "branch":
                key = self.choose(key, node)
            elif kind == "parallel":
                self.fan_out(key, node, token, at)
                return
            elif kind == "join":
                following = self.arrive(key, token)
                if following is None:
                    return
                key, token = following
            elif kind == "cc":
                people = self.resolve_all(node.get("to", []), token)
                for person in people:
                    self.cc.append((person, key, at))
                self.event("cc", key, payload={"people": people})
                key = node["next"]
            elif kind == "spawn":
                if node.get("when") is None or self.m.judge(node["when"])(self.view()):
                    self.spawns.append((key, self.mapped(node)))
                key = node["next"]
            elif kind == "end":
                self.end(key, node.get("outcome", "resolved"), at)
                return
            else:
                raise ValueError(f"node {key}: type {kind} is not simulated")

    def choose(self, key: str, node: dict) -> str:
        """Take a branch's first matching rule (its default otherwise), as the engine does."""
        view = self.view()
        for rule in node.get("conditions", []):
            if "when" in rule and not self.m.judge(rule["when"])(view):
                continue
            if "visits" in rule and not self.counted(rule["visits"]):
                continue
            self.event("branched", key, payload={"to": rule["to"]})
            return rule["to"]
        self.event("branched", key, payload={"to": node["default"]})
        return node["default"]

    def counted(self, rule: dict) -> bool:
        """Tell whether a rule on how often a node was visited holds."""
        n = self.visits.get(rule["node"], 0)
        checks = {"lt": n.__lt__, "lte": n.__le__, "gt": n.__gt__, "gte": n.__ge__, "eq": n.__eq__}
        return all(checks[k](v) for k, v in rule.items() if k in checks)

    def mapped(self, node: dict) -> dict:
        """The data a spawn node maps from this case into the new one."""
        out: dict = {}
        view = self.view()
        for target, source in (node.get("map") or {}).items():
            value = pointer_get(view, source)
            if value is not None:
                pointer_set(out, target, json.loads(json.dumps(value)))
        return out

    def fan_out(self, key: str, node: dict, token: str, at: datetime) -> None:
        """Start one branch per item of a parallel node; the parent token waits at the join."""
        items = pointer_get(self.view(), node["foreach"]) if "foreach" in node else None
        if "foreach" in node:
            unique = {json.dumps(i, sort_keys=True): i for i in (items if isinstance(items, list) else [])}
            starts = [(node["branch"], i) for i in unique.values()]
        else:
            starts = [(b, None) for b in node.get("branches", [])]
        parallel = self.next_id("p")
        self.parallels[parallel] = {"join": node["join"], "expected": len(starts), "arrived": 0, "token": token}
        self.event("dispatched", key, payload={"branches": [{"node": n, "item": i} for n, i in starts]})
        if not starts:
            self.parallels.pop(parallel)
            self.enter(self.nodes[node["join"]]["next"], token, at)
            return
        outer = self.tokens[token]
        outer["node"] = node["join"]
        for start, item in starts:
            child = self.new_token(parallel, item if item is not None else outer.get("item"))
            self.enter(start, child, at)

    def arrive(self, join: str, token: str):
        """A branch reaches its join: go on when it is the last one, with the parent's token."""
        info = self.tokens.pop(token)
        parallel = self.parallels.get(info.get("parallel") or "")
        if parallel is None:
            self.tokens[token] = info
            return self.nodes[join]["next"], token
        parallel["arrived"] += 1
        if parallel["arrived"] < parallel["expected"]:
            return None
        self.parallels.pop(info["parallel"])
        self.event("joined", join)
        return self.nodes[join]["next"], parallel["token"]

    def end(self, key: str, outcome: str, at: datetime) -> None:
        """End the flow with an outcome: open tasks are cancelled."""
        for task in list(self.open.values()):
            self.close(task, "cancelled", at, None, None)
        self.tokens.clear()
        self.parallels.clear()
        self.ended = {"node": key, "outcome": outcome}
        self.event("ended", key, payload={"outcome": outcome})

    # -- who: the directory ----------------------------------------------------------------------

    def holders(self, spec: dict, item) -> list[int]:
        """Who holds an assignee spec relative to the case's grid (sorted ids, as the store finds them)."""
        if spec.get("submitter"):
            return [self.creator]
        role = spec.get("role") or ("department_staff" if spec.get("department") else None)
        level = spec.get("level")
        nodes = [n for lv, n in reversed(self.chain)] if level == "*" else [n for lv, n in self.chain if lv == level]
        dept = spec.get("department")
        if dept == "$item":
            dept = item if isinstance(item, str) else None
        elif isinstance(dept, str) and dept.startswith("/"):
            dept = pointer_get(self.view(), dept)
            dept = dept if isinstance(dept, str) else None
        if spec.get("department") and dept is None:
            return []
        hold = self.m.people.hold
        for node in nodes:
            found = hold.get((node, role, dept))
            if found:
                return found
        return []

    def resolve_all(self, specs: list[dict], token: str | None, item=None) -> list[int]:
        """The people of several specs, without repeats, in order."""
        if token is not None:
            item = self.tokens.get(token, {}).get("item")
        out: list[int] = []
        for spec in specs:
            out.extend(p for p in self.holders(spec, item) if p not in out)
        return out

    @staticmethod
    def up(spec: dict) -> dict | None:
        """The same spec one level higher, or None at the top."""
        level = spec.get("level")
        if level not in LEVEL_ORDER or LEVEL_ORDER.index(level) == 0:
            return None
        return {**spec, "level": LEVEL_ORDER[LEVEL_ORDER.index(level) - 1]}

    @staticmethod
    def describe(spec: dict, item) -> str:
        """Name a spec as the store's directory does: 「社区（村）的社区书记」."""
        if spec.get("submitter"):
            return "填报人"
        where = LEVEL_NAMES.get(spec.get("level"), "各级")
        dept = spec.get("department")
        if dept == "$item":
            dept = item
        name = DEPARTMENT_NAMES.get(dept, dept) if isinstance(dept, str) and not dept.startswith("/") else None
        role = ROLE_NAMES.get(spec.get("role") or "department_staff", spec.get("role"))
        return f"{where}{name or ''}的{role}" if name else f"{where}的{role}"

    def higher(self, specs: list[dict], item) -> tuple[list[dict], list[int]]:
        """Go up level by level from specs until someone holds them: (the specs reached, the people)."""
        while True:
            specs = [u for u in (self.up(s) for s in specs) if u]
            if not specs:
                return [], []
            people = self.resolve_all(specs, None, item)
            if people:
                return specs, people

    def assign(self, specs: list[dict], fallback: dict | None, item) -> tuple[list[int], str | None, list[dict]]:
        """Resolve a task's assignees; when nobody holds them, the fallback, then higher levels."""
        people = self.resolve_all(specs, None, item)
        if people:
            return people, None, list(specs)
        wanted = "、".join(self.describe(s, item) for s in specs) or "（未指定）"
        tried = [fallback] if fallback else []
        level_up = list(specs)
        for _ in range(8):
            level_up = [u for u in (self.up(s) for s in level_up) if u]
            tried.extend(level_up)
        for spec in tried:
            people = self.resolve_all([spec], None, item)
            if people:
                return people, f"无人担任{wanted}，改由{self.describe(spec, item)}办理", [spec]
        admin = {"role": "admin", "level": "*"}
        return self.resolve_all([admin], None, item), f"无人担任{wanted}，也找不到上级，改由管理员办理", [admin]

    # -- tasks -----------------------------------------------------------------------------------

    def deadline(self, node: dict, start: datetime) -> datetime | None:
        """When a task of a node opened at `start` falls due (naive UTC), or None without a deadline."""
        spec = node.get("deadline")
        if not spec:
            return None
        days, rest = self.m.duration(spec["duration"])
        if spec.get("calendar", "calendar") == "working":
            return self.m.calendar.due(start, days) + rest
        return start + timedelta(days=days) + rest

    def open_task(self, key: str, node: dict, token: str, at: datetime) -> None:
        """Open a task at a node, with its people, deadline and when it will be acted on (or never)."""
        rng = self.m.rng
        self.visits[key] = self.visits.get(key, 0) + 1
        item = self.tokens[token].get("item")
        people, note, specs = self.assign(node.get("assignees", []), node.get("fallback"), item)
        task = Task()
        task.ident = self.m.next_task()
        task.key, task.node, task.title, task.token = self.next_id("t"), key, node.get("title", key), token
        task.mode = node.get("mode", "any")
        task.people, task.everyone = people, list(people)
        task.assignees = people[:1] if task.mode == "sequence" else list(people)
        task.opened, task.due, task.overdue, task.escalations = at, self.deadline(node, at), False, 0
        task.specs, task.item, task.visit = specs, item, self.visits[key]
        task.state, task.closed_at, task.closed_by, task.action = "open", None, None, None
        task.lag = timedelta(seconds=rng.uniform(1, 60))  # the sweeper runs every minute
        self.opened_count += 1
        hours = lognormal_hours(rng, DURATIONS.get(key, DEFAULT_DURATION))
        task.plan = None if self.opened_count == self.stuck_at else self.m.daytime(at + timedelta(hours=hours))
        self.open[task.key] = task
        self.tasks.append(task)
        self.event("task_opened", key, payload={"task": task.key, "assignees": task.assignees, "note": note,
                                                 "due_at": iso(task.due) if task.due else None, "item": item})

    def close(self, task: Task, how: str, at: datetime, actor: int | None, action: str | None) -> None:
        """Close a task: done, or cancelled when the flow ends around it."""
        del self.open[task.key]
        task.state, task.closed_at, task.closed_by, task.action = how, at, actor, action

    def act(self, task: Task, at: datetime) -> None:
        """A person does one of the task's own actions (the policy says which) and the flow moves on."""
        rng = self.m.rng
        actor = task.assignees[0] if len(task.assignees) == 1 else rng.choice(task.assignees)
        key, data, comment = self.m.policy.decide(self, task, actor, at)
        action = next(a for a in self.nodes[task.node]["actions"] if a["key"] == key)
        if task.due is not None and at > task.due:
            self.late = True
        self.step(at)
        self.acted += 1
        self.event("acted", task.node, actor, comment, {"task": task.key, "action": key, "title": action["title"],
                                                        "data": data or None})
        if data:
            self.facts.update(data)
            if data.get("satisfaction") in RATINGS:
                self.rating = data["satisfaction"]
        self.close(task, "done", at, actor, key)
        if task.node not in self.passed:
            self.passed.append(task.node)
        if task.item is not None:
            self.items[task.node] = task.item
        self.enter(action["to"], task.token, at)

    def sweep(self, task: Task, at: datetime) -> None:
        """The deadline sweeper finds the task overdue: remind, or hand it one level up."""
        self.step(at)
        self.late = True
        task.overdue = True
        self.event("overdue", task.node, payload={"task": task.key, "due_at": iso(task.due)})
        node = self.nodes[task.node]
        if (node.get("on_timeout") or {}).get("action") == "escalate" and self.escalate(task, node, at):
            return
        self.event("reminded", task.node, payload={"task": task.key, "people": task.assignees})

    def escalate(self, task: Task, node: dict, at: datetime) -> bool:
        """Hand an overdue task to the same role one level up, else to the node's fallback."""
        item = task.item
        current = task.specs or node.get("assignees", [])
        specs, people = self.higher(current, item)
        fallback = node.get("fallback")
        if not people and fallback and fallback not in current:
            specs = [fallback]
            people = self.resolve_all(specs, None, item)
            if not people:
                specs, people = self.higher(specs, item)
        if not people:
            return False
        task.specs, task.escalations, task.people = specs, task.escalations + 1, people
        task.assignees = people[:1] if task.mode == "sequence" else list(people)
        task.everyone += [p for p in people if p not in task.everyone]
        task.overdue = False
        task.due = self.deadline(node, at)
        self.event("escalated", task.node, payload={"task": task.key, "reason": "timeout", "to": people,
                                                     "level": "、".join(self.describe(s, item) for s in specs)})
        return True

    def withdraw(self, at: datetime) -> None:
        """The submitter withdraws the case before anyone acted on it."""
        self.step(at)
        self.event("withdrawn", None, self.creator, self.m.rng.choice(WITHDRAW_NOTES))
        self.end("withdrawn", "withdrawn", at)

    # -- the rows ----------------------------------------------------------------------------------

    def status(self) -> str:
        """The case's status as the engine derives it."""
        if self.ended:
            return "withdrawn" if self.ended["outcome"] == "withdrawn" else "closed"
        return "in_progress"

    def state(self) -> dict:
        """The flow state as the engine keeps it on the case."""
        state = {"tokens": self.tokens, "tasks": {t.key: self.live(t) for t in self.open.values()},
                 "visits": self.visits, "passed": self.passed, "parallels": self.parallels, "facts": self.facts,
                 "acted": self.acted, "seq": self.seq, "ended": self.ended, "status": self.status()}
        if self.ended:
            state["node_status"] = None
        if self.items:
            state["items"] = self.items
        return state

    @staticmethod
    def live(t: Task) -> dict:
        """An open task as the flow state holds it."""
        return {"key": t.key, "node": t.node, "title": t.title, "token": t.token, "mode": t.mode, "people": t.people,
                "assignees": t.assignees, "votes": {}, "opened_at": iso(t.opened), "item": t.item, "visit": t.visit,
                "due_at": iso(t.due) if t.due else None, "overdue": t.overdue, "escalations": t.escalations,
                "urged_at": None, "specs": t.specs}


# -- what people decide at each step of the shipped flows --------------------------------------------

class Policy:
    """The action, step-form data and comment a person gives at each task of the shipped flows."""

    def __init__(self, rng: random.Random, people: People):
        self.rng, self.people = rng, people
        self.whistle, self.reasons = Weighted(WHISTLE), Weighted(UNSATISFIED_REASONS)
        self.terminate, self.referral = Weighted(TERMINATE_REASONS), Weighted(REFERRALS)
        self.methods = Weighted(METHODS)

    def decide(self, case: Case, task: Task, actor: int, at: datetime) -> tuple[str, dict | None, str | None]:
        """The action, step-form data and comment for a task (a node's first action if unknown)."""
        handler = getattr(self, task.node, None)
        if handler is None:
            return case.nodes[task.node]["actions"][0]["key"], None, None
        return handler(case, task, actor, at)

    def roll(self, *shares: float) -> int:
        """Pick an index by shares (the remainder goes to the last index + 1)."""
        r = self.rng.random()
        for i, share in enumerate(shares):
            if r < share:
                return i
            r -= share
        return len(shares)

    def handled(self, case: Case) -> dict:
        """A 处置情况 step form."""
        text = self.rng.choice(HANDLING).format(dept=DEPARTMENT_NAMES[self.rng.choice(DEPARTMENTS)])
        return {"handling_result": text}

    # incident_loop
    def triage(self, case, task, actor, at):
        """网格长分级分流: mostly handled in the grid, some sent up, a few rejected."""
        critical = case.data.get("urgency") == "critical"
        choice = self.roll(0.07, 0.2 if critical else 0.1, 0.25)
        if choice == 0:
            return "reject", None, self.rng.choice(REJECT_REASONS)
        if choice == 1:
            return "to_street", None, self.rng.choice(ROUTE_NOTES[:2])
        if choice == 2:
            return "to_community", None, self.rng.choice(ROUTE_NOTES[2:]) if self.rng.random() < 0.5 else None
        return "handle_in_grid", None, "请尽快处置" if self.rng.random() < 0.3 else None

    def grid_handling(self, case, task, actor, at):
        """网格处置: done, or passed to the community."""
        if task.visit == 1 and self.rng.random() < 0.08:
            return "to_community", None, "网格内无法解决，请社区协调"
        return "done", self.handled(case), None

    def community_handling(self, case, task, actor, at):
        """社区处置: done, whistled up to the street, or back to the grid."""
        choice = self.roll(0.12, 0.03) if task.visit == 1 else 2
        if choice == 0:
            return "to_street", None, "涉及多个部门，请街道吹哨"
        if choice == 1:
            return "back_to_grid", None, "属网格职责，请网格员处置"
        return "done", self.handled(case), None

    def street_whistle(self, case, task, actor, at):
        """街道吹哨: whistle one to three departments, or handle it."""
        choice = self.roll(0.65, 0.05) if task.visit == 1 else 0
        if choice == 0:
            depts = self.whistle.some(self.rng, self.rng.choice((1, 1, 1, 2, 2, 3)))
            data = {"whistle_departments": depts}
            if self.rng.random() < 0.5:
                data["whistle_requirements"] = "请各部门5个工作日内到现场处置并反馈"
            return "whistle", data, None
        if choice == 1:
            return "back_to_community", None, "请社区先行协调处置"
        return "done", self.handled(case), None

    def dept_handling(self, case, task, actor, at):
        """部门报到·办理: done, or not this department's business."""
        if self.rng.random() < 0.1:
            return "not_responsible", None, "经核实，不属于本部门职责"
        return "done", self.handled(case), None

    def close_confirm(self, case, task, actor, at):
        """办结确认: confirmed, now and then sent back."""
        if task.visit == 1 and self.rng.random() < 0.04:
            return "redo", None, "现场核实问题仍未解决，请重新办理"
        return "confirm", None, None

    def return_visit(self, case, task, actor, at):
        """回访评价: the resident's satisfaction (more often unsatisfied after a redo)."""
        unsatisfied = (0.07, 0.4, 0.5)[min(task.visit, 3) - 1]
        choice = self.roll(unsatisfied, 0.13)
        rating = ("unsatisfied", "basically_satisfied", "satisfied")[choice]
        data = {"visit_method": "phone" if self.rng.random() < 0.7 else "door", "satisfaction": rating}
        if rating == "unsatisfied":
            data["unsatisfied_reasons"] = self.reasons.some(self.rng, self.rng.choice((1, 1, 2)))
        if self.rng.random() < 0.3:
            data["feedback"] = "对处理结果满意，感谢网格员" if rating != "unsatisfied" else "问题没有彻底解决"
        return "submit", data, None

    def unsatisfied_review(self, case, task, actor, at):
        """不满意件研判: reopen, or explain and close."""
        if self.rng.random() < 0.3:
            return "reopen", None, "群众诉求合理，重新办理"
        return "close", None, "已向群众解释说明政策依据，结案"

    # mediation_321
    def mediation(self, case, task, actor, at, success: float, terminate: float, last: bool = False):
        """A mediation attempt: success or failure, or terminated with a referral."""
        rng = self.rng
        if rng.random() < terminate:
            data = {"terminate_reason": self.terminate.one(rng), "referral_path": self.referral.one(rng)}
            return "terminate", data, "当事人不同意继续调解，已告知其他解决途径"
        ok = rng.random() < success
        data = {"mediation_date": local_day(at), "mediator_name": self.people.names[actor],
                "mediation_method": self.methods.one(rng)}
        if rng.random() < 0.6:
            data["process_notes"] = "分别听取双方意见，释法说理，引导双方互谅互让"
        data["mediation_result"] = "success" if ok else "fail"
        if ok:
            data["agreement_type"] = "written" if rng.random() < 0.7 else "oral"
            parties = case.data["parties"]
            data["agreement"] = rng.choice(AGREEMENTS).format(a=parties[0]["name"], b=parties[1]["name"],
                                                              x=rng.randrange(500, 20000, 100))
        else:
            data["fail_reason"] = rng.choice(FAIL_REASONS)
            if last:
                data["referral_path"] = self.referral.one(rng)
        return "record", data, None

    def community_mediation(self, case, task, actor, at):
        """社区初调: up to three attempts."""
        return self.mediation(case, task, actor, at, (0.55, 0.42, 0.35)[min(task.visit, 3) - 1],
                              0.09 if task.visit == 1 else 0.06)

    def street_mediation(self, case, task, actor, at):
        """镇（街道）深调: up to two attempts."""
        return self.mediation(case, task, actor, at, (0.45, 0.4)[min(task.visit, 2) - 1], 0.06)

    def city_mediation(self, case, task, actor, at):
        """市级调解: the last attempt; a failure is referred to court or arbitration."""
        return self.mediation(case, task, actor, at, 0.35, 0, last=True)

    def follow_up(self, case, task, actor, at):
        """调解回访: how the agreement is kept and the parties' satisfaction."""
        rng = self.rng
        data = {"followup_date": local_day(at), "followup_method": "door" if rng.random() < 0.6 else "phone",
                "performance": ("fulfilled", "in_progress", "not_fulfilled")[self.roll(0.8, 0.15)],
                "satisfaction": ("satisfied", "basically_satisfied", "unsatisfied")[self.roll(0.78, 0.14)]}
        if rng.random() < 0.4:
            data["followup_notes"] = "双方关系已缓和，未见反复苗头"
        return "done", data, None

    # resource_request
    def community_review(self, case, task, actor, at):
        """社区书记审核: approve with a providing department, return, or reject."""
        choice = self.roll(0.07, 0.08) if task.visit == 1 else self.roll(0.05, 0.03)
        if choice == 0:
            return "reject", None, "不符合资源下放条件，建议通过其他渠道解决"
        if choice == 1:
            return "return", None, "请补充预算明细和议事记录"
        data = {"provider_department": self.rng.choice(PROVIDERS[case.data["category"]])}
        if self.rng.random() < 0.6:
            data["review_opinion"] = "需求真实，同意申报"
        return "approve", data, None

    def supplement(self, case, task, actor, at):
        """补充申报材料: resubmit, or withdraw."""
        if self.rng.random() < 0.15:
            return "withdraw", None, None
        return "resubmit", None, "已补充相关材料" if self.rng.random() < 0.4 else None

    def street_approval(self, case, task, actor, at):
        """街道资源直管办公室审批: approve (maybe a lower amount), return, or reject."""
        choice = self.roll(0.08, 0.06)
        if choice == 0:
            return "reject", None, "经统筹研究，本年度资金已用完，暂不支持"
        if choice == 1:
            return "return", None, "请社区进一步论证必要性"
        amount = case.data.get("amount") or 0
        data = {"provider_department": case.facts.get("provider_department")
                or self.rng.choice(PROVIDERS[case.data["category"]]),
                "approved_amount": round(amount * self.rng.choice((1, 1, 0.9, 0.8, 0.7)))}
        if self.rng.random() < 0.6:
            data["coordination_opinion"] = "必要性充分，应用性强，同意下放"
        return "approve", data, None

    def delivery(self, case, task, actor, at):
        """部门确认资源下放: delivered, or cannot provide."""
        if task.visit == 1 and self.rng.random() < 0.05:
            return "cannot_provide", None, "本部门暂无此项资源"
        data = {"delivered_on": local_day(at), "delivery_notes": "资源已按需送达社区，双方签字确认"}
        if self.rng.random() < 0.7:
            data["delivered_amount"] = case.facts.get("approved_amount", case.data.get("amount") or 0)
        return "delivered", data, None

    def evaluation(self, case, task, actor, at):
        """社区验收评价: received as requested, and the satisfaction."""
        rating = ("satisfied", "basically_satisfied", "unsatisfied")[self.roll(0.78, 0.14)]
        data = {"received_as_requested": self.rng.random() < 0.93, "satisfaction": rating}
        if self.rng.random() < 0.4:
            data["evaluation_notes"] = "资源到位及时，群众反映良好" if rating != "unsatisfied" else "到位时间较晚"
        return "submit", data, None


# -- the stream of cases ---------------------------------------------------------------------------------

class Maker:
    """Makes the cases day by day, in time order, and hands them out as chunks of rows."""

    def __init__(self, args, tree: Tree, people: People, calendar: Calendar, forms: dict, flows: dict,
                 chunk: int):
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.tree, self.people, self.calendar, self.now = tree, people, calendar, calendar.now
        self.total, self.chunk = args.cases, chunk
        self.forms = forms  # key → (form_version id, version, definition, sensitive)
        self.flow_of = {key: flows[f[2]["flow"]][1] for key, f in forms.items()}
        self.flow_id_of = {key: flows[f[2]["flow"]][0] for key, f in forms.items()}
        self.filler = Filler(self.rng, tree, people, {k: f[2] for k, f in forms.items()})
        self.policy = Policy(self.rng, people)
        self.grids = tree.by_level["grid"]
        self.grid_cum = list(accumulate(tree.households[g] for g in self.grids))
        self.workers = {g: people.hold[(g, "grid_worker", None)] for g in self.grids}
        spawn_share = SHARES["door_knock_visit"] * 0.045 * 0.45
        shares = dict(SHARES, incident_report=SHARES["incident_report"] - spawn_share)
        self.form_pick = Weighted(shares)
        self.hour_cum = list(accumulate(HOUR_WEIGHTS))
        self.task_id = 0  # tasks are numbered within a chunk; the writer adds the tasks written before
        self.days = self.calendar.counts(self.total)
        self.durations: dict[str, tuple[int, timedelta]] = {}
        self.predicates: dict[int, object] = {}  # the flow definitions live as long as the maker

    def judge(self, condition: dict):
        """The engine's compiled predicate of a flow's condition (looked up once per condition object)."""
        test = self.predicates.get(id(condition))
        if test is None:
            test = self.predicates[id(condition)] = predicate(condition)
        return test

    def duration(self, text: str) -> tuple[int, timedelta]:
        """A deadline's duration in days and the rest (parsed once per text)."""
        if text not in self.durations:
            self.durations[text] = parse_duration(text)
        return self.durations[text]

    def next_task(self) -> int:
        """Number a task within the chunk."""
        self.task_id += 1
        return self.task_id

    def daytime(self, moment: datetime) -> datetime:
        """Move a moment outside 8:00–21:00 local to the next morning: people act in the daytime."""
        hour = (moment.hour + 8) % 24
        if 8 <= hour < 21:
            return moment
        local = moment + LOCAL
        day = local.date() if hour < 8 else local.date() + timedelta(days=1)
        return datetime(day.year, day.month, day.day) - LOCAL + timedelta(hours=8, seconds=self.rng.uniform(0, 7200))

    def day_times(self, day: date, n: int, last: bool) -> list[datetime]:
        """When the day's n cases come in (UTC), by the hour of day people file them."""
        rng = self.rng
        cum = self.hour_cum[:(self.now + LOCAL).hour] if last else self.hour_cum
        start = datetime(day.year, day.month, day.day) - LOCAL
        hours = rng.choices(range(len(cum)), cum_weights=cum, k=n)
        return sorted(start + timedelta(hours=h, seconds=rng.uniform(0, 3600)) for h in hours)

    def plan(self) -> list[range]:
        """Cut the period into chunks of whole days with about `chunk` cases each, oldest first."""
        out, first, cases = [], 0, 0
        for index, n in enumerate(self.days):
            cases += n
            if cases >= self.chunk or index == len(self.days) - 1:
                out.append(range(first, index + 1))
                first, cases = index + 1, 0
        return out

    def make(self, number: int, days: range) -> dict[str, list]:
        """Make the rows of one chunk: its own random stream, so any process can make any chunk alike."""
        self.rng = self.filler.rng = self.policy.rng = random.Random(self.seed * 1_000_003 + number)
        self.task_id = 0
        out = self.empty()
        last = len(self.days) - 1
        for index in days:
            n = self.days[index]
            times = self.day_times(self.calendar.days[index], n, index == last)
            grids = self.rng.choices(self.grids, cum_weights=self.grid_cum, k=n)
            i = 0
            while i < n:
                i += self.one(out, times[i], grids[i], n - i)
        return out

    @staticmethod
    def empty() -> dict[str, list]:
        """A chunk with no rows yet."""
        return {"submission": [], "event": [], "task": [], "task_assignee": [], "cc_entry": [], "case_link": []}

    def uuid(self) -> str:
        """A random (version 4) case id from the chunk's random stream."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def one(self, out: dict, at: datetime, grid: int, room: int) -> int:
        """Make one case (two when a visit reports an incident); return how many were made."""
        rng = self.rng
        form = self.form_pick.one(rng)
        workers = self.workers[grid]
        creator = workers[0] if len(workers) == 1 or rng.random() < 0.8 else rng.choice(workers)
        data = self.filler.fill(form, grid, at)
        if form == "door_knock_visit" and data.get("need_report") and room < 2:
            data["need_report"] = False
            data.pop("issue_urgency", None)
        case = Case(self, self.uuid(), form, grid, creator, at, data)
        case.run()
        made = 1
        child = None
        for node, spawned in case.spawns:
            child = Case(self, self.uuid(), "incident_report", grid, creator, at + timedelta(milliseconds=7), spawned)
            child.run()
            out["case_link"].append((case.sid, child.sid, "spawned", node))
            made += 1
        self.rows(out, case, linked=("spawned", case.spawns[0][0], child) if child else None)
        if child is not None:
            self.rows(out, child, linked=("spawned_from", case.spawns[0][0], case))
        return made

    def rows(self, out: dict, case: Case, linked: tuple | None) -> None:
        """Turn a played case into its submission, event, task, assignee and copy rows."""
        form_version, version, _definition, sensitive = self.forms[case.form]
        sid, tree = case.sid, self.tree
        events = out["event"]
        created = stamp(case.created)
        events.append((sid, created, case.creator, "submitted", None, None, "submitted", 1, None, None,
                       to_json({"form_version": version})))
        status, revision, last = "submitted", 0, case.created
        final = case.status()
        for i, (at, items) in enumerate(case.steps):  # in time order: a case always takes its earliest happening
            revision += 1
            after = final if any(e[0] == "ended" for e in items) else "in_progress"
            moment = stamp(at)
            for j, (kind, node, actor, comment, payload) in enumerate(items):
                events.append((sid, moment, actor, kind, node, status,
                               after if j == len(items) - 1 else status, revision, comment, None,
                               None if payload is None else to_json(payload)))
            status, last = after, at
            if i == 0 and linked is not None:
                kind, node, other = linked
                events.append((sid, moment, None, kind, node, None, None, None, None, None,
                               to_json({"form": other.form, "case": other.sid})))
        closed = stamp(last) if case.ended else None
        out["submission"].append((
            sid, case.form, version, form_version, case.grid, tree.code[case.grid], tree.path[case.grid], final,
            to_json(sorted({t.node for t in case.open.values()})), to_json(case.data),
            search_text(case.data, sensitive), f"{self.rng.getrandbits(256):064x}", max(1, revision),
            self.flow_id_of[case.form], to_json(case.state()), case.ended["outcome"] if case.ended else None,
            case.creator, created, stamp(last), closed, case.late, case.rating))
        for task in case.tasks:
            self.task_rows(out, case, task)
        for person, node, at in case.cc:
            out["cc_entry"].append((sid, person, node, stamp(at)))

    def task_rows(self, out: dict, case: Case, task: Task) -> None:
        """A task's row and one row per person it ever waited for (who acted: acted_at)."""
        closed = stamp(task.closed_at) if task.closed_at else None
        out["task"].append((
            task.ident, case.sid, task.key, task.node, task.title, task.mode, task.state, case.form,
            self.tree.path[case.grid], None if task.item is None else to_json(task.item),
            stamp(task.due) if task.due else None, task.overdue, task.escalations, None, stamp(task.opened),
            closed, task.closed_by, task.action))
        active = set(task.assignees) if task.state == "open" else ()
        for person in task.everyone:
            acted = closed if task.state == "done" and person == task.closed_by else None
            out["task_assignee"].append((task.ident, person, person in active, acted))


# -- writing rows ----------------------------------------------------------------------------------------

COLUMNS = {
    "grid_node": ("id", "code", "name", "level", "parent", "path", "depth", "households", "population", "boundary",
                  "retired_at", "created_at"),
    "person": ("id", "username", "name", "phone", "password_hash", "active", "session_epoch", "last_login_at",
               "created_at"),
    "membership": ("id", "person", "node", "role", "department", "created_at"),
    "submission": ("id", "form", "version", "form_version", "grid", "grid_code", "grid_path", "status",
                   "current_nodes", "data", "search_text", "request_hash", "revision", "flow_version", "flow_state",
                   "outcome", "created_by", "created_at", "updated_at", "closed_at", "late", "rating"),
    "event": ("submission", "at", "actor", "kind", "node", "from_status", "to_status", "revision", "comment",
              "diff", "payload"),
    "task": ("id", "submission", "key", "node", "title", "mode", "state", "form", "grid_path", "item", "due_at",
             "overdue", "escalations", "urged_at", "opened_at", "closed_at", "closed_by", "action"),
    "task_assignee": ("task", "person", "active", "acted_at"),
    "cc_entry": ("submission", "person", "node", "at"),
    "case_link": ("source", "target", "kind", "node"),
}  # rows nothing refers to by id are numbered by the database, in the order written
BULK = ("submission", "event", "task", "task_assignee", "cc_entry", "case_link")
SAFE_TEXT = {"id", "code", "path", "level", "username", "phone", "password_hash", "role", "department", "form",
             "grid_code", "grid_path", "status", "request_hash", "outcome", "rating", "kind", "node", "from_status",
             "to_status", "key", "mode", "state", "action"}


class Table:
    """How one table's rows are written: its columns, their kinds, defaults for unlisted columns."""

    def __init__(self, name: str):
        from server.models import MODELS

        model = next(m for m in MODELS if m._meta.table_name == name)
        fields = model._meta.fields
        missing = [c for c in COLUMNS[name] if c not in fields]
        if missing:
            raise SystemExit(f"table {name} has no fields {missing}: update bench/dataset.py")
        self.name = name
        self.fields = [fields[c] for c in COLUMNS[name]]
        extra = [f for n, f in fields.items() if n not in COLUMNS[name] and not isinstance(f, peewee.AutoField)]
        self.extra = tuple(self.default(f) for f in extra)
        if extra:
            log.warning("table %s: filling unlisted columns %s with their defaults", name, [f.name for f in extra])
        self.fields += extra
        self.columns = ", ".join(f'"{f.column_name}"' for f in self.fields)
        self.kinds = [self.kind(f) for f in self.fields]
        self.copy_line = self.formatter()

    @staticmethod
    def default(field):
        """A field's default as written to the database."""
        value = field.default() if callable(field.default) else field.default
        if isinstance(field, peewee.JSONField):
            return None if value is None else to_json(value)
        if isinstance(value, datetime):
            return stamp(value)
        return value

    @staticmethod
    def kind(field) -> tuple[str, bool]:
        """How a column is written as COPY text: int, safe text, text to escape or bool; and nullable."""
        if isinstance(field, peewee.BooleanField):
            kind = "b"
        elif isinstance(field, peewee.ForeignKeyField):
            kind = "s" if isinstance(field.rel_field, peewee.CharField) else "i"
        elif isinstance(field, peewee.IntegerField | peewee.AutoField):
            kind = "i"
        elif isinstance(field, peewee.DateTimeField) or field.name in SAFE_TEXT:
            kind = "s"
        else:
            kind = "t"
        return kind, field.null

    def formatter(self):
        """Compile a function that turns a row into one line of COPY text."""
        parts = []
        for i, (kind, null) in enumerate(self.kinds):
            value = f"r[{i}]"
            expr = {"i": value, "s": value, "t": f"esc({value})", "b": f"('t' if {value} else 'f')"}[kind]
            if null:
                expr = f"(NULL if {value} is None else {expr})"
            parts.append("{" + expr + "}")
        source = 'def line(r):\n    return f"' + "\\t".join(parts) + '"\n'
        scope = {"esc": escape, "NULL": NULL}
        exec(compile(source, f"<copy {self.name}>", "exec"), scope)  # the source is built from our column list
        return scope["line"]

    def complete(self, rows: list[tuple]) -> list[tuple]:
        """Add the defaults of the model's unlisted columns to each row."""
        return [r + self.extra for r in rows] if self.extra else rows

    def copy_text(self, rows: list[tuple]) -> str:
        """Rows as COPY text, one line each."""
        line = self.copy_line
        return "\n".join([line(r) for r in self.complete(rows)]) + "\n" if rows else ""


class Sink:
    """Bulk writing for one database: drop the big tables' indexes, load, build them again."""

    postgres = False

    def __init__(self, db):
        self.db = db
        self.tables = {name: Table(name) for name in COLUMNS}
        self.saved: list[str] = []  # statements that build again what was dropped for the load

    def prepare_rows(self, chunk: dict[str, list]) -> dict:
        """What the generating process sends (rows for SQLite, COPY text for PostgreSQL)."""
        return chunk


class SqliteSink(Sink):
    """SQLite: executemany on the raw connection, one transaction per chunk."""

    def __init__(self, db):
        super().__init__(db)
        self.conn = db.connection()
        # No fsync during the load, a 400 MB cache; index builds sort in temporary files, not in memory.
        for pragma in ("synchronous = OFF", "cache_size = -400000", "temp_store = FILE", "foreign_keys = OFF",
                       "wal_autocheckpoint = 20000"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.sql = {name: f'INSERT INTO "{name}" ({t.columns}) VALUES ({", ".join("?" * len(t.fields))})'
                    for name, t in self.tables.items()}

    def drop_indexes(self) -> None:
        """Drop the secondary indexes of the big tables, keeping their CREATE statements."""
        marks = ", ".join("?" * len(BULK))
        rows = self.conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                                 f"AND tbl_name IN ({marks})", BULK).fetchall()
        for name, sql in rows:
            self.saved.append(sql)
            self.conn.execute(f'DROP INDEX "{name}"')

    def write(self, chunk: dict) -> None:
        """Write a chunk in one transaction."""
        self.conn.execute("BEGIN")
        for name, rows in chunk.items():
            if rows:
                self.conn.executemany(self.sql[name], self.tables[name].complete(rows))
        self.conn.execute("COMMIT")

    def build_indexes(self) -> None:
        """Create the dropped indexes again and turn foreign keys back on."""
        for sql in self.saved:
            self.conn.execute(sql)
        self.conn.execute("PRAGMA foreign_keys = ON")

    def analyze(self) -> None:
        """Gather statistics, tidy the WAL, and go back to the application's durability."""
        self.conn.execute("ANALYZE")
        self.conn.execute("PRAGMA optimize")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("PRAGMA synchronous = NORMAL")


class PgSink(Sink):
    """PostgreSQL: COPY FROM STDIN in text format, one transaction per chunk."""

    postgres = True

    def __init__(self, db):
        super().__init__(db)
        self.conn = db.connection()
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET maintenance_work_mem = '512MB'")

    def execute(self, sql: str, params=None) -> list:
        """Run one statement; return its rows, if any."""
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def prepare_rows(self, chunk: dict[str, list]) -> dict:
        """COPY text, but for tasks and their assignees: their ids are shifted by the writer first."""
        return {name: rows if name in ("task", "task_assignee") else self.tables[name].copy_text(rows)
                for name, rows in chunk.items()}

    def drop_indexes(self) -> None:
        """Drop the foreign keys and secondary indexes of the big tables, keeping their definitions."""
        keys = self.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)", (list(BULK),))
        indexes = self.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes AS i WHERE i.schemaname = 'public' "
            "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conname = i.indexname)",
            (list(BULK),))
        for name, definition in indexes:
            self.execute(f'DROP INDEX "{name}"')
            self.saved.append(definition)
        for table, name, definition in keys:
            self.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            self.saved.append(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')

    def write(self, chunk: dict) -> None:
        """Copy a chunk into its tables in one transaction."""
        with self.conn.cursor() as cur:
            cur.execute("BEGIN")
            for name, payload in chunk.items():
                if isinstance(payload, list):
                    payload = self.tables[name].copy_text(payload)
                if payload:
                    cur.copy_expert(f'COPY "{name}" ({self.tables[name].columns}) FROM STDIN', io.StringIO(payload))
            cur.execute("COMMIT")

    def build_indexes(self) -> None:
        """Create the dropped indexes and foreign keys again; move sequences past the ids written."""
        for sql in self.saved:
            self.execute(sql)
        for (table,) in self.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
                                     "AND column_name = 'id' AND column_default LIKE 'nextval%%'"):
            self.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                         f'COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)')

    def analyze(self) -> None:
        """Gather statistics."""
        self.execute("ANALYZE")


# -- the database ----------------------------------------------------------------------------------------

def sqlite_path(url: str) -> Path:
    """The file of a sqlite:///relative or sqlite:////absolute URL, as peewee reads it."""
    rest = url.partition("://")[2]
    return Path(rest[1:] if rest.startswith("/") else rest)


def fresh_database(url: str, replace: bool) -> None:
    """Make sure the database at `url` is empty: a new SQLite file, or an empty PostgreSQL database."""
    scheme, _, rest = url.partition("://")
    if scheme.startswith("sqlite"):
        path = sqlite_path(url)
        leftovers = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
        if leftovers and not replace:
            raise SystemExit(f"{path} exists: pass --replace to delete it and generate a new city")
        for p in leftovers:
            p.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    import psycopg2

    parts = urlsplit(url.replace("postgresql+pool://", "postgresql://").replace("postgres://", "postgresql://"))
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    conn = psycopg2.connect(urlunsplit(parts))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [r[0] for r in cur.fetchall()]
        if tables and not replace:
            raise SystemExit(f"database {name} has {len(tables)} tables: pass --replace to drop them")
        for table in tables:
            cur.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    conn.close()


def set_up(url: str) -> tuple:
    """Create the schema, the default configuration and the shipped forms and flows (as `gridflow load`)."""
    from server.db import bind, database, migrate_schema, open_database
    from server.definitions.versions import load_paths
    from server.grids import seed_configuration
    from server.masking import sensitive_paths
    from server.models import Flow, FlowVersion, Form, FormVersion

    db = bind(open_database(url))
    migrate_schema()
    with database.atomic():
        seed_configuration()
    here = Path.cwd()
    os.chdir(ROOT)  # `gridflow load` is run from the project folder: sources read forms/…, flows/…
    try:
        loaded, problems = load_paths([Path("forms"), Path("flows")])
    finally:
        os.chdir(here)
    if problems:
        raise SystemExit("the shipped definitions do not load:\n" + "\n".join(map(str, problems)))
    forms = {}
    for v in FormVersion.select(FormVersion, Form).join(Form).where(FormVersion.variant == ""):
        forms[v.form.key] = (v.id, v.version, v.definition, sensitive_tree(sensitive_paths(v.definition["schema"])))
    flows = {v.flow.key: (v.id, v.definition)
             for v in FlowVersion.select(FlowVersion, Flow).join(Flow).where(FlowVersion.variant == "")}
    missing = set(SHARES) - set(forms)
    if missing:
        raise SystemExit(f"forms missing after loading: {sorted(missing)}")
    return db, {k: forms[k] for k in SHARES}, flows, loaded


# -- running ---------------------------------------------------------------------------------------------

def produce(maker: Maker, sink: Sink, plan: list[range], mine: range, queue) -> None:
    """In a generating process: make this process's chunks and hand them over, ready to write."""
    try:
        for number in mine:
            chunk = maker.make(number, plan[number])
            counts = {name: len(rows) for name, rows in chunk.items()}
            queue.put(("chunk", counts, sink.prepare_rows(chunk)))
    except BaseException:  # reported to the writing process, which stops
        queue.put(("error", traceback.format_exc(), None))


def stream(maker: Maker, sink: Sink, workers: int):
    """Yield (row counts, payload) for each chunk in order, made by `workers` processes (0: this one)."""
    plan = maker.plan()
    if workers == 0:
        for number, days in enumerate(plan):
            chunk = maker.make(number, days)
            yield {name: len(rows) for name, rows in chunk.items()}, chunk
        return
    context = multiprocessing.get_context("fork")
    queues = [context.Queue(maxsize=2) for _ in range(workers)]
    processes = [context.Process(target=produce, args=(maker, sink, plan, range(k, len(plan), workers), queues[k]),
                                 daemon=True) for k in range(workers)]
    for process in processes:
        process.start()
    try:
        for number in range(len(plan)):
            kind, counts, payload = queues[number % workers].get()
            if kind == "error":
                raise SystemExit(f"generating failed:\n{counts}")
            yield counts, payload
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


def load_cases(maker: Maker, sink: Sink, workers: int) -> dict[str, int]:
    """Write every chunk in order, showing progress on stderr; return the rows written per table."""
    totals = {name: 0 for name in BULK}
    done, began, writing = 0, time.perf_counter(), 0.0
    for counts, payload in stream(maker, sink, workers):
        start = time.perf_counter()
        base = totals["task"]  # a chunk numbers its tasks from 1: shift them past those already written
        if base:
            payload["task"] = [(r[0] + base, *r[1:]) for r in payload["task"]]
            payload["task_assignee"] = [(r[0] + base, *r[1:]) for r in payload["task_assignee"]]
        sink.write(payload)
        writing += time.perf_counter() - start
        for name, n in counts.items():
            totals[name] += n
        done += counts["submission"]
        spent = time.perf_counter() - began
        rate = done / spent if spent else 0
        left = (maker.total - done) / rate if rate else 0
        print(f"  cases {done:>9,}/{maker.total:,}  {rate:>6,.0f}/s  elapsed {spent:>5.0f} s  left ~{left:>4.0f} s  "
              f"writing {writing:>4.0f} s  (events {totals['event']:,}, tasks {totals['task']:,})",
              file=sys.stderr, flush=True)
    return totals


def rebuild_figures() -> str:
    """Rebuild the monthly figures if server.stats offers rebuild(); say what happened."""
    began = time.perf_counter()
    try:
        from server import stats

        stats.rebuild()
    except (ImportError, AttributeError) as exc:
        return f"skipped ({exc})"
    return f"{time.perf_counter() - began:.1f} s"


def counts_by_table() -> dict[str, int]:
    """Count the rows of every table."""
    from server.db import database
    from server.models import MODELS

    return {m._meta.table_name: database.execute_sql(f'SELECT COUNT(*) FROM "{m._meta.table_name}"').fetchone()[0]
            for m in MODELS}


def size_of(url: str) -> str:
    """The size of the database on disk (SQLite: the file and its WAL), for people."""
    from server.db import database, is_postgres

    if is_postgres():
        size = database.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]
    else:
        path = sqlite_path(url)
        size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return f"{size / 2**30:.2f} GiB" if size > 2**30 else f"{size / 2**20:.1f} MiB"


def self_check(samples: int, forms: dict, now: datetime, first: date) -> list[str]:
    """Read cases back through the application: data valid for its form, search text, flows' step data."""
    from server.cases import search_text as app_search_text
    from server.db import database, is_postgres
    from server.definitions.versions import compiled, sensitive_for
    from server.engine.core import step_form
    from server.models import Event, FlowVersion, FormVersion, Submission

    rng, postgres = random.Random(1), is_postgres()
    versions = {v.id: v for v in FormVersion.select()}
    flows = {v.id: v.definition for v in FlowVersion.select()}
    span = (now - datetime(first.year, first.month, first.day)).total_seconds()
    found: dict[str, list] = {form: [] for form in forms}
    for _ in range(5000):
        if all(len(v) >= samples for v in found.values()):
            break
        moment = now - timedelta(seconds=rng.uniform(0, span))
        for case in (Submission.select().where(Submission.created_at >= moment)
                     .order_by(Submission.created_at, Submission.id).limit(10)):
            if len(found[case.form]) < samples:
                found[case.form].append(case)
    problems, steps = [], 0
    for form, cases in found.items():
        for case in cases:
            version = versions[case.form_version_id]
            result = compiled(version).validate(case.data)
            if not result.ok or result.data != case.data:
                problems.append(f"{form} {case.id}: {[e.message for e in result.errors] or 'hidden fields kept'}")
            expected = app_search_text(case.data, sensitive_for(version.id))
            if postgres:  # jsonb keeps keys in its own order: the same values, listed differently
                expected, text = sorted(expected.split("\n")), sorted(case.search_text.split("\n"))
            else:
                text = case.search_text
            if text != expected:
                problems.append(f"{form} {case.id}: search_text differs from server.cases.search_text")
            nodes = flows[case.flow_version_id]["nodes"]
            for e in Event.select().where((Event.submission == case.id) & (Event.kind == "acted")):
                action = next(a for a in nodes[e.node]["actions"] if a["key"] == e.payload["action"])
                checker = step_form(action)
                if checker is not None:
                    steps += 1
                    outcome = checker.validate(e.payload.get("data") or {})
                    if not outcome.ok:
                        problems.append(f"{form} {case.id} {e.node}/{action['key']}: "
                                        f"{[x.message for x in outcome.errors]}")
    database.close()
    print(f"  checked {sum(map(len, found.values()))} cases ({', '.join(f'{k} {len(v)}' for k, v in found.items())}) "
          f"and {steps} step forms with the application's validators: {len(problems)} problems", file=sys.stderr)
    return problems


def inbox_figures(people: People) -> dict[str, dict]:
    """What the well-known people see in their inboxes."""
    from server.inbox import counts, inbox
    from server.models import Person

    out = {}
    for username in people.known:
        person = Person.get(Person.username == username)
        figures = counts(person.id)
        figures["first_page_open"] = len(inbox(person.id, "open"))
        figures["first_page_done"] = len(inbox(person.id, "done"))
        out[username] = figures
    return out


def parse_args(argv=None):
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True, help="sqlite:///path or postgresql://user:pw@host:port/name")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--nodes", type=int, default=11_000)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 23),
                        help="last day of the period; 'now' is 16:00 local (08:00 UTC) that day")
    parser.add_argument("--chunk", type=int, default=20_000, help="cases per transaction")
    parser.add_argument("--replace", action="store_true",
                        help="delete an existing SQLite file / drop the tables of an existing PostgreSQL database")
    parser.add_argument("--check", type=int, default=200, help="cases per form read back and validated (0: none)")
    parser.add_argument("--workers", type=int, default=2, help="generating processes (0: in this one, to profile)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Build the city and report what was made; exit status 1 if the read-back check found problems."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("server.workdays").setLevel(logging.ERROR)
    began = time.perf_counter()
    now = datetime(args.end.year, args.end.month, args.end.day, 8)
    fresh_database(args.db, args.replace)
    db, forms, flows, loaded = set_up(args.db)
    from server.auth import hash_password
    from server.db import database

    calendar = Calendar(args.end, args.years, now)
    start = datetime(calendar.first.year, calendar.first.month, calendar.first.day)
    rng = random.Random(args.seed)
    tree = build_tree(rng, args.nodes)
    people, bench = build_people(random.Random(args.seed + 1), tree, args.people, hash_password(PASSWORD), start, now)
    sink = PgSink(db) if isinstance(db, peewee.PostgresqlDatabase) else SqliteSink(db)
    sink.write({"grid_node": tree_rows(tree, stamp(start - timedelta(days=400))), "person": people.rows,
                "membership": people.memberships})
    print(f"set up in {time.perf_counter() - began:.1f} s: {len(loaded)} definitions, {len(tree):,} nodes, "
          f"{len(people):,} people, {len(people.memberships):,} memberships; period {calendar.first} – {now} UTC",
          file=sys.stderr)
    sink.drop_indexes()
    maker = Maker(args, tree, people, calendar, forms, flows, args.chunk)
    loading = time.perf_counter()
    totals = load_cases(maker, sink, args.workers)
    loaded_in = time.perf_counter() - loading
    indexing = time.perf_counter()
    sink.build_indexes()
    indexed_in = time.perf_counter() - indexing
    figures = rebuild_figures()
    analyzing = time.perf_counter()
    sink.analyze()
    analyzed_in = time.perf_counter() - analyzing
    rows = counts_by_table()
    summary = {
        "url": args.db, "cases": args.cases, "nodes": args.nodes, "people": args.people, "years": args.years,
        "seed": args.seed, "now": now.isoformat() + "Z", "password": PASSWORD,
        "bench_community": tree.code[bench], "users": people.known, "rows": rows,
    }
    problems = self_check(args.check, forms, now, calendar.first) if args.check else []
    summary["inboxes"] = inbox_figures(people)
    database.close()
    total = time.perf_counter() - began
    print(f"\ncases loaded in {loaded_in:.0f} s ({args.cases / loaded_in:,.0f}/s), "
          f"indexes and keys {indexed_in:.0f} s, figures {figures}, ANALYZE {analyzed_in:.0f} s; "
          f"total {total:.0f} s; size {size_of(args.db)}")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items() if v))
    print(f"written this run: {', '.join(f'{k} {v:,}' for k, v in totals.items())}")
    print(f"well-known accounts (password {PASSWORD}):")
    for username, info in people.known.items():
        box = summary["inboxes"][username]
        print(f"  {username:<16} {info['role']}{':' + info['department'] if info['department'] else ''}"
              f"@{info['node']} {info['node_name']}  open {box['open']}, overdue {box['overdue']}, cc {box['cc']}")
    if not args.db.startswith("postgres"):
        target = sqlite_path(args.db).with_suffix(".users.json")
        target.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"written {target}")
    for problem in problems[:20]:
        print("PROBLEM " + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
