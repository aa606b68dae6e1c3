"""HTTP routes of supervision: alerts (list, snapshot, acknowledge, close), the figures per window,
a camera's latest tile, and marking a camera's seat as empty."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import msgspec
from aiohttp import web

from base import audit
from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError, RequestError
from base.http import (
    Api,
    actor_of,
    body_of,
    choice_param,
    in_era,
    limit_param,
    path_id,
    reply,
    timestamp_param,
    user_of,
)
from base.messages import PLAIN
from video.analysis import supervision
from video.analysis.supervision import MARK_EMPTY_CHANNEL
from video.cameras.routes import WATCHERS, camera_row, check_department
from video.context import VIDEO

api = Api()
_LONGEST_DAYS = 92


@api.get("/api/supervision/alerts", "Supervision alerts, newest first: open=true (the default) for those not yet"
         " closed, else all since", roles=WATCHERS, query=("open", "since", "limit"))
async def list_alerts(request: web.Request) -> web.Response:
    only_open = choice_param(request, "open", ("true", "false"), "true") == "true"
    return reply(await supervision.alerts(request.app[PLATFORM].pool, only_open, timestamp_param(request, "since"),
                                          limit_param(request, 200), user_of(request).departments))


async def _alert_id(request: web.Request) -> int:
    """The alert in the path, if the user's departments include its camera's."""
    alert_id = path_id(request)
    row = await request.app[PLATFORM].pool.fetchrow(
        "SELECT c.department FROM supervision_alerts a LEFT JOIN cameras c ON c.id = a.camera_id WHERE a.id = $1",
        alert_id)
    if row is not None:  # a missing alert is reported as such by what follows
        # An alert of no camera (the disk filling) is the whole centre's, no department's.
        check_department(request, row["department"] or "", f"supervision alert {alert_id}")
    return alert_id


@api.get("/api/supervision/alerts/{id}/snapshot", "The picture that raised an alert (JPEG)", roles=WATCHERS,
         produces="image/jpeg")
async def alert_snapshot(request: web.Request) -> web.Response:
    picture = await supervision.snapshot(request.app[PLATFORM].pool, await _alert_id(request))
    return web.Response(body=picture, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@api.post("/api/supervision/alerts/{id}/acknowledge", "Acknowledge a supervision alert", roles=(Role.SUPERVISOR,),
          conflicts=True)
async def acknowledge_alert(request: web.Request) -> web.Response:
    alert_id = await _alert_id(request)
    entry = audit.Entry(actor_of(request), "alert.acknowledge", f"alert:{alert_id}")
    return reply(await supervision.acknowledge(request.app[PLATFORM].pool, alert_id, user_of(request).username, entry))


class CloseBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    note: Annotated[str, PLAIN, msgspec.Meta(max_length=2000)] = ""  # what was done about it


@api.post("/api/supervision/alerts/{id}/close", "Close a supervision alert with a note", roles=(Role.SUPERVISOR,),
          body=CloseBody, conflicts=True)
async def close_alert(request: web.Request) -> web.Response:
    alert_id = await _alert_id(request)
    body = await body_of(request, CloseBody) if request.can_read_body else CloseBody()
    return reply(await supervision.close(request.app[PLATFORM].pool, alert_id, user_of(request).username, body.note,
                                         audit.Entry(actor_of(request), "alert.close", f"alert:{alert_id}",
                                                     details={"note": body.note})))


def _date(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return in_era(date.fromisoformat(raw), name, 400)
    except ValueError:
        raise RequestError(400, "invalid", f"{raw!r} is not a date (YYYY-MM-DD)", name) from None


@api.get("/api/supervision/statistics", "Per department, window and local day (since..until, dates, both included):"
         " absence minutes and alerts by kind", roles=WATCHERS, query=("since", "until"))
async def window_statistics(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    offset = platform.utc_offset
    today = (datetime.now(UTC) + offset).date()
    until = _date(request, "until", today)
    since = _date(request, "since", until)
    if since > until:
        raise RequestError(400, "invalid", "since must not be after until", "since")
    if (until - since).days >= _LONGEST_DAYS:
        raise RequestError(400, "invalid", f"ask for at most {_LONGEST_DAYS} days at a time", "since")
    user = user_of(request)
    rows = [r for r in await supervision.statistics(platform.pool, since, until, offset)
            if user.sees_department(r.department)]
    return reply([{"day": r.day.isoformat(), "department": r.department, "window": r.window,
                   "camera_id": r.camera_id, "absence_minutes": r.absence_minutes, "alerts": r.alerts}
                  for r in rows])


@api.get("/api/cameras/{id}/tile", "The camera's latest low-resolution picture (JPEG), from the process that"
         " analyses it", roles=WATCHERS, produces="image/jpeg")
async def latest_tile(request: web.Request) -> web.Response:
    camera_id = (await camera_row(request))["id"]
    tile = request.app[VIDEO].tiles.latest.get(camera_id)
    if tile is None:
        raise DomainError("no picture from this camera here yet (offline, starting, or analysed by another server"
                          " process)", "id", "no_picture")
    age = max(0.0, datetime.now(UTC).timestamp() - tile.at)
    return web.Response(body=tile.jpeg, content_type="image/jpeg",
                        headers={"Cache-Control": "no-store", "X-Picture-Age-Ms": str(round(age * 1000))})


@api.post("/api/cameras/{id}/empty-seat", "The seat is empty now: the next picture becomes what presence is judged"
          " against", roles=(Role.SUPERVISOR,), status=202)
async def mark_empty_seat(request: web.Request) -> web.Response:
    camera_id = (await camera_row(request))["id"]
    # Whichever server process analyses the camera hears this (on commit) and takes the picture.
    async with audit.recorded(request.app[PLATFORM].pool,
                              audit.Entry(actor_of(request), "video.empty_seat", f"camera:{camera_id}")) as connection:
        await connection.execute("SELECT pg_notify($1, $2)", MARK_EMPTY_CHANNEL, str(camera_id))
    return reply({"camera_id": camera_id, "status": "requested"}, status=202)

