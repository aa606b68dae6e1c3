"""Application assembly: configuration in, a running aiohttp application out."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import WSCloseCode, web

from alerts.cap import Sender as CapSender
from alerts.cap_publisher import CapPublisher
from alerts.channels import Channel, Email, SmsGateway, Webhook
from alerts.escalation import Limits
from alerts.escalator import Escalator
from alerts.sender import Sender
from alerts.tones import AlertPolicy
from command import api, cap_api, decision_api, openapi, plans_api, surge_api
from command.accounts import Sessions
from command.config import Config
from command.console_ws import console_socket
from command.database import database_url, migrate, open_pool
from command.demo import seed
from command.errors import RequestError, from_domain
from command.hub import Hub
from command.plan_store import PLANS_CHANNEL, LivePlans
from command.services import SERVICES, SOCKETS, OpenSockets, Services
from command.vitals import LoopLag
from dispatch.directory import SUBCENTRES_CHANNEL, Directory
from dispatch.ids import IdReserves
from dispatch.routing import Router
from dispatch.terminal_ws import terminal_socket
from dispatch.views import Views
from gis.areas import Facilities
from video import api as video_api
from video import demo, ffmpeg, supervision_api
from video.analysis import ANALYSIS_LOCK_BASE, Analysis, Settings, mark_requested
from video.claims import Claims
from video.evidence import signing_key
from video.recordings import recording
from video.registry import sync_from_config
from video.retention import Policy, Retention
from video.supervision import MARK_EMPTY_CHANNEL, SUPERVISION_CHANNEL
from video.tiles import TileBoard
from video.wall_ws import focus_socket, wall_socket
from video.walls import Walls

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parent / "web"
_LISTEN_READY_S = 15.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(error: RequestError) -> web.Response:
    return web.Response(body=msgspec.json.encode({"error": error.payload()}), status=error.status,
                        content_type="application/json")


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to a JSON error in one place; unexpected ones are logged, never leaked."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SERVICES].config.server.max_body_bytes
        return _error_response(RequestError(413, "too_large", f"the body exceeds {limit} bytes", "body"))
    except web.HTTPException as error:
        if not request.path.startswith("/api/") or error.status < 400:
            raise
        return _error_response(RequestError(error.status, error.reason.lower().replace(" ", "_"), error.reason))
    except Exception as error:
        mapped = from_domain(error)
        if mapped is None:
            log.exception("request %s %s failed", request.method, request.path)
            mapped = RequestError(500, "internal", "the server could not do this; it is logged")
        return _error_response(mapped)


def _background(stack: contextlib.AsyncExitStack, work: Coroutine[Any, Any, None], name: str) -> None:
    """Run `work` for as long as the application does; cancelled and awaited on the way out."""
    task = asyncio.create_task(work, name=name)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stack.push_async_callback(stop)


@contextlib.asynccontextmanager
async def open_channels(config: Config) -> AsyncIterator[dict[str, Channel]]:
    """The notification channels the configuration enables; the others are reported now, at start-up."""
    c = config.channels
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=c.webhook.timeout_s)) as webhook_http, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=c.sms.timeout_s)) as sms_http:
        channels: dict[str, Channel] = {"webhook": Webhook(webhook_http)}
        if c.email.host:
            channels["email"] = Email(c.email.host, c.email.port, c.email.sender, c.email.starttls,
                                      c.email.username, c.email.password, c.email.timeout_s)
        if c.sms.url:
            channels["sms"] = SmsGateway(sms_http, c.sms.url, c.sms.body_template, c.sms.content_type)
        for name in sorted({"email", "sms"} - set(channels)):
            log.warning("notification channel %s is not configured: its messages will fail (see [channels.%s])",
                        name, name)
        if config.escalation.supervisor.channel not in channels:
            log.error("escalation.supervisor uses the %s channel, which is not configured: the supervisor will"
                      " not be reached", config.escalation.supervisor.channel)
        yield channels


def _services_context(config: Config) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def services(app: web.Application) -> AsyncIterator[None]:
        url = await asyncio.to_thread(database_url, config)
        async with contextlib.AsyncExitStack() as stack:
            pool = await stack.enter_async_context(
                open_pool(url, config.database.pool_min, config.database.pool_max))
            await migrate(pool)
            if config.demo.seed:
                await seed(pool)
            demo_cameras = await asyncio.to_thread(
                demo.cameras, config.media_dir, ffmpeg.binary(config.video.ffmpeg), config.demo.cameras)
            await sync_from_config(pool, [*config.cameras, *demo_cameras])
            await demo.seed_empty_seats(pool, demo_cameras, config.video.tile_width)
            directory = Directory(pool)
            await directory.load()
            plans = LivePlans(pool, config.taxonomy)
            await plans.load()
            hub = Hub(url, pool, config.database.listen_retry_s)
            hub.on_change(SUBCENTRES_CHANNEL, directory.load)
            hub.on_change(PLANS_CHANNEL, plans.load)
            _background(stack, hub.run(), "hub")
            loop_lag = LoopLag()
            _background(stack, loop_lag.run(), "loop-lag")
            ids = IdReserves()
            views = Views(config.taxonomy, AlertPolicy(config.alert.tone_by_severity, config.alert.repeat_s))
            e = config.escalation
            escalator = Escalator(pool, ids, views, (e.supervisor.name, e.supervisor.channel, e.supervisor.address),
                                  Limits(e.deliver_s, e.acknowledge_s, e.feedback_s), e.poll_s)
            _background(stack, escalator.run(), "escalator")
            channels = await stack.enter_async_context(open_channels(config))
            sender = Sender(pool, channels, config.notifications.max_attempts, config.notifications.poll_s)
            _background(stack, sender.run(), "notifications")
            c = config.cap
            cap = CapPublisher(pool, views, CapSender(c.sender, c.sender_name, config.server.offset, c.radius_km),
                               c.poll_s)
            _background(stack, cap.run(), "cap")
            if config.video.record:
                recorders = recording(pool, url, ffmpeg.binary(config.video.ffmpeg), config.recordings_dir,
                                      config.video.segment_s)
                _background(stack, recorders.run(), "recording")
                retention = Retention(pool, Policy(config.video.retention_days,
                                                   int(config.video.disk_quota_gb * 2**30), config.recordings_dir))
                _background(stack, retention.run(), "retention")
            tiles = TileBoard()
            walls = Walls(pool)
            hub.on_change(SUPERVISION_CHANNEL, walls.reload)
            analysis = None
            if config.video.analysis:
                v = config.video
                analysis = Analysis(pool, Settings(v.analysis_workers, v.tile_width, v.analysis_fps,
                                                   int(config.server.offset.total_seconds())), tiles)
                hub.on_message(MARK_EMPTY_CHANNEL, functools.partial(mark_requested, analysis))
                _background(stack, analysis.run(), "analysis-store")
                _background(stack, Claims(url, ANALYSIS_LOCK_BASE, "analysis", analysis).run(), "analysis")
            # Serve only once events can reach this process's terminals.
            await asyncio.wait_for(hub.connected.wait(), _LISTEN_READY_S)
            app[SERVICES] = Services(
                config=config, pool=pool, hub=hub, sessions=Sessions(pool, timedelta(hours=config.auth.session_hours)),
                directory=directory, router=Router(config.taxonomy, config.departments, config.severity_rules),
                views=views, loop_lag=loop_lag, ids=ids, plans=plans, escalator=escalator, sender=sender, cap=cap,
                facilities=Facilities.load(config.facilities_path),
                evidence_key=signing_key(config.data_dir / "keys" / "evidence-signing.pem"),
                tiles=tiles, walls=walls, analysis=analysis)
            # What lives now (configuration, geometry, code) lives for good: freeze it out of the
            # cyclic garbage collector, so its full collections stay short while tickets are in flight.
            gc.freeze()
            yield
    return services


async def _close_sockets(app: web.Application) -> None:
    sockets: OpenSockets = app[SOCKETS]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def _openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


def _page(name: str) -> Handler:
    async def page(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB / name, headers={"Cache-Control": "no-cache"})
    return page


async def _home(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console")


def build_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=config.server.max_body_bytes, middlewares=[json_errors])
    app[SOCKETS] = OpenSockets()
    app.cleanup_ctx.append(_services_context(config))
    app.on_shutdown.append(_close_sockets)
    app.add_routes(api.routes)
    app.add_routes(plans_api.routes)
    app.add_routes(surge_api.routes)
    app.add_routes(cap_api.routes)
    app.add_routes(decision_api.routes)
    app.add_routes(video_api.routes)
    app.add_routes(supervision_api.routes)
    app.router.add_get("/api/openapi.json", _openapi)
    app.router.add_get("/ws/terminal", terminal_socket)
    app.router.add_get("/ws/console", console_socket)
    app.router.add_get("/ws/wall", wall_socket)
    app.router.add_get("/ws/focus", focus_socket)
    app.router.add_get("/", _home)
    app.router.add_get("/console", _page("console.html"))
    app.router.add_get("/terminal", _page("terminal.html"))
    app.router.add_get("/wall", _page("wall.html"))
    app.router.add_static("/static/", WEB)
    return app
