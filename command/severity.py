"""Raising an incident's severity: the larger plan is activated and the departments it adds are
dispatched, without a second ticket to any sub-centre that already has one."""

from __future__ import annotations

from typing import Any

from base.accounts import User
from base.errors import DomainError
from base.outbox import queue
from command.intake import Intake, plan_notices, plan_ref
from dispatch.store import NewEvent, add_tickets, record_events, ticket_from_row, tickets_told
from dispatch.taxonomy import Severity
from gis.coords import Location


async def raise_severity(intake: Intake, incident_id: int, severity: int, user: User) -> dict[str, Any]:
    async with intake.pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow("SELECT *, now() AS now FROM incidents WHERE id = $1 FOR UPDATE", incident_id)
        if row is None:
            raise DomainError(f"incident {incident_id} does not exist", "id", "not_found")
        if row["state"] != "open":
            raise DomainError("the incident is closed", "id", "closed")
        old, new = Severity(row["severity"]), Severity(severity)
        if new >= old:
            raise DomainError(f"level {new.name} is not more severe than the current {old.name} (I is the gravest);"
                              " only raising is allowed", "severity", "not_more_severe")
        decision, plan = intake.route(row["type_code"], severity, Location(row["lon"], row["lat"]))
        existing = [ticket_from_row(t) for t in await connection.fetch(
            "SELECT * FROM tickets WHERE incident_id = $1 ORDER BY id", incident_id)]
        ticketed = {t.subcentre_id for t in existing}
        added = [a for a in decision.assignments if a.subcentre_id not in ticketed]
        plan_key, plan_version = (plan.key, plan.version) if plan else (row["plan_key"], row["plan_version"])
        flagged = row["flagged"] or decision.flagged
        await connection.execute(
            "UPDATE incidents SET severity = $2, plan_key = $3, plan_version = $4, flagged = $5 WHERE id = $1",
            incident_id, severity, plan_key, plan_version, flagged)
        now = row["now"]
        incident = intake.views.incident({**row, "severity": severity, "plan_key": plan_key,
                                            "plan_version": plan_version, "flagged": flagged})
        tone = intake.views.tone(incident)
        added_bodies = await add_tickets(connection, intake.ids, incident, tone, added,
                                         plan_ref(plan).tasks if plan else {}, intake.stage_limits(plan), now)
        events = [NewEvent(incident_id, "incident.severity_raised", now,
                           {"incident": incident, "from": old.value, "to": new.value}, actor_id=user.id)]
        if plan and (plan.key, plan.version) != (row["plan_key"], row["plan_version"]):
            events.append(NewEvent(incident_id, "plan.activated", now, plan_ref(plan).activation, actor_id=user.id))
            await queue(connection, plan_notices(incident, plan))
        events += [NewEvent(incident_id, "ticket.created", now, {"ticket": body}, body["id"], body["subcentre_id"],
                            user.id) for body in added_bodies]
        # Tickets already out learn the new level (and sound its tone).
        added_ids = {body["id"] for body in added_bodies}
        events += [e for e in await tickets_told(connection, intake.views, incident_id, now, user.id, incident)
                   if e.ticket_id not in added_ids]
        await record_events(connection, events)
    return {**incident, "added_tickets": added_bodies}
