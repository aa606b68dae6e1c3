"""asyncpg type names for annotations (asyncpg's classes are generic only in its stubs), and the
loop every background pass over the database runs in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    # A connection of its own or one lent by the pool: both run queries and transactions.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Pool = asyncpg.Pool
    Connection = asyncpg.Connection


async def every(interval_s: float, work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `work` every `interval_s` seconds for ever. A database or network failure is logged and
    the next pass tries again: a background duty must outlive a database restart (and the driver's
    InternalClientError, a pooled connection a killed server left mid-operation, is part of one)."""
    while True:
        try:
            await work()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as error:
            log.warning("%s failed (%s); trying again in %.1f s", what, error, interval_s)
        await asyncio.sleep(interval_s)
