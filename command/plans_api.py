"""HTTP routes for contingency plans and for raising an incident's severity."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from aiohttp import web

from command.accounts import Role
from command.api import body_of, path_id, reply, services_of, user_of
from command.errors import RequestError
from command.plan_store import plan_versions, retire_plan, save_plan
from command.plans import PlanBody
from command.severity import raise_severity

routes = web.RouteTableDef()
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    if not _KEY.match(key):
        raise RequestError(404, "not_found", "a plan key is lower-case letters, digits, - and _", "key")
    return key


@routes.get("/api/plans")
async def list_plans(request: web.Request) -> web.Response:
    await user_of(request)
    book = services_of(request).plans.book
    return reply([{"key": p.key, "version": p.version, **msgspec.to_builtins(p.body)}
                  for p in sorted(book.plans.values(), key=lambda p: p.key)])


@routes.get("/api/plans/{key}")
async def plan_history(request: web.Request) -> web.Response:
    await user_of(request)
    versions = await plan_versions(services_of(request).pool, _key(request))
    if not versions:
        raise RequestError(404, "not_found", "no such plan", "key")
    return reply(versions)


@routes.put("/api/plans/{key}")
async def put_plan(request: web.Request) -> web.Response:
    """Save a new version; incidents already running keep the version they started with."""
    user = await user_of(request, Role.DISPATCHER)
    key = _key(request)
    body = await body_of(request, PlanBody)
    services = services_of(request)
    plan = await save_plan(services.pool, services.config.taxonomy, list(services.config.departments), key, body,
                           user.id)
    await services.plans.load()  # this process at once; the others on the announcement
    return reply({"key": plan.key, "version": plan.version}, status=201 if plan.version == 1 else 200)


@routes.delete("/api/plans/{key}")
async def delete_plan(request: web.Request) -> web.Response:
    user = await user_of(request, Role.DISPATCHER)
    services = services_of(request)
    version = await retire_plan(services.pool, _key(request), user.id)
    if version is None:
        raise RequestError(404, "not_found", "no such plan, or it is retired already", "key")
    await services.plans.load()
    return reply({"key": request.match_info["key"], "retired_version": version})


class SeverityChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    severity: Annotated[int, msgspec.Meta(ge=1, le=4)]


@routes.post("/api/incidents/{id}/severity")
async def raise_incident_severity(request: web.Request) -> web.Response:
    user = await user_of(request, Role.DISPATCHER)
    change = await body_of(request, SeverityChange)
    return reply(await raise_severity(services_of(request), path_id(request), change.severity, user))
