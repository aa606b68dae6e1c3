"""A server killed outright leaves nothing behind: no process of its own lives on, nothing it
recorded is lost beyond the segment being written, and no file stays on disk that no index knows.
The server that takes the camera over ends any writer still in its folder first."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil

from tests.conftest import ROOT, config_text_for_tests, free_port, wait_healthy
from tests.helpers import Liandong
from tests.test_recording import HALL, make_clip, query, wait_until
from video.recording.mp4file import unreadable

SEGMENT_S = 2


def start(database_url: str, folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The server as `liandong serve` runs it, recording in 2-second segments into `folder`."""
    text = config_text_for_tests().replace('media_dir = "var/media"', f'media_dir = "{folder / "media"}"')
    text = text.replace('recordings_dir = "var/recordings"', f'recordings_dir = "{folder / "recordings"}"')
    text = text.replace("segment_s = 10", f"segment_s = {SEGMENT_S}")
    (folder / "liandong.toml").write_text(text, encoding="utf-8")
    env = {**os.environ, "LIANDONG_DATABASE_URL": database_url, "LIANDONG_LISTEN": f"127.0.0.1:{port}",
           "LIANDONG_CONFIG": str(folder / "liandong.toml")}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def living(pids: list[int]) -> list[int]:
    """Those of `pids` still running (a zombie runs nothing)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


async def segments(database_url: str, camera_id: int) -> list[asyncpg.Record]:
    return await query(database_url, "SELECT * FROM segments WHERE camera_id = $1 ORDER BY started_at", camera_id)


def changed_at(path: str) -> float:
    return Path(path).stat().st_mtime


async def _all_gone(pids: list[int]) -> bool:
    return not living(pids)


def on_disk(folder: Path) -> set[str]:
    return {str(p.resolve()) for p in folder.glob("*.mp4")}


async def test_kill_9_leaves_no_process_no_lost_recording_and_no_unindexed_file(database_url: str,
                                                                                 tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    make_clip(tmp_path / "media" / "window.mp4", seconds=8)
    port, log = free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    server = start(database_url, tmp_path, port, log)
    try:
        await wait_healthy(base, server, log)
        async with Liandong(base) as liandong:
            status, camera = await liandong.call("POST", "/api/cameras", {
                "code": "w1", "name": "1号窗口", "department": "行政服务中心", "window": "1", "location": HALL,
                "main_url": f"file://{tmp_path / 'media' / 'window.mp4'}"}, as_user="supervisor")
            assert status == 201, camera
        camera_id = camera["id"]
        await wait_until(lambda: _at_least(database_url, camera_id, 3), 60)
        ours = [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
        assert any("ffmpeg" in psutil.Process(pid).name() for pid in ours)  # the recorder is among them
        server.kill()
        killed_at = datetime.now(UTC)
        server.wait()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    await wait_until(lambda: _all_gone(ours), 10)

    folder = tmp_path / "recordings" / "w1"
    stray_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], cwd=folder)
    old_stray = folder / "20260101T000000-0badf00d.mp4"  # an hour-old file no index knows
    old_stray.write_bytes(b"\0" * 4096)
    an_hour_ago = time.time() - 7200
    os.utime(old_stray, (an_hour_ago, an_hour_ago))

    old_runs = {run_of(p) for p in on_disk(folder)}  # a segment's name ends with its ffmpeg run
    restarted_at = datetime.now(UTC)
    server = start(database_url, tmp_path, port, log)
    try:
        await wait_healthy(base, server, log)
        after = await wait_until(lambda: _at_least(database_url, camera_id, 1, besides=old_runs), 60)
        assert stray_writer.wait(timeout=10) is not None  # ended by the camera's new recorder
        assert not old_stray.exists()  # swept by retention

        recorded = await segments(database_url, camera_id)
        before_kill = [s for s in recorded if run_of(s["path"]) in old_runs]
        # Recovered from the killed run's list: recording is complete up to the kill, but for at most
        # the segment being written.
        assert max(s["ended_at"] for s in before_kill) >= killed_at - timedelta(seconds=SEGMENT_S + 1)
        for segment in recorded:
            assert unreadable(Path(segment["path"])) is None, segment["path"]
        (gap,) = await query(database_url, "SELECT * FROM recording_gaps WHERE camera_id = $1", camera_id)
        assert gap["started_at"] == max(s["ended_at"] for s in before_kill)
        assert gap["ended_at"] == after[0]["started_at"] and "stopped" in gap["reason"]

        indexed = {s["path"] for s in await segments(database_url, camera_id)}
        unindexed = on_disk(folder) - indexed
        # What is on disk and not indexed is only what the new recorder is writing now.
        assert all(changed_at(p) > restarted_at.timestamp() for p in unindexed), unindexed
        assert len(unindexed) <= 2
    finally:
        server.kill()
        server.wait()
        stray_writer.kill()
        stray_writer.wait()


def run_of(path: str) -> str:
    return Path(path).stem.rsplit("-", 1)[-1]


async def _at_least(database_url: str, camera_id: int, count: int,
                    besides: set[str] | None = None) -> list[asyncpg.Record] | None:
    """The camera's segments, if there are `count`, leaving out those of the ffmpeg runs `besides`."""
    rows = [s for s in await segments(database_url, camera_id) if run_of(s["path"]) not in (besides or set())]
    return rows if len(rows) >= count else None
