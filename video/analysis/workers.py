"""Supervision analysis, server side: worker processes that analyse the cameras this process
ingests, and what becomes of their reports — alerts in PostgreSQL, learned empty seats.

Cameras are spread over a few worker processes (video.analysis.watcher), fewest cameras first; each
camera's keyframe pictures come from its ingest and are handed on by a sender thread per worker, so
a busy worker never blocks the event loop (it skips to each camera's newest picture instead). A
worker that dies is started again and given its cameras back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import msgspec

from base.pg import Pool
from video.analysis import watcher
from video.analysis.detectors import Thresholds
from video.analysis.supervision import clear_alert, clear_camera, empty_seat, open_alert, store_empty_seat
from video.analysis.watcher import Changed, EmptySeat, Job, Report, State, Tile
from video.claims import Camera
from video.wall.tiles import TileBoard, TilePicture

log = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")  # a fork of a running event loop and its threads is unsafe


_PICTURES = ("keyframe", "picture")  # requests a newer one of the same camera replaces; the others all go


@dataclass(frozen=True)
class Settings:
    workers: int
    tile_width: int
    utc_offset_s: int


@dataclass
class _Worker:
    process: BaseProcess
    pipe: Connection
    board: TileBoard
    cameras: set[int] = field(default_factory=set)
    outbox: _Sender = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = _Sender(self.pipe, self.board)


class _Sender:
    """What goes to one worker, sent from a thread of its own: a full pipe blocks that thread, never
    the event loop. Requests always go, in order; of each camera's pictures only the newest waits (a
    late picture is worth less than the next one), so a busy worker falls behind by at most one
    picture per camera rather than a growing queue. A camera someone is watching on a wall goes
    first: on a saturated machine the others wait a round (their analysis tolerates a second), the
    watched tiles do not."""

    def __init__(self, pipe: Connection, board: TileBoard) -> None:
        self._pipe = pipe
        self._board = board
        self._requests: deque[tuple[object, ...]] = deque()
        self._pictures: dict[object, tuple[object, ...]] = {}  # camera → its newest unsent picture
        self._ready = threading.Condition()
        self.dropped = 0
        threading.Thread(target=self._run, name="analysis-sender", daemon=True).start()

    def send(self, request: tuple[object, ...]) -> None:
        with self._ready:
            if request[0] in _PICTURES:
                camera = request[1]
                if camera in self._pictures:
                    self.dropped += 1
                # In place: a camera keeps its turn, waiting since its first unsent picture. Sent to
                # the back instead, a camera whose pictures kept missing their turn on a saturated
                # worker was starved (an absence alert came 20 s late).
                self._pictures[camera] = request
            else:
                self._requests.append(request)
            self._ready.notify()

    def _next(self) -> tuple[object, ...]:
        with self._ready:
            while not self._requests and not self._pictures:
                self._ready.wait()
            if self._requests:
                return self._requests.popleft()
            watched = self._board.watched
            camera = next((c for c in self._pictures if c in watched), None)
            return self._pictures.pop(next(iter(self._pictures)) if camera is None else camera)

    def _run(self) -> None:
        while True:
            request = self._next()
            try:
                self._pipe.send(request)
            except (OSError, ValueError):  # the pipe is closed: the worker ended or the server is stopping
                return


class Analysis:
    def __init__(self, pool: Pool, settings: Settings, board: TileBoard) -> None:
        self._pool = pool
        self._settings = settings
        self.board = board
        self.states: dict[int, State] = {}
        self._cameras: dict[int, Camera] = {}
        self._workers: list[_Worker] = []
        self._marking: set[int] = set()  # cameras whose next picture a supervisor marked as the empty seat
        self._writes: asyncio.Queue[Changed | EmptySeat | _Restart] = asyncio.Queue()

    async def run(self) -> None:
        """Store what the workers report, in order, until cancelled; then stop the workers."""
        try:
            while True:
                report = await self._writes.get()
                try:
                    await self._store(report)
                except Exception:
                    log.exception("could not store %s", type(report).__name__)
        finally:
            for worker in self._workers:
                worker.pipe.close()  # the worker exits when its pipe closes
            for worker in self._workers:
                await asyncio.to_thread(worker.process.join, 5)
                if worker.process.is_alive():
                    worker.process.kill()

    async def start(self, camera: Camera) -> None:
        thresholds = msgspec.convert(camera["thresholds"], Thresholds)
        roi = camera["roi"]
        job = Job(camera_id=camera["id"], code=camera["code"], tile_width=self._settings.tile_width,
                  roi=(roi["x"], roi["y"], roi["width"], roi["height"]), limits=thresholds,
                  days=camera["opening_hours"]["days"], periods=camera["opening_hours"]["periods"],
                  utc_offset_s=self._settings.utc_offset_s, empty_seat=await empty_seat(self._pool, camera["id"]))
        await clear_camera(self._pool, job.camera_id, "analysis started")
        self._cameras[job.camera_id] = camera
        worker = self._least_loaded()
        worker.cameras.add(job.camera_id)
        worker.outbox.send(("watch", job))

    def keyframe(self, camera_id: int, at: float, init: bytes, fragment: bytes) -> None:
        """A live fragment opening with a keyframe, from the camera's ingest."""
        self._hand(camera_id, ("keyframe", camera_id, at, init, fragment))

    def picture(self, camera_id: int, at: float, jpeg: bytes) -> None:
        """A sub-stream's picture, from the camera's ingest."""
        self._hand(camera_id, ("picture", camera_id, at, jpeg))

    def _hand(self, camera_id: int, request: tuple[object, ...]) -> None:
        for worker in self._workers:
            if camera_id in worker.cameras:
                worker.outbox.send(request)

    def lost(self, camera_id: int, reason: str) -> None:
        """The camera's ingest stopped; the offline alert follows from the pictures that stop coming."""
        if camera_id in self._cameras:
            self.states[camera_id] = State(camera_id, False, reason)

    async def stop(self, camera_id: int) -> None:
        self._cameras.pop(camera_id, None)
        self.states.pop(camera_id, None)
        for worker in self._workers:
            if camera_id in worker.cameras:
                worker.cameras.discard(camera_id)
                worker.outbox.send(("unwatch", camera_id))

    def mark_empty_seat(self, camera_id: int) -> bool:
        """Take the camera's next picture as its empty seat; False if another process analyses it."""
        for worker in self._workers:
            if camera_id in worker.cameras:
                self._marking.add(camera_id)
                worker.outbox.send(("mark_empty", camera_id))
                return True
        return False

    def _least_loaded(self) -> _Worker:
        if len(self._workers) < self._settings.workers:
            self._workers.append(self._spawn())
        return min(self._workers, key=lambda w: len(w.cameras))

    def _spawn(self) -> _Worker:
        ours, theirs = _SPAWN.Pipe()
        process = _SPAWN.Process(target=watcher.main, args=(theirs,), name="liandong-analysis", daemon=True)
        process.start()
        theirs.close()
        worker = _Worker(process, ours, self.board)
        threading.Thread(target=self._listen, args=(worker, asyncio.get_running_loop()), name="analysis-reports",
                         daemon=True).start()
        return worker

    def _listen(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        """A thread per worker: its reports, handed to the event loop."""
        while True:
            try:
                report: Report = worker.pipe.recv()
            except (EOFError, OSError, TypeError):  # TypeError: the pipe was closed under us at shutdown
                break
            loop.call_soon_threadsafe(self._report, report)
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
            loop.call_soon_threadsafe(self._worker_ended, worker)

    def _report(self, report: Report) -> None:
        match report:
            case Tile():
                if report.camera_id in self._cameras:
                    self.board.publish(TilePicture(report.camera_id, report.at, report.jpeg))
            case State():
                if report.camera_id in self._cameras:
                    self.states[report.camera_id] = report
            case Changed() | EmptySeat():
                self._writes.put_nowait(report)

    def _worker_ended(self, worker: _Worker) -> None:
        if worker not in self._workers or worker.pipe.closed:
            return  # stopped on purpose
        log.error("analysis worker %s ended (exit code %s); starting another", worker.process.pid,
                  worker.process.exitcode)
        self._workers.remove(worker)
        for camera_id in worker.cameras:
            if camera := self._cameras.get(camera_id):
                self._writes.put_nowait(_Restart(camera))

    async def _store(self, report: Changed | EmptySeat | _Restart) -> None:
        match report:
            case Changed(camera_id=camera_id, change=change, snapshot=snapshot):
                at = datetime.fromtimestamp(change.at, UTC)
                if change.opened:
                    began = datetime.fromtimestamp(change.began_at, UTC)
                    await open_alert(self._pool, change.kind, camera_id, began, at, dict(change.detail), snapshot)
                else:
                    await clear_alert(self._pool, change.kind, camera_id, at, dict(change.detail))
            case EmptySeat(camera_id=camera_id, png=png):
                how = "marked" if camera_id in self._marking else "learned"
                self._marking.discard(camera_id)
                await store_empty_seat(self._pool, camera_id, png, how)
            case _Restart(camera=camera):
                if camera["id"] in self._cameras:  # not released meanwhile
                    await self.start(camera)


@dataclass(frozen=True)
class _Restart:
    camera: Camera


def mark_requested(analysis: Analysis, payload: str) -> None:
    """A supervisor marked a camera's seat empty (announced to every process)."""
    if payload.isdigit():
        analysis.mark_empty_seat(int(payload))
