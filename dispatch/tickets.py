"""The dispatch ticket (处警单) and its state machine: one ticket per (incident, sub-centre).

    created ──► delivered ──► acknowledged ──► closed (by feedback)
       │            │              │
       └────────────┴──────────────┴──► rejected (with a reason, back to the dispatcher)
    any open state, or rejected ──► cancelled (by the dispatcher)

Acknowledging a ticket whose delivery receipt never arrived is allowed: a person pressing the
button proves delivery, so both timestamps are set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from base.errors import DomainError
from base.messages import PLAIN


class TicketState(StrEnum):
    CREATED = "created"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Finished tickets no longer keep their incident open."""
        return self in (TicketState.CLOSED, TicketState.CANCELLED)


_ALLOWED: dict[TicketState, frozenset[TicketState]] = {
    TicketState.CREATED: frozenset({TicketState.DELIVERED, TicketState.ACKNOWLEDGED,
                                    TicketState.REJECTED, TicketState.CANCELLED}),
    TicketState.DELIVERED: frozenset({TicketState.ACKNOWLEDGED, TicketState.REJECTED, TicketState.CANCELLED}),
    TicketState.ACKNOWLEDGED: frozenset({TicketState.CLOSED, TicketState.REJECTED, TicketState.CANCELLED}),
    TicketState.REJECTED: frozenset({TicketState.CANCELLED}),
    TicketState.CLOSED: frozenset(),
    TicketState.CANCELLED: frozenset(),
}


class IllegalTransition(DomainError):
    code = "illegal_transition"

    def __init__(self, ticket_id: int, state: TicketState, target: TicketState) -> None:
        super().__init__(f"ticket {ticket_id} is {state.value}; it cannot become {target.value}", "ticket_id")
        self.ticket_id = ticket_id
        self.state = state
        self.target = target


Outcome = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=500)]
PeopleAffected = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] | None
ResourcesUsed = Annotated[str, PLAIN, msgspec.Meta(max_length=500)]
Notes = Annotated[str, PLAIN, msgspec.Meta(max_length=2000)]


class Feedback(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """信息反馈: what the sub-centre reports when handling is done (the API body, and on the ticket)."""

    outcome: Outcome
    people_affected: PeopleAffected = None
    resources_used: ResourcesUsed = ""
    notes: Notes = ""


@dataclass(frozen=True)
class Ticket:
    id: int
    incident_id: int
    subcentre_id: int
    department: str
    state: TicketState
    created_at: datetime
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    closed_at: datetime | None = None
    rejected_at: datetime | None = None
    cancelled_at: datetime | None = None
    reason: str = ""  # why it was rejected or cancelled
    feedback: Feedback | None = None
    outside_jurisdiction: bool = False
    tasks: tuple[str, ...] = ()  # the plan's checklist for this department

    def _to(self, target: TicketState, **changes: object) -> Ticket:
        if target not in _ALLOWED[self.state]:
            raise IllegalTransition(self.id, self.state, target)
        return dataclasses.replace(self, state=target, **changes)  # type: ignore[arg-type]

    def deliver(self, now: datetime) -> Ticket:
        return self._to(TicketState.DELIVERED, delivered_at=now)

    def acknowledge(self, now: datetime) -> Ticket:
        return self._to(TicketState.ACKNOWLEDGED, acknowledged_at=now, delivered_at=self.delivered_at or now)

    def report_back(self, feedback: Feedback, now: datetime) -> Ticket:
        return self._to(TicketState.CLOSED, closed_at=now, feedback=feedback)

    def reject(self, reason: str, now: datetime) -> Ticket:
        return self._to(TicketState.REJECTED, rejected_at=now, reason=reason)

    def cancel(self, reason: str, now: datetime) -> Ticket:
        return self._to(TicketState.CANCELLED, cancelled_at=now, reason=reason)
