"""The supervisors' monitoring wall over WebSocket.

/ws/wall: after hello, the wall gets the cameras and the open alerts; it says which cameras it
shows (`show`), and from then on receives their tiles as binary messages — a 12-byte header
(camera id: uint32, arrival time in epoch milliseconds: float64, both big-endian) then the JPEG —
and the alert list again whenever an alert opens, clears, is acknowledged or closed.

/ws/focus: one camera in full motion (see video.ffmpeg.focus_args): first a text message naming
the MIME type, then the stream as binary messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from command.accounts import Role, User
from command.errors import RequestError, decode
from command.services import SERVICES, SOCKETS
from video import ffmpeg
from video.registry import cameras, public
from video.supervision import KINDS, alerts
from video.walls import WallSession

log = logging.getLogger(__name__)

_MAX_TILES = 16
_CHUNK = 64 * 1024


class WallHello(msgspec.Struct, tag="hello", frozen=True, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Show(msgspec.Struct, tag="show", frozen=True, forbid_unknown_fields=True):
    cameras: Annotated[list[Annotated[int, msgspec.Meta(ge=1)]], msgspec.Meta(max_length=_MAX_TILES)]


class FocusHello(msgspec.Struct, tag="hello", frozen=True, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    camera: Annotated[int, msgspec.Meta(ge=1)]
    mode: Literal["mse", "jpeg"] = "mse"


async def _hello(socket: web.WebSocketResponse, request: web.Request, kind: type[Any]) -> tuple[Any, User] | None:
    services = request.app[SERVICES]
    try:
        frame = await socket.receive(timeout=10.0)
        hello = decode(frame.data, kind) if frame.type is WSMsgType.TEXT else None
    except TimeoutError:
        hello = None
    except RequestError as error:
        await socket.send_json({"type": "error", **error.payload()})
        hello = None
    user = await services.sessions.user_for(hello.token) if hello else None
    if hello is None or user is None or user.role not in (Role.SUPERVISOR, Role.DISPATCHER):
        await socket.send_json({"type": "error", "code": "unauthenticated", "field": "token",
                                "message": "send hello with a supervisor's or dispatcher's token"})
        await socket.close(code=4401, message=b"unauthenticated")
        return None
    return hello, user


async def wall_socket(request: web.Request) -> web.WebSocketResponse:
    services = request.app[SERVICES]
    socket = web.WebSocketResponse(heartbeat=15.0, max_msg_size=16 * 1024, compress=False)  # JPEG does not shrink
    await socket.prepare(request)
    greeted = await _hello(socket, request, WallHello)
    if greeted is None:
        return socket
    _, user = greeted
    session = WallSession(socket)
    services.tiles.join(session.viewer)
    services.walls.add(session)
    writer = asyncio.create_task(session.write_forever(), name="wall-writer")
    request.app[SOCKETS].add(socket)
    try:
        states = services.analysis.states if services.analysis else {}
        listed = []
        for row in await cameras(services.pool):
            state = states.get(row["id"])
            listed.append({**public(row), "analysis": {"connected": state.connected, "note": state.note}
                           if state else None})
        session.send({"type": "welcome", "user": user.public(), "cameras": listed, "kinds": KINDS,
                      "alerts": await alerts(services.pool, True, None, 200)})
        async for frame in socket:
            if frame.type is not WSMsgType.TEXT:
                continue
            try:
                show = decode(frame.data, Show)
            except RequestError as error:
                session.send({"type": "error", **error.payload()})
                continue
            services.tiles.show(session.viewer, set(show.cameras))
    finally:
        services.tiles.leave(session.viewer)
        writer.cancel()
    return socket


async def focus_socket(request: web.Request) -> web.WebSocketResponse:
    services = request.app[SERVICES]
    socket = web.WebSocketResponse(heartbeat=15.0, max_msg_size=16 * 1024, compress=False)
    await socket.prepare(request)
    greeted = await _hello(socket, request, FocusHello)
    if greeted is None:
        return socket
    hello: FocusHello = greeted[0]
    url = await services.pool.fetchval("SELECT main_url FROM cameras WHERE id = $1", hello.camera)
    if url is None:
        await socket.send_json({"type": "error", "code": "not_found", "field": "camera",
                                "message": f"camera {hello.camera} does not exist"})
        await socket.close()
        return socket
    request.app[SOCKETS].add(socket)
    process = await asyncio.create_subprocess_exec(
        ffmpeg.binary(services.config.video.ffmpeg), *ffmpeg.focus_args(url, hello.mode),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    pump = asyncio.create_task(_pump(process, socket, hello.mode), name="focus-pump")
    try:
        async for _frame in socket:
            pass  # the focused view only listens; closing the socket ends it
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        if process.returncode is None:
            process.kill()
        await process.wait()
    return socket


async def _pump(process: asyncio.subprocess.Process, socket: web.WebSocketResponse, mode: str) -> None:
    assert process.stdout is not None
    try:
        if mode == "mse":
            await _pump_mp4(process.stdout, socket)
        else:
            await _pump_jpeg(process.stdout, socket)
    except (ConnectionResetError, asyncio.IncompleteReadError):
        pass
    if not socket.closed:
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"the stream ended")


async def _pump_mp4(stdout: asyncio.StreamReader, socket: web.WebSocketResponse) -> None:
    head = b""
    while b"moof" not in head:  # the init segment (ftyp, moov) names the codec
        chunk = await stdout.read(_CHUNK)
        if not chunk:
            return
        head += chunk
    await socket.send_json({"type": "codec", "mime": mp4_mime(head)})
    await socket.send_bytes(head)
    while chunk := await stdout.read(_CHUNK):
        await socket.send_bytes(chunk)


def mp4_mime(init: bytes) -> str:
    """The MIME type MSE needs, from the avcC box: profile, compatibility and level."""
    at = init.find(b"avcC")
    if at < 0 or len(init) < at + 8:
        return 'video/mp4; codecs="avc1.42E01E"'
    profile, compatibility, level = init[at + 5], init[at + 6], init[at + 7]
    return f'video/mp4; codecs="avc1.{profile:02X}{compatibility:02X}{level:02X}"'


async def _pump_jpeg(stdout: asyncio.StreamReader, socket: web.WebSocketResponse) -> None:
    await socket.send_json({"type": "codec", "mime": "image/jpeg"})
    while True:
        headers = await stdout.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in headers.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        if length is None:
            continue
        await socket.send_bytes(await stdout.readexactly(length))
