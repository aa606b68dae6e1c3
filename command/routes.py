"""The command console's HTTP API: the base map, routing previews, recording and reading incidents."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from aiohttp import web

from base import audit
from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError
from base.http import (
    LOGGED_IN,
    Api,
    actor_of,
    base_url,
    body_of,
    choice_param,
    limit_param,
    path_id,
    reply,
    timestamp_param,
    user_of,
)
from base.outbox import about_incident
from calls.context import SWITCHBOARD
from command.context import COMMAND
from command.intake import IncidentReport, RoutingQuery
from command.plan_routes import NOTIFY_READERS
from dispatch import board
from gis.boundaries import district_outlines

api = Api()
T = TypeVar("T")
DISPATCHER = (Role.DISPATCHER,)
WATCHERS = (Role.DISPATCHER, Role.SUPERVISOR)


@api.get("/api/map", "The pages' base map: district outlines (GeoJSON, WGS-84, simplified to"
         " map.boundary_tolerance_m) and the configured tile service, if any", roles=LOGGED_IN)
async def map_base(request: web.Request) -> web.Response:
    settings = request.app[COMMAND].map
    return reply({"tile_url": settings.tile_url, "attribution": settings.attribution, "max_zoom": settings.max_zoom,
                  "districts": district_outlines(settings.boundary_tolerance_m)})


async def _report_body(request: web.Request, kind: type[T]) -> T:
    """The body, and for a location that fails only because longitude and latitude are swapped (Yichang's
    longitude, 111, is no latitude), a hint saying so."""
    try:
        return await body_of(request, kind)
    except DomainError as error:
        if error.field in ("location.lat", "location.lon"):
            raw = msgspec.json.decode(await request.read())
            where = raw.get("location") if isinstance(raw, dict) else None
            if (isinstance(where, dict) and all(isinstance(where.get(k), int | float) for k in ("lon", "lat"))
                    and abs(where["lon"]) <= 90 and abs(where["lat"]) <= 180):
                error.message += " (longitude and latitude look swapped: lon is east-west, about 111 here)"
        raise


@api.post("/api/routing/preview", "Which sub-centres an incident would go to", roles=DISPATCHER, body=RoutingQuery)
async def preview_routing(request: web.Request) -> web.Response:
    query = await _report_body(request, RoutingQuery)
    intake = request.app[COMMAND].intake
    if not query.confirm_outside_area:
        intake.check_service_area(query.location)
    return reply(intake.routing_json(*intake.route(query.type_code, query.severity, query.location)))


@api.post("/api/incidents", "Record an incident; its tickets are stored before this returns", roles=DISPATCHER,
          body=IncidentReport, status=201)
async def create_incident(request: web.Request) -> web.Response:
    report = await _report_body(request, IncidentReport)
    incident = await request.app[COMMAND].intake.record(report, actor_of(request))
    plan = incident["routing"]["plan"]
    if plan and plan["three_way_call"] and incident["tickets"]:
        incident |= await _plans_call(request, incident, plan["key"])
    return reply(incident, status=201)


async def _plans_call(request: web.Request, incident: dict[str, Any], plan_key: str) -> dict[str, Any]:
    """The plan's three-way call, opened as the tickets go out. The incident and its tickets are stored
    whatever happens here: a call that cannot open is reported beside them, for the dispatcher to retry."""
    pool = request.app[PLATFORM].pool
    try:
        call, link = await request.app[SWITCHBOARD].open(incident["id"], user_of(request), None,
                                                         incident["caller_phone"] or "", base_url(request))
    except DomainError as error:
        return {"call": None, "call_problem": {"code": error.code, "message": error.message}}
    await audit.record(pool, audit.Entry(actor_of(request), "call.open", f"call:{call['id']}",
                                         details={"incident": incident["id"], "plan": plan_key,
                                                  "sms": bool(incident["caller_phone"])}))
    return {"call": call, "caller_link": link}


@api.get("/api/incidents", "List incidents, newest first (the pending queue gravest first); each ticket with its"
         " stage times, plan limits and escalations so far", roles=WATCHERS, query=("state", "since", "until", "limit"))
async def list_incidents(request: web.Request) -> web.Response:
    state = choice_param(request, "state", ("pending", "open", "closed"), None)
    limit = limit_param(request, 100)
    since, until = timestamp_param(request, "since"), timestamp_param(request, "until")
    intake = request.app[COMMAND].intake
    return reply(await board.incidents(intake.pool, intake.views, state, since, until, limit))


@api.get("/api/incidents/{id}", "One incident with its tickets (with limits and escalations) and timeline; an"
         " operator sees its own sub-centre's part", roles=(Role.DISPATCHER, Role.SUPERVISOR, Role.OPERATOR))
async def get_incident(request: web.Request) -> web.Response:
    user = user_of(request)
    intake = request.app[COMMAND].intake
    own = user.subcentre_id if user.role is Role.OPERATOR else None
    return reply(await board.incident(intake.pool, intake.views, path_id(request), own))


@api.get("/api/incidents/{id}/notifications", "Messages sent about an incident and their outcome (addresses for"
         " dispatchers only)", roles=WATCHERS)
async def incident_notifications(request: web.Request) -> web.Response:
    messages = await about_incident(request.app[PLATFORM].pool, path_id(request))
    if user_of(request).role not in NOTIFY_READERS:  # officials' phone numbers and mail are not a supervisor's
        messages = [{k: v for k, v in m.items() if k != "address"} for m in messages]
    return reply(messages)
