"""A sick database gets a fast, honest answer: a frozen PostgreSQL (SIGSTOP) and a dead one (kill -9)
get 503 with Retry-After within the request deadline, /healthz says what is wrong within 2 s, a socket
hello is refused with 1013, the outage is logged once, and service resumes when the database does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from base.database import start_embedded
from tests.conftest import server_with_media
from tests.helpers import Liandong

REPORT = {"type_code": "201", "severity": 4, "location": {"lon": 111.29, "lat": 30.70}}


def postgres_processes(data_dir: Path) -> list[int]:
    """The postmaster of this data directory and its children (backends, checkpointer, ...)."""
    found = subprocess.run(["pgrep", "-f", "--", f"-D {data_dir}"], capture_output=True, text=True).stdout.split()
    postmasters = [int(p) for p in found]
    children = [int(c) for p in postmasters
                for c in subprocess.run(["pgrep", "-P", str(p)], capture_output=True, text=True).stdout.split()]
    return postmasters + children


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@pytest.fixture
async def own_database(tmp_path: Path) -> AsyncIterator[tuple[Liandong, Path]]:
    """The server on a PostgreSQL of its own, which the test may freeze or kill."""
    data = tmp_path / "own"
    url = await asyncio.to_thread(start_embedded, data)
    try:
        async with server_with_media(url, tmp_path, {"request_deadline_s = 10.0": "request_deadline_s = 2.0"}) as (
                client, _media):
            yield client, data / "pgdata"
    finally:
        signal_all(postgres_processes(data / "pgdata"), signal.SIGCONT)


async def timed(liandong: Liandong, method: str, path: str, body: object = None) -> tuple[int, dict[str, str], float]:
    token = liandong.tokens["dispatcher"]
    started = time.monotonic()
    async with liandong.http.request(method, liandong.base_url + path, json=body,
                                     headers={"Authorization": f"Bearer {token}"}) as response:
        await response.read()
        return response.status, dict(response.headers), time.monotonic() - started


async def test_a_frozen_then_a_dead_database_is_answered_503_fast_and_service_resumes(
        own_database: tuple[Liandong, Path], caplog: pytest.LogCaptureFixture) -> None:
    liandong, data = own_database
    await liandong.report("201", 4, 111.29, 30.70)  # all well; the dispatcher is logged in
    caplog.set_level(logging.INFO)

    frozen = postgres_processes(data)
    assert frozen
    signal_all(frozen, signal.SIGSTOP)
    try:
        for _ in range(3):
            status, headers, took = await timed(liandong, "POST", "/api/incidents", REPORT)
            assert (status, headers.get("Retry-After")) == (503, "5") and took < 4.0
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            async with http.get(liandong.base_url + "/healthz") as health:
                body = await health.json()
            assert health.status == 503 and time.monotonic() - started < 2.5
            assert body["database"] is False and "did not answer" in body["problem"]
    finally:
        signal_all(frozen, signal.SIGCONT)

    deadline = time.monotonic() + 30
    while (status := (await timed(liandong, "POST", "/api/incidents", REPORT))[0]) != 201:
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.5)

    signal_all(postgres_processes(data), signal.SIGKILL)
    for _ in range(3):
        status, headers, took = await timed(liandong, "POST", "/api/incidents", REPORT)
        assert (status, headers.get("Retry-After")) == (503, "5") and took < 4.0
    async with aiohttp.ClientSession() as http, http.ws_connect(liandong.base_url.replace("http", "ws")
                                                                 + "/ws/console") as ws:
        await ws.send_json({"type": "hello", "token": "never-seen-so-not-cached"})
        error = await ws.receive_json(timeout=10)
        await ws.receive(timeout=10)
        assert (error["code"], ws.close_code) == ("unavailable", 1013)

    outages = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outages) == 2  # once when frozen, once when killed: not once per request
    assert any("available again" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "request" in r.getMessage()]
