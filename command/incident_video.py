"""An incident's video: the recordings of the cameras near it, kept as evidence.

As an incident opens, the cameras within the decision-support radius (`[decision] camera_radius_m`)
have their recordings held against retention from `[decision] video_before_min` minutes before it was
reported, for as long as it is open; as it closes, each hold ends at the closing time. The holds stay
until a supervisor releases them. This runs as a pass beside the dispatch path, never in it: a
ticket is not delayed for evidence, and the minutes before the report are still on disk seconds later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from base.pg import Pool
from gis.distance import metres

_BATCH = 200
_MARGIN = 1000  # ids below the highest looked at that may still be new


def reference(incident_id: int) -> str:
    return f"incident:{incident_id}"


class IncidentVideo:
    def __init__(self, pool: Pool, radius_m: float, before: timedelta) -> None:
        self._pool = pool
        self._radius_m = radius_m
        self._before = before

    async def sweep(self) -> int:
        """Hold the recordings around incidents not yet looked at, and end the holds of incidents that
        have closed; how many incidents were newly held. A few statements a pass, however many
        incidents came in: this runs beside a dispatch surge."""
        # Only ids near or past the last one looked at (a surge's day of incidents is not re-read every
        # pass); the margin catches an incident whose transaction committed after a later id's.
        fresh = await self._pool.fetch(
            "SELECT i.id, i.lon, i.lat, i.created_at FROM incidents i WHERE i.created_at > now() - interval '1 day'"
            " AND i.id > (SELECT coalesce(max(incident_id), 0) - $2 FROM incident_evidence)"
            " AND NOT EXISTS (SELECT 1 FROM incident_evidence e WHERE e.incident_id = i.id) ORDER BY i.id LIMIT $1",
            _BATCH, _MARGIN)
        if fresh:
            cameras = await self._pool.fetch("SELECT id, lon, lat FROM cameras")
            holds: list[tuple[int, datetime, str]] = []
            counts = []
            for incident in fresh:
                near = [c["id"] for c in cameras
                        if metres(incident["lon"], incident["lat"], c["lon"], c["lat"]) <= self._radius_m]
                holds += [(camera_id, incident["created_at"] - self._before, reference(incident["id"]))
                          for camera_id in near]
                counts.append(len(near))
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute(
                    "INSERT INTO recording_holds (camera_id, since, reference)"
                    " SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::text[]) ON CONFLICT DO NOTHING",
                    [h[0] for h in holds], [h[1] for h in holds], [h[2] for h in holds])
                await connection.execute(
                    "INSERT INTO incident_evidence (incident_id, cameras) SELECT * FROM unnest($1::bigint[], $2::int[])"
                    " ON CONFLICT DO NOTHING", [i["id"] for i in fresh], counts)
        # A closed incident's holds end where it closed (they stay until a supervisor releases them).
        await self._pool.execute(
            "UPDATE recording_holds h SET until = i.closed_at FROM incidents i"
            " WHERE h.until IS NULL AND h.released_at IS NULL AND starts_with(h.reference, 'incident:')"
            " AND h.reference = 'incident:' || i.id AND i.closed_at IS NOT NULL")
        return len(fresh)


async def held(pool: Pool, incident_id: int) -> list[dict[str, Any]]:
    """The holds on this incident's cameras, with each camera."""
    rows = await pool.fetch(
        "SELECT h.id, h.camera_id, c.code, c.name, c.department, h.since, h.until, h.placed_at, h.released_at"
        " FROM recording_holds h JOIN cameras c ON c.id = h.camera_id WHERE h.reference = $1 ORDER BY c.code",
        reference(incident_id))
    return [dict(r.items()) for r in rows]
