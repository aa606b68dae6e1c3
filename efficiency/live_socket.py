"""/ws/efficiency: the supervision page's live cards (what it receives: efficiency.live)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

from base.accounts import Role
from base.context import PLATFORM
from base.http import Api
from base.messages import Token
from base.sockets import Endpoint, SocketSession
from efficiency.context import EFFICIENCY
from efficiency.store import open_cards

api = Api()
WATCHERS = (Role.ADMINISTRATOR, Role.SUPERVISOR)


class SupervisionHello(msgspec.Struct, tag="hello", frozen=True, forbid_unknown_fields=True):
    token: Token


class SupervisionEndpoint(Endpoint[SocketSession]):
    roles = WATCHERS
    hello = SupervisionHello
    name = "efficiency"
    max_frame_bytes = 16 * 1024  # it takes nothing but its hello; the room is for a garbage frame to be answered
    queue_limit = 200

    async def open(self, app: web.Application, session: SocketSession,
                   hello: SupervisionHello) -> tuple[SocketSession, Mapping[str, Any]]:
        app[EFFICIENCY].board.add(session)
        cards = await open_cards(app[PLATFORM].pool, session.user.departments)
        return session, {"type": "welcome", "user": session.user.public(), "cards": cards}

    async def close(self, app: web.Application, state: SocketSession) -> None:
        app[EFFICIENCY].board.discard(state)


supervision = SupervisionEndpoint()
api.websocket("/ws/efficiency", "Efficiency supervision page: send SupervisionHello; the welcome lists the open"
              " cards, then each change arrives as {type: cards, opened, closed}", roles=WATCHERS,
              hello=SupervisionHello)(supervision.serve)
