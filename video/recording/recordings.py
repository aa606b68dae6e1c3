"""The recording index in PostgreSQL: where each camera's recorder (video.recording.recorder) reports
its segments and gaps."""

from __future__ import annotations

from datetime import datetime

from base.pg import Pool
from video.recording.recorder import Segment


class PgIndex:
    def __init__(self, pool: Pool, camera_id: int) -> None:
        self._pool = pool
        self._camera_id = camera_id

    async def segment(self, segment: Segment) -> None:
        await self._pool.execute(
            "INSERT INTO segments (camera_id, started_at, ended_at, bytes, path) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (path) DO NOTHING",
            self._camera_id, segment.started_at, segment.ended_at, segment.bytes, str(segment.path))

    async def gap_opened(self, at: datetime, reason: str) -> None:
        await self._pool.execute(
            "INSERT INTO recording_gaps (camera_id, started_at, reason) SELECT $1, $2, $3"
            " WHERE NOT EXISTS (SELECT 1 FROM recording_gaps WHERE camera_id = $1 AND ended_at IS NULL)",
            self._camera_id, at, reason[:1000])

    async def last_end(self) -> datetime | None:
        end: datetime | None = await self._pool.fetchval(
            "SELECT max(ended_at) FROM segments WHERE camera_id = $1", self._camera_id)
        return end

    async def gap_closed(self, at: datetime) -> None:
        await self._pool.execute(
            "UPDATE recording_gaps SET ended_at = greatest($2, started_at) WHERE camera_id = $1 AND ended_at IS NULL",
            self._camera_id, at)
