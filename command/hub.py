"""Fan-out: stored events reach every server process through PostgreSQL LISTEN/NOTIFY.

One dedicated connection listens (a pooled one would be handed to other work). A dead connection
is otherwise only noticed at TCP timeout, so it is probed every few seconds and re-opened when it
fails; after a reconnect every subscriber is told to resynchronise from the database, because
notifications sent while nobody listened are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import asyncpg
import msgspec

from command.database import connect
from dispatch.pg import Pool
from dispatch.store import CHANNEL, Announcement, StoredEvent, events_by_id

log = logging.getLogger(__name__)

_PROBE_EVERY_S = 5.0
LISTEN_APPLICATION_NAME = "liandong-listen"
Reload = Callable[[], Awaitable[None]]  # so operators (and tests) can find this connection


class Subscriber(Protocol):
    def offer(self, event: StoredEvent) -> None:
        """Take one stored event; must not block (queue it or drop the subscriber)."""

    def resync(self) -> None:
        """Events may have been missed: reload from the database."""


class Hub:
    def __init__(self, url: str, pool: Pool, retry_s: float) -> None:
        self._url = url
        self._pool = pool
        self._retry_s = retry_s
        self._by_subcentre: dict[int, set[Subscriber]] = {}
        self._everything: set[Subscriber] = set()
        self._pending: asyncio.Queue[Announcement] = asyncio.Queue()
        self._on_change: dict[str, list[Reload]] = {}
        self._on_message: dict[str, list[Callable[[str], None]]] = {}
        self._reloading: dict[Reload, asyncio.Task[None]] = {}  # strong references to running reloads
        self._again: set[Reload] = set()
        self.connected = asyncio.Event()

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

    def on_change(self, channel: str, reload: Reload) -> None:
        """Run `reload` when any process announces a change on `channel` (and after a reconnect,
        since announcements made meanwhile are lost). A burst of announcements runs it at most
        twice: once now, once more after it finishes."""
        self._on_change.setdefault(channel, []).append(reload)

    def on_message(self, channel: str, handle: Callable[[str], None]) -> None:
        """Call `handle` with the payload of each announcement on `channel` (a request to whichever
        process can serve it; one made while the connection was down is lost)."""
        self._on_message.setdefault(channel, []).append(handle)

    def _schedule(self, reload: Reload) -> None:
        if reload in self._reloading:
            self._again.add(reload)
            return
        task = asyncio.get_running_loop().create_task(self._run_reload(reload), name=f"reload-{reload}")
        self._reloading[reload] = task

    async def _run_reload(self, reload: Reload) -> None:
        try:
            while True:
                self._again.discard(reload)
                try:
                    await reload()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("reload %s failed (%s); it runs again on the next announcement", reload, error)
                if reload not in self._again:
                    return
        finally:
            del self._reloading[reload]

    async def run(self) -> None:
        """Listen forever (until cancelled), re-opening the connection when it fails."""
        distributor = asyncio.create_task(self._distribute(), name="hub-distribute")
        try:
            first = True
            while True:
                try:
                    await self._listen(resync=not first)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                    log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", error, self._retry_s)
                first = False
                self.connected.clear()
                await asyncio.sleep(self._retry_s)
        finally:
            for task in [distributor, *self._reloading.values()]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self, resync: bool) -> None:
        connection = await connect(self._url, LISTEN_APPLICATION_NAME)
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            await connection.add_listener(CHANNEL, self._notified)
            for channel in self._on_change:
                await connection.add_listener(channel, self._changed)
            for channel in self._on_message:
                await connection.add_listener(channel, self._message)
            self.connected.set()
            if resync:
                self._resync_all()
                for reloads in self._on_change.values():
                    for reload in reloads:
                        self._schedule(reload)
            while True:
                # A closed socket is seen at once; a silent network fault only by the probe.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), _PROBE_EVERY_S)
                if lost.is_set():
                    raise ConnectionResetError("the LISTEN connection was closed")
                await connection.fetchval("SELECT 1", timeout=_PROBE_EVERY_S)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2.0)

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        self._pending.put_nowait(msgspec.json.decode(str(payload), type=Announcement))

    def _changed(self, _connection: object, _pid: int, channel: str, _payload: object) -> None:
        for reload in self._on_change.get(channel, []):
            self._schedule(reload)

    def _message(self, _connection: object, _pid: int, channel: str, payload: object) -> None:
        for handle in self._on_message.get(channel, []):
            try:
                handle(str(payload))
            except Exception:
                log.exception("handling a message on %s failed", channel)

    def _resync_all(self) -> None:
        for subscriber in [*self._everything, *(s for g in self._by_subcentre.values() for s in g)]:
            subscriber.resync()

    async def _distribute(self) -> None:
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
