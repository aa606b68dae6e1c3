"""The latest picture of every camera this process analyses, handed to the walls that watch it.

A wall gets the newest tile of each camera it shows; a wall that falls behind skips pictures
rather than queueing them (a late picture is worth less than the next one).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

FRESH_S = 5.0  # the wall dims a tile whose picture is older than this (wall.js STALE_MS)


@dataclass(frozen=True)
class TilePicture:
    camera_id: int
    at: float  # when the picture arrived from the camera (epoch seconds)
    jpeg: bytes


class Viewer:
    """One wall: the cameras it shows, and the newest unsent picture of each. A peer node's relay
    (`for_peer`) takes only what this process ingests: it never makes this process relay in turn."""

    def __init__(self, for_peer: bool = False) -> None:
        self.for_peer = for_peer
        self.cameras: set[int] = set()
        self._waiting: dict[int, TilePicture] = {}
        self._ready = asyncio.Event()

    def offer(self, tile: TilePicture) -> None:
        if tile.camera_id in self.cameras:
            self._waiting[tile.camera_id] = tile  # replaces an unsent older one
            self._ready.set()

    async def next(self) -> list[TilePicture]:
        await self._ready.wait()
        self._ready.clear()
        tiles, self._waiting = list(self._waiting.values()), {}
        return tiles


class TileBoard:
    def __init__(self) -> None:
        self.latest: dict[int, TilePicture] = {}
        self._viewers: set[Viewer] = set()
        self.shown_changed = asyncio.Event()  # a wall here shows other cameras now (video.wall.relay)
        # Every camera some viewer shows, peers' included: read by the analysis's sender threads (a
        # new frozenset each time it changes, so a reader never sees one half-changed).
        self.watched: frozenset[int] = frozenset()

    def shown(self) -> set[int]:
        """The cameras this process's own walls and viewers show."""
        return set().union(*(v.cameras for v in self._viewers if not v.for_peer))

    def publish(self, tile: TilePicture) -> None:
        self.latest[tile.camera_id] = tile
        for viewer in self._viewers:
            viewer.offer(tile)

    def forget(self, camera_id: int) -> None:
        self.latest.pop(camera_id, None)

    def join(self, viewer: Viewer) -> None:
        self._viewers.add(viewer)

    def leave(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)
        self.shown_changed.set()
        self._watch()

    def _watch(self) -> None:
        self.watched = frozenset().union(*(v.cameras for v in self._viewers))

    def show(self, viewer: Viewer, cameras: set[int], now: float | None = None) -> None:
        """The wall now shows these cameras: their current pictures go out at once. A picture older than
        FRESH_S is not current (the camera is offline): sent as new, a wall would show it as live."""
        viewer.cameras = cameras
        self._watch()
        if not viewer.for_peer:
            self.shown_changed.set()
        now = time.time() if now is None else now
        for camera_id in cameras:
            if (tile := self.latest.get(camera_id)) and now - tile.at <= FRESH_S:
                viewer.offer(tile)
