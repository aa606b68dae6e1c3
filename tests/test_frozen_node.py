"""A server process that freezes keeps its database connection open and answers nothing: the database
cannot tell it from an idle one, so its camera locks would be held for ever. The other server ends
the frozen one's claim session once it has been silent for five passes, takes the camera over and
records it; the frozen one, woken, finds its session gone and does not fight for the camera."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import psutil

from tests.conftest import free_port, wait_healthy
from tests.helpers import Liandong
from tests.test_recording import HALL, make_clip, query, wait_until
from tests.test_recording_crash import living, run_of, segments, start
from video.ingest import LOCK_BASE

PASS_S = 2.0  # video.ingest's claim pass
RECLAIM_LIMIT_S = 15.0


async def holder(database_url: str, camera_id: int) -> int | None:
    """The database session holding the camera's ingest lock."""
    rows = await query(database_url, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                                     " AND classid = 0 AND objid = $1", LOCK_BASE + camera_id)
    return rows[0]["pid"] if rows else None


async def test_a_frozen_server_loses_its_cameras_to_another_within_fifteen_seconds(database_url: str,
                                                                                   tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    make_clip(tmp_path / "media" / "window.mp4", seconds=8)
    ports = free_port(), free_port()
    logs = tmp_path / "first.log", tmp_path / "second.log"
    first = start(database_url, tmp_path, ports[0], logs[0])
    second = None
    try:
        await wait_healthy(f"http://127.0.0.1:{ports[0]}", first, logs[0])
        async with Liandong(f"http://127.0.0.1:{ports[0]}") as liandong:
            status, camera = await liandong.call("POST", "/api/cameras", {
                "code": "w1", "name": "1号窗口", "department": "行政服务中心", "window": "1", "location": HALL,
                "main_url": f"file://{tmp_path / 'media' / 'window.mp4'}"}, as_user="supervisor")
            assert status == 201, camera
        camera_id = camera["id"]
        first_session = await wait_until(lambda: holder(database_url, camera_id), 30)
        await wait_until(lambda: segments(database_url, camera_id), 30)  # the first server records it
        recorders = [p.pid for p in psutil.Process(first.pid).children(recursive=True) if "ffmpeg" in p.name()]
        assert recorders

        second = start(database_url, tmp_path, ports[1], logs[1])
        await wait_healthy(f"http://127.0.0.1:{ports[1]}", second, logs[1])
        assert await holder(database_url, camera_id) == first_session  # held: the second waits its turn

        first_runs = {run_of(s["path"]) for s in await segments(database_url, camera_id)}
        os.kill(first.pid, signal.SIGSTOP)  # frozen: its sockets stay open, its kernel still answers
        frozen_at = time.monotonic()

        async def taken_over() -> int | None:
            session = await holder(database_url, camera_id)
            return session if session not in (None, first_session) else None

        await wait_until(taken_over, RECLAIM_LIMIT_S + 5)
        reclaim_s = time.monotonic() - frozen_at
        assert reclaim_s <= RECLAIM_LIMIT_S, reclaim_s

        async def recorded_by_second() -> bool:
            return any(run_of(s["path"]) not in first_runs for s in await segments(database_url, camera_id))

        await wait_until(recorded_by_second, 20)
        assert not living(recorders)  # the frozen server's writer was ended by the claim, not left writing

        os.kill(first.pid, signal.SIGCONT)
        await wait_healthy(f"http://127.0.0.1:{ports[0]}", first, logs[0])
        second_session = await holder(database_url, camera_id)
        await asyncio.sleep(3 * PASS_S)  # woken: a few of its passes, in which it must not take the camera back
        assert await holder(database_url, camera_id) == second_session
        assert "ended database session" in logs[1].read_text(encoding="utf-8", errors="replace")
    finally:
        for server in (first, second):
            if server is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(server.pid, signal.SIGCONT)
                server.kill()
                server.wait()
