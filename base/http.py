"""HTTP for every package: routes declared once (the router and the OpenAPI document both read the
declaration), authentication by the roles a route names, typed parameters and bodies, JSON replies,
and the middleware that turns every failure into a JSON error in one place."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Any, TypeVar, overload

import msgspec
from aiohttp import web

from base import audit
from base.accounts import Role, User
from base.context import PLATFORM
from base.database import OUTAGE, unavailable
from base.errors import DomainError, RequestError, decode, http_status
from base.messages import INT8_MAX

log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ANYONE: tuple[Role, ...] | None = None  # no token needed
LOGGED_IN: tuple[Role, ...] = ()  # any account
USER = web.RequestKey("user", User)


@dataclass(frozen=True)
class Route:
    """One route as declared: what the router serves and what the OpenAPI document says."""

    method: str
    path: str
    summary: str
    handler: Handler
    roles: tuple[Role, ...] | None  # None: public; (): any logged-in account
    body: type | None = None  # the JSON body (or, for a WebSocket, its first message)
    status: int = 200
    produces: str = "application/json"
    conflicts: bool = False  # may answer 409
    query: tuple[str, ...] = ()  # query parameters, documented by name; a trailing "!" marks one required
    deadline: bool = True  # answer within the platform's request deadline or 503 (not for streams)
    also: tuple[int, ...] = ()  # other statuses it answers (documented): errors, or another success
    uploads: tuple[str, ...] = ()  # media types of a file sent as the raw body (instead of JSON)


@dataclass
class Api:
    """A package's routes. Declare with the decorators; `register` adds them to the application."""

    routes: list[Route] = field(default_factory=list)

    def route(self, method: str, path: str, summary: str, *, roles: tuple[Role, ...] | None, body: type | None = None,
              status: int = 200, produces: str = "application/json", conflicts: bool = False,
              query: tuple[str, ...] = (), deadline: bool = True, also: tuple[int, ...] = (),
              uploads: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            served = _guarded(handler, roles) if roles is not None else handler
            served = _in_time(served) if deadline else served
            self.routes.append(Route(method, path, summary, served, roles, body, status, produces, conflicts, query,
                                     deadline, also, uploads))
            return handler
        return declare

    def get(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, summary, **options)

    def post(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, summary, **options)

    def put(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, summary, **options)

    def delete(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, summary, **options)

    def websocket(self, path: str, summary: str, *, roles: tuple[Role, ...],
                  hello: type) -> Callable[[Handler], Handler]:
        """A WebSocket route; its roles are checked at hello (see base.sockets), not here."""
        def declare(handler: Handler) -> Handler:
            self.routes.append(Route("GET", path, summary, handler, roles, hello, 101))
            return handler
        return declare

    def register(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, route.handler)


_STRAGGLERS: set[asyncio.Future[Any]] = set()  # work abandoned at its deadline, finishing its cancellation


async def within(seconds: float, work: Awaitable[T]) -> T:
    """`work`'s result, or TimeoutError after `seconds` without waiting for `work` to wind down: a
    driver cancelled while the database is frozen can take as long to clean up as to answer."""
    future = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({future}, timeout=seconds)
    except asyncio.CancelledError:
        future.cancel()
        raise
    if future in done:
        return future.result()
    future.cancel()
    _STRAGGLERS.add(future)
    future.add_done_callback(_forget)
    raise TimeoutError(f"no answer within {seconds} s")


def _forget(future: asyncio.Future[Any]) -> None:
    _STRAGGLERS.discard(future)
    if not future.cancelled() and future.exception() is not None:
        log.debug("abandoned work ended with %r", future.exception())


def _in_time(handler: Handler) -> Handler:
    """The request's deadline (pool, statements and all): past it, 503 rather than a client left waiting."""
    @functools.wraps(handler)
    async def in_time(request: web.Request) -> web.StreamResponse:
        try:
            return await within(request.app[PLATFORM].request_deadline_s, handler(request))
        except TimeoutError:
            raise DomainError("the database did not answer in time; try again shortly",
                              code="unavailable") from None
    return in_time


def _guarded(handler: Handler, roles: tuple[Role, ...]) -> Handler:
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        request[USER] = await authenticate(request, roles)
        return await handler(request)
    return guarded


async def authenticate(request: web.Request, roles: tuple[Role, ...]) -> User:
    """The account behind the request's bearer token, if it has one of `roles` (any, when empty)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise DomainError("log in first: send Authorization: Bearer <token>", "Authorization", "unauthenticated")
    user = await request.app[PLATFORM].sessions.user_for(token.strip())
    if user is None:
        raise DomainError("the token is unknown or has expired", "Authorization", "unauthenticated")
    if roles and user.role not in roles:
        # Trying what one's role may not do is worth a line in the audit log (outside any transaction:
        # nothing else happens).
        await audit.record(request.app[PLATFORM].pool, audit.Entry(
            audit.Actor(user.id, user.username, client_address(request)), "access.forbidden",
            f"route:{request.method} {request.rel_url.raw_path}"[:200], "refused"))  # as sent: no decoded NUL
        raise DomainError(f"a {user.role.value} may not do this", code="forbidden")
    return user


def client_address(request: web.Request) -> str:
    """Who is asking: the peer, or behind a trusted proxy the nearest address it forwarded for that is not
    itself a trusted proxy. X-Forwarded-For from anyone else is ignored: it is only a header."""
    trusted = request.app[PLATFORM].trusted_proxies
    address = request.remote or "?"
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    while hops and _is_trusted(address, trusted):
        address = hops.pop()
    return address


def _is_trusted(address: str, trusted: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def base_url(request: web.Request) -> str:
    """Where this request reached the server (scheme and host): links handed out start here."""
    return f"{request.scheme}://{request.host}"


def user_of(request: web.Request) -> User:
    """The account its route's declaration authenticated."""
    return request[USER]


def actor_of(request: web.Request) -> audit.Actor:
    """Who is acting, for the audit log: the route's account, or the public, and from which address."""
    user = request.get(USER)
    if user is None:
        return audit.Actor(None, "public", client_address(request))
    return audit.Actor(user.id, user.username, client_address(request))


def reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json")


async def body_of(request: web.Request, kind: type[T]) -> T:
    if request.content_type != "application/json":
        raise DomainError("send the body as application/json", "Content-Type", "unsupported_media_type")
    return decode(await request.read(), kind)


async def upload_of(request: web.Request, kinds: tuple[str, ...]) -> tuple[str, bytes]:
    """A file sent as the raw body: its media type (one of `kinds`) and its bytes."""
    if request.content_type not in kinds:
        raise DomainError(f"send the file as one of {', '.join(kinds)}", "Content-Type", "unsupported_media_type")
    data = await request.read()
    if not data:
        raise DomainError("the file is empty", "body")
    return request.content_type, data


def path_id(request: web.Request, name: str = "id", highest: int = INT8_MAX) -> int:
    """An id in the path; one that cannot name a row (not a number, or beyond the column's range) is 404."""
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= highest:
        raise DomainError(f"{raw!r} is not an id", name, "not_found")
    return int(raw)


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


def text_param(request: web.Request, name: str, longest: int = 100, required: bool = False) -> str | None:
    """A query parameter of 1 to `longest` printable characters (None if absent and not required)."""
    value = request.query.get(name)
    if value is None and not required:
        return None
    if value is None or not value or len(value) > longest or not value.isprintable():
        raise RequestError(400, "invalid", f"{name} is 1 to {longest} printable characters", name)
    return value


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
    return in_era(moment, name, 400)


EARLIEST_YEAR, LATEST_YEAR = 1970, 2200


def in_era(moment: T, name: str, status: int = 422) -> T:
    """A date or time a record of this system can have; arithmetic on year 1 or 9999 would overflow."""
    year: int = moment.year  # type: ignore[attr-defined]  # a date or a datetime
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise RequestError(status, "invalid", f"give a time between {EARLIEST_YEAR} and {LATEST_YEAR}", name)
    return moment


RETRY_AFTER_S = 5


def _error_response(error: DomainError, status: int) -> web.Response:
    wait = getattr(error, "retry_after_s", RETRY_AFTER_S)  # a throttled log-in says how long
    headers = {"Retry-After": str(wait)} if status in (429, 503) else None
    return web.Response(body=msgspec.json.encode({"error": error.payload()}), status=status,
                        content_type="application/json", headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to a JSON error in one place; unexpected ones are logged, never leaked."""
    try:
        response = await handler(request)
    except DomainError as error:
        if error.code == "unavailable":
            OUTAGE.noticed(error)
        return _error_response(error, http_status(error))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[PLATFORM].max_body_bytes
        return _error_response(DomainError(f"the body exceeds {limit} bytes", "body", "too_large"), 413)
    except web.HTTPException as error:
        if not request.path.startswith("/api/") or error.status < 400:
            raise
        return _error_response(DomainError(error.reason, code=error.reason.lower().replace(" ", "_")), error.status)
    except Exception as error:
        if unavailable(error):
            OUTAGE.noticed(error)
            return _error_response(DomainError("the database cannot be reached now; try again shortly",
                                               code="unavailable"), 503)
        log.exception("request %s %s failed", request.method, request.path)
        return _error_response(DomainError("the server could not do this; it is logged", code="internal"), 500)
    if OUTAGE.since is not None and response.status < 500:
        OUTAGE.over()
    return response


def page(path: Path) -> Handler:
    """A page of the web interface, always revalidated so a new release is seen at once."""
    async def serve(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})
    return serve


def content_security_policy(image_origins: tuple[str, ...] = ()) -> str:
    """The pages' policy: scripts, styles and connections from this server only (no inline script or
    style), pictures also from data:/blob: and the configured tile service, never framed."""
    images = " ".join(("'self'", "data:", "blob:", *image_origins))
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src " + images + "; media-src 'self' blob:;"
            " connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none';"
            " form-action 'self'")


def security_headers(policy: str) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """Every response — page, static file, API answer, error, socket upgrade — carries these."""
    headers = {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
               "Referrer-Policy": "no-referrer", "Server": "Liandong"}  # no versions for a scanner to match

    async def add(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(headers)
    return add
