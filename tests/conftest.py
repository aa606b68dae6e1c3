"""Fixtures: a real PostgreSQL (the embedded server), a fresh database per test, the real server."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from command.app import build_app
from command.config import Config, load
from command.database import start_embedded
from tests.helpers import Liandong

_numbers = itertools.count(1)


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


@pytest.fixture
def config(database_url: str) -> Config:
    return load(Path(__file__).resolve().parent.parent / "config.toml",
                environ={"LIANDONG_DATABASE_URL": database_url})


@pytest.fixture
async def liandong(config: Config) -> AsyncIterator[Liandong]:
    """The server as users meet it: real HTTP and WebSocket on a local port, demo data loaded."""
    server = TestServer(build_app(config), host="127.0.0.1")
    await server.start_server()
    async with Liandong(str(server.make_url("/"))) as client:
        yield client
    await server.close()
