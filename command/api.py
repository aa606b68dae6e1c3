"""The HTTP JSON API: thin handlers that parse, call the domain, and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, overload

import msgspec
import shapely
from aiohttp import web

from command.accounts import Role, User
from command.errors import RequestError, decode
from command.intake import IncidentReport, Location, RoutingQuery, decide, record_incident, routing_json
from command.services import SERVICES, Services
from dispatch.store import Action, change_ticket, ticket_from_row, ticket_json
from dispatch.taxonomy import Severity
from dispatch.tickets import Feedback
from gis.boundaries import district_outlines

T = TypeVar("T")
routes = web.RouteTableDef()
USER = web.RequestKey("user", User)


def reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json")


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


async def user_of(request: web.Request, *roles: Role) -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise RequestError(401, "unauthenticated", "log in first: send Authorization: Bearer <token>",
                           "Authorization")
    user = await services_of(request).sessions.user_for(token.strip())
    if user is None:
        raise RequestError(401, "unauthenticated", "the token is unknown or has expired", "Authorization")
    if roles and user.role not in roles:
        raise RequestError(403, "forbidden", f"a {user.role.value} may not do this")
    return user


async def body_of(request: web.Request, kind: type[T]) -> T:
    if request.content_type != "application/json":
        raise RequestError(415, "unsupported_media_type", "send the body as application/json", "Content-Type")
    return decode(await request.read(), kind)


def path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 18:
        raise RequestError(404, "not_found", f"{raw!r} is not an id", name)
    return int(raw)


# --- accounts ---------------------------------------------------------------------------------

class Credentials(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


@routes.post("/api/login")
async def log_in(request: web.Request) -> web.Response:
    credentials = await body_of(request, Credentials)
    result = await services_of(request).sessions.log_in(credentials.username, credentials.password)
    if result is None:
        raise RequestError(401, "bad_credentials", "wrong user name or password", "password")
    token, user = result
    return reply({"token": token, "user": user.public()})


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    return reply((await user_of(request)).public())


# --- reference data ---------------------------------------------------------------------------

@routes.get("/api/incident-types")
async def incident_types(request: web.Request) -> web.Response:
    taxonomy = services_of(request).config.taxonomy
    tree = [{"code": c.code, "name": c.name, "name_en": c.name_en,
             "subtypes": [{"code": t.code, "name": t.name, "name_en": t.name_en}
                          for t in taxonomy if t.category == c.code and t.code != c.code]}
            for c in taxonomy if c.code == c.category]
    return reply({"categories": tree, "severities": [
        {"level": s.name, "value": s.value, "label": s.label} for s in Severity]})


@routes.get("/api/departments")
async def departments(request: web.Request) -> web.Response:
    return reply([{"code": d.code, "name": d.name, "name_en": d.name_en, "handles": sorted(d.handles)}
                  for d in services_of(request).config.departments.values()])


@routes.get("/api/subcentres")
async def subcentres(request: web.Request) -> web.Response:
    await user_of(request)
    directory = services_of(request).directory
    return reply({"type": "FeatureCollection",
                  "features": [s.feature() for s in directory.subcentres.values()]})


@routes.get("/api/map")
async def map_base(request: web.Request) -> web.Response:
    """What every page's map is drawn on: the district outlines and the optional tile service."""
    await user_of(request)
    settings = services_of(request).config.map
    return reply({"tile_url": settings.tile_url, "attribution": settings.attribution, "max_zoom": settings.max_zoom,
                  "districts": district_outlines(settings.boundary_tolerance_m)})


class Geometry(msgspec.Struct, frozen=True):
    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class NewSubcentre(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9\-_]{0,63}$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    department: str
    site: Location
    jurisdiction: Geometry


@routes.post("/api/subcentres")
async def add_subcentre(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER)
    body = await body_of(request, NewSubcentre)
    services = services_of(request)
    if body.department not in services.config.departments:
        raise RequestError(422, "unknown_department", f"unknown department {body.department!r}", "department")
    try:
        area = shapely.geometry.shape(msgspec.to_builtins(body.jurisdiction))
    except (ValueError, TypeError, IndexError, shapely.errors.GEOSException) as error:
        raise RequestError(422, "invalid", f"not a valid polygon: {error}", "jurisdiction") from None
    if not area.is_valid or area.is_empty:
        raise RequestError(422, "invalid", f"not a valid polygon: {shapely.is_valid_reason(area)}",
                           "jurisdiction")
    if not shapely.Polygon([(-180, -90), (180, -90), (180, 90), (-180, 90)]).covers(area):
        raise RequestError(422, "invalid", "coordinates must be WGS-84 lon/lat", "jurisdiction")
    if any(s.code == body.code for s in services.directory.subcentres.values()):
        raise RequestError(409, "duplicate", f"sub-centre {body.code!r} exists", "code")
    if clash := services.directory.jurisdictions.overlapping(body.department, area):
        names = ", ".join(services.directory.subcentres[i].code for i in clash)
        raise RequestError(409, "overlap", f"the jurisdiction overlaps that of {names} in the same department;"
                           " shrink theirs first", "jurisdiction")
    subcentre_id = await services.directory.add(body.code, body.name, body.department,
                                                (body.site.lon, body.site.lat), area)
    return reply({"id": subcentre_id}, status=201)


@routes.post("/api/routing/preview")
async def preview_routing(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER)
    query = await body_of(request, RoutingQuery)
    services = services_of(request)
    return reply(routing_json(services, *decide(services, query.type_code, query.severity, query.location)))


# --- incidents and tickets --------------------------------------------------------------------

@routes.post("/api/incidents")
async def create_incident(request: web.Request) -> web.Response:
    user = await user_of(request, Role.DISPATCHER)
    report = await body_of(request, IncidentReport)
    return reply(await record_incident(services_of(request), report, user), status=201)


def limit_param(request: web.Request, default: int, highest: int = 1000) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= highest:
        raise RequestError(400, "invalid", f"limit is a whole number from 1 to {highest}", "limit")
    return int(raw)


@overload
def choice_param(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str: ...


@overload
def choice_param(request: web.Request, name: str, choices: tuple[str, ...], default: None) -> str | None: ...


def choice_param(request: web.Request, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    """A query parameter that must be one of `choices` (`default` when absent)."""
    raw = request.query.get(name, default)
    if raw is not None and raw not in choices:
        raise RequestError(400, "invalid", f"{name} is {', '.join(choices[:-1])} or {choices[-1]}", name)
    return raw


def timestamp_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise RequestError(400, "invalid", f"{raw!r} is not an ISO 8601 time", name) from None
    if moment.tzinfo is None:
        raise RequestError(400, "invalid", "give the time zone, e.g. 2026-11-23T08:00:00+08:00", name)
    return moment


# A ticket's escalations so far (stage, step, when), for the console's alarms and stage timers.
_ESCALATIONS = ("(SELECT coalesce(jsonb_agg(jsonb_build_object('stage', d.stage, 'step', d.step, 'at', d.fired_at)"
                " ORDER BY d.fired_at), '[]') FROM deadlines d WHERE d.ticket_id = t.id AND d.outcome = 'escalated')")


@routes.get("/api/incidents")
async def list_incidents(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    state = choice_param(request, "state", ("pending", "open", "closed"), None)
    limit = limit_param(request, 100)
    since, until = timestamp_param(request, "since"), timestamp_param(request, "until")
    services = services_of(request)
    rows = await services.pool.fetch(
        f"SELECT i.*, (SELECT coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'subcentre_id', t.subcentre_id,"
        " 'department', t.department, 'state', t.state, 'created_at', t.created_at, 'delivered_at', t.delivered_at,"
        " 'acknowledged_at', t.acknowledged_at, 'closed_at', t.closed_at, 'outside_jurisdiction',"
        f" t.outside_jurisdiction, 'limits', t.limits, 'escalations', {_ESCALATIONS}) ORDER BY t.id), '[]')"
        " FROM tickets t WHERE t.incident_id = i.id) AS tickets FROM incidents i"
        " WHERE ($1::text IS NULL OR i.state = $1) AND i.created_at >= coalesce($2::timestamptz, '-infinity')"
        " AND i.created_at < coalesce($3::timestamptz, 'infinity')"
        # The pending queue is worked gravest first, then longest waiting; everything else newest first.
        " ORDER BY CASE WHEN $1 = 'pending' THEN i.severity END, CASE WHEN $1 = 'pending' THEN i.created_at END,"
        " i.created_at DESC, i.id DESC LIMIT $4",
        state, since, until, limit)
    return reply([{**services.views.incident(r), "tickets": r["tickets"]} for r in rows])


@routes.get("/api/incidents/{id}")
async def get_incident(request: web.Request) -> web.Response:
    user = await user_of(request)
    incident_id = path_id(request)
    services = services_of(request)
    row = await services.pool.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
    if row is None:
        raise RequestError(404, "not_found", f"incident {incident_id} does not exist", "id")
    incident = services.views.incident(row)
    ticket_rows = await services.pool.fetch(f"SELECT t.*, {_ESCALATIONS} AS escalations FROM tickets t"
                                            " WHERE t.incident_id = $1 ORDER BY t.id", incident_id)
    events = await services.pool.fetch(
        "SELECT id, ticket_id, subcentre_id, kind, actor_id, at, data FROM events"
        " WHERE incident_id = $1 ORDER BY id", incident_id)
    if user.role is Role.OPERATOR:  # an operator sees the incident through its own sub-centre's tickets only
        ticket_rows = [t for t in ticket_rows if t["subcentre_id"] == user.subcentre_id]
        if not ticket_rows:
            raise RequestError(403, "forbidden", "this incident has no ticket for your sub-centre", "id")
        events = [e for e in events if e["subcentre_id"] in (None, user.subcentre_id)]
    alert = services.views.alert(incident)
    tickets = [{**ticket_json(ticket_from_row(t), incident, alert), "limits": t["limits"],
                "escalations": t["escalations"]} for t in ticket_rows]
    for ticket in tickets:
        ticket.pop("incident")
    # Each step with what it decided (routing, plan, escalation, severity); the bodies are in `tickets`.
    timeline = [{"id": e["id"], "kind": e["kind"], "at": e["at"], "ticket_id": e["ticket_id"],
                 "subcentre_id": e["subcentre_id"], "actor_id": e["actor_id"],
                 "detail": {k: v for k, v in e["data"].items() if k not in ("ticket", "incident")}}
                for e in events]
    return reply({**incident, "tickets": tickets, "timeline": timeline})


@routes.get("/api/incidents/{id}/notifications")
async def incident_notifications(request: web.Request) -> web.Response:
    """Every message sent (or still trying) about an incident: to whom, how, and what became of it."""
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    rows = await services_of(request).pool.fetch(
        "SELECT id, ticket_id, reason, channel, recipient, address, subject, status, attempts, last_error,"
        " created_at, sent_at FROM notifications WHERE incident_id = $1 ORDER BY id", path_id(request))
    return reply([dict(r.items()) for r in rows])


class Reason(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class FeedbackBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    outcome: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    people_affected: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] | None = None
    resources_used: Annotated[str, msgspec.Meta(max_length=500)] = ""
    notes: Annotated[str, msgspec.Meta(max_length=2000)] = ""


async def _act(request: web.Request, action: Action, user: User) -> web.Response:
    services = services_of(request)
    ticket = await change_ticket(services.pool, services.views, path_id(request), action, user.id,
                                 user.subcentre_id if user.role is Role.OPERATOR else None)
    return reply({"changed": ticket is not None, "ticket": ticket})


@routes.post("/api/tickets/{id}/acknowledge")
async def acknowledge(request: web.Request) -> web.Response:
    user = await user_of(request, Role.OPERATOR)
    return await _act(request, Action("acknowledge"), user)


@routes.post("/api/tickets/{id}/feedback")
async def feedback(request: web.Request) -> web.Response:
    user = await user_of(request, Role.OPERATOR)
    body = await body_of(request, FeedbackBody)
    return await _act(request, Action("report_back", feedback=msgspec.convert(body, Feedback, from_attributes=True)),
                      user)


@routes.post("/api/tickets/{id}/reject")
async def reject(request: web.Request) -> web.Response:
    user = await user_of(request, Role.OPERATOR)
    body = await body_of(request, Reason)
    return await _act(request, Action("reject", reason=body.reason), user)


@routes.post("/api/tickets/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    user = await user_of(request, Role.DISPATCHER)
    body = await body_of(request, Reason)
    return await _act(request, Action("cancel", reason=body.reason), user)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    services = services_of(request)
    database_ok = True
    try:
        await services.pool.fetchval("SELECT 1", timeout=2.0)
    except Exception:  # any failure means "not healthy"; the body says which part
        database_ok = False
    listening = services.hub.connected.is_set()
    ok = database_ok and listening
    return reply({"status": "ok" if ok else "degraded", "database": database_ok, "listening": listening,
                  "loop_lag": services.loop_lag.summary()}, status=200 if ok else 503)
