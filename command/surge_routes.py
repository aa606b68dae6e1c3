"""HTTP routes for surge triage: duplicate suggestions, dispatching queued reports, merging."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from base.accounts import Role
from base.errors import DomainError
from base.http import Api, body_of, path_id, reply, user_of
from base.messages import PLAIN, Id
from command.context import COMMAND
from command.surge import dispatch_pending, likely_duplicates, merge
from gis.coords import Location

api = Api()
DISPATCHER = (Role.DISPATCHER,)


class DuplicateQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type_code: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=16)]
    location: Location


class MergeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    into: Id


@api.post("/api/duplicates", "Likely duplicates of a report about to be recorded", roles=DISPATCHER,
          body=DuplicateQuery)
async def find_duplicates(request: web.Request) -> web.Response:
    query = await body_of(request, DuplicateQuery)
    command = request.app[COMMAND]
    return reply(await likely_duplicates(command.intake, command.surge.duplicate_radius_m,
                                         command.surge.duplicate_window_min, query.type_code, query.location))


@api.get("/api/incidents/{id}/duplicates", "Likely duplicates of an incident",
         roles=(Role.DISPATCHER, Role.SUPERVISOR))
async def duplicates_of(request: web.Request) -> web.Response:
    command = request.app[COMMAND]
    incident_id = path_id(request)
    row = await command.intake.pool.fetchrow("SELECT type_code, lon, lat, created_at FROM incidents WHERE id = $1",
                                       incident_id)
    if row is None:
        raise DomainError(f"incident {incident_id} does not exist", "id", "not_found")
    return reply(await likely_duplicates(command.intake, command.surge.duplicate_radius_m,
                                         command.surge.duplicate_window_min, row["type_code"],
                                         Location(row["lon"], row["lat"]), row["created_at"], exclude=incident_id))


@api.post("/api/incidents/{id}/dispatch", "Dispatch a pending report", roles=DISPATCHER, conflicts=True)
async def dispatch(request: web.Request) -> web.Response:
    return reply(await dispatch_pending(request.app[COMMAND].intake, path_id(request), user_of(request)))


@api.post("/api/incidents/{id}/merge", "Merge a pending report into the incident it repeats: no new ticket, the"
          " caller kept on that incident's timeline", roles=DISPATCHER, body=MergeRequest, conflicts=True)
async def merge_report(request: web.Request) -> web.Response:
    body = await body_of(request, MergeRequest)
    return reply(await merge(request.app[COMMAND].intake, path_id(request), body.into, user_of(request)))
