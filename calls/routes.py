"""HTTP routes for three-way calls. Signalling is one request each way: a party posts its SDP offer
with every ICE candidate gathered and gets the server's answer (aiortc does not trickle)."""

from __future__ import annotations

import math
import time
from typing import Annotated

import msgspec
from aiohttp import web

from base import audit
from base.accounts import Role, user_from
from base.context import PLATFORM
from base.errors import DomainError, TooMany
from base.http import ANYONE, Api, actor_of, base_url, body_of, client_address, path_id, reply, user_of
from base.messages import PLAIN, Id
from base.throttle import Window
from calls import store
from calls.context import CALLER_LIMIT, SWITCHBOARD
from calls.rules import MAX_SDP_BYTES, new_secret
from dispatch.context import DISPATCH

api = Api()
DISPATCHER = (Role.DISPATCHER,)
PARTIES = (Role.DISPATCHER, Role.OPERATOR)
WATCHERS = (Role.DISPATCHER, Role.SUPERVISOR)

Sdp = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SDP_BYTES)]
Secret = Annotated[str, msgspec.Meta(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
Phone = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[0-9+\-() ]*$")]


class OpenCall(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which sub-centres to ring (default: every one with a live ticket) and the caller's number for
    the SMS link (default: the number the incident was reported from)."""

    subcentre_ids: Annotated[list[Id], msgspec.Meta(max_length=16)] | None = None
    caller_phone: Phone | None = None


class Offer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sdp: Sdp


class Mute(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    muted: bool


class AddSubcentre(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subcentre_id: Id


class Transfer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    username: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=64)]


class CallerJoin(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: Secret
    sdp: Sdp


class CallerRejoin(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    session: Secret
    sdp: Sdp


class CallerSession(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    session: Secret


class CallerPosition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """WGS-84, as the phone's browser gives it (navigator.geolocation)."""

    session: Secret
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    accuracy_m: Annotated[float, msgspec.Meta(ge=0, le=100_000)]


@api.post("/api/incidents/{id}/calls", "Open the incident's three-way call: ring its ticketed sub-centres and"
          " make the caller's single-use link (sent by SMS when there is a number)", roles=DISPATCHER, body=OpenCall,
          status=201, conflicts=True, also=(403, 404))
async def open_call(request: web.Request) -> web.Response:
    body = await body_of(request, OpenCall)
    incident_id = path_id(request)
    pool = request.app[PLATFORM].pool
    phone = body.caller_phone
    if phone is None:
        phone = await pool.fetchval("SELECT caller_phone FROM incidents WHERE id = $1", incident_id) or ""
    call, link = await request.app[SWITCHBOARD].open(incident_id, user_of(request), body.subcentre_ids, phone,
                                                     base_url(request))
    await audit.record(pool, audit.Entry(actor_of(request), "call.open", f"call:{call['id']}",
                                         details={"incident": incident_id, "sms": bool(phone)}))
    return reply({"call": call, "caller_link": link}, 201)


@api.get("/api/calls", "Calls going on now (an operator: its sub-centre's)", roles=(*PARTIES, Role.SUPERVISOR))
async def list_calls(request: web.Request) -> web.Response:
    user = user_of(request)
    subcentre = user.subcentre_id if user.role is Role.OPERATOR else None
    if user.role is Role.OPERATOR and subcentre is None:
        return reply({"calls": []})
    return reply({"calls": await store.open_calls(request.app[PLATFORM].pool, subcentre)})


@api.get("/api/call-servers", "The STUN/TURN servers a party's browser may use, with its own TURN credential",
         roles=PARTIES)
async def ice_servers(request: web.Request) -> web.Response:
    board = request.app[SWITCHBOARD]
    return reply({"ice_servers": board.ice_servers(user_of(request).username), "relay_only": board.setup.relay_only})


@api.get("/api/incidents/{id}/calls", "An incident's calls: parties, the caller's positions, recordings",
         roles=WATCHERS)
async def incident_calls(request: web.Request) -> web.Response:
    return reply({"calls": await store.calls_of_incident(request.app[PLATFORM].pool, path_id(request))})


@api.get("/api/calls/{id}", "One call: parties and their state, the caller's positions, the recording",
         roles=WATCHERS, also=(404,))
async def one_call(request: web.Request) -> web.Response:
    return reply(await store.call(request.app[PLATFORM].pool, path_id(request)))


@api.post("/api/calls/{id}/join", "Take your place in the call (the call's dispatcher, or an operator of a"
          " sub-centre in it): an SDP offer with its candidates in, the server's answer out", roles=PARTIES,
          body=Offer, conflicts=True, also=(403, 404))
async def join(request: web.Request) -> web.Response:
    body = await body_of(request, Offer)
    user = user_of(request)
    party = await store.party_of_user(request.app[PLATFORM].pool, path_id(request), user)
    answer = await request.app[SWITCHBOARD].join(party, body.sdp, user)
    return reply({"type": "answer", "sdp": answer, "party_id": party.id})


@api.post("/api/calls/{id}/leave", "Leave the call (it goes on for the others)", roles=PARTIES, conflicts=True,
          also=(403, 404))
async def leave(request: web.Request) -> web.Response:
    user = user_of(request)
    party = await store.party_of_user(request.app[PLATFORM].pool, path_id(request), user)
    await request.app[SWITCHBOARD].leave(party, "gone", user)
    return reply({"left": party.id})


@api.post("/api/calls/{id}/mute", "Mute or unmute yourself: the server stops mixing your voice", roles=PARTIES,
          body=Mute, conflicts=True, also=(403, 404))
async def mute(request: web.Request) -> web.Response:
    body = await body_of(request, Mute)
    pool = request.app[PLATFORM].pool
    party = await store.party_of_user(pool, path_id(request), user_of(request))
    request.app[SWITCHBOARD].mute(party, body.muted)
    await store.set_muted(pool, party.id, body.muted)
    return reply({"party_id": party.id, "muted": body.muted})


@api.post("/api/calls/{id}/parties", "Add a sub-centre with a ticket for the incident to the call (its terminals"
          " ring)", roles=DISPATCHER, body=AddSubcentre, status=201, conflicts=True, also=(403, 404))
async def add_party(request: web.Request) -> web.Response:
    body = await body_of(request, AddSubcentre)
    board = request.app[SWITCHBOARD]
    await store.party_of_user(request.app[PLATFORM].pool, path_id(request), user_of(request))  # holds the call
    party_id = await store.add_subcentre(request.app[PLATFORM].pool, path_id(request), body.subcentre_id,
                                         user_of(request), board.setup.limits)
    return reply({"party_id": party_id}, 201)


@api.delete("/api/calls/{id}/parties/{party}", "Drop a sub-centre from the call", roles=DISPATCHER, conflicts=True,
            also=(403, 404))
async def drop_party(request: web.Request) -> web.Response:
    pool = request.app[PLATFORM].pool
    holder = await store.party_of_user(pool, path_id(request), user_of(request))
    row = await store.party_row(pool, holder.call_id, path_id(request, "party"))
    if row["kind"] != "subcentre":
        raise DomainError("only a sub-centre can be dropped; the caller hangs up, the dispatcher transfers",
                          "party", "forbidden")
    dropped = store.Party(row["id"], holder.call_id, holder.incident_id, holder.kind, row["subcentre_id"],
                          holder.node)
    await request.app[SWITCHBOARD].leave(dropped, "dropped", user_of(request))
    return reply({"dropped": row["id"]})


@api.post("/api/calls/{id}/transfer", "Hand the call to another dispatcher (who then joins it)", roles=DISPATCHER,
          body=Transfer, conflicts=True, also=(403, 404))
async def transfer(request: web.Request) -> web.Response:
    body = await body_of(request, Transfer)
    pool, user = request.app[PLATFORM].pool, user_of(request)
    holder = await store.party_of_user(pool, path_id(request), user)
    row = await pool.fetchrow("SELECT u.id, u.username, u.display_name, u.role, u.subcentre_id, u.departments"
                              " FROM users u WHERE u.username = $1 AND u.disabled_at IS NULL", body.username)
    if row is None or row["role"] != Role.DISPATCHER.value:
        raise DomainError(f"no dispatcher named {body.username}", "username", "not_found")
    if row["id"] == user.id:
        raise DomainError("you already hold this call", "username")
    await request.app[SWITCHBOARD].leave(holder, "invited", user)
    await store.transfer(pool, holder.call_id, user, user_from(row))
    return reply({"transferred_to": body.username})


@api.post("/api/calls/{id}/hangup", "End the call for everyone; the recording is stored with the incident",
          roles=DISPATCHER, conflicts=True, also=(403, 404))
async def hang_up(request: web.Request) -> web.Response:
    user = user_of(request)
    party = await store.party_of_user(request.app[PLATFORM].pool, path_id(request), user)
    await request.app[SWITCHBOARD].hang_up(party.call_id, "hung up", user)
    return reply(await store.call(request.app[PLATFORM].pool, party.call_id))


@api.post("/api/calls/{id}/link", "A new single-use link for the caller (the first expired or was spent)",
          roles=DISPATCHER, conflicts=True, also=(403, 404))
async def new_link(request: web.Request) -> web.Response:
    party = await store.party_of_user(request.app[PLATFORM].pool, path_id(request), user_of(request))
    return reply({"caller_link": await request.app[SWITCHBOARD].new_link(party.call_id, base_url(request))})


@api.post("/api/calls/{id}/adopt-position", "Move the incident to the caller's last shared position",
          roles=DISPATCHER, also=(404,))
async def adopt_position(request: web.Request) -> web.Response:
    return reply(await store.adopt_position(request.app[PLATFORM].pool, request.app[DISPATCH].views, path_id(request),
                                            user_of(request)))


@api.get("/api/calls/{id}/recording", "A call's recording (WebM); ?file=N for the caller's pictures (0 is the"
         " sound). Each playback is audited", roles=WATCHERS, query=("file",), produces="video/webm", also=(404,))
async def recording(request: web.Request) -> web.StreamResponse:
    pool = request.app[PLATFORM].pool
    call = await store.call(pool, path_id(request))
    raw = request.query.get("file", "0")
    if not raw.isdigit() or len(raw) > 3:
        raise DomainError("file is the recording's number: 0 for the sound, 1… for pictures", "file")
    files = call["recording"] or []
    if call["expired_at"] is not None or int(raw) >= len(files):
        raise DomainError("no such recording of this call", "file", "not_found")
    described = files[int(raw)]
    path = request.app[SWITCHBOARD].recording(described)
    if not path.exists():
        raise DomainError("the recording's file is missing", "file", "not_found")
    await audit.record(pool, audit.Entry(actor_of(request), "call.playback", f"call:{call['id']}",
                                         details={"file": described["file"], "sha256": described["sha256"]}))
    return web.FileResponse(path, headers={"Content-Type": "video/webm" if described["kind"] == "picture"
                                           else "audio/webm"})


# --- the caller's page: no account, only the link's token and then the session it buys ----------

def _throttled(request: web.Request) -> tuple[Window, str, float]:
    limit, address, now = request.app[CALLER_LIMIT], client_address(request), time.monotonic()
    if wait := limit.wait_s(address, now):
        raise TooMany(f"too many failed attempts from this address; try again in {math.ceil(wait)} s",
                      math.ceil(wait), "token")
    return limit, address, now


@api.post("/api/caller/join", "The caller joins with the link's token (good once): answer and a session for"
          " rejoining", roles=ANYONE, body=CallerJoin, conflicts=True, also=(403, 429))
async def caller_join(request: web.Request) -> web.Response:
    body = await body_of(request, CallerJoin)
    limit, address, now = _throttled(request)
    session, session_hash = new_secret()
    try:
        party = await store.redeem_link(request.app[PLATFORM].pool, body.token, session_hash)
    except DomainError:
        limit.failed(address, now)  # a guessed or replayed token counts against the address
        raise
    answer = await request.app[SWITCHBOARD].join(party, body.sdp, None)
    return reply({"type": "answer", "sdp": answer, "session": session, "call_id": party.call_id})


class CallerAsks(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The caller's link token (before joining) or session (after)."""

    token: Secret | None = None
    session: Secret | None = None


@api.post("/api/caller/servers", "The STUN/TURN servers the caller's phone may use (the link is not spent)",
          roles=ANYONE, body=CallerAsks, also=(403, 429))
async def caller_servers(request: web.Request) -> web.Response:
    body = await body_of(request, CallerAsks)
    limit, address, now = _throttled(request)
    pool = request.app[PLATFORM].pool
    try:
        if body.session is not None:
            party = await store.party_of_caller(pool, body.session)
        elif body.token is not None:
            party = await store.link_call(pool, body.token)
        else:
            raise DomainError("give the link's token or the call's session", "token")
    except DomainError:
        limit.failed(address, now)
        raise
    board = request.app[SWITCHBOARD]
    return reply({"ice_servers": board.ice_servers(f"caller-{party.call_id}"), "relay_only": board.setup.relay_only})


@api.post("/api/caller/rejoin", "The caller's page reconnects (a reload, a dropped network) with its session",
          roles=ANYONE, body=CallerRejoin, conflicts=True, also=(403, 429))
async def caller_rejoin(request: web.Request) -> web.Response:
    body = await body_of(request, CallerRejoin)
    limit, address, now = _throttled(request)
    try:
        party = await store.party_of_caller(request.app[PLATFORM].pool, body.session)
    except DomainError:
        limit.failed(address, now)
        raise
    answer = await request.app[SWITCHBOARD].join(party, body.sdp, None)
    return reply({"type": "answer", "sdp": answer, "call_id": party.call_id})


@api.post("/api/caller/position", "The caller's phone shares where it is (WGS-84)", roles=ANYONE,
          body=CallerPosition, conflicts=True, also=(403,))
async def caller_position(request: web.Request) -> web.Response:
    body = await body_of(request, CallerPosition)
    party = await store.party_of_caller(request.app[PLATFORM].pool, body.session)
    await store.add_position(request.app[PLATFORM].pool, party, body.lon, body.lat, body.accuracy_m)
    return reply({"call_id": party.call_id})


@api.post("/api/caller/leave", "The caller hangs up", roles=ANYONE, body=CallerSession, conflicts=True, also=(403,))
async def caller_leave(request: web.Request) -> web.Response:
    body = await body_of(request, CallerSession)
    party = await store.party_of_caller(request.app[PLATFORM].pool, body.session)
    await request.app[SWITCHBOARD].leave(party)
    return reply({"left": party.id})
