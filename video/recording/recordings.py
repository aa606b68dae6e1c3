"""The recording index in PostgreSQL, and one recorder per camera this process holds: with several
server processes, each camera is recorded by exactly one (video.claims)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from pathlib import Path

from base.pg import Pool
from video.claims import Camera, CameraWork, Claims
from video.recording.ffmpeg import segment_dir
from video.recording.recorder import Recorder, Segment

_LOCK_BASE = 727_100_000  # + camera id


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


class Recording(CameraWork):
    """One recorder per camera this process holds (see video.claims)."""

    def __init__(self, pool: Pool, ffmpeg: str, root: Path, segment_s: int) -> None:
        self._pool = pool
        self._ffmpeg = ffmpeg
        self._root = root
        self._segment_s = segment_s
        self.recorders: dict[int, asyncio.Task[None]] = {}

    async def start(self, camera: Camera) -> None:
        recorder = Recorder(self._ffmpeg, camera["main_url"], segment_dir(self._root, camera["code"]),
                            self._segment_s, PgIndex(self._pool, camera["id"]), camera["code"])
        self.recorders[camera["id"]] = asyncio.create_task(recorder.run(), name=f"recorder-{camera['code']}")

    async def stop(self, camera_id: int) -> None:
        task = self.recorders.pop(camera_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def failed(self, camera_id: int) -> bool:
        task = self.recorders.get(camera_id)
        return task is not None and task.done()


def recording(pool: Pool, url: str, ffmpeg: str, root: Path, segment_s: int) -> Claims:
    return Claims(url, _LOCK_BASE, "recorders", Recording(pool, ffmpeg, root, segment_s))
