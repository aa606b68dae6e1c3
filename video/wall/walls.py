"""Walls connected to this process: each shows some cameras' tiles, and all of them are told when the
alert list changes anywhere."""

from __future__ import annotations

import struct
import weakref
from typing import Any

from base.pg import Pool
from base.sockets import SocketSession
from video.analysis.supervision import alerts
from video.wall.tiles import TileBoard, TilePicture, Viewer

TILE_HEADER = struct.Struct(">Id")  # camera id, arrival time in epoch milliseconds; then the JPEG


class Wall:
    """One connected wall: its session, and the viewer that keeps only the newest tile of each camera."""

    def __init__(self, session: SocketSession, board: TileBoard, cameras: set[int] | None = None) -> None:
        self.session = session
        self.cameras = cameras  # what a supervisor limited to departments may see; None: every camera
        self.viewer = Viewer()
        self._board = board
        board.join(self.viewer)

    def show(self, cameras: set[int]) -> None:
        """The wall now shows these cameras: their current pictures go out at once."""
        self._board.show(self.viewer, cameras if self.cameras is None else cameras & self.cameras)

    def leave(self) -> None:
        self._board.leave(self.viewer)

    async def next_tiles(self) -> list[bytes]:
        """The newest pictures not yet sent (a slow wall skips pictures; it never queues them)."""
        return [tile_message(tile) for tile in await self.viewer.next()]


def tile_message(tile: TilePicture) -> bytes:
    return TILE_HEADER.pack(tile.camera_id, tile.at * 1000.0) + tile.jpeg


class Walls:
    """Every wall connected to this process; each gets the alert list when it changes anywhere."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._walls: weakref.WeakSet[Wall] = weakref.WeakSet()

    def add(self, wall: Wall) -> None:
        self._walls.add(wall)

    def remove(self, wall: Wall) -> None:
        self._walls.discard(wall)

    async def reload(self) -> None:
        if not self._walls:
            return
        by_scope: dict[tuple[str, ...], dict[str, Any]] = {}  # one query per set of departments, not per wall
        for wall in list(self._walls):
            scope = wall.session.user.departments
            if scope not in by_scope:
                by_scope[scope] = {"type": "alerts", "alerts": await alerts(self._pool, True, None, 200, scope)}
            wall.session.send(by_scope[scope])
