"""Public warnings over HTTP: each CAP message by identifier, and the Atom feed of those in force.
Public by nature: no log-in."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web

from alerts.cap import feed, headline
from command.api import services_of
from command.errors import RequestError

routes = web.RouteTableDef()
_IDENTIFIER = re.compile(r"^[A-Za-z0-9._\-]{1,200}$")


@routes.get("/api/cap/feed")
async def cap_feed(request: web.Request) -> web.Response:
    services = services_of(request)
    rows = await services.pool.fetch(  # the latest message of every incident whose warning still stands
        "SELECT DISTINCT ON (incident_id) identifier, msg_type, sent, xml FROM cap_messages"
        " ORDER BY incident_id, seq DESC")
    entries = [{"identifier": r["identifier"], "sent": r["sent"], "headline": headline(r["xml"])}
               for r in rows if r["msg_type"] != "Cancel"]
    updated = max((e["sent"] for e in entries), default=datetime.now(UTC))
    body = feed(services.cap.sender, f"{request.scheme}://{request.host}", entries, updated)
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


@routes.get("/api/cap/{identifier}")
async def cap_message(request: web.Request) -> web.Response:
    identifier = request.match_info["identifier"]
    if not _IDENTIFIER.match(identifier):
        raise RequestError(404, "not_found", "not a CAP identifier", "identifier")
    xml = await services_of(request).pool.fetchval("SELECT xml FROM cap_messages WHERE identifier = $1", identifier)
    if xml is None:
        raise RequestError(404, "not_found", f"no CAP message {identifier!r}", "identifier")
    return web.Response(text=xml, content_type="application/cap+xml", charset="utf-8")
