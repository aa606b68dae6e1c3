"""Tickets and events in PostgreSQL. Every change is one transaction: the new state, its event row
(with the sub-centre's next sequence number), and a NOTIFY that PostgreSQL only sends on commit —
so nothing reaches a terminal that is not stored, and nothing stored is left unannounced.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from dispatch.pg import Connection, Pool
from dispatch.routing import Assignment
from dispatch.tickets import Feedback, Ticket, TicketState
from dispatch.views import Views

JSON = dict[str, Any]

CHANNEL = "liandong_events"

# (incident_id, ticket_id, subcentre_id, subcentre_seq, kind, actor_id, data)
EventRow = tuple[int, int | None, int | None, int | None, str, int | None, JSON]

_TICKET_COLUMNS = ("id, incident_id, subcentre_id, department, state, created_at, delivered_at, acknowledged_at,"
                   " closed_at, rejected_at, cancelled_at, reason, feedback, outside_jurisdiction, distance_m")


class TicketNotFound(Exception):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} does not exist")


class NotYourTicket(Exception):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} belongs to another sub-centre")


def ticket_from_row(row: asyncpg.Record) -> Ticket:
    feedback = row["feedback"]
    return Ticket(
        id=row["id"], incident_id=row["incident_id"], subcentre_id=row["subcentre_id"],
        department=row["department"], state=TicketState(row["state"]), created_at=row["created_at"],
        delivered_at=row["delivered_at"], acknowledged_at=row["acknowledged_at"], closed_at=row["closed_at"],
        rejected_at=row["rejected_at"], cancelled_at=row["cancelled_at"], reason=row["reason"],
        feedback=msgspec.convert(feedback, Feedback) if feedback is not None else None,
        outside_jurisdiction=row["outside_jurisdiction"],
    )


def ticket_json(ticket: Ticket, incident: JSON, alert: JSON) -> JSON:
    """A ticket as terminals and consoles see it: with its incident and the alert to sound."""
    body: JSON = msgspec.to_builtins(ticket, builtin_types=(datetime,))
    body["incident"] = incident
    body["alert"] = alert
    return body


async def _next_seqs(connection: Connection, subcentre_ids: Sequence[int]) -> dict[int, int]:
    """Take each sub-centre's next sequence number, locking rows in id order so that concurrent
    transactions never deadlock; the lock is held to commit, which keeps numbers in commit order."""
    rows = await connection.fetch(
        "WITH locked AS (SELECT id FROM subcentres WHERE id = ANY($1::int[]) ORDER BY id FOR UPDATE)"
        " UPDATE subcentres s SET last_seq = s.last_seq + 1 FROM locked WHERE s.id = locked.id"
        " RETURNING s.id, s.last_seq", sorted(set(subcentre_ids)))
    return {r["id"]: r["last_seq"] for r in rows}


async def _record_events(connection: Connection, events: list[EventRow]) -> list[int]:
    """Insert (incident, ticket, sub-centre, seq, kind, actor, data) rows and announce them on commit."""
    columns = list(zip(*events, strict=True))
    rows = await connection.fetch(
        "INSERT INTO events (incident_id, ticket_id, subcentre_id, subcentre_seq, kind, actor_id, data)"
        " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5::text[], $6::int[],"
        " $7::jsonb[]) RETURNING id", *columns)
    ids = [r["id"] for r in rows]
    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, msgspec.json.encode(ids).decode())
    return ids


async def issue_tickets(connection: Connection, incident: JSON, assignments: Sequence[Assignment],
                        alert: JSON, actor_id: int | None, routing: JSON) -> list[JSON]:
    """Create one ticket per assignment for a just-inserted incident, inside the caller's transaction.

    Also records the incident's own `incident.created` event, with the routing decision, so the
    timeline starts with what was decided and why.
    """
    events: list[EventRow] = [
        (incident["id"], None, None, None, "incident.created", actor_id, {"incident": incident, "routing": routing})]
    tickets: list[JSON] = []
    if assignments:
        seqs = await _next_seqs(connection, [a.subcentre_id for a in assignments])
        rows = await connection.fetch(
            f"INSERT INTO tickets (incident_id, subcentre_id, department, state, created_at,"
            f" outside_jurisdiction, distance_m)"
            f" SELECT $1, s, d, 'created', $2, o, m FROM unnest($3::int[], $4::text[], $5::bool[], $6::float8[])"
            f" AS a(s, d, o, m) RETURNING {_TICKET_COLUMNS}",
            incident["id"], incident["created_at"], [a.subcentre_id for a in assignments],
            [a.department for a in assignments], [a.outside_jurisdiction for a in assignments],
            [a.distance_m for a in assignments])
        for row in rows:
            body = ticket_json(ticket_from_row(row), incident, alert)
            tickets.append(body)
            events.append((incident["id"], row["id"], row["subcentre_id"], seqs[row["subcentre_id"]],
                           "ticket.created", actor_id, {"ticket": body}))
    await _record_events(connection, events)
    return tickets


class Action(msgspec.Struct, frozen=True):
    """What a person asks of a ticket; `kind` names the state machine's method."""

    kind: str  # "deliver" | "acknowledge" | "report_back" | "reject" | "cancel"
    reason: str = ""
    feedback: Feedback | None = None


def _apply(ticket: Ticket, action: Action, now: datetime) -> Ticket:
    if action.kind == "deliver":
        return ticket.deliver(now)
    if action.kind == "acknowledge":
        return ticket.acknowledge(now)
    if action.kind == "report_back":
        assert action.feedback is not None
        return ticket.report_back(action.feedback, now)
    if action.kind == "reject":
        return ticket.reject(action.reason, now)
    if action.kind == "cancel":
        return ticket.cancel(action.reason, now)
    raise ValueError(f"unknown action {action.kind!r}")


async def change_ticket(pool: Pool, views: Views, ticket_id: int, action: Action, actor_id: int,
                        actor_subcentre: int | None) -> JSON | None:
    """Apply `action` to a ticket in one transaction; returns the ticket, or None when a repeated
    delivery receipt changed nothing. `actor_subcentre` is set for operators: they may only act on
    their own sub-centre's tickets. Raises TicketNotFound, NotYourTicket, and the state machine's
    IllegalTransition.
    """
    async with pool.acquire() as connection, connection.transaction():
        # The incident row lock serialises all changes to one incident's tickets, so two tickets
        # closing at once cannot both miss that the incident is now finished.
        incident_row = await connection.fetchrow(
            "SELECT i.*, now() AS now FROM incidents i"
            " WHERE i.id = (SELECT incident_id FROM tickets WHERE id = $1) FOR UPDATE", ticket_id)
        if incident_row is None:
            raise TicketNotFound(ticket_id)
        siblings = {r["id"]: ticket_from_row(r) for r in await connection.fetch(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE incident_id = $1", incident_row["id"])}
        ticket = siblings.pop(ticket_id)
        if actor_subcentre is not None and ticket.subcentre_id != actor_subcentre:
            raise NotYourTicket(ticket_id)
        if action.kind == "deliver" and ticket.state is not TicketState.CREATED:
            return None  # at-least-once delivery: a second receipt is expected and harmless
        now: datetime = incident_row["now"]
        changed = _apply(ticket, action, now)
        await connection.execute(
            "UPDATE tickets SET state = $2, delivered_at = $3, acknowledged_at = $4, closed_at = $5,"
            " rejected_at = $6, cancelled_at = $7, reason = $8, feedback = $9 WHERE id = $1",
            changed.id, changed.state.value, changed.delivered_at, changed.acknowledged_at, changed.closed_at,
            changed.rejected_at, changed.cancelled_at, changed.reason,
            msgspec.to_builtins(changed.feedback) if changed.feedback else None)
        incident = views.incident(incident_row)
        body = ticket_json(changed, incident, views.alert(incident))
        seq = (await _next_seqs(connection, [changed.subcentre_id]))[changed.subcentre_id]
        events: list[EventRow] = [(changed.incident_id, changed.id, changed.subcentre_id, seq,
                                   f"ticket.{changed.state.value}", actor_id, {"ticket": body})]
        if changed.state.finished and all(t.state.finished for t in siblings.values()):
            await connection.execute(
                "UPDATE incidents SET state = 'closed', closed_at = $2 WHERE id = $1", changed.incident_id, now)
            closed = views.incident({**incident_row, "state": "closed", "closed_at": now})
            events.append((changed.incident_id, None, None, None, "incident.closed", actor_id, {"incident": closed}))
        await _record_events(connection, events)
        return body


async def replay(pool: Pool, subcentre_id: int, after_seq: int, limit: int = 1000) -> list[asyncpg.Record]:
    """A sub-centre's ticket events with seq > after_seq, in order."""
    return await pool.fetch(
        "SELECT subcentre_seq, kind, data FROM events WHERE subcentre_id = $1 AND subcentre_seq > $2"
        " ORDER BY subcentre_seq LIMIT $3", subcentre_id, after_seq, limit)


async def current_seq(pool: Pool, subcentre_id: int) -> int:
    seq: int = await pool.fetchval("SELECT last_seq FROM subcentres WHERE id = $1", subcentre_id)
    return seq


async def events_by_id(pool: Pool, ids: Sequence[int]) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, incident_id, ticket_id, subcentre_id, subcentre_seq, kind, actor_id, at, data"
        " FROM events WHERE id = ANY($1::bigint[]) ORDER BY id", list(ids))
