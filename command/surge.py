"""Surge triage (平战结合): when reports pour in, most repeat an incident already known.

Reports may be queued as pending; likely duplicates — same category, close in place and time —
are offered to the dispatcher; a pending report is then either dispatched or merged into the
incident it repeats, keeping its caller on that incident's timeline and sending no new ticket.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from base.accounts import User
from base.errors import DomainError
from base.outbox import queue
from command.intake import Intake, plan_notices, plan_ref
from dispatch.store import NewEvent, add_tickets, record_events
from gis.coords import Location
from gis.distance import degrees_around, metres


async def likely_duplicates(intake: Intake, radius_m: float, window_min: float, type_code: str, location: Location,
                            at: datetime | None = None, exclude: int | None = None) -> list[dict[str, Any]]:
    """Pending and open incidents of the same category near `location` reported within the window
    before `at` (default now), nearest first."""
    taxonomy = intake.taxonomy
    if type_code not in taxonomy:
        raise DomainError(f"unknown incident type {type_code!r}", "type_code", "unknown_type")
    category = taxonomy[type_code].category
    same_category = [t.code for t in taxonomy if t.category == category]
    d_lon, d_lat = degrees_around(location.lat, radius_m)
    rows = await intake.pool.fetch(
        "SELECT * FROM incidents WHERE state IN ('pending', 'open') AND type_code = ANY($1::text[])"
        " AND lon BETWEEN $2 AND $3 AND lat BETWEEN $4 AND $5"
        " AND created_at BETWEEN coalesce($6::timestamptz, now()) - make_interval(mins => $7)"
        " AND coalesce($6::timestamptz, now()) AND id <> coalesce($8, 0)",
        same_category, location.lon - d_lon, location.lon + d_lon, location.lat - d_lat, location.lat + d_lat,
        at, window_min, exclude)
    found = []
    for row in rows:
        distance = metres(location.lon, location.lat, row["lon"], row["lat"])
        if distance <= radius_m:
            found.append({**intake.views.incident(row), "distance_m": round(distance, 1)})
    return sorted(found, key=lambda i: (i["distance_m"], i["id"]))


async def dispatch_pending(intake: Intake, incident_id: int, user: User) -> dict[str, Any]:
    """Dispatch a queued report now: route it as it stands, activate its plan, send its tickets."""
    async with intake.pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow("SELECT *, now() AS now FROM incidents WHERE id = $1 FOR UPDATE", incident_id)
        if row is None:
            raise DomainError(f"incident {incident_id} does not exist", "id", "not_found")
        if row["state"] != "pending":
            raise DomainError(f"incident {incident_id} is {row['state']}, not pending", "id", "not_pending")
        decision, plan = intake.route(row["type_code"], row["severity"], Location(row["lon"], row["lat"]))
        now = row["now"]
        await connection.execute(
            "UPDATE incidents SET state = 'open', plan_key = $2, plan_version = $3, flagged = $4 WHERE id = $1",
            incident_id, plan.key if plan else None, plan.version if plan else None, decision.flagged)
        incident = intake.views.incident({**row, "state": "open", "plan_key": plan.key if plan else None,
                                            "plan_version": plan.version if plan else None,
                                            "flagged": decision.flagged})
        tickets = await add_tickets(connection, intake.ids, incident, intake.views.tone(incident),
                                    decision.assignments, plan_ref(plan).tasks if plan else {},
                                    intake.stage_limits(plan), now)
        routing = intake.routing_json(decision, plan)
        events = [NewEvent(incident_id, "incident.dispatched", now, {"incident": incident, "routing": routing},
                           actor_id=user.id)]
        if plan:
            events.append(NewEvent(incident_id, "plan.activated", now, plan_ref(plan).activation, actor_id=user.id))
            await queue(connection, plan_notices(incident, plan))
        events += [NewEvent(incident_id, "ticket.created", now, {"ticket": t}, t["id"], t["subcentre_id"], user.id)
                   for t in tickets]
        await record_events(connection, events)
    return {**incident, "tickets": tickets, "routing": routing}


async def merge(intake: Intake, report_id: int, into_id: int, user: User) -> dict[str, Any]:
    """Fold a pending report into the incident it repeats: one action, no new ticket, the caller kept."""
    if report_id == into_id:
        raise DomainError("a report cannot be merged into itself", "into")
    async with intake.pool.acquire() as connection, connection.transaction():
        rows = {r["id"]: r for r in await connection.fetch(  # both locked, in id order
            "SELECT *, now() AS now FROM incidents WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
            [report_id, into_id])}
        report, target = rows.get(report_id), rows.get(into_id)
        if report is None:
            raise DomainError(f"incident {report_id} does not exist", "id", "not_found")
        if target is None:
            raise DomainError(f"incident {into_id} does not exist", "into", "not_found")
        if report["state"] != "pending":
            raise DomainError(f"only a pending report can be merged; #{report_id} is {report['state']}", "id",
                              "not_pending")
        if target["state"] == "closed":
            raise DomainError(f"incident {into_id} is closed", "into", "closed")
        now = report["now"]
        await connection.execute("UPDATE incidents SET state = 'closed', closed_at = $2, merged_into = $3"
                                 " WHERE id = $1", report_id, now, into_id)
        caller = {"report_id": report_id, "caller_name": report["caller_name"],
                  "caller_phone": report["caller_phone"], "address": report["address"],
                  "description": report["description"], "location": {"lon": report["lon"], "lat": report["lat"]},
                  "reported_at": report["created_at"], "severity": report["severity"],
                  "type_code": report["type_code"]}
        merged = intake.views.incident({**report, "state": "closed", "closed_at": now, "merged_into": into_id})
        await record_events(connection, [
            NewEvent(into_id, "incident.report_merged", now, caller, actor_id=user.id),
            NewEvent(report_id, "incident.merged", now, {"incident": merged, "into": into_id}, actor_id=user.id)])
    return merged


