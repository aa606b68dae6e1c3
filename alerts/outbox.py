"""The notification outbox: messages to people outside the terminals, queued in PostgreSQL in the
same transaction as the decision to send them, and delivered (with retries) by the sender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.pg import Connection


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


def plan_activated(incident: dict[str, Any], plan_name: str,
                   recipients: Sequence[tuple[str, str, str]]) -> list[Message]:
    """What a plan's notification list (leaders, duty phones) receives when the plan is activated."""
    subject = f"启动{plan_name}"
    summary = f"{incident['type_name']} {incident['severity_level']}级 {incident['address']}".strip()
    body = f"【联动应急】{subject}：{summary}。{incident['description']}".strip()
    return [Message(incident["id"], None, "plan", channel, name, address, subject, body)
            for channel, name, address in recipients]


async def queue(connection: Connection, messages: Sequence[Message]) -> None:
    if not messages:
        return
    await connection.execute(
        "INSERT INTO notifications (incident_id, ticket_id, reason, channel, recipient, address, subject, body)"
        " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],"
        " $7::text[], $8::text[])",
        [m.incident_id for m in messages], [m.ticket_id for m in messages], [m.reason for m in messages],
        [m.channel for m in messages], [m.recipient for m in messages], [m.address for m in messages],
        [m.subject for m in messages], [m.body for m in messages])
