"""The platform's own routes: logging in, who am I, and health."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from base.context import PLATFORM
from base.errors import DomainError
from base.http import ANYONE, LOGGED_IN, Api, body_of, reply, user_of

api = Api()


class Credentials(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


@api.post("/api/login", "Log in; returns a bearer token", roles=ANYONE, body=Credentials)
async def log_in(request: web.Request) -> web.Response:
    credentials = await body_of(request, Credentials)
    result = await request.app[PLATFORM].sessions.log_in(credentials.username, credentials.password)
    if result is None:
        raise DomainError("wrong user name or password", "password", "bad_credentials")
    token, user = result
    return reply({"token": token, "user": user.public()})


@api.get("/api/me", "The logged-in account", roles=LOGGED_IN)
async def me(request: web.Request) -> web.Response:
    return reply(user_of(request).public())


@api.get("/healthz", "Database and LISTEN connection health, event-loop lag", roles=ANYONE)
async def healthz(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    database_ok = True
    try:
        await platform.pool.fetchval("SELECT 1", timeout=2.0)
    except Exception:  # any failure means "not healthy"; the body says which part
        database_ok = False
    listening = platform.hub.connected.is_set()
    ok = database_ok and listening
    return reply({"status": "ok" if ok else "degraded", "database": database_ok, "listening": listening,
                  "loop_lag": platform.loop_lag.summary()}, status=200 if ok else 503)
