"""The escalator: fires stage deadlines that have fallen due, each exactly once.

Every server process runs one. A deadline is claimed with FOR UPDATE SKIP LOCKED and marked
fired in the same transaction that records what it did (events, the next step's deadline, queued
notifications), so with several processes, or across a restart, each step happens once. Time is
an argument: `tick(now)` fires what is due at `now`, which is how tests move the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from alerts.escalation import Measure, escalate
from base.outbox import Message, queue
from base.pg import Connection, Pool, every
from dispatch.deadlines import Stage, StageLimits
from dispatch.ids import IdReserves
from dispatch.routing import Assignment
from dispatch.store import NewEvent, add_tickets, record_events, ticket_from_row, ticket_json
from dispatch.views import Views


class Escalator:
    def __init__(self, pool: Pool, ids: IdReserves, views: Views, supervisor: tuple[str, str, str],
                 default_limits: StageLimits, poll_s: float) -> None:
        self._pool = pool
        self._ids = ids
        self._views = views
        self._supervisor = supervisor  # (name, channel, address)
        self._default_limits = default_limits
        self._poll_s = poll_s

    async def run(self) -> None:
        await every(self._poll_s, self.tick, "escalation pass")

    async def tick(self, now: datetime | None = None) -> int:
        """Fire every deadline due at `now` (default: the database's clock); how many fired."""
        fired = 0
        while await self._fire_one(now):
            fired += 1
        return fired

    async def _fire_one(self, now: datetime | None) -> bool:
        async with self._pool.acquire() as connection, connection.transaction():
            due = await connection.fetchrow(
                "SELECT id, ticket_id, stage, step, coalesce($1::timestamptz, now()) AS now FROM deadlines"
                " WHERE fired_at IS NULL AND due_at <= coalesce($1::timestamptz, now())"
                " ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED", now)
            if due is None:
                return False
            incident_row = await connection.fetchrow(
                "SELECT i.* FROM incidents i JOIN tickets t ON t.incident_id = i.id WHERE t.id = $1"
                " FOR UPDATE OF i", due["ticket_id"])
            ticket_row = await connection.fetchrow("SELECT * FROM tickets WHERE id = $1", due["ticket_id"])
            assert incident_row is not None and ticket_row is not None
            ticket = ticket_from_row(ticket_row)
            limits = _limits(ticket_row) or self._default_limits
            stage, step, at = Stage(due["stage"]), due["step"], due["now"]
            decision = escalate(stage, step, ticket.state, limits)
            outcome = "escalated" if decision.measures else "satisfied"
            await connection.execute("UPDATE deadlines SET fired_at = $2, outcome = $3 WHERE id = $1",
                                     due["id"], at, outcome)
            if not decision.measures:
                return True
            if decision.next_step_after_s is not None:
                await connection.execute(
                    "INSERT INTO deadlines (ticket_id, stage, step, due_at) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT DO NOTHING",
                    ticket.id, stage.value, step + 1, at + timedelta(seconds=decision.next_step_after_s))
            await self._apply(connection, decision.measures, stage, step, at, incident_row, ticket_row)
        return True

    async def _apply(self, connection: Connection, measures: tuple[Measure, ...], stage: Stage, step: int,
                     at: datetime, incident_row: asyncpg.Record, ticket_row: asyncpg.Record) -> None:
        ticket = ticket_from_row(ticket_row)
        incident = self._views.incident(incident_row)
        subcentre = await connection.fetchrow("SELECT * FROM subcentres WHERE id = $1", ticket.subcentre_id)
        assert subcentre is not None
        summary = (f"{incident['type_name']} {incident['severity_level']}级 {incident['address']}".strip()
                   + f" · 处警单 #{ticket.id} → {subcentre['name']}")
        messages: list[Message] = []
        events: list[NewEvent] = []
        record: dict[str, Any] = {"ticket_id": ticket.id, "subcentre_id": ticket.subcentre_id,
                                  "subcentre_name": subcentre["name"], "stage": stage.value, "step": step,
                                  "actions": [m.value for m in measures]}

        def message(reason: str, channel: str, name: str, address: str, subject: str) -> None:
            if address:
                messages.append(Message(incident["id"], ticket.id, reason, channel, name, address, subject,
                                        f"【联动应急】{subject}：{summary}。{incident['description']}".strip()))

        for measure in measures:
            if measure is Measure.SHOW_OFFLINE:
                record["terminal_offline"] = True
            elif measure is Measure.FALLBACK_TO_DUTY_PHONE:
                message("undelivered", "sms", f"{subcentre['name']}值班电话", subcentre["duty_phone"],
                        "处警单未送达终端，请立即处置")
            elif measure is Measure.REALERT:
                body = ticket_json(ticket, incident, self._views.tone(incident, escalated=True))
                events.append(NewEvent(incident["id"], "ticket.realert", at, {"ticket": body}, ticket.id,
                                       ticket.subcentre_id))
            elif measure is Measure.REMIND:
                body = ticket_json(ticket, incident, self._views.tone(incident))
                events.append(NewEvent(incident["id"], "ticket.reminder", at, {"ticket": body}, ticket.id,
                                       ticket.subcentre_id))
            elif measure is Measure.NOTIFY_LEADER:
                subject = "处警单超时未确认" if stage is Stage.ACKNOWLEDGE else "处警单超时未反馈"
                message("leader", "sms", subcentre["leader_name"], subcentre["leader_phone"], subject)
                message("leader", "email", subcentre["leader_name"], subcentre["leader_email"], subject)
            elif measure is Measure.NOTIFY_SUPERVISOR:
                name, channel, address = self._supervisor
                message("supervisor", channel, name, address,
                        "分中心持续未确认处警单" if stage is Stage.ACKNOWLEDGE else "分中心超时未反馈")
            elif measure is Measure.DISPATCH_BACKUP:
                record["backup_ticket_id"] = await self._dispatch_backup(connection, incident, ticket_row,
                                                                         subcentre, at, events)
        ids = await queue(connection, messages)
        # What the screens may say about each message: queued now; its outcome follows as its own event.
        record["notified"] = [{"id": i, "reason": m.reason, "channel": m.channel, "recipient": m.recipient,
                               "status": "pending"} for i, m in zip(ids, messages, strict=True)]
        events.insert(0, NewEvent(incident["id"], f"escalation.{stage.value}", at, record, ticket.id))
        await record_events(connection, events)

    async def _dispatch_backup(self, connection: Connection, incident: dict[str, Any], ticket_row: asyncpg.Record,
                               subcentre: asyncpg.Record, at: datetime, events: list[NewEvent]) -> int | None:
        """Send the incident to the department's backup sub-centre too, unless it has it already."""
        backup = subcentre["backup_subcentre_id"]
        if backup is None or await connection.fetchval(
                "SELECT 1 FROM tickets WHERE incident_id = $1 AND subcentre_id = $2", incident["id"], backup):
            return None
        limits = _limits(ticket_row) or self._default_limits
        (body,) = await add_tickets(connection, self._ids, incident, self._views.tone(incident),
                                    [Assignment(ticket_row["department"], backup, False, 0.0)],
                                    {ticket_row["department"]: list(ticket_row["tasks"])}, limits, at)
        events.append(NewEvent(incident["id"], "ticket.created", at, {"ticket": body}, body["id"], backup))
        backup_id: int = body["id"]
        return backup_id


def _limits(ticket_row: asyncpg.Record) -> StageLimits | None:
    """The stage limits stored with the ticket (its plan's), if any."""
    return msgspec.convert(ticket_row["limits"], StageLimits) if ticket_row["limits"] else None
