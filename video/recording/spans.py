"""What the index says was recorded: a camera's segments over a time range and the holes in it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from base.pg import Pool
from video.recording.evidence import Piece
from video.recording.gaps import Hole, Stored, holes


async def pieces(pool: Pool, camera_id: int, since: datetime, until: datetime) -> list[Piece]:
    """The camera's segments overlapping [since, until), in time order. Retention deletes a segment's
    row before its file, so every indexed segment is on disk."""
    rows = await pool.fetch(
        "SELECT path, started_at, ended_at FROM segments WHERE camera_id = $1 AND ended_at > $2 AND started_at < $3"
        " ORDER BY started_at", camera_id, since, until)
    return [Piece(Path(r["path"]), r["started_at"], r["ended_at"]) for r in rows]


async def unrecorded(pool: Pool, camera_id: int, recorded: list[Piece], since: datetime,
                     until: datetime) -> list[Hole]:
    """The unrecorded stretches of the range (up to now), with the recorder's reasons."""
    rows = await pool.fetch(
        "SELECT started_at, ended_at, reason FROM recording_gaps WHERE camera_id = $1"
        " AND coalesce(ended_at, 'infinity') > $2 AND started_at < $3 ORDER BY started_at", camera_id, since, until)
    stored = [Stored(r["started_at"], r["ended_at"], r["reason"]) for r in rows]
    return holes(recorded, since, min(until, datetime.now(UTC)), stored)
