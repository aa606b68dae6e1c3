"""HTTP routes of a card's escalation: the departments' contacts, a department acknowledging its card,
and what each card's escalation sent."""

from __future__ import annotations

from aiohttp import web

from base.accounts import Role
from base.context import PLATFORM
from base.http import Api, actor_of, body_of, path_id, reply, user_of
from efficiency import card_escalation
from efficiency.routes import own

api = Api()
KEEPERS = (Role.ADMINISTRATOR, Role.SUPERVISOR)
ANSWERERS = (Role.SUPERVISOR, Role.SYSTEM)


@api.get("/api/efficiency/contacts", "Who in each department is told of its cards (contact, then leader)",
         roles=KEEPERS)
async def list_contacts(request: web.Request) -> web.Response:
    return reply(await card_escalation.contacts(request.app[PLATFORM].pool, user_of(request).departments))


@api.put("/api/efficiency/contacts", "Set a department's contact (told of every card as it opens) and leader"
         " (told if nobody acknowledges it)", roles=KEEPERS, body=card_escalation.Contacts)
async def put_contacts(request: web.Request) -> web.Response:
    contacts = await body_of(request, card_escalation.Contacts)
    own(request, contacts.department, "department")
    pool = request.app[PLATFORM].pool
    await card_escalation.set_contacts(pool, contacts, actor_of(request))
    return reply(await card_escalation.contacts(pool, (contacts.department,)))


@api.post("/api/efficiency/cards/{id}/acknowledgement", "The department has seen its card and is acting on it:"
          " the card stops escalating and stays open until its cause is answered", roles=ANSWERERS, conflicts=True)
async def acknowledge_card(request: web.Request) -> web.Response:
    return reply(await card_escalation.acknowledge(request.app[PLATFORM].pool, path_id(request),
                                                   user_of(request).departments, actor_of(request)))


@api.get("/api/efficiency/cards/{id}/notices", "A card's acknowledgement and each message its escalation sent,"
         " with what became of it", roles=KEEPERS)
async def card_notices(request: web.Request) -> web.Response:
    pool, card_id = request.app[PLATFORM].pool, path_id(request)
    own(request, await card_escalation.department_of(pool, card_id), "id")
    return reply(await card_escalation.notices(pool, card_id))
