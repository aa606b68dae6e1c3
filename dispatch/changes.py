"""Every person's action on a ticket in this process goes through one queue, group-committed.

A ticket reaches every terminal of its sub-centre at once, and each terminal sends its delivery
receipt: the first moves the ticket to delivered, the rest change nothing. The rest usually arrive
while the first is being written; by the time their batch is written the ticket is known here to
have left `created`, and they are answered from memory without a transaction.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Sequence

from base.batching import GroupCommit
from base.errors import DomainError
from base.pg import Pool
from dispatch.store import JSON, StoredEvent, TicketChange, change_tickets
from dispatch.views import Views

_REMEMBERED = 20_000  # tickets known delivered; older ones are looked up (at worst one redundant transaction)


class TicketChanges:
    def __init__(self, pool: Pool, views: Views) -> None:
        self._write = functools.partial(change_tickets, pool, views)
        self._queue: GroupCommit[TicketChange, JSON | None] = GroupCommit(self._batch)
        # ticket id -> its sub-centre, for tickets past `created`; a ticket never goes back to it
        self._delivered: collections.OrderedDict[int, int] = collections.OrderedDict()

    async def apply(self, change: TicketChange) -> JSON | None:
        """The ticket as it now is, or None when a repeated receipt changed nothing. Raises the domain
        error the change alone raises (TicketNotFound, NotYourTicket, IllegalTransition)."""
        return await self._queue.submit(change)

    # Subscriber protocol (the event stream, every sub-centre's events): receipts stored by other
    # processes make this one's repeats free too.
    def offer(self, event: StoredEvent) -> None:
        if event.kind == "ticket.delivered" and event.ticket_id is not None and event.subcentre_id is not None:
            self._remember(event.ticket_id, event.subcentre_id)

    def resync(self) -> None:
        pass  # what is remembered stays true: a delivered ticket never returns to created

    def _remember(self, ticket_id: int, subcentre_id: int) -> None:
        self._delivered[ticket_id] = subcentre_id
        self._delivered.move_to_end(ticket_id)
        while len(self._delivered) > _REMEMBERED:
            self._delivered.popitem(last=False)

    def _repeated_receipt(self, change: TicketChange) -> bool:
        subcentre = self._delivered.get(change.ticket_id)
        return (change.action.kind == "deliver" and subcentre is not None
                and change.actor_subcentre in (None, subcentre))

    async def _batch(self, changes: Sequence[TicketChange]) -> list[JSON | DomainError | None]:
        results: list[JSON | DomainError | None] = [None] * len(changes)
        to_write = [n for n, change in enumerate(changes) if not self._repeated_receipt(change)]
        if to_write:
            written = await self._write([changes[n] for n in to_write])
            for n, result in zip(to_write, written, strict=True):
                results[n] = result
                if isinstance(result, dict) and result["state"] != "created":
                    self._remember(result["id"], result["subcentre_id"])
        return results
