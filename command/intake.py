"""Incident intake (接警): validate a report, decide who acts, store it with its tickets at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from base import audit
from base.errors import DomainError
from base.messages import PLAIN
from base.outbox import Message
from base.pg import Pool
from command.plan_store import LivePlans
from command.plans import Plan
from dispatch.deadlines import StageLimits
from dispatch.directory import Directory
from dispatch.ids import IdReserves
from dispatch.routing import Router, RoutingDecision
from dispatch.store import PlanRef, RepeatedReport, open_incident, stored_report
from dispatch.taxonomy import Severity, Taxonomy
from dispatch.views import Views
from gis.coords import Location


class IncidentReport(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    type_code: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=16)]
    severity: Annotated[int, msgspec.Meta(ge=1, le=4)]
    location: Location
    address: Annotated[str, PLAIN, msgspec.Meta(max_length=200)] = ""
    caller_name: Annotated[str, PLAIN, msgspec.Meta(max_length=100)] = ""
    caller_phone: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9+\-() ]*$")] = ""
    description: Annotated[str, PLAIN, msgspec.Meta(max_length=2000)] = ""
    # False: queue the report as pending (surge triage) instead of dispatching it at once.
    dispatch: bool = True
    # True: the dispatcher confirms a location outside the service area (refused otherwise).
    confirm_outside_area: bool = False
    # The console's key for this report (a UUID, say): sent again after a lost answer, the same key
    # returns the incident already stored instead of storing a second one.
    report_key: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")] = ""


class RoutingQuery(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    type_code: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=16)]
    severity: Annotated[int, msgspec.Meta(ge=1, le=4)]
    location: Location
    confirm_outside_area: bool = False


def plan_ref(plan: Plan) -> PlanRef:
    body = plan.body
    activation = {"plan": {"key": plan.key, "version": plan.version, "name": body.name,
                           "departments": plan.department_codes, "limits": msgspec.to_builtins(body.limits),
                           "public_warning": body.public_warning}}
    return PlanRef(plan.key, plan.version, activation, {d.code: list(d.tasks) for d in body.departments})


def plan_notices(incident: dict[str, Any], plan: Plan) -> list[Message]:
    """What a plan's notification list (leaders, duty phones) receives when the plan is activated."""
    subject = f"启动{plan.body.name}"
    summary = f"{incident['type_name']} {incident['severity_level']}级 {incident['address']}".strip()
    body = f"【联动应急】{subject}：{summary}。{incident['description']}".strip()
    return [Message(incident["id"], None, "plan", r.channel, r.name, r.address, subject, body)
            for r in plan.body.notify]


@dataclass(frozen=True)
class Intake:
    """Who acts on a report, and storing it: what intake, severity raises and surge dispatch share."""

    pool: Pool
    ids: IdReserves
    views: Views
    taxonomy: Taxonomy
    router: Router
    directory: Directory
    plans: LivePlans
    default_limits: StageLimits  # where no plan covers an incident
    service_radius_m: float = 30_000.0  # a report farther than this from every jurisdiction needs confirming

    def check_service_area(self, location: Location) -> None:
        """Refuse a point far from every jurisdiction (a typo, swapped coordinates, the wrong city) unless
        the dispatcher confirms it; it would otherwise be routed to a station hundreds of km away."""
        distance = self.directory.jurisdictions.distance_m(location.lon, location.lat)
        if distance is None or distance <= self.service_radius_m:
            return
        swapped = self.directory.jurisdictions.distance_m(location.lat, location.lon)
        hint = (" Longitude and latitude look swapped: the other way round the point is in the area."
                if swapped is not None and swapped <= self.service_radius_m and -90 <= location.lon <= 90 else "")
        raise DomainError(f"the point is {distance / 1000:,.0f} km from the nearest jurisdiction; the service area"
                          f" reaches {self.service_radius_m / 1000:g} km beyond them. Confirm with"
                          f" confirm_outside_area to record it anyway.{hint}", "location", "outside_service_area")

    def route(self, type_code: str, severity: int, location: Location) -> tuple[RoutingDecision, Plan | None]:
        """Who acts: the departments of the most specific contingency plan, or, where no plan covers the
        type and level, the departments responsible for it by configuration."""
        if type_code not in self.taxonomy:
            raise DomainError(f"unknown incident type {type_code!r}", "type_code", "unknown_type")
        plan = self.plans.book.select(type_code, Severity(severity))
        decision = self.router.route(self.directory.jurisdictions, type_code, Severity(severity),
                                     location.lon, location.lat, plan.department_codes if plan else None)
        return decision, plan

    def stage_limits(self, plan: Plan | None) -> StageLimits:
        """The plan's stage limits, or the configured defaults where no plan covers the incident."""
        return plan.body.limits if plan else self.default_limits

    def routing_json(self, decision: RoutingDecision, plan: Plan | None) -> dict[str, Any]:
        names = self.directory.subcentres
        return {
            "flagged": decision.flagged,
            "plan": {"key": plan.key, "version": plan.version, "name": plan.body.name,
                     "three_way_call": plan.body.three_way_call} if plan else None,
            "assignments": [
                {"department": a.department, "subcentre_id": a.subcentre_id,
                 "subcentre_name": names[a.subcentre_id].name if a.subcentre_id in names else "",
                 "outside_jurisdiction": a.outside_jurisdiction, "distance_m": round(a.distance_m, 1)}
                for a in decision.assignments],
            "departments_without_subcentre": list(decision.departments_without_subcentre),
        }

    async def record(self, report: IncidentReport, actor: audit.Actor) -> dict[str, Any]:
        """Store the incident and its tickets in one transaction; when this returns they are durable. A
        report sent again under its key gets the incident stored the first time, as it was answered."""
        if report.report_key and (stored := await self._stored(actor, report.report_key)) is not None:
            return stored
        try:
            return await self._record(report, actor)
        except RepeatedReport:  # the same report, sent twice at once: the other request stored it
            stored = await self._stored(actor, report.report_key)
            assert stored is not None
            return stored

    async def _stored(self, actor: audit.Actor, report_key: str) -> dict[str, Any] | None:
        assert actor.user_id is not None
        found = await stored_report(self.pool, actor.user_id, report_key)
        if found is None:
            return None
        incident, tickets, routing = found
        return {**incident, "tickets": tickets, "routing": routing}

    async def _record(self, report: IncidentReport, actor: audit.Actor) -> dict[str, Any]:
        if not report.confirm_outside_area:
            self.check_service_area(report.location)
        decision, plan = self.route(report.type_code, report.severity, report.location)
        fields = {"type_code": report.type_code, "severity": report.severity, "lon": report.location.lon,
                  "lat": report.location.lat, "address": report.address, "caller_name": report.caller_name,
                  "caller_phone": report.caller_phone, "description": report.description,
                  "flagged": decision.flagged}
        routing = self.routing_json(decision, plan)
        if not report.dispatch:  # stored and queued; routing is what dispatching now would do
            incident, tickets = await open_incident(self.pool, self.ids, self.views, fields, [], actor, routing,
                                                    None, self.stage_limits(None), pending=True,
                                                    report_key=report.report_key or None)
            return {**incident, "tickets": tickets, "routing": routing}
        incident, tickets = await open_incident(
            self.pool, self.ids, self.views, fields, decision.assignments, actor, routing,
            plan_ref(plan) if plan else None, self.stage_limits(plan),
            (lambda incident: plan_notices(incident, plan)) if plan else None, report_key=report.report_key or None)
        return {**incident, "tickets": tickets, "routing": routing}
