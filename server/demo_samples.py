"""Sample cases of each shipped form for the demo city, filed through the same path as the API."""

from __future__ import annotations

import uuid

from .cases import submit
from .definitions.versions import latest_form
from .formats import id_card_check_char
from .grids import node_by_code
from .models import Person

NAMESPACE = uuid.UUID("6f1c7d9e-3a41-4c8e-9d55-4509a0000000")


def id_card(region: str, birth: str, serial: str) -> str:
    """Make a valid resident ID number (GB 11643) from a region code, birth date and serial."""
    first17 = region + birth + serial
    return first17 + id_card_check_char(first17)


def _where(lat: float, lng: float, address: str) -> dict:
    return {"latitude": lat, "longitude": lng, "accuracy": 12.0, "address": address}


SAMPLES: list[tuple[str, str, str, dict]] = [
    # (form, author, grid code, data)
    ("door_knock_visit", "wgy", "450902001001001", {
        "visited_at": "2026-11-18T09:30:00+08:00",
        "met_resident": True,
        "head_name": "黄桂英",
        "address": "城站路12号3栋2单元501",
        "phone": "13877561234",
        "residence_type": "registered",
        "topics": ["info_collection", "policy_publicity", "livelihood_service"],
        "registered_count": 1,
        "resident_count": 1,
        "members": [{
            "name": "黄桂英", "relation": "head", "gender": "female",
            "id_card": id_card("450902", "19460312", "024"), "birth_date": "1946-03-12",
            "is_party_member": False, "whereabouts": "at_home", "occupation": "retired",
            "health": "chronic", "notes": "高血压，子女在广东务工",
        }],
        "special_groups": ["elderly_alone"],
        "special_group_notes": "独居，子女每月回来一次",
        "policy_items": ["pension", "medical_insurance", "anti_fraud"],
        "letter_delivered": True,
        "need_categories": ["elderly_care"],
        "need_description": "希望社区长者饭堂能送餐上门",
        "need_resolved": False,
        "has_issue": False,
        "location": _where(22.6545, 110.1543, "玉林市玉州区城站路12号"),
        "contact_card_given": True,
        "summary": "老人身体尚可，已登记送餐需求，转社区居家养老服务站。",
    }),
    ("door_knock_visit", "wgy_450902001001002", "450902001001002", {
        "visited_at": "2026-11-19T15:10:00+08:00",
        "met_resident": True,
        "head_name": "陈志强",
        "address": "大北路88号1栋302",
        "topics": ["dispute_screening", "hazard_report"],
        "has_issue": True,
        "issue_type": "fire_safety",
        "issue_description": "楼道堆放电动车电池和杂物，堵塞消防通道",
        "need_report": True,
        "issue_urgency": "urgent",
        "location": _where(22.6581, 110.1498, "玉林市玉州区大北路88号"),
    }),
    ("door_knock_visit", "wgy2", "450903101001001", {
        "visited_at": "2026-11-20T10:00:00+08:00",
        "met_resident": False,
        "head_name": "李国庆",
        "address": "福西村三组15号",
        "has_issue": False,
        "location": _where(22.5873, 110.0526, "福绵镇福西村三组"),
        "summary": "户主外出务工，已留联系卡，下周再访。",
    }),
    ("incident_report", "wgy", "450902001001001", {
        "category": "municipal_facility",
        "urgency": "normal",
        "description": "城站路与民主路交叉口井盖破损，夜间存在行人跌落隐患",
        "occurred_at": "2026-11-20T08:40:00+08:00",
        "location": _where(22.6551, 110.1550, "城站路与民主路交叉口"),
        "source": "grid_patrol",
    }),
    ("incident_report", "wgz", "450902001001001", {
        "category": "environment_sanitation",
        "urgency": "normal",
        "description": "小区东门垃圾清运不及时，群众多次反映有异味",
        "occurred_at": "2026-11-21T07:30:00+08:00",
        "location": _where(22.6539, 110.1561, "城站社区东门"),
        "source": "resident_report",
        "is_anonymous": False,
        "reporter_name": "周秀兰",
        "reporter_phone": "13907751234",
        "involved_households": 120,
    }),
    ("incident_report", "wgy2", "450903101001001", {
        "category": "work_safety",
        "urgency": "urgent",
        "description": "村道旁废旧厂房墙体开裂，有倒塌危险，附近有儿童玩耍",
        "occurred_at": "2026-11-21T16:20:00+08:00",
        "location": _where(22.5881, 110.0533, "福西村村道旁废旧厂房"),
        "source": "door_knock",
    }),
    ("dispute_mediation", "sq_tiaojie", "450902001001002", {
        "dispute_type": "neighbourhood",
        "parties": [
            {"name": "刘建国", "role": "applicant", "id_card": id_card("450902", "19700815", "035"),
             "phone": "13807751111", "address": "大北路88号1栋102"},
            {"name": "唐海燕", "role": "respondent", "id_card": id_card("450902", "19820421", "046"),
             "phone": "13977562222", "address": "大北路88号1栋702"},
        ],
        "description": "顶楼住户将餐厨垃圾从下水管道排出，导致底层住户厨房反复堵塞，双方多次发生口角",
        "claims": "要求顶楼住户停止倾倒并承担疏通费用",
        "occurred_on": "2026-11-10",
        "dispute_place": "大北路88号1栋",
        "source": "screening",
        "risk_level": "medium",
        "has_extreme_behavior": False,
        "risk_factors": ["long_standing"],
        "stabilisation_measures": "网格员已上门安抚双方情绪，约定到“作退一步想”工作室面谈",
        "police_needed": False,
    }),
    ("dispute_mediation", "sq_tiaojie", "450902001001001", {
        "dispute_type": "property_management",
        "parties": [
            {"name": "城站小区业主委员会", "role": "applicant"},
            {"name": "玉林市某物业服务有限公司", "role": "respondent", "phone": "13707753333"},
        ],
        "description": "业主委员会与物业公司就物业费上调及公共收益分配发生争议",
        "occurred_on": "2026-11-05",
        "source": "party_application",
        "risk_level": "low",
        "amount": 86400.00,
        "involved_people": 300,
    }),
    ("resource_request", "sq_shuji", "450902001001", {
        "category": "materials",
        "item": "小区健身器材",
        "description": "为城站小区活动场地申请一套太阳能健身器材，含太空漫步机、太极推盘等",
        "quantity": 1,
        "unit": "套",
        "amount": 38600.00,
        "beneficiaries": ["all_residents", "elderly"],
        "beneficiary_count": 1200,
        "urgency": "normal",
        "justification": "小区活动场地没有健身设施，经党群议事会协商，居民一致希望配置",
        "deliberated": True,
        "expected_date": "2026-12-31",
        "contact_name": "城站社区书记",
        "contact_phone": "13877560001",
    }),
    ("resource_request", "sq_shuji", "450902001001", {
        "category": "personnel_service",
        "item": "四点半课堂志愿辅导",
        "description": "寒假期间为留守儿童开设四点半课堂，需要教育部门派驻志愿教师",
        "quantity": 4,
        "unit": "人",
        "amount": 0,
        "beneficiaries": ["children"],
        "beneficiary_count": 45,
        "urgency": "normal",
        "justification": "社区留守儿童较多，放学后无人看护辅导",
        "contact_name": "城站社区书记",
        "contact_phone": "13877560001",
    }),
]


def create_samples() -> int:
    """File the sample cases whose forms are loaded; return how many were stored."""
    stored = 0
    for i, (form_key, author, code, data) in enumerate(SAMPLES):
        version = latest_form(form_key)
        person = Person.get_or_none(Person.username == author)
        node = node_by_code(code)
        if version is None or person is None or node is None:
            continue
        sid = str(uuid.uuid5(NAMESPACE, f"{form_key}-{i}"))
        _, created = submit(person, version, node, data, sid)
        stored += created
    return stored
