"""The recording index in PostgreSQL, and the supervisor that runs one recorder per camera.

With several server processes, each camera is recorded by exactly one: a recorder runs only while
its process holds the camera's advisory lock, on a connection of its own; if the process dies the
lock goes with it and another process takes the camera over on its next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from pathlib import Path

import asyncpg

from command.database import connect
from dispatch.pg import Connection, Pool
from video.ffmpeg import segment_dir
from video.recorder import Recorder, Segment

log = logging.getLogger(__name__)

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

    async def gap_closed(self, at: datetime) -> None:
        await self._pool.execute(
            "UPDATE recording_gaps SET ended_at = greatest($2, started_at) WHERE camera_id = $1 AND ended_at IS NULL",
            self._camera_id, at)


class RecordingSupervisor:
    def __init__(self, pool: Pool, url: str, ffmpeg: str, root: Path, segment_s: int, pass_s: float = 2.0) -> None:
        self._pool = pool
        self._url = url
        self._ffmpeg = ffmpeg
        self._root = root
        self._segment_s = segment_s
        self._pass_s = pass_s
        self.recorders: dict[int, asyncio.Task[None]] = {}

    async def run(self) -> None:
        while True:
            try:
                connection = await connect(self._url, "liandong-recorders")
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("recording supervisor cannot connect (%s); retrying", error)
                await asyncio.sleep(self._pass_s)
                continue
            try:
                while not connection.is_closed():
                    await self._pass(connection)
                    await asyncio.sleep(self._pass_s)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("recording supervisor lost its connection (%s); the camera locks went with it", error)
            finally:
                await self._stop_all()  # without the locks, another process may record these cameras now
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _pass(self, connection: Connection) -> None:
        cameras = {r["id"]: r for r in await connection.fetch("SELECT id, code, main_url FROM cameras")}
        for camera_id, task in list(self.recorders.items()):
            if camera_id not in cameras or task.done():
                task.cancel()
                del self.recorders[camera_id]
                await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_BASE + camera_id)
        for camera_id, camera in cameras.items():
            if camera_id in self.recorders:
                continue
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_BASE + camera_id):
                continue  # another server process records it
            recorder = Recorder(self._ffmpeg, camera["main_url"], segment_dir(self._root, camera["code"]),
                                self._segment_s, PgIndex(self._pool, camera_id), camera["code"])
            self.recorders[camera_id] = asyncio.create_task(recorder.run(), name=f"recorder-{camera['code']}")

    async def _stop_all(self) -> None:
        for task in self.recorders.values():
            task.cancel()
        for task in self.recorders.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.recorders.clear()
