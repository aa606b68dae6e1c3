"""Walls connected to this process: each a writer for its tiles and messages, and all of them told
when the alert list changes anywhere."""

from __future__ import annotations

import asyncio
import logging
import struct
import weakref
from typing import Any

import msgspec
from aiohttp import WSCloseCode, web

from dispatch.pg import Pool
from video.supervision import alerts
from video.tiles import TilePicture, Viewer

log = logging.getLogger(__name__)

TILE_HEADER = struct.Struct(">Id")  # camera id, arrival time in epoch milliseconds; then the JPEG
_TEXT_QUEUE = 200


class WallSession:
    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket
        self.viewer = Viewer()
        self.texts: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(_TEXT_QUEUE)

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.texts.put_nowait(message)
        except asyncio.QueueFull:
            while not self.texts.empty():
                self.texts.get_nowait()
            self.texts.put_nowait(None)  # far behind: close; the wall reconnects and starts afresh

    async def write_forever(self) -> None:
        """Text messages and the newest tiles, one writer; on any failure the socket is closed."""
        text = asyncio.ensure_future(self.texts.get())
        tiles = asyncio.ensure_future(self.viewer.next())
        try:
            while True:
                await asyncio.wait({text, tiles}, return_when=asyncio.FIRST_COMPLETED)
                if text.done():
                    message = text.result()
                    if message is None:
                        await self.socket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
                        return
                    await self.socket.send_str(msgspec.json.encode(message).decode())
                    text = asyncio.ensure_future(self.texts.get())
                if tiles.done():
                    for tile in tiles.result():
                        await self.socket.send_bytes(_tile_message(tile))
                    tiles = asyncio.ensure_future(self.viewer.next())
        except Exception:
            if not self.socket.closed:
                log.exception("wall writer failed; closing so the wall reconnects")
                await self.socket.close(code=WSCloseCode.INTERNAL_ERROR, message=b"reconnect")
        finally:
            text.cancel()
            tiles.cancel()


def _tile_message(tile: TilePicture) -> bytes:
    return TILE_HEADER.pack(tile.camera_id, tile.at * 1000.0) + tile.jpeg


class Walls:
    """Every wall connected to this process; each gets the alert list when it changes anywhere."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._sessions: weakref.WeakSet[WallSession] = weakref.WeakSet()

    def add(self, session: WallSession) -> None:
        self._sessions.add(session)

    async def reload(self) -> None:
        if not self._sessions:
            return
        message = {"type": "alerts", "alerts": await alerts(self._pool, True, None, 200)}
        for session in list(self._sessions):
            session.send(message)
