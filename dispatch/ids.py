"""Ids for new incidents and tickets, reserved from PostgreSQL sequences in blocks.

Ticket bodies are rendered once, before they are stored, so their ids must be known first; taking
them a block at a time keeps that off the latency path. Sequences are shared by every server
process, so ids stay unique; unused ids of a block are simply skipped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from base.pg import Connection

_BLOCK = 64


class IdReserve:
    def __init__(self, sequence: str) -> None:
        self._sequence = sequence
        self._free: list[int] = []
        self._lock = asyncio.Lock()

    async def take(self, connection: Connection, count: int) -> list[int]:
        if len(self._free) < count:
            async with self._lock:
                if len(self._free) < count:
                    fresh = await connection.fetchval(
                        "SELECT array_agg(nextval($1::regclass)) FROM generate_series(1, $2)",
                        self._sequence, max(_BLOCK, count))
                    self._free.extend(fresh)
        taken, self._free = self._free[:count], self._free[count:]
        return taken


@dataclass
class IdReserves:
    """One per server (per database): reserved ids belong to the database they came from."""

    incidents: IdReserve = field(default_factory=lambda: IdReserve("incidents_id_seq"))
    tickets: IdReserve = field(default_factory=lambda: IdReserve("tickets_id_seq"))
