"""The dispatchers' console WebSocket (/ws/console): every stored event, live (the session itself is
base.sockets).

The console loads state over HTTP and then applies events; on `resync` (events may have been
missed while the server's LISTEN connection was re-opened) it reloads over HTTP. It sends nothing
but its hello: any message is answered with an unknown_type error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from base.accounts import Role
from base.http import Api
from base.messages import Hello
from base.sockets import Endpoint, SocketSession
from dispatch.context import DISPATCH
from dispatch.store import StoredEvent

api = Api()
CONSOLE_ROLES = (Role.DISPATCHER, Role.SUPERVISOR)


class Console:
    """One connected console: it takes every event as it is stored."""

    def __init__(self, session: SocketSession) -> None:
        self.session = session

    def offer(self, event: StoredEvent) -> None:
        self.session.send({"type": "event", "id": event.id, "kind": event.kind, "incident_id": event.incident_id,
                           "ticket_id": event.ticket_id, "subcentre_id": event.subcentre_id, "at": event.at,
                           "data": event.data})

    def resync(self) -> None:
        self.session.send({"type": "resync"})


class ConsoleEndpoint(Endpoint[Console]):
    roles = CONSOLE_ROLES
    hello = Hello
    name = "console"
    queue_limit = 5000

    async def open(self, app: web.Application, session: SocketSession,
                   hello: Hello) -> tuple[Console, Mapping[str, Any]]:
        console = Console(session)
        app[DISPATCH].events.subscribe(console)
        # The server's clock, so consoles time ticket stages by it rather than by their own.
        return console, {"type": "welcome", "user": session.user.public(), "now": datetime.now(UTC)}

    async def close(self, app: web.Application, state: Console) -> None:
        app[DISPATCH].events.unsubscribe(state)


consoles = ConsoleEndpoint()
api.websocket("/ws/console", "Dispatchers' live event WebSocket: send Hello (token) first", roles=CONSOLE_ROLES,
              hello=Hello)(consoles.serve)
