"""One WebSocket session for every socket endpoint: hello and authentication, a bounded writer that
cuts off a slow client, messages dispatched by `type` to handlers registered with their schema, and
errors mapped in one place.

    → {"type": "hello", "token": "…", …}            within 10 s, or the socket closes
    ← the endpoint's welcome
    → {"type": "<registered>", "id": 7, …}          checked against the handler's schema
    ← {"type": "result", "id": 7, "ok": true, …}    when the handler answers a request with an id
    ← {"type": "error", "id": 7, "code": "…", "field": "…", "message": "…"}

A request without an `id` is one nobody waits on (a terminal's delivery receipt): it gets no result,
only an error if it fails. A bad hello is answered with an error naming the field and closed (4400
invalid, 4401 unknown token, 4403 wrong role). One writer task owns the socket; everything else
queues. A client whose queue fills is cut off (1013) and reconnects: it never stalls the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from base import audit
from base.accounts import Role, User, token_hash
from base.context import PLATFORM, SOCKETS
from base.database import OUTAGE, unavailable
from base.errors import CLOSE_CODE, DomainError, close_code, convert, decode
from base.http import client_address

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0
_numbers = itertools.count(1)

Job = Callable[[], Awaitable[None]]  # run by the writer, in order with the messages around it
# Pulled by the writer beside its queue: binary messages, or text ones (already encoded) between them.
Source = Callable[[], Awaitable[Sequence[bytes | str]]]
_TOO_SLOW = object()


class _Adapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return f"[{self.extra['connection'] if self.extra else '?'}] {msg}", kwargs


class SocketSession:
    """One connection: who it is, its bounded outgoing queue and the writer that drains it."""

    def __init__(self, socket: web.WebSocketResponse, user: User, endpoint: str, queue_limit: int,
                 token_hash: bytes = b"", address: str = "") -> None:
        self.socket = socket
        self.user = user
        self.actor = audit.Actor(user.id, user.username, address)  # for the audit log
        self.token_hash = token_hash  # the session it was opened with: it ends when that session does
        self.name = f"{endpoint}#{next(_numbers)} {user.username}"
        self.log = _Adapter(log, {"connection": self.name})
        self._queue: asyncio.Queue[Any] = asyncio.Queue(queue_limit)
        self._limit = queue_limit

    def send(self, message: Mapping[str, Any]) -> None:
        """Queue a JSON text message."""
        self._put(message)

    def send_bytes(self, data: bytes) -> None:
        """Queue a binary message."""
        self._put(data)

    def run(self, job: Job) -> None:
        """Queue work for the writer (e.g. reading missed events), so it runs in order with what is sent."""
        self._put(job)

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.log.warning("too slow: %d messages queued; cutting it off (it reconnects)", self._limit)
            while not self._queue.empty():  # drop the backlog: the client catches up when it reconnects
                self._queue.get_nowait()
            self._queue.put_nowait(_TOO_SLOW)

    async def write_forever(self, source: Source | None = None) -> None:
        """Send until the connection ends; `source`, if given, is awaited for messages beside the queue
        (the newest pictures, the live stream: what is skipped rather than queued when behind). If
        sending fails for any reason the socket is closed, so the client reconnects: never connected
        but deaf."""
        try:
            await self._write(source)
        except ConnectionResetError:
            pass  # the client went away mid-send: nothing to tell it
        except Exception:
            if not self.socket.closed:
                self.log.exception("writer failed; closing so the client reconnects")
        finally:
            if not self.socket.closed:
                await self.socket.close(code=WSCloseCode.INTERNAL_ERROR, message=b"reconnect")

    async def _write(self, source: Source | None) -> None:
        if source is None:  # the common case, on the latency path of every ticket: no future per message
            while (item := await self._queue.get()) is not _TOO_SLOW:
                await self._send(item)
            await self.socket.close(code=CLOSE_CODE["too_slow"], message=b"too slow")
            return
        queued: asyncio.Future[Any] = asyncio.ensure_future(self._queue.get())
        pulled: asyncio.Future[Sequence[bytes | str]] = asyncio.ensure_future(source())
        try:
            while True:
                await asyncio.wait([queued, pulled], return_when=asyncio.FIRST_COMPLETED)
                if queued.done():
                    item = queued.result()
                    if item is _TOO_SLOW:
                        await self.socket.close(code=CLOSE_CODE["too_slow"], message=b"too slow")
                        return
                    await self._send(item)
                    queued = asyncio.ensure_future(self._queue.get())
                if pulled.done():
                    for data in pulled.result():
                        await (self.socket.send_str(data) if isinstance(data, str) else self.socket.send_bytes(data))
                    pulled = asyncio.ensure_future(source())
        finally:
            queued.cancel()
            pulled.cancel()

    async def _send(self, item: Any) -> None:
        if isinstance(item, bytes):
            await self.socket.send_bytes(item)
        elif callable(item):
            await item()
        else:
            await self.socket.send_str(encode(item))


def encode(message: Any) -> str:
    return msgspec.json.encode(message).decode()


class SessionWatch:
    """Every socket of this process and the session it was opened with. Sessions end by log-out, by an
    administrator, by expiry, or by a row deleted on another node; every few seconds one query finds
    which have ended, and their sockets are told and closed with 4401."""

    def __init__(self, every_s: float = 2.0) -> None:
        self._sockets: set[SocketSession] = set()
        self._every_s = every_s

    def add(self, session: SocketSession) -> None:
        self._sockets.add(session)

    def discard(self, session: SocketSession) -> None:
        self._sockets.discard(session)

    async def run(self, sessions: Any) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            if not self._sockets:
                continue
            # Only the sockets asked about are judged: one opened while the query runs (a fresh log-in)
            # has a session the query never saw, and is asked about next round.
            asked = list(self._sockets)
            try:
                valid = await sessions.still_valid(list({s.token_hash for s in asked}))
            except Exception as error:  # the database is away: sockets stay until it can be asked again
                if not unavailable(error):
                    log.exception("checking the sockets' sessions failed")
                continue
            for session in [s for s in asked if s.token_hash not in valid and s in self._sockets]:
                self._sockets.discard(session)
                session.send({"type": "error", "code": "unauthenticated", "field": "token",
                              "message": "the session has ended (logged out, revoked or expired); log in again"})
                session.run(functools.partial(_end_session, session))


async def _end_session(session: SocketSession) -> None:
    await session.socket.close(code=CLOSE_CODE["unauthenticated"], message=b"session ended")


WATCH = web.AppKey("session_watch", SessionWatch)

C = TypeVar("C")  # what an endpoint keeps per connection
MessageHandler = Callable[[C, Any], Awaitable[Mapping[str, Any] | None]]


class Endpoint(Generic[C]):
    """A socket endpoint: who may connect, its hello, its handlers by message type, and what it does when
    a connection opens (returning the welcome, sent before anything queued) and closes."""

    roles: ClassVar[tuple[Role, ...]]
    hello: ClassVar[type[Any]]  # a msgspec Struct tagged "hello" with at least `token`
    name: ClassVar[str]
    max_frame_bytes: ClassVar[int] = 64 * 1024
    queue_limit: ClassVar[int] = 2000

    def __init__(self) -> None:
        self.handlers: dict[str, tuple[type[Any], MessageHandler[C]]] = {}

    def on(self, kind: type[Any], handle: MessageHandler[C]) -> None:
        """Handle messages of `kind` (a msgspec Struct whose tag is the message type)."""
        self.handlers[kind.__struct_config__.tag] = (kind, handle)

    async def open(self, app: web.Application, session: SocketSession,
                   hello: Any) -> tuple[C, Mapping[str, Any] | None]:
        raise NotImplementedError

    async def close(self, app: web.Application, state: C) -> None:
        """The connection ended (for any reason)."""

    def source(self, state: C) -> Source | None:
        """Messages the writer pulls beside its queue (the newest tiles, the live stream), if any."""
        return None

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        # No permessage-deflate: messages are small JSON or already-compressed pictures on a private
        # network, and each compressor costs ~300 KB per connection and CPU on the latency path.
        socket = web.WebSocketResponse(heartbeat=15.0, max_msg_size=self.max_frame_bytes, compress=False)
        await socket.prepare(request)
        greeted = await self._greet(request, socket)
        if greeted is None:
            return socket
        hello, user = greeted
        session = SocketSession(socket, user, self.name, self.queue_limit, token_hash(hello.token),
                                client_address(request))
        request.app[SOCKETS].add(socket)
        request.app[WATCH].add(session)
        writer: asyncio.Task[None] | None = None
        state: C | None = None
        opened = False
        try:
            state, welcome = await self.open(request.app, session, hello)
            opened = True
            if welcome is not None:
                await socket.send_str(encode(welcome))
            writer = asyncio.create_task(session.write_forever(self.source(state)), name=f"writer {session.name}")
            await self._read(session, state)
        except DomainError as error:  # refused at open (e.g. no such camera)
            await _refuse(socket, error)
        except ConnectionResetError:
            pass  # the client hung up while being welcomed: nothing to tell it
        except Exception as error:  # the socket is upgraded: an HTTP 500 can no longer be sent, so say it here
            if unavailable(error):
                OUTAGE.noticed(error)
                await _refuse(socket, DomainError("the database cannot be reached now; reconnect shortly",
                                                  code="unavailable"))
            else:
                log.exception("%s: opening failed", self.name)
                await _refuse(socket, DomainError("the server could not do this; it is logged", code="internal"))
        finally:
            if opened:
                await self.close(request.app, state)  # type: ignore[arg-type]  # set whenever opened is
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            request.app[SOCKETS].discard(socket)
            request.app[WATCH].discard(session)
        return socket

    async def _greet(self, request: web.Request, socket: web.WebSocketResponse) -> tuple[Any, User] | None:
        """The hello, checked; on any fault the client is told which field and why, and the socket closes."""
        try:
            hello, user = await self._check_hello(request, socket)
        except DomainError as error:
            await _refuse(socket, error)
            return None
        return hello, user

    async def _check_hello(self, request: web.Request, socket: web.WebSocketResponse) -> tuple[Any, User]:
        try:
            frame = await socket.receive(timeout=HELLO_TIMEOUT_S)
        except TimeoutError:
            raise DomainError(f"send hello first (within {HELLO_TIMEOUT_S:g} s)", "token", "unauthenticated") from None
        if frame.type is not WSMsgType.TEXT:
            raise DomainError("expected hello: frames must be JSON text", "type")
        try:
            hello = decode(frame.data, self.hello)
        except DomainError as error:
            error.message = f"expected hello: {error.message}"
            raise
        try:
            user = await request.app[PLATFORM].sessions.user_for(hello.token)
        except Exception as error:
            if not unavailable(error):
                raise
            OUTAGE.noticed(error)
            raise DomainError("the database cannot be reached now; reconnect shortly", code="unavailable") from None
        if user is None:
            raise DomainError("the token is unknown or has expired", "token", "unauthenticated")
        if user.role not in self.roles:
            allowed = " or ".join(r.value for r in self.roles)
            raise DomainError(f"a {user.role.value} may not use this socket (only {allowed})", "token", "forbidden")
        return hello, user

    async def _read(self, session: SocketSession, state: C) -> None:
        async for frame in session.socket:
            if frame.type is WSMsgType.TEXT:
                await self._handle(session, state, frame.data)
            elif frame.type is WSMsgType.BINARY:
                session.send(_error(DomainError("frames must be JSON text", "type"), None))

    async def _handle(self, session: SocketSession, state: C, text: str) -> None:
        request_id: int | None = None
        try:
            try:
                raw = msgspec.json.decode(text)  # parsed once; the id answers even a frame that is invalid
            except msgspec.DecodeError:
                raise DomainError("frame is not valid JSON", code="malformed_json") from None
            except RecursionError:
                raise DomainError("the JSON is nested too deeply", code="malformed_json") from None
            if not isinstance(raw, dict):
                raise DomainError("a message is a JSON object with a type", "type")
            if isinstance(raw.get("id"), int):
                request_id = raw["id"]
            registered = self.handlers.get(raw.get("type"))  # type: ignore[arg-type]  # any JSON value
            if registered is None:
                raise DomainError(f"unknown message type {raw.get('type')!r}", "type", "unknown_type")
            kind, handle = registered
            answer = await handle(state, convert(raw, kind))
            if answer is not None and request_id is not None:
                session.send({"type": "result", "id": request_id, "ok": True, **answer})
        except DomainError as error:
            session.send(_error(error, request_id))
        except Exception:
            session.log.exception("message failed")
            session.send(_error(DomainError("the server could not do this; it is logged", code="internal"),
                                request_id))


def _error(error: DomainError, request_id: int | None) -> dict[str, Any]:
    return {"type": "error", "id": request_id, **error.payload()}


async def _refuse(socket: web.WebSocketResponse, error: DomainError) -> None:
    """Tell the client what was wrong, and close with the code the error maps to."""
    await socket.send_str(encode({"type": "error", **error.payload()}))
    await socket.close(code=close_code(error.code), message=error.code.encode())

