"""The embedded PostgreSQL is Liandong's to keep alive: killed, it is restarted and service carries on;
what a crash leaves behind (a pid file naming another process, a dead server's handle) neither stops
the next start nor keeps PostgreSQL running after the last server stops."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.conftest import ROOT, config_text_for_tests, free_port, wait_healthy
from tests.helpers import Liandong


def start(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`liandong serve` on its own embedded database (no LIANDONG_DATABASE_URL), as scripts/run starts it."""
    config = data.parent / "liandong.toml"
    config.write_text(config_text_for_tests().replace('data_dir = "var"', f'data_dir = "{data}"')
                      .replace("record = true", "record = false").replace("analysis = true", "analysis = false"),
                      encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "LIANDONG_DATABASE_URL"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT,
                                env={**env, "LIANDONG_CONFIG": str(config), "LIANDONG_LISTEN": f"127.0.0.1:{port}"})


def postmasters(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        ours = process.info["name"] == "postgres" and str(pgdata) in " ".join(process.info["cmdline"] or ())
        parent = process.parent() if ours else None
        if ours and (parent is None or parent.name() != "postgres"):  # the postmaster, not a backend
            found.append(process)
    return found


async def report(base: str) -> int:
    async with Liandong(base) as liandong:  # a fresh log-in: the database itself must answer
        return int((await liandong.report("201", 4, 111.29, 30.70))["id"])


async def test_the_embedded_database_is_restarted_when_killed_and_a_crash_leaves_nothing_in_the_way(
        tmp_path: Path) -> None:
    data, log, port = tmp_path / "var", tmp_path / "server.log", free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(data, port, log)
    try:
        await wait_healthy(base, server, log)
        await report(base)

        # PostgreSQL killed under the running server: it comes back, and so does service.
        (postmaster,) = postmasters(data / "pgdata")
        postmaster.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                await report(base)
                break
            except AssertionError:
                assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                await asyncio.sleep(0.5)
        assert "has died; starting it again" in log.read_text(errors="replace")

        # The server killed: PostgreSQL stays up, holding a handle for a process that is gone.
        server.kill()
        server.wait()
        assert postmasters(data / "pgdata")
        server = start(data, port, log)
        await wait_healthy(base, server, log)
        server.terminate()  # the last (live) server leaves gracefully: PostgreSQL stops with it
        server.wait(timeout=30)
        deadline = time.monotonic() + 15
        while postmasters(data / "pgdata"):
            assert time.monotonic() < deadline, "PostgreSQL outlived the last server"
            await asyncio.sleep(0.3)

        # A pid file left by a crash naming some other live process (here: this test) is not believed.
        stale = f"{os.getpid()}\n{data / 'pgdata'}\n0\n5432\n/tmp\n\n0 0\nready\n"
        (data / "pgdata" / "postmaster.pid").write_text(stale)
        server = start(data, port, log)
        await wait_healthy(base, server, log)
        await report(base)
        assert "removing a stale postmaster.pid" in log.read_text(errors="replace")
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
