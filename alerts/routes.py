"""Public warnings over HTTP: each CAP message by identifier, and the Atom feed of those in force.
Public by nature: no log-in."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web

from alerts.cap import feed, headline
from alerts.context import ALERTS
from base.context import PLATFORM
from base.errors import DomainError
from base.http import ANYONE, Api

api = Api()
_IDENTIFIER = re.compile(r"^[A-Za-z0-9._\-]{1,200}$")


@api.get("/api/cap/feed", "Atom feed of the public warnings (CAP 1.2) in force", roles=ANYONE,
         produces="application/atom+xml")
async def cap_feed(request: web.Request) -> web.Response:
    rows = await request.app[PLATFORM].pool.fetch(  # the latest message of every incident whose warning still stands
        "SELECT DISTINCT ON (incident_id) identifier, msg_type, sent, xml FROM cap_messages"
        " ORDER BY incident_id, seq DESC")
    entries = [{"identifier": r["identifier"], "sent": r["sent"], "headline": headline(r["xml"])}
               for r in rows if r["msg_type"] != "Cancel"]
    updated = max((e["sent"] for e in entries), default=datetime.now(UTC))
    body = feed(request.app[ALERTS].cap.origin, request.app[PLATFORM].public_url, entries, updated)
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


@api.get("/api/cap/{identifier}", "One CAP 1.2 message (Alert, Update or Cancel)", roles=ANYONE,
         produces="application/cap+xml")
async def cap_message(request: web.Request) -> web.Response:
    identifier = request.match_info["identifier"]
    if not _IDENTIFIER.match(identifier):
        raise DomainError("not a CAP identifier", "identifier", "not_found")
    xml = await request.app[PLATFORM].pool.fetchval("SELECT xml FROM cap_messages WHERE identifier = $1", identifier)
    if xml is None:
        raise DomainError(f"no CAP message {identifier!r}", "identifier", "not_found")
    return web.Response(text=xml, content_type="application/cap+xml", charset="utf-8")
