"""Opens time cards as their moment comes, for cases and complaints alike.

Each pass looks only at limits that fell due since the last pass (less a minute's slack, for an
event whose transaction committed after the pass's snapshot), so a pass costs the cards due, not
the open cases. The first pass of a process looks at everything: a card due while no server ran
opens at start-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from base.pg import Pool
from efficiency import complaints, store

SLACK = timedelta(minutes=1)


class CardSweep:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._since: datetime | None = None

    async def sweep(self) -> int:
        """One pass; how many cards opened."""
        now: datetime = await self._pool.fetchval("SELECT now()")
        opened = await store.open_due_cards(self._pool, self._since)
        opened += await complaints.open_due_cards(self._pool, self._since)
        self._since = now - SLACK
        return opened
