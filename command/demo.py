"""Demo data on real geography: the sub-centres of 宜昌市 (Yichang) and the demo accounts.

Fire stations and hospitals split the city between them (Voronoi cells of their sites, clipped to
the districts); the other departments each have one sub-centre for the whole city. Sites are
approximate WGS-84 positions in each district's seat. Loaded only into an empty database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import msgspec
import shapely
from shapely.geometry.base import BaseGeometry

from base.accounts import Role, create_user
from base.pg import Pool
from command.plans import DepartmentOrder, PlanBody, Recipient
from dispatch.deadlines import StageLimits
from gis.boundaries import city_area, yichang_districts
from gis.partition import voronoi_cells

log = logging.getLogger(__name__)

DEMO_PASSWORD = "liandong-demo"  # every demo account's; strong enough for the password rule, public all the same

# (code, name, lon, lat)
FIRE_STATIONS = [
    ("fire-xiling", "西陵消防站", 111.290, 30.700),
    ("fire-wujiagang", "伍家岗消防站", 111.360, 30.650),
    ("fire-dianjun", "点军消防站", 111.200, 30.600),
    ("fire-xiaoting", "猇亭消防站", 111.430, 30.530),
    ("fire-yiling", "夷陵消防站", 111.330, 30.770),
    ("fire-fenxiang", "分乡消防站", 111.200, 31.000),
    ("fire-yidu", "宜都消防站", 111.450, 30.380),
    ("fire-dangyang", "当阳消防站", 111.790, 30.820),
    ("fire-zhijiang", "枝江消防站", 111.760, 30.430),
    ("fire-yuanan", "远安消防站", 111.640, 31.060),
    ("fire-xingshan", "兴山消防站", 110.750, 31.350),
    ("fire-zigui", "秭归消防站", 110.980, 30.830),
    ("fire-changyang", "长阳消防站", 111.200, 30.470),
    ("fire-wufeng", "五峰消防站", 110.670, 30.200),
]
HOSPITALS = [
    ("health-central", "宜昌市中心人民医院", 111.290, 30.700),
    ("health-dangyang", "当阳市人民医院", 111.790, 30.820),
    ("health-changyang", "长阳县人民医院", 111.200, 30.470),
    ("health-xingshan", "兴山县人民医院", 110.750, 31.350),
]
CITY_WIDE = [
    ("water", "water", "宜昌市水务局", 111.300, 30.710),
    ("civil-defence", "civil_defence", "宜昌市人防办", 111.295, 30.705),
    ("earthquake", "earthquake", "宜昌市地震办", 111.305, 30.715),
    ("civil-affairs", "civil_affairs", "宜昌市民政局", 111.285, 30.695),
]


def _plan(name: str, types: list[str], levels: list[int], departments: dict[str, list[str]],
          deliver_s: int = 30, acknowledge_s: int = 60, feedback_s: int = 4 * 3600, public_warning: bool = False,
          notify: list[Recipient] | None = None) -> PlanBody:
    return PlanBody(name=name, types=types, levels=levels,
                    departments=[DepartmentOrder(code, tasks) for code, tasks in departments.items()],
                    limits=StageLimits(deliver_s, acknowledge_s, feedback_s), notify=notify or [],
                    public_warning=public_warning)


_LEADER = Recipient("分管副市长 deputy mayor on duty", "sms", "13800000001")
_DUTY_OFFICE = Recipient("市应急管理局值班室 duty office", "email", "duty@yichang-emergency.example")

# Plans for the six sub-centres. Types without a plan go to the departments config.toml makes
# responsible for them.
DEMO_PLANS: dict[str, PlanBody] = {
    "fire": _plan("火灾事故处置预案", ["201", "105"], [1, 2, 3, 4], {
        "fire": ["出动灭火救援力量", "核实被困人员", "设置警戒区"]}, deliver_s=15, acknowledge_s=45),
    "fire-major": _plan("重大火灾事故处置预案", ["201"], [1, 2], {
        "fire": ["出动灭火救援力量", "核实被困人员", "设置警戒区", "请求增援"],
        "health": ["派出急救力量", "通知定点医院"], "civil_affairs": ["临时安置受灾群众"]},
        deliver_s=15, acknowledge_s=30, notify=[_LEADER]),
    "traffic": _plan("交通事故处置预案", ["202"], [1, 2, 3, 4], {
        "fire": ["破拆救援被困人员"], "health": ["现场急救", "转运伤员"]}),
    "hazmat": _plan("危险化学品事故处置预案", ["203"], [1, 2, 3, 4], {
        "fire": ["侦检泄漏物", "堵漏洗消"], "health": ["中毒人员救治"], "civil_defence": ["防化侦检", "人员疏散"]},
        deliver_s=15, acknowledge_s=30),
    "flood": _plan("洪涝灾害处置预案", ["101"], [3, 4], {"water": ["巡查堤防", "组织排涝"]}),
    "flood-severe": _plan("重大洪涝灾害处置预案", ["101"], [1, 2], {
        "water": ["巡查堤防", "组织排涝", "调度水库泄洪"],
        "civil_defence": ["启用人防工程避险", "启动防空警报设施预警"],
        "civil_affairs": ["开放应急避难场所", "调拨救灾物资"], "health": ["派出医疗防疫队"]},
        deliver_s=15, acknowledge_s=30, public_warning=True, notify=[_LEADER, _DUTY_OFFICE]),
    "quake": _plan("一般地震处置预案", ["103"], [3, 4], {"earthquake": ["速报震情", "开展灾情调查"]}),
    "quake-major": _plan("重大地震灾害处置预案", ["103"], [1, 2], {
        "earthquake": ["速报震情", "组织余震监测"], "fire": ["搜救被困人员"], "water": ["排查水库大坝险情"],
        "civil_defence": ["启用人防工程避险"], "civil_affairs": ["开放应急避难场所", "调拨救灾物资"],
        "health": ["派出医疗队", "启动伤员救治"]},
        deliver_s=15, acknowledge_s=30, public_warning=True, notify=[_LEADER, _DUTY_OFFICE]),
    "public-health": _plan("突发公共卫生事件处置预案", ["3"], [1, 2, 3, 4], {
        "health": ["流行病学调查", "救治患者", "报告疫情"]}),
}


@dataclass(frozen=True)
class DemoSubcentre:
    code: str
    name: str
    department: str
    site: tuple[float, float]
    area: BaseGeometry  # WGS-84


def demo_subcentres() -> list[DemoSubcentre]:
    area = city_area(yichang_districts())
    subcentres: list[DemoSubcentre] = []
    for department, sites in (("fire", FIRE_STATIONS), ("health", HOSPITALS)):
        cells = voronoi_cells([(lon, lat) for _, _, lon, lat in sites], area)
        for (code, name, lon, lat), cell in zip(sites, cells, strict=True):
            subcentres.append(DemoSubcentre(code, name, department, (lon, lat), cell))
    subcentres += [DemoSubcentre(code, name, department, (lon, lat), area)
                   for code, department, name, lon, lat in CITY_WIDE]
    return subcentres


def backups(subcentres: list[DemoSubcentre]) -> dict[str, str]:
    """Each station's backup: the nearest other sub-centre of its department (none if it is alone)."""
    chosen: dict[str, str] = {}
    for s in subcentres:
        others = [o for o in subcentres if o.department == s.department and o.code != s.code]
        if others:
            chosen[s.code] = min(others, key=lambda o: (o.site[0] - s.site[0]) ** 2 + (o.site[1] - s.site[1]) ** 2).code
    return chosen


async def seed(pool: Pool) -> bool:
    """Load the demo data if there are no sub-centres yet; True if it did."""
    rows = demo_subcentres()

    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("LOCK TABLE subcentres IN EXCLUSIVE MODE")  # two servers starting at once
        if await connection.fetchval("SELECT count(*) FROM subcentres"):
            return False
        ids: dict[str, int] = {}
        for n, row in enumerate(rows):
            # Demo contacts: numbers in the 138 0717 block, mail under example (RFC 2606).
            ids[row.code] = await connection.fetchval(
                "INSERT INTO subcentres (code, name, department, site_lon, site_lat, jurisdiction, duty_phone,"
                " leader_name, leader_phone, leader_email) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " RETURNING id",
                row.code, row.name, row.department, *row.site, shapely.geometry.mapping(row.area),
                f"1380717{n:04d}", f"{row.name}负责人", f"1380717{5000 + n:04d}", f"{row.code}@yichang.example")
            await create_user(connection, row.code, f"{row.name}值班员", DEMO_PASSWORD, Role.OPERATOR, ids[row.code])
        for code, backup in backups(rows).items():
            await connection.execute("UPDATE subcentres SET backup_subcentre_id = $2 WHERE id = $1",
                                     ids[code], ids[backup])
        await create_user(connection, "dispatcher", "指挥中心调度员", DEMO_PASSWORD, Role.DISPATCHER)
        for key, body in DEMO_PLANS.items():
            await connection.execute("INSERT INTO plans (key, version, body) VALUES ($1, 1, $2)",
                                     key, msgspec.to_builtins(body))
        await create_user(connection, "supervisor", "监控中心值班长", DEMO_PASSWORD, Role.SUPERVISOR)
        await create_user(connection, "admin", "系统管理员", DEMO_PASSWORD, Role.ADMINISTRATOR)
    log.info("demo data loaded: %d sub-centres, their operator accounts, %d plans", len(rows), len(DEMO_PLANS))
    return True
