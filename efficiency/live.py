"""Cards pushed live to the supervision pages (the socket is efficiency.live_socket).

Whichever process opens or closes a card announces it on CARDS_CHANNEL; every process then reads,
once, the cards opened since the newest it has seen and those closed since its last look, and sends
each connected page the ones of its departments:

    ← {"type": "welcome", "user": …, "cards": [open cards, newest first]}
    ← {"type": "cards", "opened": [cards], "closed": [cards]}

A page that reconnects gets the whole open list again in its welcome, so nothing missed while it
was away stays missing; the same holds after the listening connection is re-established.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from base.pg import Pool
from base.sockets import SocketSession
from efficiency.store import CARDS

_CLOSED_SLACK = timedelta(seconds=5)  # a closing committed just before the last look, seen after it


class CardBoard:
    """This process's supervision pages, and the newest card each has been told about."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._pages: set[SocketSession] = set()
        self._newest: int | None = None
        self._looked: datetime | None = None

    def add(self, page: SocketSession) -> None:
        self._pages.add(page)

    def discard(self, page: SocketSession) -> None:
        self._pages.discard(page)

    async def refresh(self) -> None:
        """Read what changed since the last look and tell every page its share."""
        now: datetime = await self._pool.fetchval("SELECT now()")
        if self._newest is None or self._looked is None:
            self._newest = await self._pool.fetchval("SELECT coalesce(max(id), 0) FROM efficiency_cards")
            self._looked = now
            return
        opened = await self._pool.fetch(f"{CARDS} WHERE k.id > $1 ORDER BY k.id LIMIT 5000", self._newest)
        closed = await self._pool.fetch(f"{CARDS} WHERE k.closed_at >= $1 ORDER BY k.id", self._looked - _CLOSED_SLACK)
        if opened:
            self._newest = opened[-1]["id"]
        self._looked = now
        if not (opened or closed) or not self._pages:
            return
        opened_json, closed_json = [dict(r.items()) for r in opened], [dict(r.items()) for r in closed]
        for page in list(self._pages):
            mine = page.user.sees_department
            page.send({"type": "cards", "opened": [c for c in opened_json if mine(c["department"])],
                       "closed": [c for c in closed_json if mine(c["department"])]})
