"""HTTP routes of supervision: alerts (list, snapshot, acknowledge, close), the figures per window,
a camera's latest tile, and marking a camera's seat as empty."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import msgspec
from aiohttp import web

from command.accounts import Role
from command.api import body_of, choice_param, limit_param, path_id, reply, services_of, timestamp_param, user_of
from command.errors import RequestError
from video import supervision
from video.api import camera_row
from video.supervision import MARK_EMPTY_CHANNEL, AlertProblem

routes = web.RouteTableDef()
_LONGEST_DAYS = 92


def _problem(error: AlertProblem) -> RequestError:
    return RequestError(error.status, error.code, str(error), error.field)


@routes.get("/api/supervision/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    """Alerts newest first: `open=true` (the default) for those not yet closed, else all `since`."""
    await user_of(request, Role.SUPERVISOR, Role.DISPATCHER)
    only_open = choice_param(request, "open", ("true", "false"), "true") == "true"
    rows = await supervision.alerts(services_of(request).pool, only_open, timestamp_param(request, "since"),
                                    limit_param(request, 200))
    return reply(rows)


@routes.get("/api/supervision/alerts/{id}/snapshot")
async def alert_snapshot(request: web.Request) -> web.Response:
    """The picture that raised the alert (JPEG)."""
    await user_of(request, Role.SUPERVISOR, Role.DISPATCHER)
    try:
        picture = await supervision.snapshot(services_of(request).pool, path_id(request))
    except AlertProblem as error:
        raise _problem(error) from None
    return web.Response(body=picture, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@routes.post("/api/supervision/alerts/{id}/acknowledge")
async def acknowledge_alert(request: web.Request) -> web.Response:
    user = await user_of(request, Role.SUPERVISOR)
    try:
        return reply(await supervision.acknowledge(services_of(request).pool, path_id(request), user.username))
    except AlertProblem as error:
        raise _problem(error) from None


class CloseBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""  # what was done about it


@routes.post("/api/supervision/alerts/{id}/close")
async def close_alert(request: web.Request) -> web.Response:
    user = await user_of(request, Role.SUPERVISOR)
    alert_id = path_id(request)
    body = await body_of(request, CloseBody) if request.can_read_body else CloseBody()
    try:
        return reply(await supervision.close(services_of(request).pool, alert_id, user.username, body.note))
    except AlertProblem as error:
        raise _problem(error) from None


def _date(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise RequestError(400, "invalid", f"{raw!r} is not a date (YYYY-MM-DD)", name) from None


@routes.get("/api/supervision/statistics")
async def window_statistics(request: web.Request) -> web.Response:
    """Per department, window and local day (since..until, dates, both included): minutes the seat
    stood empty and alerts by kind."""
    await user_of(request, Role.SUPERVISOR, Role.DISPATCHER)
    services = services_of(request)
    offset = services.config.server.offset
    today = (datetime.now(UTC) + offset).date()
    until = _date(request, "until", today)
    since = _date(request, "since", until)
    if since > until:
        raise RequestError(400, "invalid", "since must not be after until", "since")
    if (until - since).days >= _LONGEST_DAYS:
        raise RequestError(400, "invalid", f"ask for at most {_LONGEST_DAYS} days at a time", "since")
    rows = await supervision.statistics(services.pool, since, until, offset)
    return reply([{"day": r.day.isoformat(), "department": r.department, "window": r.window,
                   "camera_id": r.camera_id, "absence_minutes": r.absence_minutes, "alerts": r.alerts}
                  for r in rows])


@routes.get("/api/cameras/{id}/tile")
async def latest_tile(request: web.Request) -> web.Response:
    """The camera's latest low-resolution picture (JPEG), from the process that analyses it."""
    await user_of(request, Role.SUPERVISOR, Role.DISPATCHER)
    camera_id = (await camera_row(request))["id"]
    tile = services_of(request).tiles.latest.get(camera_id)
    if tile is None:
        raise RequestError(404, "no_picture", "no picture from this camera here yet (offline, starting, or"
                                              " analysed by another server process)", "id")
    age = max(0.0, datetime.now(UTC).timestamp() - tile.at)
    return web.Response(body=tile.jpeg, content_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Picture-Age-Ms": str(round(age * 1000))})


@routes.post("/api/cameras/{id}/empty-seat")
async def mark_empty_seat(request: web.Request) -> web.Response:
    """The seat is empty now: the camera's next picture becomes what presence is judged against."""
    await user_of(request, Role.SUPERVISOR)
    camera_id = (await camera_row(request))["id"]
    # Whichever server process analyses the camera hears this and takes the picture.
    await services_of(request).pool.execute("SELECT pg_notify($1, $2)", MARK_EMPTY_CHANNEL, str(camera_id))
    return reply({"camera_id": camera_id, "status": "requested"}, status=202)

