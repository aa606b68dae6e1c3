"""HTTP routes of efficiency supervision: approval items, case events from the departments' systems
(and the manual entry form), cases, open cards."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError
from base.http import (
    Api,
    actor_of,
    body_of,
    choice_param,
    limit_param,
    path_id,
    reply,
    text_param,
    upload_of,
    user_of,
)
from efficiency import catalogue_file, corrections, ingest, store
from efficiency.context import EFFICIENCY
from efficiency.items import ApprovalItem

api = Api()
KEEPERS = (Role.ADMINISTRATOR, Role.SUPERVISOR)
READERS = (Role.ADMINISTRATOR, Role.SUPERVISOR, Role.SYSTEM)
# A department's system pushes its own events; a supervisor types them in for windows without one.
SENDERS = (Role.SYSTEM, Role.SUPERVISOR)


def own(request: web.Request, department: str, field: str) -> None:
    """Refuse (403) a department this account does not see; `field` names where the request named it."""
    if not user_of(request).sees_department(department):
        raise DomainError(f"{department!r} is not this account's department", field, "forbidden")


@api.get("/api/efficiency/items", "Approval items (审批事项) with their stages and limits", roles=READERS)
async def list_items(request: web.Request) -> web.Response:
    return reply(await store.items(request.app[PLATFORM].pool, user_of(request).departments))


@api.post("/api/efficiency/items", "Create (201) or replace (200) an approval item (limits in working days)",
          roles=KEEPERS, body=ApprovalItem, status=201, also=(200,))
async def put_item(request: web.Request) -> web.Response:
    item = await body_of(request, ApprovalItem)
    own(request, item.department, "department")
    created = await store.save_item(request.app[PLATFORM].pool, item, actor_of(request))
    return reply({"code": item.code, "created": created}, status=201 if created else 200)


@api.post("/api/efficiency/items/import", "Create or replace items from a spreadsheet (CSV or XLSX; first row the"
          " column names, see efficiency/catalogue_file.py): every row checked first, all stored or none",
          roles=KEEPERS, uploads=(catalogue_file.CSV, catalogue_file.XLSX))
async def import_items(request: web.Request) -> web.Response:
    kind, data = await upload_of(request, (catalogue_file.CSV, catalogue_file.XLSX))
    try:
        found = catalogue_file.items_from(kind, data)
    except catalogue_file.FileProblem as problem:
        raise DomainError(problem.message, problem.field) from None
    for n, item in enumerate(found, start=1):
        own(request, item.department, f"rows[{n}].department")
    created = await store.save_items(request.app[PLATFORM].pool, found, actor_of(request))
    return reply({"items": len(found), "created": created, "replaced": len(found) - created})


@api.post("/api/efficiency/events", "A case event (受理/承办/审核/审批/办结, suspend, resume); idempotent by the"
          " department's event id (a retry: 200, a different body under a used id: 409)", roles=SENDERS,
          body=ingest.IncomingEvent, status=201, conflicts=True)
async def post_event(request: web.Request) -> web.Response:
    event = await body_of(request, ingest.IncomingEvent)
    own(request, event.department, "department")
    efficiency = request.app[EFFICIENCY]
    case_id, new = await ingest.ingest(request.app[PLATFORM].pool, efficiency.calendar, efficiency.yellow_share, event)
    return reply({"case_id": case_id, "new": new}, status=201 if new else 200)


class EventBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    events: Annotated[list[ingest.IncomingEvent], msgspec.Meta(min_length=1, max_length=500)]


@api.post("/api/efficiency/events/batch", "Up to 500 case events at once, all stored or none (a refused one is"
          " named as events[i]); each idempotent by its event id as alone", roles=SENDERS, body=EventBatch,
          conflicts=True)
async def post_events(request: web.Request) -> web.Response:
    batch = await body_of(request, EventBatch)
    for n, event in enumerate(batch.events):
        own(request, event.department, f"events[{n}].department")
    efficiency = request.app[EFFICIENCY]
    outcomes = await ingest.ingest_batch(request.app[PLATFORM].pool, efficiency.calendar, efficiency.yellow_share,
                                        batch.events)
    return reply({"events": [{"case_id": case_id, "new": new} for case_id, new in outcomes],
                  "new": sum(new for _, new in outcomes)})


@api.get("/api/efficiency/cases", "Cases newest first, by state (open, late, completed, all) and optionally one"
         " department, item or window: the dashboard's drill-down", roles=KEEPERS,
         query=("state", "department", "item", "window", "limit"))
async def list_cases(request: web.Request) -> web.Response:
    state = choice_param(request, "state", tuple(store.CASE_STATES), "open")
    named = {name: text_param(request, name) for name in ("department", "item", "window")}
    return reply(await store.cases(request.app[PLATFORM].pool, user_of(request).departments, state,
                                   named["department"], named["item"], named["window"], limit_param(request, 200)))


@api.get("/api/efficiency/cases/{id}", "A case: its clock, events in the order they happened (each with the"
         " window camera's recording around it), anomalies, cards, correction notices, ratings, complaints",
         roles=KEEPERS)
async def get_case(request: web.Request) -> web.Response:
    pool = request.app[PLATFORM].pool
    found = await store.case(pool, path_id(request))
    own(request, found["department"], "id")
    return reply({**found, "corrections": await corrections.of_case(pool, found["id"])})


@api.get("/api/efficiency/cards", "Open yellow and red cards, newest first", roles=KEEPERS)
async def list_cards(request: web.Request) -> web.Response:
    return reply(await store.open_cards(request.app[PLATFORM].pool, user_of(request).departments))
