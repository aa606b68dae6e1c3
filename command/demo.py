"""Demo data on real geography: the sub-centres of 宜昌市 (Yichang) and the demo accounts.

Fire stations and hospitals split the city between them (Voronoi cells of their sites, clipped to
the districts); the other departments each have one sub-centre for the whole city. Sites are
approximate WGS-84 positions in each district's seat. Loaded only into an empty database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from command.accounts import Role, create_user
from dispatch.pg import Pool
from gis.boundaries import city_area, yichang_districts
from gis.partition import voronoi_cells

log = logging.getLogger(__name__)

DEMO_PASSWORD = "liandong"

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


async def seed(pool: Pool) -> bool:
    """Load the demo data if there are no sub-centres yet; True if it did."""
    rows = demo_subcentres()

    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("LOCK TABLE subcentres IN EXCLUSIVE MODE")  # two servers starting at once
        if await connection.fetchval("SELECT count(*) FROM subcentres"):
            return False
        for row in rows:
            subcentre_id = await connection.fetchval(
                "INSERT INTO subcentres (code, name, department, site_lon, site_lat, jurisdiction)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                row.code, row.name, row.department, *row.site, shapely.geometry.mapping(row.area))
            await create_user(connection, row.code, f"{row.name}值班员", DEMO_PASSWORD, Role.OPERATOR, subcentre_id)
        await create_user(connection, "dispatcher", "指挥中心调度员", DEMO_PASSWORD, Role.DISPATCHER)
        await create_user(connection, "supervisor", "监控中心值班长", DEMO_PASSWORD, Role.SUPERVISOR)
    log.info("demo data loaded: %d sub-centres and their operator accounts", len(rows))
    return True
