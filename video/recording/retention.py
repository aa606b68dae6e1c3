"""Retention: recordings older than their camera's limit go, and the oldest go first whenever the
total nears the disk quota or the disk itself runs short, so recording never fills the disk. A
storage alert opens at 90% of the quota and closes below 85%. One process cleans at a time."""

from __future__ import annotations

import contextlib
import logging
import shutil
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


class Retention:
    def __init__(self, pool: Pool, policy: Policy, pass_s: float = 60.0) -> None:
        self._pool = pool
        self._policy = policy
        self._pass_s = pass_s

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
                return Outcome(len(expired), over, used)
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK)

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
