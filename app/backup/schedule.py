"""Scheduled backups and their retention."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from app.backup.archive import ARCHIVE_NAME, STAMP, folder_of
from app.backup.postgres import database
from app.backup.take import take_backup
from app.config import Config
from base.settings import BackupConfig

log = logging.getLogger(__name__)

_LOCK = 727_200_000  # one scheduled backup at a time among the servers sharing a database


def archives(folder: Path) -> list[tuple[datetime, Path]]:
    """The backups in `folder` (by their names; other files are not ours), oldest first."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        if (match := ARCHIVE_NAME.match(path.name)) and path.is_file():
            found.append((datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC), path))
    return sorted(found)


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `folder`; returns those deleted."""
    old = [path for _, path in archives(folder)[:-keep]]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def seconds_until_due(folder: Path, every: timedelta, now: datetime) -> float:
    """Timed from the newest backup in the folder: a restarted server neither skips one nor writes one at
    every start."""
    found = archives(folder)
    # Never longer than `every`: an archive named in the future (a clock set back) must not stop the schedule.
    return max(0.0, min(found[-1][0] + every - now, every).total_seconds()) if found else 0.0


async def scheduled_backups(config: Config, url: str | None = None, section: BackupConfig | None = None) -> None:
    """Every [backup].every_hours, a backup into [backup].folder, keeping the newest [backup].keep. Runs as
    long as the server does; a failed backup is logged and tried again."""
    section = section or config.backup
    if section.every_hours <= 0:
        return
    folder, every = folder_of(config, section), timedelta(hours=section.every_hours)
    retry_s = min(every, timedelta(minutes=10)).total_seconds()
    while True:
        await asyncio.sleep(await asyncio.to_thread(seconds_until_due, folder, every, datetime.now(UTC)))
        try:
            await backup_pass(config, section, url)
        except Exception:  # the server stopping (CancelledError) still ends this
            log.exception("scheduled backup into %s failed; trying again in %.0f s", folder, retry_s)
            await asyncio.sleep(retry_s)


async def backup_pass(config: Config, section: BackupConfig, url: str | None = None) -> Path | None:
    """One scheduled backup, then the retention; None when another server has the turn or has just
    written one (the servers sharing a database take turns on an advisory lock)."""
    folder, every = folder_of(config, section), timedelta(hours=section.every_hours)
    written = None
    async with database(config, url, log.info) as source:
        connection = await asyncpg.connect(source)
        try:
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
                return None
            now = datetime.now(UTC)
            if await asyncio.to_thread(seconds_until_due, folder, every, now) > 0:
                return None
            written = await take_backup(config, folder, section.include_recordings, url=source, say=log.info,
                                        now=now)
        finally:
            await connection.close()  # and with it the lock
    for path in await asyncio.to_thread(prune, folder, section.keep):
        log.info("removed the old backup %s (keeping the newest %d)", path, section.keep)
    return written
