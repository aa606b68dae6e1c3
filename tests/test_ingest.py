"""One connection per camera, whatever consumes it: a real RTSP server (GStreamer, counting its own
clients) feeds the recorder, the analysis, the wall's tiles and three focused viewers — one of whom
stops reading — through a single session, and the recording does not lose a second to the viewer
that stalled. The focused view carries the camera's sound: AAC as it is, G.711 as AAC."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import socket
import struct
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from tests.conftest import server_with_media
from tests.helpers import Liandong
from tests.test_recording import _segments, query, register, start_rtsp, wait_until
from video.context import VIDEO
from video.live.fmp4 import boxes

SEGMENT_S = 2


@pytest.fixture
async def ingesting(database_url: str, tmp_path: Path) -> AsyncIterator[Liandong]:
    """The server recording (2-second segments) and analysing its cameras."""
    async with server_with_media(database_url, tmp_path, {"segment_s = 10": f"segment_s = {SEGMENT_S}"}) as (
            server, _):
        yield server


class Camera:
    """The RTSP server and the most sessions it ever had open at once."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.clients: list[int] = []
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(b"clients "):
                self.clients.append(int(line.split()[1]))


@contextmanager
def rtsp_camera(*options: str) -> Iterator[tuple[Camera, int]]:
    port = _free_port()
    process = start_rtsp(port, *options)
    try:
        yield Camera(process), port
    finally:
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Viewer:
    """A focused view that reads everything the server sends."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.codecs: list[str] = []
        self.data = bytearray()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.codecs.append(msgspec.json.decode(message.data)["mime"])
            elif message.type is aiohttp.WSMsgType.BINARY:
                self.data += message.data


async def focus(liandong: Liandong, camera_id: int) -> Viewer:
    ws = await liandong.http.ws_connect(liandong.base_url.replace("http", "ws") + "/ws/focus")
    await ws.send_json({"type": "hello", "token": await liandong.token("supervisor"), "camera": camera_id})
    return Viewer(ws)


def stalled_focus(liandong: Liandong, token: str, camera_id: int) -> socket.socket:
    """A focused view that says hello and then never reads again, on a socket with a tiny receive buffer:
    the server's sends to it soon block."""
    host, port = liandong.base_url.removeprefix("http://").rstrip("/").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /ws/focus HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    payload = msgspec.json.encode({"type": "hello", "token": token, "camera": camera_id})
    mask = os.urandom(4)
    sock.sendall(struct.pack(">BBH", 0x81, 0x80 | 126, len(payload)) + mask
                 + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return sock


def fragments_start_with_init(data: bytes) -> list[bytes]:
    """The box types of a viewer's stream, which must be a whole fragmented MP4 from its first byte."""
    kinds = []
    for kind, _, _ in boxes(data[:_whole_boxes(data)]):
        kinds.append(kind)
    return kinds


def _whole_boxes(data: bytes) -> int:
    at = 0
    while at + 8 <= len(data):
        size = struct.unpack_from(">I", data, at)[0]
        if size < 8 or at + size > len(data):
            break
        at += size
    return at


async def test_one_rtsp_session_serves_recording_analysis_tiles_and_three_viewers_one_of_them_stalled(
        ingesting: Liandong, database_url: str) -> None:
    liandong = ingesting
    video = liandong.app[VIDEO] if liandong.app else None
    assert video is not None
    with rtsp_camera("--noise") as (camera, port):
        camera_id = await register(liandong, "one-session", f"rtsp://127.0.0.1:{port}/cam")
        await wait_until(lambda: _segments(database_url, camera_id, 1), 30)
        await wait_until(lambda: _true(camera_id in video.tiles.latest), 20)  # the wall's tile, from the ingest
        reading = [await focus(liandong, camera_id), await focus(liandong, camera_id)]
        stalled = await asyncio.to_thread(stalled_focus, liandong, await liandong.token("supervisor"), camera_id)
        feed = video.live.get(camera_id)
        assert feed is not None
        await wait_until(lambda: _true(feed.viewers == 3), 10)
        started = await query(database_url, "SELECT now() AS at")
        await asyncio.sleep(15)
        ended = await query(database_url, "SELECT now() AS at")

        assert camera.clients and max(camera.clients) == 1  # the recorder, analysis, wall and viewers: one session
        skipped = [v.skipped for v in feed._viewers]
        assert max(skipped) >= 1  # the stalled viewer was moved on to the live edge ...
        for viewer in reading:  # ... while the others got a whole, playable stream with the camera's sound
            assert viewer.codecs[0].startswith('video/mp4; codecs="avc1.') and "mp4a.40.2" in viewer.codecs[0]
            kinds = fragments_start_with_init(bytes(viewer.data))
            assert kinds[:2] == [b"ftyp", b"moov"] and kinds.count(b"moof") >= 50  # 15 s at 5 fragments/s
        state = video.analysis.states[camera_id] if video.analysis else None
        assert state is not None and state.connected
        stalled.close()
        for viewer in reading:
            await viewer.ws.close()
    # Not a second of recording was lost to the stalled viewer: segments cover the window without a hole.
    rows = await query(database_url, "SELECT started_at, ended_at FROM segments WHERE camera_id = $1"
                       " AND ended_at > $2 AND started_at < $3 ORDER BY started_at", camera_id,
                       started[0]["at"], ended[0]["at"])
    assert rows[0]["started_at"] <= started[0]["at"] and len(rows) >= 15 // SEGMENT_S
    for before, after in itertools.pairwise(rows):
        assert abs((after["started_at"] - before["ended_at"]).total_seconds()) < 0.2
    assert not await query(database_url, "SELECT * FROM recording_gaps WHERE camera_id = $1", camera_id)


async def test_a_g711_camera_is_heard_in_the_focused_view_as_aac(ingesting: Liandong, database_url: str) -> None:
    liandong = ingesting
    with rtsp_camera("--pcma") as (camera, port):
        camera_id = await register(liandong, "g711-live", f"rtsp://127.0.0.1:{port}/cam")
        await wait_until(lambda: _segments(database_url, camera_id, 1), 40)
        viewer = await focus(liandong, camera_id)
        await wait_until(lambda: _true(len(viewer.data) > 50_000), 15)
        await viewer.ws.close()
        assert "mp4a.40.2" in viewer.codecs[0]
        assert max(camera.clients) == 1


async def _true(value: Any) -> Any:
    return value
