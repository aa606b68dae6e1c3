"""Retention: recordings older than their camera's limit go, and the oldest go first whenever the
total nears the disk quota or the disk itself runs short, so recording never fills the disk. A
storage alert opens at 90% of the quota and closes below 85%. One process cleans at a time.

Files no index knows (left by a writer that died, or by an older version) are swept too: a segment
or segment list an hour old that is not indexed is never going to be, since a recorder indexes what
it finishes within seconds and recovers an earlier run's list when it starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from base.pg import Connection, Pool, every
from video.analysis.supervision import clear_alert, open_alert
from video.recording.holds import NOT_HELD

log = logging.getLogger(__name__)

_LOCK = 727_002_001
_ALERT_AT, _CLEAR_AT = 0.90, 0.85
_MIN_FREE_BYTES = 512 * 2**20  # keep this much of the disk free whatever the quota says
_STRAY_AGE_S = 3600.0  # an unindexed file this old is a stray
_STRAY_SWEEP_S = 3600.0  # how often the folders are walked for strays
# A recorder's files: segments (ffmpeg.segment_names; older ones without the number or the run) and lists.
_RECORDED = re.compile(r"^(\d{8}T\d{6}(-\d{6})?(-[0-9a-f]+)?\.mp4|segments(-[0-9a-f]+)?\.csv)$")


@dataclass(frozen=True)
class Policy:
    default_days: int
    quota_bytes: int
    root: Path


@dataclass(frozen=True)
class Outcome:
    expired: int
    over_quota: int
    used_bytes: int
    strays: int = 0


class Retention:
    def __init__(self, pool: Pool, policy: Policy, pass_s: float = 60.0) -> None:
        self._pool = pool
        self._policy = policy
        self._pass_s = pass_s
        self._swept_until = 0.0  # files last changed before this (epoch s) have been looked at
        self._next_sweep = 0.0  # monotonic

    async def run(self) -> None:
        await every(self._pass_s, self.enforce, "retention pass")

    async def enforce(self, now: datetime | None = None) -> Outcome | None:
        """One pass, at `now` (default: the database's clock); None if another process is cleaning."""
        async with self._pool.acquire() as connection:
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
                return None
            try:
                expired = await connection.fetch(
                    "DELETE FROM segments s USING cameras c WHERE s.camera_id = c.id AND s.ended_at"
                    " < coalesce($1::timestamptz, now()) - make_interval(days => coalesce(c.retention_days, $2))"
                    f" AND {NOT_HELD} RETURNING s.path", now, self._policy.default_days)
                _unlink(r["path"] for r in expired)
                over = 0
                while (excess := await self._excess(connection)) > 0:
                    oldest = await self._oldest(connection)
                    if not oldest:
                        break
                    chosen, freed = [], 0
                    for row in oldest:  # just enough of the oldest to get back under
                        if freed >= excess:
                            break
                        chosen.append(row)
                        freed += row["bytes"]
                    await connection.execute("DELETE FROM segments WHERE id = ANY($1::bigint[])",
                                             [r["id"] for r in chosen])
                    _unlink(r["path"] for r in chosen)
                    over += len(chosen)
                used: int = await connection.fetchval("SELECT coalesce(sum(bytes), 0)::bigint FROM segments")
                await self._alert(connection, used)
                strays = 0
                if time.monotonic() >= self._next_sweep:
                    self._next_sweep = time.monotonic() + _STRAY_SWEEP_S
                    strays = await self.sweep_strays(connection, time.time() - _STRAY_AGE_S)
                return Outcome(len(expired), over, used, strays)
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK)

    async def sweep_strays(self, connection: Connection, changed_before: float) -> int:
        """Delete the recorder's files last changed before `changed_before` (epoch s) that no index
        holds, looking only at those not looked at by an earlier sweep. How many went."""
        files = await asyncio.to_thread(_recorder_files, self._policy.root, self._swept_until, changed_before)
        gone = 0
        for start in range(0, len(files), 2000):
            chunk = files[start:start + 2000]
            indexed = {r["path"] for r in await connection.fetch(
                "SELECT path FROM segments WHERE path = ANY($1::text[])", [str(f) for f in chunk])}
            strays = [f for f in chunk if str(f) not in indexed]
            _unlink(str(f) for f in strays)
            gone += len(strays)
        if gone:
            log.warning("deleted %d recording file(s) that no index knew (left by a writer that died)", gone)
        self._swept_until = changed_before
        return gone

    async def _excess(self, connection: Connection) -> int:
        """Bytes to free: beyond the quota, or short of the disk's minimum free space."""
        used: int = await connection.fetchval("SELECT coalesce(sum(bytes), 0)::bigint FROM segments")
        return max(used - self._policy.quota_bytes, -self._disk_spare())

    def _disk_spare(self) -> int:
        """Bytes free on the disk beyond the minimum kept free (negative: short)."""
        free = shutil.disk_usage(self._policy.root).free if self._policy.root.exists() else _MIN_FREE_BYTES
        return free - _MIN_FREE_BYTES

    async def _oldest(self, connection: Connection) -> list[Any]:
        """The oldest segments that may go to make room: those no hold keeps, unless the disk itself is
        short and only held ones are left (recording must go on; the held evidence goes last)."""
        free = await connection.fetch(f"SELECT id, path, bytes FROM segments s WHERE {NOT_HELD}"
                                      " ORDER BY started_at, id LIMIT 200")
        if free or self._disk_spare() >= 0:
            return free
        log.error("the disk is short of space and only held recordings are left: the oldest held ones go")
        return list(await connection.fetch("SELECT id, path, bytes FROM segments ORDER BY started_at, id LIMIT 200"))

    async def _alert(self, connection: Connection, used: int) -> None:
        share = used / self._policy.quota_bytes
        detail = {"used_bytes": used, "quota_bytes": self._policy.quota_bytes, "share": round(share, 3)}
        now = datetime.now(UTC)
        if share >= _ALERT_AT:
            await open_alert(connection, "storage", None, now, now, detail)
        elif share < _CLEAR_AT:
            await clear_alert(connection, "storage", None, now, detail)


def _unlink(paths: Iterable[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()


def _recorder_files(root: Path, since: float, until: float) -> list[Path]:
    """Segments and segment lists in the cameras' folders last changed in [since, until)."""
    found = []
    base = root.resolve()  # the index holds resolved paths; resolving once, not per file, on a full sweep
    with contextlib.suppress(FileNotFoundError):
        for folder in os.scandir(base):
            if not folder.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(folder.path):
                    if _RECORDED.match(entry.name) and entry.is_file(follow_symlinks=False):
                        with contextlib.suppress(FileNotFoundError):
                            if since <= entry.stat().st_mtime < until:
                                found.append(base / folder.name / entry.name)
    return found
