"""The sub-centre terminal WebSocket (/ws/terminal): transport only, the protocol is in protocol.py.

One reader loop per connection handles requests in order; one writer task owns the socket and
sends everything in order: results, and ticket events by gap-free sequence number. When it sees a
gap (the hub reconnected, or the terminal was behind) it reads the missing events from PostgreSQL,
so a terminal misses nothing. A terminal whose queue fills is cut off; it reconnects and replays.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from command.accounts import Role, User
from command.errors import RequestError, convert, decode, from_domain
from command.services import SERVICES, SOCKETS, Services
from dispatch.protocol import Ack, FeedbackMessage, Hello, Received, Reject, TerminalRequest
from dispatch.store import Action, StoredEvent, change_ticket, current_seq, replay
from dispatch.tickets import Feedback

log = logging.getLogger(__name__)

_QUEUE_LIMIT = 2000
_HELLO_TIMEOUT_S = 10.0
MAX_FRAME_BYTES = 64 * 1024

_REQUEST_TYPES = frozenset(kind.__struct_config__.tag for kind in (Received, Ack, FeedbackMessage, Reject))
_RESYNC = object()
_OVERFLOW = object()


class _Outgoing:
    """Queued for the writer: a ready message, a stored event, or _RESYNC."""

    __slots__ = ("event", "message")

    def __init__(self, message: Any = None, event: StoredEvent | None = None) -> None:
        self.message = message
        self.event = event


class TerminalSession:
    """One connected terminal: its sub-centre, what it has been sent, and its writer."""

    def __init__(self, services: Services, socket: web.WebSocketResponse, user: User, last_seq: int) -> None:
        assert user.subcentre_id is not None
        self.services = services
        self.socket = socket
        self.user = user
        self.subcentre_id = user.subcentre_id
        self.last_sent = last_seq
        self.queue: asyncio.Queue[_Outgoing | object] = asyncio.Queue(_QUEUE_LIMIT)
        self.log = logging.LoggerAdapter(log, {"terminal": f"{user.username}#{id(self):x}"})

    # Subscriber protocol (called by the hub; must not block)
    def offer(self, event: StoredEvent) -> None:
        self._put(_Outgoing(event=event))

    def resync(self) -> None:
        self._put(_RESYNC)

    def send(self, message: Any) -> None:
        self._put(_Outgoing(message=message))

    def _put(self, item: _Outgoing | object) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.log.warning("terminal too slow: %d messages queued; disconnecting it", _QUEUE_LIMIT)
            while not self.queue.empty():  # drop the backlog: the terminal replays it on reconnect
                self.queue.get_nowait()
            self.queue.put_nowait(_OVERFLOW)

    async def write_forever(self) -> None:
        """Send until the connection ends. If sending fails for any reason the socket is closed, so
        the terminal reconnects and replays: a terminal must never stay connected but deaf."""
        try:
            await self._write()
        except Exception:
            if not self.socket.closed:
                self.log.exception("terminal writer failed; closing so the terminal reconnects")
        finally:
            if not self.socket.closed:
                await self.socket.close(code=WSCloseCode.INTERNAL_ERROR, message=b"reconnect")

    async def _write(self) -> None:
        while True:
            item = await self.queue.get()
            if item is _OVERFLOW:
                await self.socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
                return
            if item is _RESYNC:
                await self._catch_up()
            elif isinstance(item, _Outgoing) and item.event is not None:
                seq = item.event.subcentre_seq
                assert seq is not None  # only a sub-centre's own ticket events are offered here
                if seq <= self.last_sent:
                    continue  # already sent (replay and live raced): at-least-once, not twice
                if seq == self.last_sent + 1:
                    await self._send_event(seq, item.event.kind, item.event.data)
                else:
                    await self._catch_up()
            elif isinstance(item, _Outgoing):
                await self.socket.send_str(_text(item.message))

    async def _catch_up(self) -> None:
        while rows := await replay(self.services.pool, self.subcentre_id, self.last_sent):
            for row in rows:
                await self._send_event(row["subcentre_seq"], row["kind"], row["data"])

    async def _send_event(self, seq: int, kind: str, data: Any) -> None:
        message = {"type": "ticket", "seq": seq, "event": kind.removeprefix("ticket."), "ticket": data["ticket"]}
        await self.socket.send_str(_text(message))
        self.last_sent = seq


async def _snapshot(services: Services, subcentre_id: int) -> tuple[int, list[Any]]:
    """Open tickets and the sequence number they are current to, read in one consistent snapshot."""
    async with services.pool.acquire() as connection, connection.transaction(isolation="repeatable_read",
                                                                               readonly=True):
        seq: int = await connection.fetchval("SELECT last_seq FROM subcentres WHERE id = $1", subcentre_id)
        rows = await connection.fetch(
            "SELECT DISTINCT ON (e.ticket_id) e.data FROM events e JOIN tickets t ON t.id = e.ticket_id"
            " WHERE e.subcentre_id = $1 AND t.subcentre_id = $1"
            " AND t.state IN ('created', 'delivered', 'acknowledged')"
            " ORDER BY e.ticket_id, e.subcentre_seq DESC", subcentre_id)
    return seq, [r["data"]["ticket"] for r in rows]


def _text(message: Any) -> str:
    return msgspec.json.encode(message).decode()


def _action(request: TerminalRequest) -> Action:
    if isinstance(request, Received):
        return Action("deliver")
    if isinstance(request, Ack):
        return Action("acknowledge")
    if isinstance(request, FeedbackMessage):
        return Action("report_back", feedback=Feedback(request.outcome, request.people_affected,
                                                       request.resources_used, request.notes))
    return Action("reject", reason=request.reason)


def _error(code: str, message: str, field: str | None = None, request_id: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "id": request_id, "code": code, "message": message}
    if field:
        body["field"] = field
    return body


async def _authenticate(services: Services, socket: web.WebSocketResponse) -> tuple[User, Hello] | None:
    try:
        frame = await socket.receive(timeout=_HELLO_TIMEOUT_S)
    except TimeoutError:
        await socket.send_json(_error("timeout", "send hello first"))
        return None
    if frame.type is not WSMsgType.TEXT:
        return None
    try:
        hello = decode(frame.data, Hello)
    except RequestError as error:
        await socket.send_json(_error(error.code, f"expected hello: {error.message}", error.field))
        return None
    user = await services.sessions.user_for(hello.token)
    if user is None or user.role is not Role.OPERATOR:
        await socket.send_json(_error("unauthenticated", "the token is unknown, expired, or not an operator's",
                                      "token"))
        return None
    return user, hello


async def terminal_socket(request: web.Request) -> web.WebSocketResponse:
    services = request.app[SERVICES]
    # No permessage-deflate: tickets are small JSON on a private network, and each compressor costs
    # ~300 KB per connection and CPU on the latency path.
    socket = web.WebSocketResponse(heartbeat=15.0, max_msg_size=MAX_FRAME_BYTES, compress=False)
    await socket.prepare(request)
    authenticated = await _authenticate(services, socket)
    if authenticated is None:
        await socket.close(code=4401, message=b"unauthenticated")
        return socket
    user, hello = authenticated
    assert user.subcentre_id is not None
    subcentre = services.directory.subcentres.get(user.subcentre_id)
    session = TerminalSession(services, socket, user, hello.last_seq or 0)
    # Subscribe before reading the database, so no event falls between the two; events that arrive
    # meanwhile wait in the queue, and the writer starts only after the welcome went out first.
    services.hub.subscribe(session, user.subcentre_id)
    writer: asyncio.Task[None] | None = None
    request.app[SOCKETS].add(socket)
    try:
        welcome: dict[str, Any] = {"type": "welcome", "user": user.public(),
                                   "subcentre": subcentre.feature()["properties"] if subcentre else None}
        latest = await current_seq(services.pool, user.subcentre_id)
        # A terminal that remembers nothing, or more than the database holds (restored from a
        # backup, re-seeded), starts from the open tickets; any other replays what it missed.
        if hello.last_seq is None or hello.last_seq > latest:
            seq, tickets = await _snapshot(services, user.subcentre_id)
            session.last_sent = seq
            await socket.send_str(_text({**welcome, "seq": seq, "tickets": tickets}))
        else:
            await socket.send_str(_text({**welcome, "seq": latest}))
            session.resync()
        writer = asyncio.create_task(session.write_forever(), name=f"terminal-writer-{user.username}")
        await _read(services, socket, session, user)
    finally:
        services.hub.unsubscribe(session, user.subcentre_id)
        if writer is not None:
            writer.cancel()
        request.app[SOCKETS].discard(socket)
    return socket


async def _read(services: Services, socket: web.WebSocketResponse, session: TerminalSession, user: User) -> None:
    async for frame in socket:
        if frame.type is not WSMsgType.TEXT:
            if frame.type is WSMsgType.BINARY:
                session.send(_error("invalid", "frames must be JSON text"))
            continue
        request_id: int | None = None
        try:
            raw = msgspec.json.decode(frame.data)  # parsed once; the id answers even a frame that is invalid
            if isinstance(raw, dict) and isinstance(raw.get("id"), int):
                request_id = raw["id"]
            if isinstance(raw, dict) and raw.get("type") not in _REQUEST_TYPES:
                raise RequestError(400, "unknown_type", f"unknown message type {raw.get('type')!r}", "type")
            message: TerminalRequest = convert(raw, TerminalRequest)  # type: ignore[arg-type]  # a union, not a class
            ticket = await change_ticket(services.pool, services.views, message.ticket_id, _action(message),
                                         user.id, user.subcentre_id)
            session.send({"type": "result", "id": request_id, "ok": True, "changed": ticket is not None})
        except msgspec.DecodeError:
            session.send(_error("malformed_json", "frame is not valid JSON", None, request_id))
        except Exception as error:
            mapped = from_domain(error)
            if mapped is None:
                session.log.exception("terminal request failed")
                mapped = RequestError(500, "internal", "the server could not do this; it is logged")
            session.send(_error(mapped.code, mapped.message, mapped.field, request_id))


