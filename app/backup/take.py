"""Backup: one archive written from a consistent dump of the database, the keys, the configuration file
and, on request, the recordings."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO

import asyncpg
import msgspec

from app.backup.archive import DUMP, FORMAT, MANIFEST, STAMP, BackupError, Manifest, RecordingIndex, Say, SegmentEntry
from app.backup.postgres import database, run, shown
from app.config import Config


def backup(config: Config, destination: Path, include_recordings: bool, say: Say = print) -> Path:
    """Write one archive (see take_backup) and return its path."""
    return asyncio.run(take_backup(config, destination, include_recordings, say=say))


async def take_backup(config: Config, destination: Path, include_recordings: bool, *, url: str | None = None,
                      say: Say = print, now: datetime | None = None) -> Path:
    """Write `liandong-backup-<UTC time>.tar` into `destination` (a folder; a path ending in .tar names the
    archive itself): the database dumped in one snapshot, every file under <data_dir>/keys, the
    configuration file, and the manifest; with `include_recordings`, the segment files too."""
    now = now or datetime.now(UTC)
    target, keys, scratch = await asyncio.to_thread(_prepare, destination, now, config.data_dir / "keys")
    try:
        dump = scratch / DUMP
        async with database(config, url, say) as source:
            say(f"dumping the database {shown(source)} (pg_dump, one consistent snapshot)")
            segments, server_version = await _dump(source, dump)
        say(f"writing {target}: the dump, {len(keys)} key file(s), {config.path.name}, and the index of"
            f" {len(segments)} recorded segment(s)" + (" with their files" if include_recordings else ""))
        contents = _Contents(dump, server_version, keys, config.path, segments, config.recordings_dir,
                             include_recordings, now)
        manifest, size = await asyncio.to_thread(_write_archive, contents, target)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)
    missing = sum(1 for s in manifest.recordings.segments if s.sha256 is None)
    say(f"backup written: {target} ({_size(size)})"
        + (f"; {missing} indexed segment file(s) were missing on disk" if missing else ""))
    return target


def _prepare(destination: Path, now: datetime, keys_dir: Path) -> tuple[Path, list[Path], Path]:
    """The archive's path (free), the key files, and a scratch folder beside the archive for the dump."""
    target = destination if destination.suffix == ".tar" else destination / f"liandong-backup-{now:{STAMP}}.tar"
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise BackupError(f"{target}: already exists; a backup never overwrites one")
    # Key files being created are written under a temporary name first (.key-…): not keys yet.
    keys = sorted(p for p in keys_dir.iterdir() if p.is_file() and not p.name.startswith(".key-")) \
        if keys_dir.is_dir() else []
    return target, keys, Path(tempfile.mkdtemp(dir=target.parent, prefix=".liandong-backup-"))


async def _dump(url: str, into: Path) -> tuple[list[asyncpg.Record], str]:
    """pg_dump into `into`, and the recording index as of the same snapshot: the index lists exactly
    the segments the dump holds, whatever the recorders and the retention do meanwhile."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            snapshot: str = await connection.fetchval("SELECT pg_export_snapshot()")
            server_version: str = await connection.fetchval("SHOW server_version")
            segments = await connection.fetch(
                "SELECT id, camera_id, started_at, ended_at, bytes, path FROM segments ORDER BY id") \
                if await connection.fetchval("SELECT to_regclass('segments') IS NOT NULL") else []
            await run("pg_dump", "--format=custom", f"--file={into}", f"--snapshot={snapshot}", url=url)
    finally:
        await connection.close()
    return segments, server_version


@dataclass(frozen=True)
class _Contents:
    dump: Path
    server_version: str
    keys: list[Path]
    config_file: Path
    segments: list[asyncpg.Record]
    recordings_dir: Path
    include_recordings: bool
    created_at: datetime


class _Hashing:
    """A file read through SHA-256: each file is archived and summed in one pass."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.sha256.update(data)
        return data


def _add(tar: tarfile.TarFile, source: Path, name: str) -> str:
    with source.open("rb") as file:
        info = tar.gettarinfo(arcname=name, fileobj=file)
        reader = _Hashing(file)
        tar.addfile(info, reader)
    return reader.sha256.hexdigest()


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _write_archive(contents: _Contents, target: Path) -> tuple[Manifest, int]:
    """The archive, written under a temporary name and published complete: an interrupted backup
    leaves no archive that looks whole (nor one the retention would count)."""
    partial = target.with_name(f".{target.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the private key
    try:
        with os.fdopen(descriptor, "wb") as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            files = {DUMP: _add(tar, contents.dump, DUMP)}
            for key in contents.keys:
                files[f"keys/{key.name}"] = _add(tar, key, f"keys/{key.name}")
            config_name = f"config/{contents.config_file.name}"
            files[config_name] = _add(tar, contents.config_file, config_name)
            segments = [_segment(tar, row, contents.recordings_dir, contents.include_recordings, files)
                        for row in contents.segments]
            manifest = Manifest(
                FORMAT, contents.created_at, _version(), contents.server_version, DUMP, files[DUMP], config_name,
                str(contents.config_file), [f"keys/{k.name}" for k in contents.keys], files,
                RecordingIndex(str(contents.recordings_dir), contents.include_recordings, segments))
            data = json.dumps(msgspec.to_builtins(manifest), ensure_ascii=False, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(contents.created_at.timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
        _publish(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return manifest, target.stat().st_size


def _publish(partial: Path, target: Path) -> None:
    """Give the finished archive its name, never over an archive already there."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise BackupError(f"{target}: already exists; a backup never overwrites one") from None
    except OSError:  # a file system without hard links
        if target.exists():
            raise BackupError(f"{target}: already exists; a backup never overwrites one") from None
        partial.rename(target)


def _segment(tar: tarfile.TarFile, row: asyncpg.Record, root: Path, include: bool,
             files: dict[str, str]) -> SegmentEntry:
    path = Path(row["path"])
    relative = path.relative_to(root).as_posix() if path.is_absolute() and path.is_relative_to(root) else None
    name = f"recordings/{relative}" if include and relative is not None else None
    try:
        if name is not None:
            files[name] = sha256 = _add(tar, path, name)
        else:
            sha256 = _sha256(path)
    except FileNotFoundError:  # deleted by hand, or by the retention since the snapshot
        sha256, name = None, None
    return SegmentEntry(row["id"], row["camera_id"], row["started_at"], row["ended_at"], row["bytes"],
                        relative if relative is not None else row["path"], relative is not None, sha256, name)


def _version() -> str | None:
    try:
        return metadata.version("liandong")
    except metadata.PackageNotFoundError:
        return None


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError
