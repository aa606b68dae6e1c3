"""The sub-centre terminal WebSocket (/ws/terminal): the protocol is in protocol.py, the session
(hello, writer, errors) in base.sockets.

Ticket events go out through the session's one writer by gap-free sequence number. When the writer
sees a gap (the hub reconnected, or the terminal was behind) it reads the missing events from
PostgreSQL, so a terminal misses nothing. A terminal whose queue fills is cut off; it reconnects
and replays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from base.accounts import Role, User
from base.context import PLATFORM
from base.http import Api
from base.pg import Pool
from base.sockets import Endpoint, SocketSession, encode
from dispatch.context import DISPATCH, Dispatch
from dispatch.protocol import Ack, FeedbackMessage, Received, Reject, TerminalHello
from dispatch.store import StoredEvent, TicketAction, TicketChange, current_seq, replay

api = Api()


class Terminal:
    """One connected terminal: its sub-centre and how far its event stream has been sent."""

    def __init__(self, session: SocketSession, pool: Pool, dispatch: Dispatch, last_seq: int) -> None:
        assert session.user.subcentre_id is not None
        self.session = session
        self.pool = pool
        self.dispatch = dispatch
        self.subcentre_id = session.user.subcentre_id
        self.last_sent = last_seq

    # Subscriber protocol (called by the event stream; must not block): the writer does the work.
    def offer(self, event: StoredEvent) -> None:
        self.session.run(lambda: self._deliver(event))

    def resync(self) -> None:
        self.session.run(self._catch_up)

    async def _deliver(self, event: StoredEvent) -> None:
        seq = event.subcentre_seq
        assert seq is not None  # only a sub-centre's own ticket events are offered here
        if seq <= self.last_sent:
            return  # already sent (replay and live raced): at-least-once, not twice
        if seq == self.last_sent + 1:
            await self._send_event(seq, event.kind, event.data)
        else:
            await self._catch_up()

    async def _catch_up(self) -> None:
        while rows := await replay(self.pool, self.subcentre_id, self.last_sent):
            for row in rows:
                await self._send_event(row["subcentre_seq"], row["kind"], row["data"])

    async def _send_event(self, seq: int, kind: str, data: Any) -> None:
        if "ticket" in data:
            message = {"type": "ticket", "seq": seq, "event": kind.removeprefix("ticket."), "ticket": data["ticket"]}
        else:  # another package's event for this sub-centre (a call ringing): its kind and data as stored
            message = {"type": "notice", "seq": seq, "kind": kind, "data": data}
        await self.session.socket.send_str(encode(message))
        self.last_sent = seq

    async def act(self, ticket_id: int, action: TicketAction) -> Mapping[str, Any]:
        user: User = self.session.user
        ticket = await self.dispatch.changes.apply(TicketChange(ticket_id, action, user.id, self.subcentre_id))
        return {"changed": ticket is not None}


async def _snapshot(pool: Pool, subcentre_id: int) -> tuple[int, list[Any]]:
    """Open tickets and the sequence number they are current to, read in one consistent snapshot."""
    async with pool.acquire() as connection, connection.transaction(isolation="repeatable_read", readonly=True):
        seq: int = await connection.fetchval("SELECT last_seq FROM subcentres WHERE id = $1", subcentre_id)
        rows = await connection.fetch(
            "SELECT DISTINCT ON (e.ticket_id) e.data FROM events e JOIN tickets t ON t.id = e.ticket_id"
            " WHERE e.subcentre_id = $1 AND t.subcentre_id = $1"
            " AND t.state IN ('created', 'delivered', 'acknowledged')"
            " ORDER BY e.ticket_id, e.subcentre_seq DESC", subcentre_id)
    return seq, [r["data"]["ticket"] for r in rows]


class TerminalEndpoint(Endpoint[Terminal]):
    roles = (Role.OPERATOR,)
    hello = TerminalHello
    name = "terminal"

    def __init__(self) -> None:
        super().__init__()
        self.on(Received, lambda t, m: t.act(m.ticket_id, TicketAction("deliver")))
        self.on(Ack, lambda t, m: t.act(m.ticket_id, TicketAction("acknowledge")))
        self.on(FeedbackMessage, lambda t, m: t.act(m.ticket_id, TicketAction("report_back", feedback=m.feedback())))
        self.on(Reject, lambda t, m: t.act(m.ticket_id, TicketAction("reject", reason=m.reason)))

    async def open(self, app: web.Application, session: SocketSession,
                   hello: TerminalHello) -> tuple[Terminal, Mapping[str, Any]]:
        pool, dispatch = app[PLATFORM].pool, app[DISPATCH]
        terminal = Terminal(session, pool, dispatch, hello.last_seq or 0)
        subcentre = dispatch.directory.subcentres.get(terminal.subcentre_id)
        # Subscribe before reading the database, so no event falls between the two; events that arrive
        # meanwhile wait in the queue, and the writer starts only after the welcome went out first.
        dispatch.events.subscribe(terminal, terminal.subcentre_id)
        welcome: dict[str, Any] = {"type": "welcome", "user": session.user.public(),
                                   "subcentre": subcentre.feature()["properties"] if subcentre else None}
        latest = await current_seq(pool, terminal.subcentre_id)
        # A terminal that remembers nothing, or more than the database holds (restored from a
        # backup, re-seeded), starts from the open tickets; any other replays what it missed.
        if hello.last_seq is None or hello.last_seq > latest:
            seq, tickets = await _snapshot(pool, terminal.subcentre_id)
            terminal.last_sent = seq
            return terminal, {**welcome, "seq": seq, "tickets": tickets}
        terminal.resync()
        return terminal, {**welcome, "seq": latest}

    async def close(self, app: web.Application, state: Terminal) -> None:
        app[DISPATCH].events.unsubscribe(state, state.subcentre_id)


terminals = TerminalEndpoint()
api.websocket("/ws/terminal", "Sub-centre terminal WebSocket: send TerminalHello first, then Received, Ack,"
              " FeedbackMessage, Reject", roles=terminals.roles, hello=TerminalHello)(terminals.serve)
