"""The sub-centres known to the server and the spatial index over their jurisdictions.

Loaded from PostgreSQL at start-up; every process reloads when any process changes a jurisdiction
(NOTIFY liandong_subcentres), so routing never uses a stale map for long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from base import audit
from base.errors import DomainError
from base.pg import Pool
from gis.jurisdictions import Jurisdiction, Jurisdictions

log = logging.getLogger(__name__)

SUBCENTRES_CHANNEL = "liandong_subcentres"


@dataclass(frozen=True)
class Subcentre:
    id: int
    code: str
    name: str
    department: str
    site: tuple[float, float]
    area: BaseGeometry

    def feature(self) -> dict[str, Any]:
        """As a GeoJSON Feature (RFC 7946: WGS-84 lon/lat)."""
        return {
            "type": "Feature", "id": self.id,
            "properties": {"id": self.id, "code": self.code, "name": self.name, "department": self.department,
                           "site": {"lon": self.site[0], "lat": self.site[1]}},
            "geometry": shapely.geometry.mapping(self.area),
        }


class Directory:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.subcentres: dict[int, Subcentre] = {}
        self.jurisdictions = Jurisdictions([])

    async def load(self) -> None:
        rows = await self._pool.fetch(
            "SELECT id, code, name, department, site_lon, site_lat, jurisdiction FROM subcentres ORDER BY id")
        subcentres = {
            r["id"]: Subcentre(r["id"], r["code"], r["name"], r["department"], (r["site_lon"], r["site_lat"]),
                               shapely.geometry.shape(r["jurisdiction"]))
            for r in rows}
        # Built off the event loop: thousands of polygons take a moment, and tickets must not wait.
        index = await asyncio.to_thread(
            Jurisdictions, [Jurisdiction(s.id, s.department, s.area) for s in subcentres.values()])
        self.subcentres, self.jurisdictions = subcentres, index
        log.info("jurisdiction index built: %d sub-centres", len(subcentres))

    def check(self, code: str, department: str, jurisdiction: Mapping[str, Any]) -> BaseGeometry:
        """The jurisdiction as a polygon, if the sub-centre may be registered with it: a valid WGS-84
        polygon that overlaps no other sub-centre's of the same department; raises DomainError."""
        try:
            area = shapely.geometry.shape(jurisdiction)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, shapely.errors.GEOSException) as error:
            # GeoJSON's coordinates are free-form JSON until shapely reads them: any shape of nonsense
            raise DomainError(f"not a valid polygon: {error}", "jurisdiction") from None
        if not area.is_valid or area.is_empty:
            raise DomainError(f"not a valid polygon: {shapely.is_valid_reason(area)}", "jurisdiction")
        if not shapely.Polygon([(-180, -90), (180, -90), (180, 90), (-180, 90)]).covers(area):
            raise DomainError("coordinates must be WGS-84 lon/lat", "jurisdiction")
        if any(s.code == code for s in self.subcentres.values()):
            raise DomainError(f"sub-centre {code!r} exists", "code", "duplicate")
        if clash := self.jurisdictions.overlapping(department, area):
            names = ", ".join(self.subcentres[i].code for i in clash)
            raise DomainError(f"the jurisdiction overlaps that of {names} in the same department; shrink theirs"
                              " first", "jurisdiction", "overlap")
        return area

    async def add(self, code: str, name: str, department: str, site: tuple[float, float],
                  area: BaseGeometry, actor: audit.Actor) -> int:
        """Register a sub-centre; every process (this one included) reloads on the announcement."""
        entry = audit.Entry(actor, "subcentre.register", f"subcentre:{code}", details={"department": department})
        async with audit.recorded(self._pool, entry) as connection:
            subcentre_id: int = await connection.fetchval(
                "INSERT INTO subcentres (code, name, department, site_lon, site_lat, jurisdiction)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                code, name, department, site[0], site[1], shapely.geometry.mapping(area))
            await connection.execute("SELECT pg_notify($1, '')", SUBCENTRES_CHANNEL)
        return subcentre_id
