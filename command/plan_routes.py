"""HTTP routes for contingency plans and for raising an incident's severity."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from aiohttp import web

from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError
from base.http import LOGGED_IN, Api, actor_of, body_of, path_id, reply, user_of
from command.context import COMMAND
from command.plan_store import plan_versions, retire_plan, save_plan
from command.plans import PlanBody
from command.severity import raise_severity
from dispatch.context import DISPATCH

api = Api()
DISPATCHER = (Role.DISPATCHER,)
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    if not _KEY.match(key):
        raise DomainError("a plan key is lower-case letters, digits, - and _", "key", "not_found")
    return key


# Who may read a plan's notification list: the officials' phone numbers and addresses are for the
# dispatchers who keep the plans and the administrators; operators and supervisors see the rest.
NOTIFY_READERS = (Role.DISPATCHER, Role.ADMINISTRATOR)


def _shown(body: dict[str, Any], request: web.Request) -> dict[str, Any]:
    if user_of(request).role in NOTIFY_READERS:
        return body
    return {**body, "notify": [{"name": r["name"], "channel": r["channel"]} for r in body.get("notify", [])]}


@api.get("/api/plans", "Current contingency plans (notification addresses for dispatchers and administrators"
         " only)", roles=LOGGED_IN)
async def list_plans(request: web.Request) -> web.Response:
    book = request.app[COMMAND].plans.book
    return reply([{"key": p.key, "version": p.version, **_shown(msgspec.to_builtins(p.body), request)}
                  for p in sorted(book.plans.values(), key=lambda p: p.key)])


@api.get("/api/plans/{key}", "Every version of one plan (notification addresses as above)", roles=LOGGED_IN)
async def plan_history(request: web.Request) -> web.Response:
    versions = await plan_versions(request.app[PLATFORM].pool, _key(request))
    if not versions:
        raise DomainError("no such plan", "key", "not_found")
    return reply([{**v, "body": _shown(v["body"], request)} for v in versions])


@api.put("/api/plans/{key}", "Save a new version of a plan (running incidents keep theirs)", roles=DISPATCHER,
         body=PlanBody, conflicts=True)
async def put_plan(request: web.Request) -> web.Response:
    key = _key(request)
    body = await body_of(request, PlanBody)
    dispatch, plans = request.app[DISPATCH], request.app[COMMAND].plans
    plan = await save_plan(request.app[PLATFORM].pool, dispatch.taxonomy, list(dispatch.departments), key, body,
                           actor_of(request))
    await plans.load()  # this process at once; the others on the announcement
    return reply({"key": plan.key, "version": plan.version}, status=201 if plan.version == 1 else 200)


@api.delete("/api/plans/{key}", "Retire a plan", roles=DISPATCHER)
async def delete_plan(request: web.Request) -> web.Response:
    version = await retire_plan(request.app[PLATFORM].pool, _key(request), actor_of(request))
    await request.app[COMMAND].plans.load()
    return reply({"key": request.match_info["key"], "retired_version": version})


class SeverityChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    severity: Annotated[int, msgspec.Meta(ge=1, le=4)]


@api.post("/api/incidents/{id}/severity", "Raise an incident's severity: activates the larger plan and dispatches"
          " the departments it adds", roles=DISPATCHER, body=SeverityChange, conflicts=True)
async def raise_incident_severity(request: web.Request) -> web.Response:
    change = await body_of(request, SeverityChange)
    return reply(await raise_severity(request.app[COMMAND].intake, path_id(request), change.severity,
                                      user_of(request)))
