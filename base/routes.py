"""The platform's own routes: logging in, who am I, and health."""

from __future__ import annotations

import logging
import math
from typing import Annotated

import msgspec
from aiohttp import web

from base.context import PLATFORM
from base.errors import DomainError, TooMany
from base.http import ANYONE, LOGGED_IN, Api, body_of, client_address, reply, user_of, within
from base.messages import PLAIN
from base.throttle import LoginThrottle

api = Api()
log = logging.getLogger(__name__)


class Credentials(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    username: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=256)]


THROTTLE = web.AppKey("login_throttle", LoginThrottle)


@api.post("/api/login", "Log in; returns a bearer token. Too many failures for an account or from an address:"
          " 429 with Retry-After", roles=ANYONE, body=Credentials, also=(401, 429))
async def log_in(request: web.Request) -> web.Response:
    credentials = await body_of(request, Credentials)
    address = client_address(request)
    throttle = request.app[THROTTLE]
    if wait := throttle.wait_s(credentials.username, address):
        raise TooMany(f"too many failed log-ins; try again in {math.ceil(wait)} s", math.ceil(wait), "username")
    result = await request.app[PLATFORM].sessions.log_in(credentials.username, credentials.password,
                                                              address)
    if result is None:
        throttle.failed(credentials.username, address)
        log.warning("failed log-in for %r from %s", credentials.username, address)  # never the password
        raise DomainError("wrong user name or password", "password", "bad_credentials")
    token, user = result
    return reply({"token": token, "user": user.public()})


@api.post("/api/logout", "End this session: the token stops working and sockets opened with it close",
          roles=LOGGED_IN)
async def log_out(request: web.Request) -> web.Response:
    token = request.headers["Authorization"].partition(" ")[2].strip()
    return reply({"logged_out": await request.app[PLATFORM].sessions.log_out(token, client_address(request))})


@api.get("/api/me", "The logged-in account", roles=LOGGED_IN)
async def me(request: web.Request) -> web.Response:
    return reply(user_of(request).public())


HEALTH_PROBE_S = 1.5  # /healthz answers within this, whatever the database is doing


@api.get("/healthz", "Database and LISTEN connection health, event-loop lag; always answers within 2 s",
         roles=ANYONE, deadline=False)
async def healthz(request: web.Request) -> web.Response:
    platform = request.app[PLATFORM]
    problem = None
    try:
        await within(HEALTH_PROBE_S, platform.pool.fetchval("SELECT 1"))
    except TimeoutError:
        problem = f"the database did not answer within {HEALTH_PROBE_S} s"
    except Exception as error:  # any failure means "not healthy"; the body says which
        problem = f"the database cannot be reached: {type(error).__name__}: {error}"
    listening = platform.hub.connected.is_set()
    ok = problem is None and listening
    body = {"status": "ok" if ok else "degraded", "database": problem is None, "listening": listening,
            "loop_lag": platform.loop_lag.summary()}
    if problem is not None:
        body["problem"] = problem
    return reply(body, status=200 if ok else 503)
