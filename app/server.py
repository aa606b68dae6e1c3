"""Application assembly: configuration in, a running aiohttp application out. The one module that
imports every package: each contributes its routes, pages, migrations and run-time parts here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta, timezone
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp import WSCloseCode, web

from alerts import routes as alert_routes
from alerts.cap import Issuer
from alerts.cap_publisher import CapPublisher
from alerts.channels import Channel, Email, SmsGateway, Webhook
from alerts.context import ALERTS, Alerts
from alerts.escalator import Escalator
from alerts.sender import NotificationSender
from app import openapi
from app.backup.schedule import scheduled_backups
from app.config import Config
from base import admin_routes, audit
from base import routes as base_routes
from base.accounts import Role
from base.context import PLATFORM, SOCKETS, OpenSockets, Platform
from base.database import EmbeddedPostgres, migrate, open_pool
from base.http import Api, content_security_policy, json_errors, page, security_headers
from base.hub import Hub
from base.pg import every
from base.routes import THROTTLE
from base.sessions import Sessions
from base.signing import key_path, signing_key
from base.sockets import WATCH, SessionWatch
from base.throttle import LoginThrottle, Window
from base.vitals import LoopLag
from calls import routes as call_routes
from calls.context import CALLER_LIMIT, SWITCHBOARD
from calls.media import IceServer
from calls.rules import Limits
from calls.switchboard import Setup, Switchboard
from command import console_socket, decision_routes, incident_video_routes, plan_routes, surge_routes
from command import routes as command_routes
from command.context import COMMAND, Command
from command.demo import DEMO_PASSWORD, seed
from command.incident_video import IncidentVideo
from command.intake import Intake
from command.plan_store import PLANS_CHANNEL, LivePlans
from dispatch import routes as dispatch_routes
from dispatch import terminal_socket
from dispatch.changes import TicketChanges
from dispatch.context import DISPATCH, Dispatch
from dispatch.directory import SUBCENTRES_CHANNEL, Directory
from dispatch.fanout import EventStream
from dispatch.ids import IdReserves
from dispatch.routing import Router
from dispatch.tones import TonePolicy
from dispatch.views import Views
from efficiency import card_routes, live_socket, public_routes, supervision_routes
from efficiency import routes as efficiency_routes
from efficiency.bulletin import Fonts
from efficiency.calendar import WorkingCalendar
from efficiency.card_escalation import CardEscalator
from efficiency.context import EFFICIENCY, Efficiency
from efficiency.demo import catalogue, hall_windows, seed_items, seed_platform
from efficiency.escalation import Recipient
from efficiency.evidence import release_closed
from efficiency.live import CardBoard
from efficiency.public_routes import COMPLAINT_LIMIT
from efficiency.simulator import HallSimulator
from efficiency.store import CARDS_CHANNEL
from efficiency.sweep import CardSweep
from gis.areas import Facilities
from video import demo
from video.analysis import routes as analysis_routes
from video.analysis.supervision import MARK_EMPTY_CHANNEL, SUPERVISION_CHANNEL
from video.analysis.workers import Analysis, Settings, mark_requested
from video.cameras import routes as camera_routes
from video.cameras.registry import sync_from_config
from video.context import VIDEO, Video
from video.ingest import IngestSettings, ingest
from video.live.feed import LiveFeeds
from video.recording import ffmpeg, hold_routes
from video.recording.retention import Policy, Retention
from video.wall import sockets as wall_sockets
from video.wall.relay import Relay, TileRelay, node_secret
from video.wall.tiles import TileBoard
from video.wall.walls import Walls

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
_LISTEN_READY_S = 15.0

# Lowest layer first: each package's migrations are applied in this order.
PACKAGES = ("base", "gis", "dispatch", "alerts", "video", "calls", "command", "efficiency")

# Every route the server has, by package; the OpenAPI document is made from the same list.
APIS: tuple[Api, ...] = (
    base_routes.api, admin_routes.api, dispatch_routes.api, terminal_socket.api, alert_routes.api, camera_routes.api,
    analysis_routes.api, wall_sockets.api, command_routes.api, plan_routes.api, surge_routes.api,
    decision_routes.api, console_socket.api, efficiency_routes.api, supervision_routes.api, card_routes.api,
    public_routes.api, live_socket.api, hold_routes.api, incident_video_routes.api, call_routes.api)

# Pages, and the folders their assets are served from (/static/ holds what every page shares).
PAGES = {"/admin": ROOT / "base/web/admin.html", "/console": ROOT / "command/web/console.html",
         "/terminal": ROOT / "dispatch/web/terminal.html", "/wall": ROOT / "video/wall/web/wall.html",
         "/efficiency": ROOT / "efficiency/web/efficiency.html", "/complain": ROOT / "efficiency/web/complain.html",
         "/rate": ROOT / "efficiency/web/rate.html", "/call": ROOT / "calls/web/call.html"}
STATIC = {"/static/console/": ROOT / "command/web", "/static/terminal/": ROOT / "dispatch/web",
          "/static/wall/": ROOT / "video/wall/web", "/static/calls/": ROOT / "calls/web",
          "/static/efficiency/": ROOT / "efficiency/web",
          "/static/": ROOT / "base/web"}


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


def _parts(config: Config) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def parts(app: web.Application) -> AsyncIterator[None]:
        embedded = None if config.database.url else EmbeddedPostgres(config.data_dir)
        url = config.database.url or await asyncio.to_thread(embedded.start)  # type: ignore[union-attr]
        async with contextlib.AsyncExitStack() as stack:
            if embedded is not None:
                _background(stack, embedded.keep_alive(), "embedded-postgres")
            pool = await stack.enter_async_context(
                open_pool(url, config.database.pool_min, config.database.pool_max))
            await migrate(pool, PACKAGES)
            if config.demo.seed:
                await seed(pool)
                await seed_items(pool)
                await seed_platform(pool, DEMO_PASSWORD)
            ffmpeg_binary = ffmpeg.binary(config.video.ffmpeg)
            demo_cameras = await asyncio.to_thread(demo.cameras, config.media_dir, ffmpeg_binary, config.demo.cameras)
            await sync_from_config(pool, [*config.cameras, *demo_cameras])
            await demo.seed_empty_seats(pool, demo_cameras, config.video.tile_width)
            hub = Hub(url, config.database.listen_retry_s)
            loop_lag = LoopLag()
            idle = {Role(role): timedelta(minutes=minutes)
                    for role, minutes in msgspec.structs.asdict(config.auth.idle_minutes).items()}
            sessions = Sessions(pool, timedelta(hours=config.auth.session_hours), idle)
            key = signing_key(key_path(config.data_dir))
            app[PLATFORM] = Platform(pool, url, hub, sessions,
                                     loop_lag, config.server.max_body_bytes, config.server.offset,
                                     config.server.request_deadline_s, config.server.base_url,
                                     tuple(ip_network(p, strict=False) for p in config.server.trusted_proxies))

            directory = Directory(pool)
            await directory.load()
            hub.on_change(SUBCENTRES_CHANNEL, directory.load)
            views = Views(config.taxonomy, TonePolicy(config.alert.tone_by_severity, config.alert.repeat_s))
            ids = IdReserves()
            events = EventStream(pool, hub)
            app[DISPATCH] = Dispatch(config.taxonomy, config.departments,
                                     Router(config.taxonomy, config.departments, config.severity_rules),
                                     directory, views, ids, events, TicketChanges(pool, views))
            events.subscribe(app[DISPATCH].changes)

            e = config.escalation
            escalator = Escalator(pool, ids, views, (e.supervisor.name, e.supervisor.channel, e.supervisor.address),
                                  e.limits, e.poll_s)
            channels = await stack.enter_async_context(open_channels(config))
            sender = NotificationSender(pool, channels, config.notifications.max_attempts, config.notifications.poll_s)
            c = config.cap
            cap = CapPublisher(pool, views, Issuer(c.sender, c.sender_name, config.server.offset, c.radius_km),
                               c.poll_s)
            app[ALERTS] = Alerts(escalator, sender, cap)

            tiles, walls = TileBoard(), Walls(pool)
            hub.on_change(SUPERVISION_CHANNEL, walls.reload)
            analysis = None
            if config.video.analysis:
                v = config.video
                analysis = Analysis(pool, Settings(v.analysis_workers, v.tile_width,
                                                   int(config.server.offset.total_seconds())), tiles)
                hub.on_message(MARK_EMPTY_CHANNEL, functools.partial(mark_requested, analysis))
            relay = Relay(pool, config.server.node_address, await node_secret(pool))
            stack.push_async_callback(relay.close)
            app[VIDEO] = Video(config.video, config.media_dir, ffmpeg_binary,
                               key, tiles, walls, analysis, LiveFeeds(), relay)
            _background(stack, TileRelay(relay, tiles, app[VIDEO].live).run(), "tile-relay")

            k = config.calls
            switchboard = Switchboard(pool, Setup(
                config.calls_dir, Limits(k.max_parties, timedelta(minutes=k.max_minutes),
                                         timedelta(minutes=k.caller_link_minutes)),
                tuple(IceServer(s.urls, s.username, s.credential, s.secret) for s in k.ice_servers), k.jitter_frames,
                timedelta(days=k.retention_days), k.public_url, k.sms_link, k.relay_only))
            app[SWITCHBOARD] = switchboard
            stack.push_async_callback(switchboard.close)
            _background(stack, switchboard.run(), "calls")

            plans = LivePlans(pool, config.taxonomy)
            await plans.load()
            hub.on_change(PLANS_CHANNEL, plans.load)
            intake = Intake(pool, ids, views, config.taxonomy, app[DISPATCH].router, directory, plans, e.limits,
                            config.service_area.max_distance_km * 1000)
            app[COMMAND] = Command(intake, plans, Facilities.load(config.facilities_path), config.surge,
                                   config.decision, config.map)

            f = config.efficiency
            board = CardBoard(pool)
            await board.refresh()
            hub.on_change(CARDS_CHANNEL, board.refresh)
            app[EFFICIENCY] = Efficiency(WorkingCalendar(timezone(config.server.offset), frozenset(f.closures),
                                                         frozenset(f.extra_working_days)), f.yellow_share,
                                         f.complaint_days, f.appraisal, Fonts(Path(f.latin_font), Path(f.cjk_font)),
                                         board)
            if missing := app[EFFICIENCY].fonts.missing():
                log.error("the monthly bulletin's fonts are missing (%s): bulletins cannot be issued"
                          " (scripts/install-system --server installs them)", ", ".join(map(str, missing)))
            _background(stack, every(f.card_sweep_s, CardSweep(pool).sweep, "opening due efficiency cards"),
                        "efficiency-cards")
            centre = Recipient(e.supervisor.name, e.supervisor.channel, e.supervisor.address)
            _background(stack, every(f.card_sweep_s, CardEscalator(pool, centre, f.card_escalate_s).tick,
                                     "escalating efficiency cards"), "efficiency-escalation")
            _background(stack, every(60, functools.partial(release_closed, pool), "releasing recording holds"),
                        "efficiency-holds")
            incident_video = IncidentVideo(pool, config.decision.camera_radius_m,
                                           timedelta(minutes=config.decision.video_before_min))
            _background(stack, every(5, incident_video.sweep, "holding incidents' recordings"), "incident-video")
            if config.demo.seed and config.demo.hall_every_s > 0:
                _background(stack, HallSimulator(_own_url(config), DEMO_PASSWORD, app[EFFICIENCY].calendar,
                                                 catalogue(), await hall_windows(pool), config.demo.hall_every_s
                                                 ).run(), "demo-hall")

            _background(stack, hub.run(), "hub")
            _background(stack, app[WATCH].run(app[PLATFORM].sessions), "session-watch")
            _background(stack, events.run(), "events")
            _background(stack, loop_lag.run(), "loop-lag")
            _background(stack, every(config.audit.anchor_minutes * 60, functools.partial(
                audit.anchor, pool, key, audit.anchors_file(config.data_dir)), "anchoring the audit log"),
                "audit-anchors")
            _background(stack, escalator.run(), "escalator")
            _background(stack, sender.run(), "notifications")
            _background(stack, cap.run(), "cap")
            v = config.video
            _background(stack, ingest(pool, url, IngestSettings(ffmpeg_binary, config.recordings_dir, v.segment_s,
                                                                v.record, v.tile_width, v.analysis_fps,
                                                                config.server.node_address),
                                      tiles, app[VIDEO].live, analysis).run(), "ingest")
            if config.video.record:
                retention = Retention(pool, Policy(config.video.retention_days,
                                                   int(config.video.disk_quota_gb * 2**30), config.recordings_dir))
                _background(stack, retention.run(), "retention")
            if config.backup.every_hours > 0:
                _background(stack, scheduled_backups(config, url), "backups")
            if analysis is not None:
                _background(stack, analysis.run(), "analysis-store")
            # Serve only once events can reach this process's terminals.
            await asyncio.wait_for(hub.connected.wait(), _LISTEN_READY_S)
            # What lives now (configuration, geometry, code) lives for good: freeze it out of the
            # cyclic garbage collector, so its full collections stay short while tickets are in flight.
            gc.freeze()
            yield
    return parts


def _own_url(config: Config) -> str:
    """Where this server answers on this machine (the demo hall's simulator pushes here)."""
    host = config.server.host if config.server.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    scheme = "https" if config.server.tls_certificate else "http"
    return f"{scheme}://{host}:{config.server.port}"


async def _close_sockets(app: web.Application) -> None:
    sockets: OpenSockets = app[SOCKETS]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def _openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi.document(APIS))


async def _home(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console")


def build_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=config.server.max_body_bytes, middlewares=[json_errors])
    app[SOCKETS] = OpenSockets()
    app[WATCH] = SessionWatch()
    app[THROTTLE] = LoginThrottle()
    app[COMPLAINT_LIMIT] = Window(5, 3600.0)  # public complaints per address an hour
    app[CALLER_LIMIT] = Window(20, 600.0)  # wrong caller tokens or sessions per address in 10 minutes
    tiles = urlsplit(config.map.tile_url)
    app.on_response_prepare.append(security_headers(content_security_policy(
        (f"{tiles.scheme}://{tiles.netloc}",) if tiles.scheme and tiles.netloc else ())))
    app.cleanup_ctx.append(_parts(config))
    app.on_shutdown.append(_close_sockets)
    for api in APIS:
        api.register(app)
    wall_sockets.add_internal_routes(app)
    app.router.add_get("/api/openapi.json", _openapi)
    app.router.add_get("/", _home)
    for path, file in PAGES.items():
        app.router.add_get(path, page(file))
    for prefix, folder in STATIC.items():  # the specific prefixes first: the router takes the first match
        app.router.add_static(prefix, folder)
    return app
