"""An analysis worker process: turns what the server hands it from each camera's one ingest into
a tile-size picture — a live fragment that opens with a keyframe (that one picture decoded), or a
sub-stream's JPEG — runs the camera's detectors on it, and sends the tile, condition changes and
learned empty seats back over a pipe.

A keyframe is decoded and the decoder flushed at once: decoding only keyframes of a stream with
B-frames, a decoder left to itself holds each picture until its reorder buffer fills, several
keyframes (seconds) later. It runs outside the server's event loop, so decoding and the detectors
never delay a dispatch ticket. It exits when the server's end of the pipe closes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

import av
import cv2
import numpy as np
import numpy.typing as npt

from base.children import follow_parent
from video.analysis.detectors import Change, Gray, Roi, Thresholds, Watch, opening_hours
from video.live.fmp4 import avc_config, first_video_sample, read_init

log = logging.getLogger(__name__)

Picture = npt.NDArray[np.uint8]  # BGR, tile size
_JPEG_QUALITY = 70



@dataclass(frozen=True)
class Job:
    """A camera to watch."""

    camera_id: int
    code: str
    tile_width: int
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


def keyframe_picture(init_data: bytes, fragment: bytes, width: int) -> Picture | None:
    """The keyframe a live fragment opens with, taken straight from the fragment (no demuxer), decoded
    by a decoder of its own that is flushed at once, and scaled by swscale to `width`. A decoder per
    picture costs no more CPU than one kept per camera, and keeps no 1080p buffers between keyframes."""
    init = read_init(init_data)
    config, sample = avc_config(init), first_video_sample(fragment, init)
    if config is None or sample is None:
        return None
    context = av.CodecContext.create("h264", "r")
    assert isinstance(context, av.VideoCodecContext)
    context.extradata = config
    context.thread_count = 1  # many cameras share the cores: one thread each is cheapest overall
    frames = [*context.decode(av.Packet(sample)), *context.decode(None)]  # the flush: no reorder wait
    if not frames:
        return None
    frame = frames[0]
    height = 2 * round(width * frame.height / frame.width / 2)
    return np.asarray(frame.to_ndarray(width=width, height=height, format="bgr24", interpolation="AREA"),
                      dtype=np.uint8)


def _png(gray: Gray) -> bytes:
    ok, data = cv2.imencode(".png", gray)
    return data.tobytes() if ok else b""


class CameraWatcher:
    def __init__(self, job: Job, outbox: _Outbox) -> None:
        self.job = job
        self._outbox = outbox
        self._lock = threading.Lock()  # the watch is fed by the pictures and ticked by the ticker
        width = 384
        empty = None
        if job.empty_seat:
            decoded = cv2.imdecode(np.frombuffer(job.empty_seat, np.uint8), cv2.IMREAD_GRAYSCALE)
            empty = np.asarray(decoded, dtype=np.uint8) if decoded is not None else None
            if empty is not None:
                width = empty.shape[1]
        self._watch = Watch(job.limits, Roi.of(job.roi, width, width * 9 // 16),
                            opening_hours(job.days, job.periods, job.utc_offset_s), empty)
        self._watch.tick(time.time())  # the offline clock starts now: a camera never seen goes offline too
        self._mark_empty = False
        self._frame_shape: tuple[int, ...] = ()
        self._state: State | None = None

    def mark_empty(self) -> None:
        self._mark_empty = True

    def tick(self, now: float) -> None:
        with self._lock:
            changes = self._watch.tick(now)
        for change in changes:
            self._outbox.send(Changed(self.job.camera_id, change, None))

    def keyframe(self, at: float, init: bytes, fragment: bytes) -> None:
        picture = keyframe_picture(init, fragment, self.job.tile_width)
        if picture is not None:
            self._picture(at, picture, _jpeg(picture))

    def picture(self, at: float, jpeg: bytes) -> None:
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            log.warning("camera %s: a picture that is not a JPEG (%d bytes); skipped", self.job.code, len(jpeg))
            return
        self._picture(at, np.asarray(decoded, dtype=np.uint8), jpeg)

    def _picture(self, at: float, picture: Picture, jpeg: bytes) -> None:
        self._outbox.send(Tile(self.job.camera_id, at, jpeg))
        gray: Gray = np.asarray(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
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


def _guarded(watcher: CameraWatcher, analyse: Callable[..., None], *args: object) -> None:
    """One picture's analysis; a picture that cannot be decoded or analysed is logged and skipped."""
    try:
        analyse(*args)
    except Exception:
        log.exception("camera %s: analysing a picture failed", watcher.job.code)


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
                case ("keyframe", int(camera_id), float(at), bytes(init), bytes(fragment)):
                    if watcher := watchers.get(camera_id):
                        _guarded(watcher, watcher.keyframe, at, init, fragment)
                case ("picture", int(camera_id), float(at), bytes(jpeg)):
                    if watcher := watchers.get(camera_id):
                        _guarded(watcher, watcher.picture, at, jpeg)
                case ("watch", Job() as job):
                    watchers[job.camera_id] = CameraWatcher(job, outbox)
                case ("unwatch", int(camera_id)):
                    watchers.pop(camera_id, None)
                case ("mark_empty", int(camera_id)):
                    if watcher := watchers.get(camera_id):
                        watcher.mark_empty()
    finally:
        done.set()
