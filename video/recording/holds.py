"""Holds on recordings: a span of one camera's recording kept past retention while something still
needs it as evidence (the efficiency supervision holds a window's recording while a red card or a
complaint about it is open). Whoever places a hold names it by a reference and releases it by that.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from base.pg import Connection, Pool

# A segment `s` no active hold covers (for retention's WHERE clauses).
NOT_HELD = ("NOT EXISTS (SELECT 1 FROM recording_holds h WHERE h.camera_id = s.camera_id AND h.released_at IS NULL"
            " AND s.ended_at > h.since AND (h.until IS NULL OR s.started_at < h.until))")


async def place(connection: Connection, camera_id: int, since: datetime, until: datetime | None,
                reference: str) -> None:
    """Hold `camera_id`'s recording from `since` to `until` (None: on) for `reference`; placing it again
    widens nothing and is harmless."""
    await connection.execute(
        "INSERT INTO recording_holds (camera_id, since, until, reference) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (reference, camera_id) DO NOTHING", camera_id, since, until, reference)


async def active(connection: Connection | Pool, prefix: str) -> list[str]:
    """The references of active holds starting with `prefix`."""
    rows = await connection.fetch("SELECT DISTINCT reference FROM recording_holds WHERE released_at IS NULL"
                                  " AND starts_with(reference, $1)", prefix)
    return [r["reference"] for r in rows]


async def release(connection: Connection | Pool, references: Sequence[str]) -> int:
    """Release the holds of `references`: retention treats their recording as any other again."""
    rows = await connection.fetch("UPDATE recording_holds SET released_at = now() WHERE released_at IS NULL"
                                  " AND reference = ANY($1::text[]) RETURNING id", list(references))
    return len(rows)


async def of_camera(pool: Pool, camera_id: int) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT id, since, until, reference, placed_at, released_at FROM recording_holds"
                            " WHERE camera_id = $1 ORDER BY id DESC LIMIT 200", camera_id)
    return [dict(r.items()) for r in rows]
