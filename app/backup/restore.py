"""Restore: an archive checked whole, then rebuilt onto a fresh data folder (or an empty database)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import asyncpg
import msgspec

from app.backup.archive import DUMP, FORMAT, MANIFEST, BackupError, Manifest, Say
from app.backup.postgres import release, run, shown, start_embedded
from app.config import Config

_TOP_FOLDERS = ("keys", "config", "recordings")  # where an archive's files may sit, besides the dump
_CHUNK = 1 << 20


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
            await run("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
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
    url = await asyncio.to_thread(start_embedded, config.data_dir)
    try:
        yield url
    finally:
        say("stopping the embedded PostgreSQL")
        await asyncio.to_thread(release, pgdata)


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
