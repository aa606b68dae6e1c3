"""The supervisors' monitoring wall over WebSocket (the session itself is base.sockets).

/ws/wall: after hello, the wall gets the cameras and the open alerts; it says which cameras it
shows (`show`), and from then on receives their tiles as binary messages — a 12-byte header
(camera id: uint32, arrival time in epoch milliseconds: float64, both big-endian) then the JPEG —
and the alert list again whenever an alert opens, clears, is acknowledged or closed.

/ws/focus: one camera in full motion, from the camera's one ingest (video.ingest): a text message
naming the MIME type, then the stream as binary messages — for MSE the init segment, then fragmented
MP4 with the camera's audio (AAC), starting at the latest keyframe; for "jpeg" its keyframe pictures.
A viewer that falls behind skips to the next keyframe; a new codec message (and init segment) follows
whenever the ingest restarts. A camera another node ingests comes from that node's ingest, relayed
(video.wall.relay), and the socket closes (GOING_AWAY: open it again) if that node stops ingesting it;
only a camera no node ingests at the moment is streamed by an ffmpeg of the viewer's own
(video.recording.ffmpeg.focus_args).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import aiohttp
import msgspec
from aiohttp import WSCloseCode, web

from base import audit
from base.accounts import Role
from base.children import die_with_parent
from base.context import PLATFORM
from base.errors import DomainError
from base.http import Api
from base.messages import SmallId, Token
from base.sockets import Endpoint, SocketSession, Source, encode
from video.analysis.supervision import KINDS, alerts
from video.cameras.registry import camera_json, cameras
from video.context import VIDEO
from video.live.feed import Codec, LiveFeed, LiveViewer
from video.live.fmp4 import read_init
from video.live.pipes import read_pictures
from video.recording import ffmpeg
from video.wall.relay import holders, pass_on, serve_tiles, trusted_or_refused
from video.wall.tiles import Viewer
from video.wall.walls import Wall

api = Api()

_MAX_TILES = 16
_CHUNK = 64 * 1024
WATCHERS = (Role.SUPERVISOR, Role.DISPATCHER)


class WallHello(msgspec.Struct, tag="hello", frozen=True, forbid_unknown_fields=True):
    token: Token


class Show(msgspec.Struct, tag="show", frozen=True, forbid_unknown_fields=True):
    cameras: Annotated[list[SmallId], msgspec.Meta(max_length=_MAX_TILES)]


class FocusHello(msgspec.Struct, tag="hello", frozen=True, forbid_unknown_fields=True):
    token: Token
    camera: SmallId
    mode: Literal["mse", "jpeg"] = "mse"


class WallEndpoint(Endpoint[Wall]):
    roles = WATCHERS
    hello = WallHello
    name = "wall"
    max_frame_bytes = 16 * 1024
    queue_limit = 200

    def __init__(self) -> None:
        super().__init__()
        self.on(Show, self._show)

    async def open(self, app: web.Application, session: SocketSession,
                   hello: WallHello) -> tuple[Wall, Mapping[str, Any]]:
        video, pool = app[VIDEO], app[PLATFORM].pool
        await audit.record(pool, audit.Entry(session.actor, "video.wall", "wall"))
        user = session.user
        visible = [row for row in await cameras(pool) if user.sees_department(row["department"])]
        wall = Wall(session, video.tiles, {row["id"] for row in visible} if user.departments else None)
        video.walls.add(wall)
        states = video.analysis.states if video.analysis else {}
        listed = []
        for row in visible:
            state = states.get(row["id"])
            listed.append({**camera_json(row), "analysis": {"connected": state.connected, "note": state.note}
                           if state else None})
        return wall, {"type": "welcome", "user": session.user.public(), "cameras": listed, "kinds": KINDS,
                      "alerts": await alerts(pool, True, None, 200, user.departments)}

    async def _show(self, wall: Wall, show: Show) -> None:
        wall.show(set(show.cameras))

    def source(self, state: Wall) -> Callable[[], Awaitable[list[bytes]]]:
        return state.next_tiles

    async def close(self, app: web.Application, state: Wall) -> None:
        state.leave()
        app[VIDEO].walls.remove(state)


@dataclass
class Focus:
    """One focused viewer: on the camera's live feed (or its tiles, for JPEG), or on its own ffmpeg."""

    feed: LiveFeed | None = None
    viewer: LiveViewer | None = None
    pictures: Viewer | None = None
    process: asyncio.subprocess.Process | None = None
    relayed: aiohttp.ClientWebSocketResponse | None = None
    pump: asyncio.Task[None] | None = None


class FocusEndpoint(Endpoint[Focus]):
    roles = WATCHERS
    hello = FocusHello
    name = "focus"
    max_frame_bytes = 16 * 1024
    queue_limit = 256  # chunks of up to 64 KiB (own-ffmpeg viewers): a viewer this far behind is cut off

    async def open(self, app: web.Application, session: SocketSession, hello: FocusHello) -> tuple[Focus, None]:
        pool, video = app[PLATFORM].pool, app[VIDEO]
        row = await pool.fetchrow("SELECT main_url, department FROM cameras WHERE id = $1", hello.camera)
        if row is None:
            raise DomainError(f"camera {hello.camera} does not exist", "camera", "not_found")
        if not session.user.sees_department(row["department"]):
            raise DomainError(f"camera {hello.camera} belongs to another department", "camera", "forbidden")
        feed = video.live.get(hello.camera)
        await audit.record(pool, audit.Entry(session.actor, "video.live", f"camera:{hello.camera}",
                                             details={"mode": hello.mode, "shared": feed is not None}))
        if feed is not None and hello.mode == "mse":
            viewer = LiveViewer()
            feed.join(viewer)
            return Focus(feed=feed, viewer=viewer), None
        if feed is not None and video.analysis is not None:  # JPEG: the pictures the tiles are made of
            pictures = Viewer()
            video.tiles.join(pictures)
            video.tiles.show(pictures, {hello.camera})
            session.send({"type": "codec", "mime": "image/jpeg"})
            return Focus(pictures=pictures), None
        holder = (await holders(pool, {hello.camera})).get(hello.camera)
        if feed is None and holder is not None and holder != video.relay.node_url:
            try:
                relayed = await video.relay.open_live(holder, hello.camera, hello.mode)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                raise DomainError(f"camera {hello.camera} is ingested by another node that does not answer"
                                  f" ({type(error).__name__}); try again in a moment", "camera",
                                  "unavailable") from None
            pump = asyncio.create_task(_pump_relayed(relayed, session), name=f"focus-relay {session.name}")
            return Focus(relayed=relayed, pump=pump), None
        process = await asyncio.create_subprocess_exec(
            video.ffmpeg, *ffmpeg.focus_args(row["main_url"], hello.mode),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent(signal.SIGKILL))
        pump = asyncio.create_task(_pump(process, session, hello.mode), name=f"focus-pump {session.name}")
        return Focus(process=process, pump=pump), None

    def source(self, state: Focus) -> Source | None:
        if state.viewer is not None:
            return functools.partial(_live_messages, state.viewer)
        if state.pictures is not None:
            return functools.partial(_pictures, state.pictures)
        return None

    async def close(self, app: web.Application, state: Focus) -> None:
        if state.feed is not None and state.viewer is not None:
            state.feed.leave(state.viewer)
        if state.pictures is not None:
            app[VIDEO].tiles.leave(state.pictures)
        if state.pump is not None:
            state.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.pump
        if state.relayed is not None:
            await state.relayed.close()
        if state.process is not None:
            if state.process.returncode is None:
                state.process.kill()
            await state.process.wait()


async def _live_messages(viewer: LiveViewer) -> list[bytes | str]:
    return [encode({"type": "codec", "mime": item.mime}) if isinstance(item, Codec) else item
            for item in await viewer.next()]


async def _pictures(viewer: Viewer) -> list[bytes | str]:
    return [tile.jpeg for tile in await viewer.next()]


async def _pump(process: asyncio.subprocess.Process, session: SocketSession, mode: str) -> None:
    assert process.stdout is not None
    try:
        if mode == "mse":
            await _pump_mp4(process.stdout, session)
        else:
            await _pump_jpeg(process.stdout, session)
    except (ConnectionResetError, asyncio.IncompleteReadError):
        pass
    session.run(lambda: _end(session))


async def _pump_relayed(relayed: aiohttp.ClientWebSocketResponse, session: SocketSession) -> None:
    """Another node's live stream of the camera, passed through as it comes."""
    async for message in relayed:
        if message.type == aiohttp.WSMsgType.TEXT:
            session.send(msgspec.json.decode(message.data))
        elif message.type == aiohttp.WSMsgType.BINARY:
            session.send_bytes(message.data)
    session.run(lambda: _end(session))


async def _end(session: SocketSession) -> None:
    if not session.socket.closed:
        await session.socket.close(code=WSCloseCode.GOING_AWAY, message=b"the stream ended")


async def _pump_mp4(stdout: asyncio.StreamReader, session: SocketSession) -> None:
    head = b""
    while b"moof" not in head:  # the init segment (ftyp, moov) names the codec
        chunk = await stdout.read(_CHUNK)
        if not chunk:
            return
        head += chunk
    session.send({"type": "codec", "mime": read_init(head[:head.find(b"moof") - 4]).mime})
    session.send_bytes(head)
    while chunk := await stdout.read(_CHUNK):
        session.send_bytes(chunk)


async def _pump_jpeg(stdout: asyncio.StreamReader, session: SocketSession) -> None:
    session.send({"type": "codec", "mime": "image/jpeg"})
    await read_pictures(stdout, lambda _at, jpeg: session.send_bytes(jpeg))


def add_internal_routes(app: web.Application) -> None:
    """The routes other nodes of this installation use (never clients: the balancer refuses them)."""
    async def tiles(request: web.Request) -> web.StreamResponse:
        video = request.app[VIDEO]
        return await serve_tiles(request, video.relay, video.tiles, video.live)

    async def live(request: web.Request) -> web.StreamResponse:
        """A camera this node ingests, for a focused viewer on another node: as /ws/focus streams it."""
        video = request.app[VIDEO]
        trusted_or_refused(request, video.relay)
        camera_id = int(request.match_info["camera"])
        feed = video.live.get(camera_id)
        if feed is None:
            return await pass_on(request, None)
        if request.query.get("mode") == "jpeg":
            pictures = Viewer(for_peer=True)
            video.tiles.join(pictures)
            video.tiles.show(pictures, {camera_id})
            try:
                return await pass_on(request, functools.partial(_pictures, pictures),
                                     first=encode({"type": "codec", "mime": "image/jpeg"}))
            finally:
                video.tiles.leave(pictures)
        viewer = LiveViewer()
        feed.join(viewer)
        try:
            return await pass_on(request, functools.partial(_live_messages, viewer))
        finally:
            feed.leave(viewer)

    app.router.add_get("/internal/relay/tiles", tiles)
    app.router.add_get(r"/internal/relay/live/{camera:\d{1,9}}", live)


walls = WallEndpoint()
api.websocket("/ws/wall", "Monitoring wall WebSocket: send WallHello, then Show; tiles arrive as binary (uint32"
              " camera id, float64 epoch ms, JPEG), alert lists as text", roles=WATCHERS, hello=WallHello)(walls.serve)
focus = FocusEndpoint()
api.websocket("/ws/focus", "One camera in full motion: send FocusHello; a codec message, then fragmented MP4"
              " (mode mse) or JPEG pictures (mode jpeg) as binary", roles=WATCHERS, hello=FocusHello)(focus.serve)
