"""What consoles read: incidents with their tickets (stage times, limits, escalations so far) and an
incident's timeline, straight from the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from base.errors import DomainError
from base.pg import Pool
from dispatch.store import ticket_from_row, ticket_json
from dispatch.views import Views

JSON = dict[str, Any]

# A ticket's escalations so far (stage, step, when), for the console's alarms and stage timers.
_ESCALATIONS = ("(SELECT coalesce(jsonb_agg(jsonb_build_object('stage', d.stage, 'step', d.step, 'at', d.fired_at)"
                " ORDER BY d.fired_at), '[]') FROM deadlines d WHERE d.ticket_id = t.id AND d.outcome = 'escalated')")
# The messages sent about a ticket and what became of each, as stored: what an alarm may claim.
_NOTIFICATIONS = ("(SELECT coalesce(jsonb_agg(jsonb_build_object('id', n.id, 'reason', n.reason, 'channel', n.channel,"
                  " 'recipient', n.recipient, 'status', n.status, 'error', n.last_error, 'attempts', n.attempts)"
                  " ORDER BY n.id), '[]') FROM notifications n WHERE n.ticket_id = t.id)")


async def incidents(pool: Pool, views: Views, state: str | None, since: datetime | None, until: datetime | None,
                    limit: int) -> list[JSON]:
    """Newest first, except the pending queue: gravest first, then longest waiting."""
    rows = await pool.fetch(
        f"SELECT i.*, (SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'subcentre_id', t.subcentre_id,"
        " 'department', t.department, 'state', t.state, 'created_at', t.created_at, 'delivered_at', t.delivered_at,"
        " 'acknowledged_at', t.acknowledged_at, 'closed_at', t.closed_at, 'rejected_at', t.rejected_at,"
        " 'cancelled_at', t.cancelled_at, 'reason', t.reason, 'outside_jurisdiction', t.outside_jurisdiction,"
        f" 'limits', t.limits, 'escalations', {_ESCALATIONS}, 'notifications', {_NOTIFICATIONS}) ORDER BY t.id),"
        " '[]')"
        " FROM tickets t WHERE t.incident_id = i.id) AS tickets FROM incidents i"
        " WHERE ($1::text IS NULL OR i.state = $1) AND i.created_at >= coalesce($2::timestamptz, '-infinity')"
        " AND i.created_at < coalesce($3::timestamptz, 'infinity')"
        " ORDER BY CASE WHEN $1 = 'pending' THEN i.severity END, CASE WHEN $1 = 'pending' THEN i.created_at END,"
        " i.created_at DESC, i.id DESC LIMIT $4",
        state, since, until, limit)
    return [{**views.incident(r), "tickets": r["tickets"]} for r in rows]


async def incident(pool: Pool, views: Views, incident_id: int, subcentre_id: int | None) -> JSON:
    """One incident with its tickets and timeline; as one sub-centre sees it when `subcentre_id` is set
    (its own tickets only; refused when it has none)."""
    row = await pool.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
    if row is None:
        raise DomainError(f"incident {incident_id} does not exist", "id", "not_found")
    found = views.incident(row)
    ticket_rows = await pool.fetch(f"SELECT t.*, {_ESCALATIONS} AS escalations, {_NOTIFICATIONS} AS notifications"
                                   " FROM tickets t"
                                   " WHERE t.incident_id = $1 ORDER BY t.id", incident_id)
    events = await pool.fetch("SELECT id, ticket_id, subcentre_id, kind, actor_id, at, data FROM events"
                              " WHERE incident_id = $1 ORDER BY id", incident_id)
    if subcentre_id is not None:
        ticket_rows = [t for t in ticket_rows if t["subcentre_id"] == subcentre_id]
        if not ticket_rows:
            raise DomainError("this incident has no ticket for your sub-centre", "id", "forbidden")
        events = [e for e in events if e["subcentre_id"] in (None, subcentre_id)]
    tone = views.tone(found)
    tickets = [{**ticket_json(ticket_from_row(t), found, tone), "limits": t["limits"], "escalations": t["escalations"],
                "notifications": t["notifications"]} for t in ticket_rows]
    for ticket in tickets:
        ticket.pop("incident")
    # Each step with what it decided (routing, plan, escalation, severity); the bodies are in `tickets`.
    timeline = [{"id": e["id"], "kind": e["kind"], "at": e["at"], "ticket_id": e["ticket_id"],
                 "subcentre_id": e["subcentre_id"], "actor_id": e["actor_id"],
                 "detail": {k: v for k, v in e["data"].items() if k not in ("ticket", "incident")}}
                for e in events]
    return {**found, "tickets": tickets, "timeline": timeline}
