"""HTTP routes for decision support and statistics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from aiohttp import web

from command.accounts import Role
from command.api import choice_param, path_id, reply, services_of, timestamp_param, user_of
from command.decision import support
from command.errors import RequestError
from command.statistics import chart_png, summary, tickets_csv

routes = web.RouteTableDef()
_LONGEST = timedelta(days=366)


@routes.get("/api/incidents/{id}/decision-support")
async def decision_support(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    return reply(await support(services_of(request), path_id(request)))


def _period(request: web.Request) -> tuple[datetime, datetime]:
    until = timestamp_param(request, "until") or datetime.now(UTC)
    since = timestamp_param(request, "since") or until - timedelta(days=30)
    if since >= until:
        raise RequestError(400, "invalid", "since must be before until", "since")
    if until - since > _LONGEST:
        raise RequestError(400, "invalid", "ask for at most a year at a time", "since")
    return since, until


@routes.get("/api/statistics")
async def statistics(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    return reply(await summary(services_of(request), *_period(request)))


@routes.get("/api/statistics/tickets.csv")
async def statistics_csv(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    text = await tickets_csv(services_of(request), *_period(request))
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="liandong-tickets.csv"'})


@routes.get("/api/statistics/chart.png")
async def statistics_chart(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    kind = choice_param(request, "kind", ("by_day", "response"), "by_day")
    data = await summary(services_of(request), *_period(request))
    png = await asyncio.to_thread(chart_png, data, kind)  # drawing takes tens of ms: off the event loop
    return web.Response(body=png, content_type="image/png")
