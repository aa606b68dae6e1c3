"""Each package keeps its own migrations, applied lowest layer first; a database made by the single
numbered series that came before upgrades cleanly: nothing re-applied, the same schema as a new one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from app.server import PACKAGES
from base.database import LEGACY_VERSIONS, migrate, migrations, open_pool
from base.pg import Pool
from tests.conftest import with_database

SINGLE_SERIES = sorted((Path(__file__).parent / "data" / "single_series_migrations").glob("*.sql"))

_SCHEMA = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns"
               " WHERE table_schema = 'public' AND table_name <> 'schema_versions' ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
                   " WHERE connamespace = 'public'::regnamespace AND conrelid <> 'schema_versions'::regclass"
                   " ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
               " AND tablename <> 'schema_versions' ORDER BY 1, 2",
}


async def schema(pool: Pool) -> dict[str, list[tuple[object, ...]]]:
    return {part: [tuple(r) for r in await pool.fetch(sql)] for part, sql in _SCHEMA.items()}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    async with open_pool(database_url, 1, 2) as opened:
        yield opened


async def apply_single_series(url: str, upto: int) -> None:
    """What the old runner did: each file in its own transaction, recorded by number in schema_migrations."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                                 " applied_at timestamptz NOT NULL DEFAULT now())")
        for path in SINGLE_SERIES[:upto]:
            async with connection.transaction():
                await connection.execute(path.read_text(encoding="utf-8"))
                await connection.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                         int(path.name[:4]), path.name)
    finally:
        await connection.close()


async def test_a_new_database_gets_every_package_migration_lowest_layer_first(pool: Pool) -> None:
    applied = await migrate(pool, PACKAGES)
    assert applied == [f"{m.package}/{m.name}" for m in migrations(PACKAGES)]
    assert [a.split("/")[0] for a in applied] == sorted((a.split("/")[0] for a in applied), key=PACKAGES.index)
    assert await migrate(pool, PACKAGES) == []  # a second start applies nothing


@pytest.mark.parametrize("upto", [9, 5])
async def test_a_database_of_the_single_series_upgrades_to_the_same_schema(
        database_url: str, postgres: str, pool: Pool, upto: int) -> None:
    await apply_single_series(database_url, upto)
    applied = await migrate(pool, PACKAGES)
    carried = {pv for versions in LEGACY_VERSIONS.values() for pv in versions}
    since = [f"{m.package}/{m.name}" for m in migrations(PACKAGES) if (m.package, m.version) not in carried]
    if upto == 9:
        assert applied == since  # the rest was there already
    else:  # up to CAP: the video migrations are new too
        assert sorted(applied) == sorted({*since, *(f"video/{m.name}" for m in migrations(["video"]))})
    recorded = {(r["package"], r["version"]) for r in await pool.fetch("SELECT * FROM schema_versions")}
    assert recorded == {(m.package, m.version) for m in migrations(PACKAGES)}
    assert await pool.fetchval("SELECT to_regclass('schema_migrations')") is None

    fresh_name = f"{urlsplit(database_url).path.strip('/')}_fresh"
    admin = await asyncpg.connect(postgres)
    await admin.execute(f'CREATE DATABASE "{fresh_name}"')
    try:
        async with open_pool(with_database(postgres, fresh_name), 1, 2) as fresh:
            await migrate(fresh, PACKAGES)
            assert await schema(pool) == await schema(fresh)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{fresh_name}" WITH (FORCE)')
        await admin.close()
