"""The demo licensing hall's catalogue of approval items: 33 items of 9 departments, with the legal
limits their regulations give and the shorter limits a hall promises (承诺时限), in working days."""

from __future__ import annotations

import logging

from base import audit
from base.accounts import NameTaken, Role, create_user
from base.pg import Pool
from efficiency.card_escalation import Contact, Contacts, set_contacts
from efficiency.items import ApprovalItem, Stage
from efficiency.simulator import PLATFORM_ACCOUNT
from efficiency.store import save_item

log = logging.getLogger(__name__)
SHORT = [Stage.ACCEPT, Stage.APPROVE, Stage.COMPLETE]  # items a window decides on the spot

# (department, code, name, legal days, promised days, fee in yuan, required documents, short?)
_CATALOGUE: list[tuple[str, str, str, int, int, float, list[str], bool]] = [
    ("市场监管局", "SC-001", "食品经营许可", 20, 10, 0, ["营业执照", "食品安全管理制度"], False),
    ("市场监管局", "SC-002", "食品生产许可", 20, 15, 0, ["营业执照", "生产场所平面图"], False),
    ("市场监管局", "SC-003", "药品零售企业经营许可", 30, 15, 0, ["营业执照", "执业药师证"], False),
    ("市场监管局", "SC-004", "企业设立登记", 15, 3, 0, ["公司章程", "股东身份证明"], False),
    ("市场监管局", "SC-005", "个体工商户登记", 15, 1, 0, ["经营者身份证"], True),
    ("自然资源和规划局", "ZR-001", "建设用地规划许可", 20, 15, 0, ["用地申请", "规划设计条件"], False),
    ("自然资源和规划局", "ZR-002", "建设工程规划许可", 20, 15, 0, ["设计方案", "土地权属证明"], False),
    ("自然资源和规划局", "ZR-003", "不动产首次登记", 30, 10, 80, ["权属来源证明", "身份证明"], False),
    ("自然资源和规划局", "ZR-004", "不动产转移登记", 30, 5, 80, ["买卖合同", "完税凭证"], False),
    ("住房和城乡建设局", "ZJ-001", "建筑工程施工许可", 15, 7, 0, ["建设工程规划许可证", "施工合同"], False),
    ("住房和城乡建设局", "ZJ-002", "商品房预售许可", 20, 10, 0, ["工程进度证明", "预售方案"], False),
    ("住房和城乡建设局", "ZJ-003", "建筑业企业资质", 20, 15, 0, ["营业执照", "人员证书"], False),
    ("住房和城乡建设局", "ZJ-004", "城镇污水排入排水管网许可", 15, 7, 0, ["排水方案"], False),
    ("交通运输局", "JT-001", "道路运输经营许可", 20, 10, 0, ["车辆行驶证", "驾驶员资格证"], False),
    ("交通运输局", "JT-002", "出租汽车经营许可", 20, 15, 0, ["营业执照", "车辆购置证明"], False),
    ("交通运输局", "JT-003", "公路超限运输许可", 15, 5, 0, ["车辆行驶证", "通行路线"], False),
    ("卫生健康委", "WJ-001", "医疗机构执业许可", 45, 20, 0, ["设置批准书", "人员执业证书"], False),
    ("卫生健康委", "WJ-002", "公共场所卫生许可", 20, 10, 0, ["营业执照", "卫生检测报告"], False),
    ("卫生健康委", "WJ-003", "医师执业注册", 20, 10, 0, ["医师资格证", "体检证明"], False),
    ("卫生健康委", "WJ-004", "母婴保健技术服务许可", 30, 20, 0, ["人员合格证书"], False),
    ("人力资源和社会保障局", "RS-001", "劳务派遣经营许可", 20, 10, 0, ["营业执照", "注册资本证明"], False),
    ("人力资源和社会保障局", "RS-002", "人力资源服务许可", 20, 10, 0, ["营业执照", "办公场所证明"], False),
    ("人力资源和社会保障局", "RS-003", "社会保障卡申领", 10, 1, 0, ["身份证"], True),
    ("公安局", "GA-001", "居民身份证申领", 60, 20, 20, ["户口簿"], True),
    ("公安局", "GA-002", "普通护照签发", 7, 5, 120, ["身份证"], False),
    ("公安局", "GA-003", "户口迁移", 20, 5, 0, ["准迁证明", "户口簿"], False),
    ("公安局", "GA-004", "大型群众性活动安全许可", 7, 5, 0, ["活动方案", "安全工作方案"], False),
    ("税务局", "SW-001", "增值税专用发票最高开票限额审批", 20, 10, 0, ["营业执照"], False),
    ("税务局", "SW-002", "纳税人延期缴纳税款核准", 20, 15, 0, ["资产负债表", "延期申请"], False),
    ("税务局", "SW-003", "发票领用", 5, 1, 0, ["经办人身份证"], True),
    ("生态环境局", "HB-001", "建设项目环境影响报告书审批", 60, 30, 0, ["环境影响报告书"], False),
    ("生态环境局", "HB-002", "排污许可", 20, 15, 0, ["排污许可申请表", "监测方案"], False),
    ("生态环境局", "HB-003", "危险废物经营许可", 20, 15, 0, ["设施证明", "技术人员证明"], False),
]


def catalogue() -> list[ApprovalItem]:
    return [ApprovalItem(department=d, code=code, name=name, legal_days=legal, promised_days=promised,
                         fee_limit_yuan=fee, required_documents=documents, stages=SHORT if short else list(Stage))
            for d, code, name, legal, promised, fee, documents, short in _CATALOGUE]


async def seed_items(pool: Pool) -> bool:
    """The demo catalogue and each department's contacts, into an empty item table; False if there were items
    already."""
    if await pool.fetchval("SELECT EXISTS (SELECT 1 FROM approval_items)"):
        return False
    for item in catalogue():
        await save_item(pool, item, audit.SYSTEM)
    departments = sorted({row[0] for row in _CATALOGUE})
    for n, department in enumerate(departments, start=1):  # phones the demo's SMS gateway would reach
        await set_contacts(pool, Contacts(department, Contact(f"{department}窗口科", "sms", f"1390000{n:04d}"),
                                          Contact(f"{department}分管领导", "sms", f"1391000{n:04d}")), audit.SYSTEM)
    log.info("demo approval items loaded: %d items of %d departments", len(_CATALOGUE),
             len({row[0] for row in _CATALOGUE}))
    return True


async def seed_platform(pool: Pool, password: str) -> bool:
    """The hall's approval platform account (a system of every department), which the simulator pushes as."""
    try:  # several servers may start at once on one database: the first one makes it
        await create_user(pool, PLATFORM_ACCOUNT, "市民中心统一审批平台", password, Role.SYSTEM,
                          departments=sorted({row[0] for row in _CATALOGUE}))
    except NameTaken:
        return False
    return True


async def hall_windows(pool: Pool) -> dict[str, str]:
    """Each hall department's first window with a camera (department → window label)."""
    rows = await pool.fetch("SELECT DISTINCT ON (c.department) c.department, c.window_label FROM cameras c"
                            " WHERE c.department IN (SELECT department FROM approval_items)"
                            " ORDER BY c.department, c.id")
    return {r["department"]: r["window_label"] for r in rows}
