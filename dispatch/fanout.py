"""Stored ticket and incident events, handed to this process's subscribers in the order they were
announced: terminals get their own sub-centre's, consoles get everything.

Each change announces its events on commit (see store.py); the hub hears the announcement and this
stream decodes it, fetching the events from the database when they were too large to carry. After
the hub reconnects, every subscriber is told to resynchronise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import asyncpg
import msgspec

from base.hub import Hub
from base.pg import Pool
from dispatch.store import CHANNEL, Announcement, StoredEvent, events_by_id

log = logging.getLogger(__name__)


class Subscriber(Protocol):
    def offer(self, event: StoredEvent) -> None:
        """Take one stored event; must not block (queue it or drop the subscriber)."""

    def resync(self) -> None:
        """Events may have been missed: reload from the database."""


class EventStream:
    def __init__(self, pool: Pool, hub: Hub) -> None:
        self._pool = pool
        self._by_subcentre: dict[int, set[Subscriber]] = {}
        self._everything: set[Subscriber] = set()
        self._pending: asyncio.Queue[Announcement] = asyncio.Queue()
        hub.on_message(CHANNEL, self._announced)
        hub.on_reconnect(self._resync_all)

    def subscribe(self, subscriber: Subscriber, subcentre_id: int | None = None) -> None:
        """Subscribe to one sub-centre's events, or (None) to all events."""
        group = self._everything if subcentre_id is None else self._by_subcentre.setdefault(subcentre_id, set())
        group.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber, subcentre_id: int | None = None) -> None:
        if subcentre_id is None:
            self._everything.discard(subscriber)
        elif group := self._by_subcentre.get(subcentre_id):
            group.discard(subscriber)
            if not group:
                del self._by_subcentre[subcentre_id]

    def _announced(self, payload: str) -> None:
        self._pending.put_nowait(msgspec.json.decode(payload, type=Announcement))

    def _resync_all(self) -> None:
        for subscriber in [*self._everything, *(s for g in self._by_subcentre.values() for s in g)]:
            subscriber.resync()

    async def run(self) -> None:
        """Hand announced events out in announcement order, fetching those too large to carry."""
        while True:
            announcement = await self._pending.get()
            events = announcement.events
            if events is None:
                try:
                    events = await events_by_id(self._pool, announcement.ids or [])
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("could not fetch announced events %s (%s); resynchronising", announcement.ids, error)
                    self._resync_all()
                    continue
            for event in events:
                for subscriber in list(self._everything):
                    subscriber.offer(event)
                if event.subcentre_id is not None:
                    for subscriber in list(self._by_subcentre.get(event.subcentre_id, ())):
                        subscriber.offer(event)
