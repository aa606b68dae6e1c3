"""A sub-centre terminal in Python (websockets): what the benchmark and tests drive, and a model
for other terminal implementations.

It keeps the last sequence number it saw and gives it on reconnect, keeps tickets by id so a
ticket delivered twice is shown once, and sends a delivery receipt for each new ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

import msgspec
import websockets


class TerminalError(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload.get('code')}: {payload.get('message')} (field {payload.get('field')})")
        self.payload = payload


class TerminalClient:
    def __init__(self, url: str, token: str, *, auto_receipt: bool = True,
                 on_new_ticket: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.url = url
        self.token = token
        self.auto_receipt = auto_receipt
        self.on_new_ticket = on_new_ticket
        self.last_seq: int | None = None
        self.tickets: dict[int, dict[str, Any]] = {}
        self.new_tickets: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.repeats = 0  # a ticket offered again (at-least-once delivery), not shown again
        self.heard: list[tuple[str, int]] = []  # (event, ticket id) in the order they arrived
        self.notices: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # other events: a call ringing, …
        self.welcome: dict[str, Any] = {}
        self.welcomed_at: list[float] = []  # time.monotonic() of each welcome: the first, then each reconnect
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.dropped: list[tuple[int | None, str]] = []  # (close code, reason) of each close it did not ask for
        self._socket: websockets.ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._socket = await websockets.connect(self.url, max_size=1 << 20, compression=None)
        await self._socket.send(msgspec.json.encode({"type": "hello", "token": self.token,
                                                     "last_seq": self.last_seq}).decode())
        first = msgspec.json.decode(await self._socket.recv())
        if first.get("type") != "welcome":
            await self._socket.close()
            raise TerminalError(first.get("error", first) if isinstance(first, dict) else {"message": first})
        self.welcome = first
        self.welcomed_at.append(time.monotonic())
        if "tickets" in first:  # a fresh terminal gets the open tickets and the seq they are current to
            self.last_seq = first["seq"]
            for ticket in first["tickets"]:
                if self._see(ticket, "snapshot"):
                    await self._receipt(self._socket, ticket)
        elif self.last_seq is None:
            self.last_seq = first["seq"]
        self._reader = asyncio.create_task(self._read(self._socket))

    async def stay_connected(self, retry_s: float = 0.5, max_retry_s: float = 5.0) -> None:
        """Stay connected as the terminal page does: after a drop, connect again in `retry_s`, doubling
        up to `max_retry_s` while it fails, from the last sequence number seen, so what was missed is
        replayed. Runs until cancelled; a refused hello (a revoked token, say) ends it with TerminalError."""
        delay = retry_s
        while True:
            if self.connected:
                assert self._reader is not None
                await asyncio.wait({self._reader})
                delay = retry_s
            else:
                try:
                    await self.connect()
                    continue
                except (TimeoutError, OSError, websockets.InvalidHandshake, websockets.ConnectionClosed):
                    pass
            await asyncio.sleep(delay)  # the page, too, waits a moment before each attempt
            delay = min(delay * 2, max_retry_s)

    async def _receipt(self, socket: websockets.ClientConnection, ticket: dict[str, Any]) -> None:
        """Tell the server the ticket arrived. Receipts are idempotent and nothing waits on one, so it
        carries no id and the server sends no result (an error, if any, arrives with id null)."""
        if self.auto_receipt and ticket["state"] == "created":
            receipt = {"type": "received", "ticket_id": ticket["id"]}
            await socket.send(msgspec.json.encode(receipt).decode())

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._socket = self._reader = None

    async def __aenter__(self) -> TerminalClient:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def _read(self, socket: websockets.ClientConnection) -> None:
        try:
            async for raw in socket:
                message = msgspec.json.decode(raw)
                kind = message.get("type")
                if kind == "ticket":
                    self.last_seq = message["seq"]
                    self.heard.append((message["event"], message["ticket"]["id"]))
                    if self._see(message["ticket"], message["event"]):
                        await self._receipt(socket, message["ticket"])
                elif kind == "notice":
                    if self.last_seq is not None and message["seq"] <= self.last_seq:
                        self.repeats += 1  # at least once: seen already
                        continue
                    self.last_seq = message["seq"]
                    self.notices.put_nowait(message)
                elif kind in ("result", "error") and message.get("id") in self._pending:
                    self._pending.pop(message["id"]).set_result(message)
        except websockets.ConnectionClosed as closed:  # not a normal close: the server or the network ended it
            self.dropped.append((closed.rcvd.code if closed.rcvd else None,
                                 closed.rcvd.reason if closed.rcvd else "no close frame"))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("terminal connection closed"))
            self._pending.clear()

    def _see(self, ticket: dict[str, Any], event: str) -> bool:
        """Keep the ticket's latest state; True if it is new to this terminal (to be shown)."""
        known = ticket["id"] in self.tickets
        self.tickets[ticket["id"]] = ticket
        if known:
            if event in ("created", "snapshot"):
                self.repeats += 1
            return False
        self.new_tickets.put_nowait(ticket)
        if self.on_new_ticket is not None:
            self.on_new_ticket(ticket)
        return True

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its result; raises TerminalError with the server's error."""
        if self._socket is None:
            raise ConnectionError("not connected")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._socket.send(msgspec.json.encode({"type": kind, "id": request_id, **fields}).decode())
        except BaseException:  # never sent: nobody will wait for its answer
            self._pending.pop(request_id, None)
            raise
        answer = await future
        if answer["type"] == "error":
            raise TerminalError(answer)
        return answer

    async def send_raw(self, text: str, answer_id: int | None = None) -> dict[str, Any]:
        """Send a frame exactly as given (to test the server's validation) and wait for the answer
        carrying `answer_id` (None: an answer to a frame whose id the server could not read)."""
        if self._socket is None:
            raise ConnectionError("not connected")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[answer_id] = future  # type: ignore[index]
        await self._socket.send(text)
        return await asyncio.wait_for(future, 5.0)

    async def next_ticket(self, wait_s: float = 5.0) -> dict[str, Any]:
        """The next ticket this terminal has not shown before."""
        return await asyncio.wait_for(self.new_tickets.get(), wait_s)

    async def acknowledge(self, ticket_id: int) -> dict[str, Any]:
        return await self.request("ack", ticket_id=ticket_id)

    async def report_back(self, ticket_id: int, outcome: str, **details: Any) -> dict[str, Any]:
        return await self.request("feedback", ticket_id=ticket_id, outcome=outcome, **details)
