"""HTTP routes for decision support and statistics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from base.accounts import Role
from base.context import PLATFORM
from base.errors import RequestError
from base.http import Api, choice_param, path_id, reply, timestamp_param, user_of
from command.context import COMMAND
from command.decision import support
from command.statistics import chart_png, summary, tickets_csv
from dispatch.context import DISPATCH

api = Api()
WATCHERS = (Role.DISPATCHER, Role.SUPERVISOR)
_LONGEST = timedelta(days=366)


@api.get("/api/incidents/{id}/decision-support", "Nearest sub-centres, the affected area and the facilities in"
         " it, similar incidents nearby, cameras near it", roles=WATCHERS)
async def decision_support(request: web.Request) -> web.Response:
    command, dispatch = request.app[COMMAND], request.app[DISPATCH]
    result = await support(request.app[PLATFORM].pool, dispatch.views, dispatch.directory, command.facilities,
                           command.decision, path_id(request))
    user = user_of(request)  # a supervisor limited to departments is offered only their windows' cameras
    result["cameras"] = [c for c in result["cameras"] if user.sees_department(c["department"])]
    return reply(result)


def _period(request: web.Request) -> tuple[datetime, datetime]:
    until = timestamp_param(request, "until") or datetime.now(UTC)
    since = timestamp_param(request, "since") or until - timedelta(days=30)
    if since >= until:
        raise RequestError(400, "invalid", "since must be before until", "since")
    if until - since > _LONGEST:
        raise RequestError(400, "invalid", "ask for at most a year at a time", "since")
    return since, until


async def _summary(request: web.Request) -> dict[str, Any]:
    platform = request.app[PLATFORM]
    return await summary(platform.pool, request.app[DISPATCH].taxonomy, platform.utc_offset, *_period(request))


@api.get("/api/statistics", "Incidents by type, district and day; response-interval percentiles per sub-centre",
         roles=WATCHERS, query=("since", "until"))
async def statistics(request: web.Request) -> web.Response:
    return reply(await _summary(request))


@api.get("/api/statistics/tickets.csv", "One row per ticket with its response intervals (CSV)", roles=WATCHERS,
         produces="text/csv", query=("since", "until"))
async def statistics_csv(request: web.Request) -> web.Response:
    text = await tickets_csv(request.app[PLATFORM].pool, *_period(request))
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="liandong-tickets.csv"'})


@api.get("/api/statistics/chart.png", "A chart of the statistics", roles=WATCHERS, produces="image/png",
         query=("kind", "since", "until"))
async def statistics_chart(request: web.Request) -> web.Response:
    kind = choice_param(request, "kind", ("by_day", "response"), "by_day")
    data = await _summary(request)
    png = await asyncio.to_thread(chart_png, data, kind)  # drawing takes tens of ms: off the event loop
    return web.Response(body=png, content_type="image/png")
