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
        # What the viewers show, kept as new frozensets (the analysis's sender threads read `watched`; a
        # reader never sees one half-changed): this process's own walls and viewers (what the tile
        # relay fetches from other nodes, woken by `shown_changed`), and those with peer nodes' too.
        self.shown: frozenset[int] = frozenset()
        self.watched: frozenset[int] = frozenset()
        self.shown_changed = asyncio.Event()

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
        self._viewers_changed()

    def _viewers_changed(self) -> None:
        shown = frozenset().union(*(v.cameras for v in self._viewers if not v.for_peer))
        if shown != self.shown:
            self.shown = shown
            self.shown_changed.set()
        self.watched = shown.union(*(v.cameras for v in self._viewers if v.for_peer))

    def show(self, viewer: Viewer, cameras: set[int], now: float | None = None) -> None:
        """The wall now shows these cameras: their current pictures go out at once. A picture older than
        FRESH_S is not current (the camera is offline): sent as new, a wall would show it as live."""
        viewer.cameras = cameras
        self._viewers_changed()
        now = time.time() if now is None else now
        for camera_id in cameras:
            if (tile := self.latest.get(camera_id)) and now - tile.at <= FRESH_S:
                viewer.offer(tile)
