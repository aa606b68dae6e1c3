"""The dispatchers' console WebSocket (/ws/console): every stored event, live.

The console loads state over HTTP and then applies events; on `resync` (events may have been
missed while the server's LISTEN connection was re-opened) it reloads over HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from command.accounts import Role
from command.errors import RequestError, decode
from command.services import SERVICES, SOCKETS
from dispatch.protocol import Hello
from dispatch.store import StoredEvent

log = logging.getLogger(__name__)
_QUEUE_LIMIT = 5000


class ConsoleSession:
    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(_QUEUE_LIMIT)

    def offer(self, event: StoredEvent) -> None:
        self.send({"type": "event", "id": event.id, "kind": event.kind, "incident_id": event.incident_id,
                   "ticket_id": event.ticket_id, "subcentre_id": event.subcentre_id, "at": event.at,
                   "data": event.data})

    def resync(self) -> None:
        self.send({"type": "resync"})

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)  # too slow: close; the console reconnects and reloads

    async def write_forever(self) -> None:
        """Send until the connection ends; on any failure close, so the console reconnects and reloads."""
        try:
            while (message := await self.queue.get()) is not None:
                await self.socket.send_str(msgspec.json.encode(message).decode())
            await self.socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
        except Exception:
            if not self.socket.closed:
                log.exception("console writer failed; closing so the console reconnects")
                await self.socket.close(code=WSCloseCode.INTERNAL_ERROR, message=b"reconnect")


async def console_socket(request: web.Request) -> web.WebSocketResponse:
    services = request.app[SERVICES]
    socket = web.WebSocketResponse(heartbeat=15.0, max_msg_size=64 * 1024, compress=False)  # see terminal_ws
    await socket.prepare(request)
    try:
        frame = await socket.receive(timeout=10.0)
        hello = decode(frame.data, Hello) if frame.type is WSMsgType.TEXT else None
    except (TimeoutError, RequestError):
        hello = None
    user = await services.sessions.user_for(hello.token) if hello else None
    if user is None or user.role not in (Role.DISPATCHER, Role.SUPERVISOR):
        await socket.send_json({"type": "error", "code": "unauthenticated", "field": "token",
                                "message": "send hello with a dispatcher's or supervisor's token"})
        await socket.close(code=4401, message=b"unauthenticated")
        return socket
    session = ConsoleSession(socket)
    services.hub.subscribe(session)
    writer = asyncio.create_task(session.write_forever(), name="console-writer")
    request.app[SOCKETS].add(socket)
    try:
        # The server's clock, so consoles time ticket stages by it rather than by their own.
        session.send({"type": "welcome", "user": user.public(), "now": datetime.now(UTC)})
        async for frame in socket:  # the console only listens; anything it sends is answered
            if frame.type is WSMsgType.TEXT:
                session.send({"type": "error", "code": "unknown_type",
                              "message": "the console socket takes no requests", "field": "type"})
    finally:
        services.hub.unsubscribe(session)
        writer.cancel()
    return socket
