"""Decision support (决策支持) for one incident: who is nearest, what lies in the affected area, and
what happened near here before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import shapely

from command.errors import RequestError
from command.services import Services
from dispatch.taxonomy import Severity
from gis.areas import circle
from gis.distance import degrees_around, metres

_PER_DEPARTMENT = 5


async def support(services: Services, incident_id: int) -> dict[str, Any]:
    row = await services.pool.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
    if row is None:
        raise RequestError(404, "not_found", f"incident {incident_id} does not exist", "id")
    lon, lat = row["lon"], row["lat"]
    point = shapely.Point(lon, lat)

    # Sub-centres by distance from their site, nearest few per department; travel time would need a
    # road network, which is not loaded.
    by_department: dict[str, list[dict[str, Any]]] = {}
    for subcentre in services.directory.subcentres.values():
        by_department.setdefault(subcentre.department, []).append({
            "id": subcentre.id, "name": subcentre.name, "department": subcentre.department,
            "distance_m": round(metres(lon, lat, *subcentre.site), 1),
            "jurisdiction_covers": bool(subcentre.area.covers(point))})
    nearest = {d: sorted(found, key=lambda s: s["distance_m"])[:_PER_DEPARTMENT] for d, found in by_department.items()}

    decision = services.config.decision
    radius = decision.affected_radius_m[Severity(row["severity"]).name]
    inside = [{"name": f.name, "kind": f.kind, "location": {"lon": f.lon, "lat": f.lat},
               "distance_m": round(distance, 1)} for f, distance in services.facilities.within(lon, lat, radius)]

    d_lon, d_lat = degrees_around(lat, decision.similar_radius_m)
    earlier = await services.pool.fetch(
        "SELECT * FROM incidents WHERE type_code = $1 AND id <> $2 AND created_at BETWEEN $3 AND $4"
        " AND lon BETWEEN $5 AND $6 AND lat BETWEEN $7 AND $8 ORDER BY created_at DESC LIMIT 200",
        row["type_code"], incident_id, row["created_at"] - timedelta(days=decision.similar_days), row["created_at"],
        lon - d_lon, lon + d_lon, lat - d_lat, lat + d_lat)
    similar = []
    for other in earlier:
        distance = metres(lon, lat, other["lon"], other["lat"])
        if distance <= decision.similar_radius_m:
            similar.append({**services.views.incident(other), "distance_m": round(distance, 1)})

    d_lon, d_lat = degrees_around(lat, decision.camera_radius_m)
    nearby = await services.pool.fetch(
        "SELECT id, code, name, department, window_label, lon, lat FROM cameras"
        " WHERE lon BETWEEN $1 AND $2 AND lat BETWEEN $3 AND $4", lon - d_lon, lon + d_lon, lat - d_lat, lat + d_lat)
    cameras = sorted(({"id": c["id"], "code": c["code"], "name": c["name"], "department": c["department"],
                       "window": c["window_label"], "location": {"lon": c["lon"], "lat": c["lat"]},
                       "distance_m": round(metres(lon, lat, c["lon"], c["lat"]), 1)} for c in nearby),
                     key=lambda c: c["distance_m"])

    return {
        "incident": services.views.incident(row),
        "cameras": [c for c in cameras if c["distance_m"] <= decision.camera_radius_m],
        "nearest_subcentres": nearest,
        "affected_area": {"radius_m": radius, "geometry": shapely.geometry.mapping(circle(lon, lat, radius)),
                          "facilities": inside},
        "similar_incidents": similar,
    }
