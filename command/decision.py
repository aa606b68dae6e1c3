"""Decision support (决策支持) for one incident: who is nearest, what lies in the affected area, and
what happened near here before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import shapely

from base.errors import DomainError
from base.pg import Pool
from command.settings import DecisionConfig
from dispatch.directory import Directory
from dispatch.taxonomy import Severity
from dispatch.views import Views
from gis.areas import Facilities, circle
from gis.distance import degrees_around, metres
from video.cameras.registry import cameras_near

_PER_DEPARTMENT = 5


async def support(pool: Pool, views: Views, directory: Directory, facilities: Facilities, settings: DecisionConfig,
                  incident_id: int) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
    if row is None:
        raise DomainError(f"incident {incident_id} does not exist", "id", "not_found")
    lon, lat = row["lon"], row["lat"]
    point = shapely.Point(lon, lat)

    # Sub-centres by distance from their site, nearest few per department; travel time would need a
    # road network, which is not loaded.
    by_department: dict[str, list[dict[str, Any]]] = {}
    for subcentre in directory.subcentres.values():
        by_department.setdefault(subcentre.department, []).append({
            "id": subcentre.id, "name": subcentre.name, "department": subcentre.department,
            "distance_m": round(metres(lon, lat, *subcentre.site), 1),
            "jurisdiction_covers": bool(subcentre.area.covers(point))})
    nearest = {d: sorted(found, key=lambda s: s["distance_m"])[:_PER_DEPARTMENT] for d, found in by_department.items()}

    decision = settings
    radius = decision.affected_radius_m[Severity(row["severity"]).name]
    inside = [{"name": f.name, "kind": f.kind, "location": {"lon": f.lon, "lat": f.lat},
               "distance_m": round(distance, 1)} for f, distance in facilities.within(lon, lat, radius)]

    d_lon, d_lat = degrees_around(lat, decision.similar_radius_m)
    earlier = await pool.fetch(
        "SELECT * FROM incidents WHERE type_code = $1 AND id <> $2 AND created_at BETWEEN $3 AND $4"
        " AND lon BETWEEN $5 AND $6 AND lat BETWEEN $7 AND $8 ORDER BY created_at DESC LIMIT 200",
        row["type_code"], incident_id, row["created_at"] - timedelta(days=decision.similar_days), row["created_at"],
        lon - d_lon, lon + d_lon, lat - d_lat, lat + d_lat)
    similar = []
    for other in earlier:
        distance = metres(lon, lat, other["lon"], other["lat"])
        if distance <= decision.similar_radius_m:
            similar.append({**views.incident(other), "distance_m": round(distance, 1)})

    cameras = await cameras_near(pool, lon, lat, decision.camera_radius_m)

    return {
        "incident": views.incident(row),
        "cameras": cameras,
        "nearest_subcentres": nearest,
        "affected_area": {"radius_m": radius, "geometry": shapely.geometry.mapping(circle(lon, lat, radius)),
                          "facilities": inside},
        "similar_incidents": similar,
    }
