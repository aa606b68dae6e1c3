"""Fixtures: a real PostgreSQL (the embedded server), a fresh database per test, the real server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright

from app.config import Config, load
from app.server import build_app
from base.database import start_embedded
from tests.helpers import Liandong
from tests.receiver import receiver  # noqa: F401  (the fixture, for every test)

_numbers = itertools.count(1)
ROOT = Path(__file__).resolve().parent.parent


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin URL of one embedded PostgreSQL server for the whole run (or LIANDONG_TEST_DATABASE_URL)."""
    external = os.environ.get("LIANDONG_TEST_DATABASE_URL")
    yield external or start_embedded(tmp_path_factory.mktemp("postgres"))


@pytest.fixture
async def database_url(postgres: str) -> AsyncIterator[str]:
    name = f"liandong_test_{os.getpid()}_{next(_numbers)}"
    admin = await asyncpg.connect(postgres)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield with_database(postgres, name)
    admin = await asyncpg.connect(postgres)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def config_text_for_tests(text: str | None = None) -> str:
    """The shipped configuration as the tests run it: no simulated cameras (a test registers the
    cameras it needs) and no simulated cases (a test sends the events it needs), data files named by
    absolute path so the file can live anywhere."""
    text = text or (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace("cameras = 4", "cameras = 0").replace("hall_every_s = 15", "hall_every_s = 0")
    return text.replace('facilities = "gis/data/', f'facilities = "{ROOT}/gis/data/')


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    path = tmp_path / "liandong.toml"
    path.write_text(config_text_for_tests(), encoding="utf-8")
    return load(path, environ={"LIANDONG_DATABASE_URL": database_url})


@pytest.fixture
async def liandong(config: Config) -> AsyncIterator[Liandong]:
    """The server as users meet it: real HTTP and WebSocket on a local port, demo data loaded."""
    server = TestServer(build_app(config), host="127.0.0.1")
    await server.start_server()
    async with Liandong(str(server.make_url("/")), server.app) as client:
        yield client
    await server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    config = log.with_suffix(".toml")
    config.write_text(config_text_for_tests(), encoding="utf-8")
    env = {**os.environ, "LIANDONG_DATABASE_URL": database_url, "LIANDONG_LISTEN": f"127.0.0.1:{port}",
           "LIANDONG_CONFIG": str(config)}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def read(log: Path) -> str:
    return log.read_text(errors="replace")


async def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, read(log)
            try:
                async with http.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(f"server did not become healthy:\n{read(log)}")


@pytest.fixture
async def two_servers(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Liandong, Liandong]]:
    ports = free_port(), free_port()
    logs = [tmp_path / f"server-{i}.log" for i in (1, 2)]
    processes = [start_server(database_url, port, log) for port, log in zip(ports, logs, strict=True)]
    try:
        for port, process, log in zip(ports, processes, logs, strict=True):
            await wait_healthy(f"http://127.0.0.1:{port}", process, log)
        async with Liandong(f"http://127.0.0.1:{ports[0]}") as a, Liandong(f"http://127.0.0.1:{ports[1]}") as b:
            yield a, b
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)



CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright never downloads a browser here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots of the pages


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@contextlib.asynccontextmanager
async def server_with_media(database_url: str, tmp_path: Path,
                            edits: dict[str, str]) -> AsyncIterator[tuple[Liandong, Path]]:
    """The server with its media and recordings folders in the test's own folder (file cameras
    are read from the media folder), config.toml `edits` applied."""
    media = tmp_path / "media"
    media.mkdir()
    text = config_text_for_tests().replace('media_dir = "var/media"', f'media_dir = "{media}"')
    text = text.replace('recordings_dir = "var/recordings"', f'recordings_dir = "{tmp_path / "recordings"}"')
    for old, new in edits.items():
        text = text.replace(old, new)
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    config = load(tmp_path / "config.toml", environ={"LIANDONG_DATABASE_URL": database_url})
    server = TestServer(build_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        async with Liandong(str(server.make_url("/")), server.app) as client:
            yield client, media
    finally:
        await server.close()


@pytest.fixture
async def supervised(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Liandong, Path]]:
    """The server analysing its cameras, not recording them: these tests are about the pictures."""
    async with server_with_media(database_url, tmp_path, {"record = true": "record = false"}) as server:
        yield server
