"""One camera's live stream, fanned out: the ingest writes each fragment once, any number of viewers
read it. Recording never waits for a viewer: `fragment` only appends to bounded per-viewer queues, and
a viewer that falls behind loses its backlog and resumes at the next keyframe (the live edge).

A new viewer starts with the init segment and the fragments since the last keyframe, so its first
picture is at most one GOP old and the page moves to the live edge at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from video.live.fmp4 import Init

# A viewer holding this many unsent fragments (ffmpeg cuts one every 200 ms), or this many bytes, is
# behind the live edge: it skips to the next keyframe.
BEHIND_FRAGMENTS = 15
BEHIND_BYTES = 8 * 2**20
_KEEP_GOP_BYTES = 8 * 2**20  # a camera whose GOP outgrows this starts new viewers at the next keyframe


@dataclass(frozen=True)
class Codec:
    """Sent before an init segment: what the page's MediaSource must be opened with."""

    mime: str


Item = Codec | bytes


class LiveViewer:
    """One focused view: what is waiting to be sent to it."""

    def __init__(self, limit_fragments: int = BEHIND_FRAGMENTS, limit_bytes: int = BEHIND_BYTES) -> None:
        self._items: list[Item] = []
        self._bytes = 0
        self._limit_fragments = limit_fragments
        self._limit = limit_bytes
        self._ready = asyncio.Event()
        self._needs_keyframe = True
        self._head = 0  # how many queued items are the stream's codec and init segment
        self.skipped = 0  # backlogs dropped because the viewer fell behind

    def begin(self, init: Init, gop: list[bytes]) -> None:
        """A new stream (first sight, or ffmpeg restarted): everything queued belongs to the old one."""
        self._items, self._bytes, self._head = [Codec(init.mime), init.data], len(init.data), 2
        self._needs_keyframe = not gop
        for fragment in gop:
            self._push(fragment)
        self._ready.set()

    def offer(self, fragment: bytes, keyframe: bool) -> None:
        if self._needs_keyframe:
            if not keyframe:
                return
            self._needs_keyframe = False
        behind = len(self._items) - self._head >= self._limit_fragments or self._bytes + len(fragment) > self._limit
        if behind:  # drop the backlog, resume at a keyframe
            self._items = self._items[:self._head]  # an unsent codec and init segment still have to go
            self._bytes = sum(len(i) for i in self._items if isinstance(i, bytes))
            self.skipped += 1
            if not keyframe:
                self._needs_keyframe = True
                return
        self._push(fragment)

    def _push(self, fragment: bytes) -> None:
        self._items.append(fragment)
        self._bytes += len(fragment)
        self._ready.set()

    async def next(self) -> list[Item]:
        """What to send now (waits until there is something)."""
        await self._ready.wait()
        self._ready.clear()
        items, self._items, self._bytes, self._head = self._items, [], 0, 0
        return items


class LiveFeed:
    """A camera's current stream: its init segment, the fragments since the last keyframe, its viewers."""

    def __init__(self, on_keyframe: Callable[[Init, bytes], None] | None = None) -> None:
        self.init: Init | None = None
        self._gop: list[bytes] = []
        self._gop_bytes = 0
        self._viewers: set[LiveViewer] = set()
        self.on_keyframe = on_keyframe  # each fragment that opens with a keyframe (the analysis)

    def begin(self, init: Init) -> None:
        self.init, self._gop, self._gop_bytes = init, [], 0
        for viewer in self._viewers:
            viewer.begin(init, [])

    def fragment(self, data: bytes, keyframe: bool) -> None:
        if self.init is None:
            return
        if keyframe:
            self._gop, self._gop_bytes = [data], len(data)
            if self.on_keyframe is not None:
                self.on_keyframe(self.init, data)
        elif self._gop and self._gop_bytes + len(data) <= _KEEP_GOP_BYTES:
            self._gop.append(data)
            self._gop_bytes += len(data)
        else:
            self._gop, self._gop_bytes = [], 0
        for viewer in self._viewers:
            viewer.offer(data, keyframe)

    def ended(self) -> None:
        """The stream stopped (ffmpeg exited): viewers wait for the next one's init."""
        self.init, self._gop, self._gop_bytes = None, [], 0

    def join(self, viewer: LiveViewer) -> None:
        self._viewers.add(viewer)
        if self.init is not None:
            viewer.begin(self.init, list(self._gop))

    def leave(self, viewer: LiveViewer) -> None:
        self._viewers.discard(viewer)

    @property
    def viewers(self) -> int:
        return len(self._viewers)


class LiveFeeds:
    """The live feeds of the cameras this process ingests. A feed outlives a stop of its camera's
    ingest, so viewers of a camera started again (its registration changed) stay attached."""

    def __init__(self) -> None:
        self._feeds: dict[int, LiveFeed] = {}
        self._ingested: set[int] = set()

    def open(self, camera_id: int, on_keyframe: Callable[[Init, bytes], None] | None = None) -> LiveFeed:
        feed = self._feeds.setdefault(camera_id, LiveFeed())
        feed.on_keyframe = on_keyframe
        self._ingested.add(camera_id)
        return feed

    def get(self, camera_id: int) -> LiveFeed | None:
        """The feed of a camera this process ingests now (None: another process does, or none)."""
        return self._feeds.get(camera_id) if camera_id in self._ingested else None

    def ingested(self) -> set[int]:
        """The cameras this process ingests now."""
        return set(self._ingested)

    def close(self, camera_id: int) -> None:
        self._ingested.discard(camera_id)
        if feed := self._feeds.get(camera_id):
            feed.on_keyframe = None
            feed.ended()
            if not feed.viewers:
                del self._feeds[camera_id]
