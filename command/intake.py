"""Incident intake (接警): validate a report, decide who acts, store it with its tickets at once."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from alerts.escalation import Limits
from command.accounts import User
from command.errors import RequestError
from command.plans import Plan
from command.services import Services
from dispatch.routing import RoutingDecision
from dispatch.store import PlanRef, open_incident
from dispatch.taxonomy import Severity


class Location(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """WGS-84, as GPS and phones give it."""

    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]


class IncidentReport(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    type_code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    severity: Annotated[int, msgspec.Meta(ge=1, le=4)]
    location: Location
    address: Annotated[str, msgspec.Meta(max_length=200)] = ""
    caller_name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    caller_phone: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9+\-() ]*$")] = ""
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    # False: queue the report as pending (surge triage) instead of dispatching it at once.
    dispatch: bool = True


class RoutingQuery(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    type_code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    severity: Annotated[int, msgspec.Meta(ge=1, le=4)]
    location: Location


def decide(services: Services, type_code: str, severity: int,
           location: Location) -> tuple[RoutingDecision, Plan | None]:
    """Who acts: the departments of the most specific contingency plan, or, where no plan covers the
    type and level, the departments responsible for it by configuration."""
    if type_code not in services.config.taxonomy:
        raise RequestError(422, "unknown_type", f"unknown incident type {type_code!r}", "type_code")
    plan = services.plans.book.select(type_code, Severity(severity))
    decision = services.router.route(services.directory.jurisdictions, type_code, Severity(severity),
                                     location.lon, location.lat, plan.department_codes if plan else None)
    return decision, plan


def stage_limits(services: Services, plan: Plan | None) -> Limits:
    """The plan's stage limits, or the configured defaults where no plan covers the incident."""
    source = plan.body.limits if plan else services.config.escalation
    return Limits(source.deliver_s, source.acknowledge_s, source.feedback_s)


def plan_ref(plan: Plan) -> PlanRef:
    body = plan.body
    activation = {"plan": {"key": plan.key, "version": plan.version, "name": body.name,
                           "departments": plan.department_codes, "limits": msgspec.to_builtins(body.limits),
                           "public_warning": body.public_warning}}
    return PlanRef(plan.key, plan.version, activation, {d.code: list(d.tasks) for d in body.departments},
                   body.name, [(r.channel, r.name, r.address) for r in body.notify])


def routing_json(services: Services, decision: RoutingDecision, plan: Plan | None) -> dict[str, Any]:
    names = services.directory.subcentres
    return {
        "flagged": decision.flagged,
        "plan": {"key": plan.key, "version": plan.version, "name": plan.body.name} if plan else None,
        "assignments": [
            {"department": a.department, "subcentre_id": a.subcentre_id,
             "subcentre_name": names[a.subcentre_id].name if a.subcentre_id in names else "",
             "outside_jurisdiction": a.outside_jurisdiction, "distance_m": round(a.distance_m, 1)}
            for a in decision.assignments],
        "departments_without_subcentre": list(decision.departments_without_subcentre),
    }


async def record_incident(services: Services, report: IncidentReport, user: User) -> dict[str, Any]:
    """Store the incident and its tickets in one transaction; when this returns they are durable."""
    decision, plan = decide(services, report.type_code, report.severity, report.location)
    fields = {"type_code": report.type_code, "severity": report.severity, "lon": report.location.lon,
              "lat": report.location.lat, "address": report.address, "caller_name": report.caller_name,
              "caller_phone": report.caller_phone, "description": report.description, "flagged": decision.flagged}
    routing = routing_json(services, decision, plan)
    if not report.dispatch:  # stored and queued; routing is what dispatching now would do
        incident, tickets = await open_incident(services.pool, services.ids, services.views, fields, [], user.id,
                                                routing, None, stage_limits(services, None), pending=True)
        return {**incident, "tickets": tickets, "routing": routing}
    incident, tickets = await open_incident(services.pool, services.ids, services.views, fields,
                                            decision.assignments, user.id, routing, plan_ref(plan) if plan else None,
                                            stage_limits(services, plan))
    return {**incident, "tickets": tickets, "routing": routing}
