"""An analysis worker process: reads its cameras' pictures, runs their detectors, and sends tiles,
condition changes and learned empty seats back to the server over a pipe.

It runs outside the server's event loop, so a camera that is slow to decode never delays a
dispatch ticket; one thread per camera, since decoding and OpenCV release the GIL. It exits when
the server's end of the pipe closes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import cv2
import numpy as np

from base.children import follow_parent
from video.analysis.detectors import Change, Gray, Roi, Thresholds, Watch, opening_hours
from video.analysis.frames import Picture, Source, SourceEnded, pictures

log = logging.getLogger(__name__)

_JPEG_QUALITY = 70
_MAX_BACKOFF_S = 10.0


@dataclass(frozen=True)
class Job:
    """A camera to watch."""

    camera_id: int
    code: str
    source: Source
    roi: tuple[float, float, float, float]  # fractions of the frame
    limits: Thresholds
    days: list[int]
    periods: list[str]
    utc_offset_s: int
    empty_seat: bytes | None  # PNG of the empty seat, at tile size


# What the worker sends back.
@dataclass(frozen=True)
class Tile:
    camera_id: int
    at: float  # when the picture arrived
    jpeg: bytes


@dataclass(frozen=True)
class Changed:
    camera_id: int
    change: Change
    snapshot: bytes | None  # the picture that decided it (JPEG); None when there is none (offline)


@dataclass(frozen=True)
class EmptySeat:
    camera_id: int
    png: bytes


@dataclass(frozen=True)
class State:
    camera_id: int
    connected: bool
    note: str  # why not connected, or what is missing (the empty seat)


Report = Tile | Changed | EmptySeat | State


class _Outbox:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def send(self, report: Report) -> None:
        with self._lock:
            self._connection.send(report)


def _jpeg(picture: Picture) -> bytes:
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    return data.tobytes() if ok else b""


def _png(gray: Gray) -> bytes:
    ok, data = cv2.imencode(".png", gray)
    return data.tobytes() if ok else b""


class CameraWatcher:
    def __init__(self, job: Job, outbox: _Outbox) -> None:
        self.job = job
        self._outbox = outbox
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the watch is fed by the reader and ticked by the worker
        width = job.source.tile_width
        empty = None
        if job.empty_seat:
            decoded = cv2.imdecode(np.frombuffer(job.empty_seat, np.uint8), cv2.IMREAD_GRAYSCALE)
            empty = np.asarray(decoded, dtype=np.uint8) if decoded is not None else None
        self._watch = Watch(job.limits, Roi.of(job.roi, width, width * 9 // 16),
                            opening_hours(job.days, job.periods, job.utc_offset_s), empty)
        self._watch.tick(time.time())  # the offline clock starts now: a camera never seen goes offline too
        self._mark_empty = False
        self._frame_shape: tuple[int, ...] = ()
        self._state: State | None = None
        self._thread = threading.Thread(target=self._run, name=f"camera-{job.code}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def mark_empty(self) -> None:
        self._mark_empty = True

    def tick(self, now: float) -> None:
        with self._lock:
            changes = self._watch.tick(now)
        for change in changes:
            self._outbox.send(Changed(self.job.camera_id, change, None))

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                for at, picture in pictures(self.job.source, self._stop):
                    backoff = 1.0
                    self._picture(at, picture)
            except SourceEnded as error:
                self._report(State(self.job.camera_id, False, str(error)))
            except Exception:
                log.exception("camera %s: analysis failed; reopening", self.job.code)
            self._stop.wait(backoff)
            backoff = min(_MAX_BACKOFF_S, backoff * 2)

    def _picture(self, at: float, picture: Picture) -> None:
        gray = np.asarray(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        jpeg = _jpeg(picture)
        watch = self._watch
        with self._lock:
            if self._frame_shape != gray.shape:  # the ROI in pixels of what the source really sends
                self._frame_shape = gray.shape
                watch.roi = Roi.of(self.job.roi, gray.shape[1], gray.shape[0])
            if self._mark_empty:
                self._mark_empty = False
                watch.empty_seat = watch.roi.cut(gray).copy()
                watch.learned_empty_seat = True
            changes = watch.observe(gray, at)
            learned, watch.learned_empty_seat = watch.learned_empty_seat, False
            seat = watch.empty_seat
        self._outbox.send(Tile(self.job.camera_id, at, jpeg))
        for change in changes:
            self._outbox.send(Changed(self.job.camera_id, change, jpeg))
        if learned and seat is not None:
            self._outbox.send(EmptySeat(self.job.camera_id, _png(seat)))
        note = "" if seat is not None else "no empty-seat picture yet: mark the seat empty while nobody sits there"
        self._report(State(self.job.camera_id, True, note))

    def _report(self, state: State) -> None:
        if state != self._state:
            self._state = state
            self._outbox.send(state)


def main(connection: Connection) -> None:
    """The worker process: serve the server's requests until the pipe closes."""
    follow_parent()  # a server killed outright closes no pipe in time: the kernel ends us with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us by closing the pipe
    logging.basicConfig(level=logging.INFO, format="%(asctime)s analysis %(levelname)s %(message)s")
    cv2.setNumThreads(1)  # cores are shared by many cameras; OpenCV's own pool only adds switching
    outbox = _Outbox(connection)
    watchers: dict[int, CameraWatcher] = {}
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(1.0):
            for watcher in list(watchers.values()):
                watcher.tick(time.time())

    threading.Thread(target=ticker, name="ticker", daemon=True).start()
    try:
        while True:
            try:
                request = connection.recv()
            except (EOFError, OSError):
                return
            match request:
                case ("watch", Job() as job):
                    if old := watchers.pop(job.camera_id, None):
                        old.stop()
                    watchers[job.camera_id] = CameraWatcher(job, outbox)
                    watchers[job.camera_id].start()
                case ("unwatch", int(camera_id)):
                    if old := watchers.pop(camera_id, None):
                        old.stop()
                case ("mark_empty", int(camera_id)):
                    if watcher := watchers.get(camera_id):
                        watcher.mark_empty()
    finally:
        done.set()
        for watcher in watchers.values():
            watcher.stop()
