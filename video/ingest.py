"""Each camera this process holds, ingested once: one connection to its main stream (and one to its
sub-stream, if it has one), whatever consumes it — the recorder's segments, the focused viewers' live
stream, the wall's tiles and the analysis. With several server processes each camera is ingested by
exactly one (video.claims).

The recorder's ffmpeg (video.recording.recorder) is the ingest: it demuxes once and copies every
output from the same packets. This process only moves bytes between the pipe and the consumers; it
never decodes or muxes. Each live fragment that opens with a keyframe (at most `max_fps` a second)
goes to the analysis workers, which decode that one picture for the tile and the detectors. A camera
with a sub-stream is analysed and tiled from that instead, by a second ffmpeg that decodes it in full
at `max_fps` (a small stream in full costs less than a main stream's keyframes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from base.children import die_with_parent
from base.pg import Pool
from video.analysis.workers import Analysis
from video.claims import Camera, CameraWork, Claims
from video.live.feed import LiveFeeds
from video.live.fmp4 import Init
from video.live.pipes import read_pictures, reader_of, widen
from video.recording import ffmpeg
from video.recording.ffmpeg import segment_dir
from video.recording.recorder import Consumers, Recorder
from video.recording.recordings import PgIndex
from video.wall.relay import forget_ingest, note_ingest
from video.wall.tiles import TileBoard

log = logging.getLogger(__name__)

LOCK_BASE = 727_100_000  # + camera id: the ingest's advisory lock
_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class IngestSettings:
    ffmpeg: str
    recordings: Path
    segment_s: int
    record: bool
    tile_width: int
    max_fps: float  # pictures a second, at most, to the tiles and the analysis
    node_url: str  # where other nodes reach this one, noted for each camera it ingests (video.wall.relay)


class Ingest(CameraWork):
    def __init__(self, pool: Pool, settings: IngestSettings, tiles: TileBoard, feeds: LiveFeeds,
                 analysis: Analysis | None) -> None:
        self._pool = pool
        self._settings = settings
        self._tiles = tiles
        self._feeds = feeds
        self._analysis = analysis
        self.tasks: dict[int, list[asyncio.Task[None]]] = {}
        self._next_picture: dict[int, float] = {}

    async def start(self, camera: Camera) -> None:
        s, camera_id, code = self._settings, camera["id"], camera["code"]
        if self._analysis is not None:
            await self._analysis.start(camera)
        sub = camera["sub_url"]
        keyframe = None if sub else self._keyframe_for(camera_id)
        consumers = Consumers(live=self._feeds.open(camera_id, keyframe),
                              lost=lambda reason: self._lost(camera_id, reason))
        index = PgIndex(self._pool, camera_id) if s.record else None
        recorder = Recorder(s.ffmpeg, camera["main_url"], segment_dir(s.recordings, code), s.segment_s, index,
                            code, consumers)
        tasks = [asyncio.create_task(recorder.run(), name=f"ingest-{code}")]
        if sub:
            tasks.append(asyncio.create_task(self._sub_stream(sub, code, self._picture_for(camera_id)),
                                             name=f"ingest-{code}-sub"))
        self.tasks[camera_id] = tasks
        await note_ingest(self._pool, camera_id, s.node_url)

    async def stop(self, camera_id: int) -> None:
        for task in self.tasks.pop(camera_id, []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._feeds.close(camera_id)
        self._tiles.forget(camera_id)
        try:
            await forget_ingest(self._pool, camera_id, self._settings.node_url)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:  # the next holder overwrites it
            log.warning("camera %d: could not note that this node stopped ingesting it: %s", camera_id, error)
        self._next_picture.pop(camera_id, None)
        if self._analysis is not None:
            await self._analysis.stop(camera_id)

    def failed(self, camera_id: int) -> bool:
        return any(task.done() for task in self.tasks.get(camera_id, []))

    def _due(self, camera_id: int, at: float) -> bool:
        """Whether a picture arriving now is wanted: a short GOP brings keyframes faster than the tiles
        and the analysis need."""
        if at < self._next_picture.get(camera_id, 0.0):
            return False
        self._next_picture[camera_id] = at + 0.9 / self._settings.max_fps
        return True

    def _keyframe_for(self, camera_id: int) -> Callable[[Init, bytes], None]:
        def keyframe(init: Init, fragment: bytes) -> None:
            at = time.time()
            if self._analysis is not None and self._due(camera_id, at):
                self._analysis.keyframe(camera_id, at, init.data, fragment)

        return keyframe

    def _picture_for(self, camera_id: int) -> Callable[[float, bytes], None]:
        def picture(at: float, jpeg: bytes) -> None:
            if self._analysis is not None and self._due(camera_id, at):
                self._analysis.picture(camera_id, at, jpeg)

        return picture

    def _lost(self, camera_id: int, reason: str) -> None:
        if self._analysis is not None:
            self._analysis.lost(camera_id, reason)

    async def _sub_stream(self, url: str, code: str, picture: Callable[[float, bytes], None]) -> None:
        """The sub-stream's pictures, its ffmpeg restarted with backoff whenever it stops."""
        backoff = 1.0
        while True:
            started = time.monotonic()
            read, write = os.pipe()
            widen(read)
            s = self._settings
            try:
                process = await asyncio.create_subprocess_exec(
                    s.ffmpeg, *ffmpeg.pictures_args(url, s.max_fps, s.tile_width), stdin=asyncio.subprocess.DEVNULL,
                    stdout=write, stderr=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent())
            except BaseException:
                os.close(read)
                raise
            finally:
                os.close(write)
            try:
                await read_pictures(await reader_of(read), picture)
                await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            backoff = 1.0 if time.monotonic() - started > 60 else min(_MAX_BACKOFF_S, backoff * 2)
            log.warning("camera %s: its sub-stream stopped (ffmpeg exit %s); again in %.0f s", code,
                        process.returncode, backoff)
            await asyncio.sleep(backoff)


def ingest(pool: Pool, url: str, settings: IngestSettings, tiles: TileBoard, feeds: LiveFeeds,
           analysis: Analysis | None) -> Claims:
    return Claims(url, LOCK_BASE, "ingest", Ingest(pool, settings, tiles, feeds, analysis))
