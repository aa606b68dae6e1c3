"""Fan-out between server processes through PostgreSQL LISTEN/NOTIFY.

One dedicated connection listens (a pooled one would be handed to other work). A dead connection
is otherwise only noticed at TCP timeout, so it is probed every few seconds and re-opened when it
fails. Notifications sent while nobody listened are gone, so after a reconnect every `on_change`
reload runs and every `on_reconnect` callback is told to resynchronise from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from base.database import connect

log = logging.getLogger(__name__)

_PROBE_EVERY_S = 5.0
LISTEN_APPLICATION_NAME = "liandong-listen"  # so operators (and tests) can find this connection
Reload = Callable[[], Awaitable[None]]


class Hub:
    def __init__(self, url: str, retry_s: float) -> None:
        self._url = url
        self._retry_s = retry_s
        self._on_change: dict[str, list[Reload]] = {}
        self._on_message: dict[str, list[Callable[[str], None]]] = {}
        self._on_reconnect: list[Callable[[], None]] = []
        self._reloading: dict[Reload, asyncio.Task[None]] = {}  # strong references to running reloads
        self._again: set[Reload] = set()
        self.connected = asyncio.Event()

    def on_change(self, channel: str, reload: Reload) -> None:
        """Run `reload` when any process announces a change on `channel` (and after a reconnect,
        since announcements made meanwhile are lost). A burst of announcements runs it at most
        twice: once now, once more after it finishes."""
        self._on_change.setdefault(channel, []).append(reload)

    def on_message(self, channel: str, handle: Callable[[str], None]) -> None:
        """Call `handle` with the payload of each announcement on `channel`; it must not block. One made
        while the connection was down is lost: pair it with `on_reconnect` where that matters."""
        self._on_message.setdefault(channel, []).append(handle)

    def on_reconnect(self, resync: Callable[[], None]) -> None:
        """Call `resync` after the connection was re-opened: announcements may have been missed."""
        self._on_reconnect.append(resync)

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
            for task in list(self._reloading.values()):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self, resync: bool) -> None:
        connection = await connect(self._url, LISTEN_APPLICATION_NAME)
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            for channel in self._on_change:
                await connection.add_listener(channel, self._changed)
            for channel in self._on_message:
                await connection.add_listener(channel, self._message)
            self.connected.set()
            if resync:
                for callback in self._on_reconnect:
                    callback()
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

    def _changed(self, _connection: object, _pid: int, channel: str, _payload: object) -> None:
        for reload in self._on_change.get(channel, []):
            self._schedule(reload)

    def _message(self, _connection: object, _pid: int, channel: str, payload: object) -> None:
        for handle in self._on_message.get(channel, []):
            try:
                handle(str(payload))
            except Exception:
                log.exception("handling a message on %s failed", channel)
