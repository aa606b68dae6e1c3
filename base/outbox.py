"""The notification outbox: messages to people outside the terminals, queued in PostgreSQL in the
same transaction as the decision to send them, and delivered with retries by alerts' sender.

Any package may queue; a message may name the incident and ticket it is about (their foreign keys
are declared by dispatch's migrations, since the platform knows no incidents).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from base.pg import Connection, Pool


@dataclass(frozen=True)
class Message:
    incident_id: int | None
    ticket_id: int | None
    reason: str  # why it is sent: "undelivered", "leader", "supervisor", "plan", ...
    channel: str  # "sms" | "email" | "webhook"
    recipient: str
    address: str
    subject: str
    body: str


def columns(messages: Sequence[Message]) -> list[list[object]]:
    """The messages as the column arrays an INSERT … SELECT FROM unnest(…) takes, in table order."""
    return [[m.incident_id for m in messages], [m.ticket_id for m in messages], [m.reason for m in messages],
            [m.channel for m in messages], [m.recipient for m in messages], [m.address for m in messages],
            [m.subject for m in messages], [m.body for m in messages]]


def insert(first: int) -> str:
    """SQL inserting messages from eight array parameters starting at $first (see `columns`)."""
    n = [f"${first + i}" for i in range(8)]
    return ("INSERT INTO notifications (incident_id, ticket_id, reason, channel, recipient, address, subject, body)"
            f" SELECT * FROM unnest({n[0]}::bigint[], {n[1]}::bigint[], {n[2]}::text[], {n[3]}::text[],"
            f" {n[4]}::text[], {n[5]}::text[], {n[6]}::text[], {n[7]}::text[])")


async def queue(connection: Connection, messages: Sequence[Message]) -> list[int]:
    """Queue messages inside the caller's transaction (they go out only if it commits); their ids."""
    if not messages:
        return []
    rows = await connection.fetch(insert(1) + " RETURNING id", *columns(messages))
    return [r["id"] for r in rows]


async def about_incident(pool: Pool, incident_id: int) -> list[dict[str, object]]:
    """Every message sent (or still trying) about an incident: to whom, how, and what became of it."""
    rows = await pool.fetch(
        "SELECT id, ticket_id, reason, channel, recipient, address, subject, status, attempts, last_error,"
        " created_at, sent_at FROM notifications WHERE incident_id = $1 ORDER BY id", incident_id)
    return [dict(r.items()) for r in rows]
