"""HTTP routes for surge triage: duplicate suggestions, dispatching queued reports, merging."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from command.accounts import Role
from command.api import body_of, path_id, reply, services_of, user_of
from command.errors import RequestError
from command.intake import Location
from command.surge import dispatch_pending, likely_duplicates, merge

routes = web.RouteTableDef()


class DuplicateQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type_code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    location: Location


class MergeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    into: Annotated[int, msgspec.Meta(ge=1)]


@routes.post("/api/duplicates")
async def find_duplicates(request: web.Request) -> web.Response:
    """Before recording a report: is it one we already have?"""
    await user_of(request, Role.DISPATCHER)
    query = await body_of(request, DuplicateQuery)
    return reply(await likely_duplicates(services_of(request), query.type_code, query.location))


@routes.get("/api/incidents/{id}/duplicates")
async def duplicates_of(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    services = services_of(request)
    incident_id = path_id(request)
    row = await services.pool.fetchrow("SELECT type_code, lon, lat, created_at FROM incidents WHERE id = $1",
                                       incident_id)
    if row is None:
        raise RequestError(404, "not_found", f"incident {incident_id} does not exist", "id")
    return reply(await likely_duplicates(services, row["type_code"], Location(row["lon"], row["lat"]),
                                         row["created_at"], exclude=incident_id))


@routes.post("/api/incidents/{id}/dispatch")
async def dispatch(request: web.Request) -> web.Response:
    user = await user_of(request, Role.DISPATCHER)
    return reply(await dispatch_pending(services_of(request), path_id(request), user))


@routes.post("/api/incidents/{id}/merge")
async def merge_report(request: web.Request) -> web.Response:
    user = await user_of(request, Role.DISPATCHER)
    body = await body_of(request, MergeRequest)
    return reply(await merge(services_of(request), path_id(request), body.into, user))
