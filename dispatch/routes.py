"""Dispatch's HTTP routes: the reference data (incident types, departments, sub-centres) and what an
operator or dispatcher does to one ticket."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from base.accounts import Role
from base.errors import DomainError
from base.http import ANYONE, LOGGED_IN, Api, actor_of, body_of, path_id, reply, user_of
from base.messages import PLAIN
from dispatch.context import DISPATCH
from dispatch.store import TicketAction, TicketChange
from dispatch.taxonomy import Severity
from dispatch.tickets import Feedback
from gis.coords import Location

api = Api()


@api.get("/api/incident-types", "GB/T 35561 incident categories, subtypes and severity levels", roles=ANYONE)
async def incident_types(request: web.Request) -> web.Response:
    taxonomy = request.app[DISPATCH].taxonomy
    tree = [{"code": c.code, "name": c.name, "name_en": c.name_en,
             "subtypes": [{"code": t.code, "name": t.name, "name_en": t.name_en}
                          for t in taxonomy if t.category == c.code and t.code != c.code]}
            for c in taxonomy if c.code == c.category]
    return reply({"categories": tree, "severities": [
        {"level": s.name, "value": s.value, "label": s.label} for s in Severity]})


@api.get("/api/departments", "Departments and the incident types they handle", roles=ANYONE)
async def departments(request: web.Request) -> web.Response:
    return reply([{"code": d.code, "name": d.name, "name_en": d.name_en, "handles": sorted(d.handles)}
                  for d in request.app[DISPATCH].departments.values()])


@api.get("/api/subcentres", "Sub-centres with jurisdictions as a GeoJSON FeatureCollection (WGS-84)",
         roles=LOGGED_IN)
async def subcentres(request: web.Request) -> web.Response:
    directory = request.app[DISPATCH].directory
    return reply({"type": "FeatureCollection", "features": [s.feature() for s in directory.subcentres.values()]})


class Geometry(msgspec.Struct, frozen=True):
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class NewSubcentre(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9\-_]{0,63}$")]
    name: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]
    department: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)]
    site: Location
    jurisdiction: Geometry


@api.post("/api/subcentres", "Register a sub-centre with its jurisdiction; every server rebuilds its index",
          roles=(Role.DISPATCHER,), body=NewSubcentre, status=201, conflicts=True)
async def add_subcentre(request: web.Request) -> web.Response:
    body = await body_of(request, NewSubcentre)
    dispatch = request.app[DISPATCH]
    if body.department not in dispatch.departments:
        raise DomainError(f"unknown department {body.department!r}", "department", "unknown_department")
    area = dispatch.directory.check(body.code, body.department, msgspec.to_builtins(body.jurisdiction))
    subcentre_id = await dispatch.directory.add(body.code, body.name, body.department,
                                                (body.site.lon, body.site.lat), area, actor_of(request))
    return reply({"id": subcentre_id}, status=201)


class Reason(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    reason: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=500)]


async def _act(request: web.Request, action: TicketAction) -> web.Response:
    user = user_of(request)
    ticket = await request.app[DISPATCH].changes.apply(
        TicketChange(path_id(request), action, user.id, user.subcentre_id if user.role is Role.OPERATOR else None))
    return reply({"changed": ticket is not None, "ticket": ticket})


@api.post("/api/tickets/{id}/acknowledge", "Acknowledge a ticket", roles=(Role.OPERATOR,), conflicts=True)
async def acknowledge(request: web.Request) -> web.Response:
    return await _act(request, TicketAction("acknowledge"))


@api.post("/api/tickets/{id}/feedback", "Report back (信息反馈); closes the ticket", roles=(Role.OPERATOR,),
          body=Feedback, conflicts=True)
async def feedback(request: web.Request) -> web.Response:
    return await _act(request, TicketAction("report_back", feedback=await body_of(request, Feedback)))


@api.post("/api/tickets/{id}/reject", "Reject a ticket with a reason", roles=(Role.OPERATOR,), body=Reason,
          conflicts=True)
async def reject(request: web.Request) -> web.Response:
    return await _act(request, TicketAction("reject", reason=(await body_of(request, Reason)).reason))


@api.post("/api/tickets/{id}/cancel", "Cancel a ticket", roles=(Role.DISPATCHER,), body=Reason, conflicts=True)
async def cancel(request: web.Request) -> web.Response:
    return await _act(request, TicketAction("cancel", reason=(await body_of(request, Reason)).reason))
