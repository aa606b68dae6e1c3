"""Each camera's work (recording, analysis) done by exactly one server process.

A process works on a camera only while it holds the camera's advisory lock, on a connection of its
own; if the process dies the lock goes with it, and another process takes the camera over on its
next pass. A camera whose registration changed is stopped and started again with the new one.

Each process takes at most its share of the cameras (all of them over the processes claiming), so
several nodes split the work and a node's death costs only its own share; a process never lets a
camera go to even the load out (that would cost a recording gap), but once another dies the
survivors' shares grow and they take its cameras.

A process that freezes (stopped, swapped out, its VM paused) keeps its connection, and so its locks:
nothing on the wire tells the database it is gone. Every pass runs a statement, so a healthy holder's
connection is never idle for long; each pass also ends the claim connections of other processes that
have been idle for STALE_PASSES passes, which releases their cameras to whoever claims next. A
frozen process that wakes finds its connection gone and stops its work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from base.database import connect
from base.pg import Connection

log = logging.getLogger(__name__)

STALE_PASSES = 5

# The processes claiming this kind of work now (this one included).
_CLAIMANTS = """
SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1"""

# Claim connections of the same name (every process's, for this kind of work) idle for too long.
_END_STALE = """
SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()
  AND state = 'idle' AND state_change < now() - make_interval(secs => $2)"""

Camera = dict[str, Any]  # a cameras row, as registered


class CameraWork:
    """What a process does with the cameras it holds."""

    async def start(self, camera: Camera) -> None:
        raise NotImplementedError

    async def stop(self, camera_id: int) -> None:
        raise NotImplementedError

    def failed(self, camera_id: int) -> bool:
        """The work on this camera ended by itself: release it (it is claimed again on a later pass)."""
        return False


class Claims:
    def __init__(self, url: str, lock_base: int, name: str, work: CameraWork, pass_s: float = 2.0) -> None:
        self._url = url
        self._lock_base = lock_base
        self._name = name
        self._work = work
        self._pass_s = pass_s
        self.held: dict[int, Camera] = {}
        self._application_name = f"liandong-{name}"

    async def run(self) -> None:
        while True:
            try:
                connection = await connect(self._url, self._application_name)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("%s cannot connect (%s); retrying", self._name, error)
                await asyncio.sleep(self._pass_s)
                continue
            try:
                while not connection.is_closed():
                    await self._pass(connection)
                    await asyncio.sleep(self._pass_s)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("%s lost its connection (%s); the camera locks went with it", self._name, error)
            finally:
                await self._release_all()  # without the locks, another process may take these cameras now
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _pass(self, connection: Connection) -> None:
        for stale in await connection.fetch(_END_STALE, self._application_name, STALE_PASSES * self._pass_s):
            log.warning("%s: ended database session %s, silent for %d passes: its cameras are free to claim",
                        self._name, stale["pid"], STALE_PASSES)
        cameras = {r["id"]: dict(r) for r in await connection.fetch("SELECT * FROM cameras")}
        for camera_id, held in list(self.held.items()):
            if cameras.get(camera_id) != held or self._work.failed(camera_id):
                await self._release(connection, camera_id)
        share = -(-len(cameras) // max(1, await connection.fetchval(_CLAIMANTS, self._application_name)))
        for camera_id, camera in sorted(cameras.items()):
            if len(self.held) >= share:
                break
            if camera_id in self.held:
                continue
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_base + camera_id):
                continue  # another server process has it
            self.held[camera_id] = camera
            await self._work.start(camera)

    async def _release(self, connection: Connection, camera_id: int) -> None:
        del self.held[camera_id]
        await self._work.stop(camera_id)
        await connection.execute("SELECT pg_advisory_unlock($1)", self._lock_base + camera_id)

    async def _release_all(self) -> None:
        for camera_id in list(self.held):
            del self.held[camera_id]
            await self._work.stop(camera_id)

