"""Pictures for analysis and for the wall's tiles, decoded as sparingly as the source allows.

A main stream is demuxed in full but only its keyframes are decoded (PyAV's skip_frame, and
non-key packets never reach the decoder): about one picture per GOP, never every frame. A
sub-stream is small, so all of it is decoded and one picture kept every `1 / max_fps` seconds.
Each kept picture is scaled once, by swscale, straight to tile size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import av
import av.container
import av.video
import numpy as np
import numpy.typing as npt

Picture = npt.NDArray[np.uint8]  # BGR, tile size

_OPEN_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Source:
    url: str
    keyframes_only: bool  # True for a main stream; a sub-stream is decoded in full
    tile_width: int
    max_fps: float


class SourceEnded(Exception):
    """The source cannot be opened, has no video, or stopped sending."""


def _open(url: str) -> av.container.InputContainer:
    scheme = urlsplit(url).scheme.lower()
    options: dict[str, str] = {}
    if scheme in ("rtsp", "rtsps"):
        options = {"rtsp_transport": "tcp", "timeout": str(int(_READ_TIMEOUT_S * 1e6))}
    target = urlsplit(url).path if scheme == "file" else url
    try:
        return av.open(target, options=options, timeout=(_OPEN_TIMEOUT_S, _READ_TIMEOUT_S))
    except (av.FFmpegError, OSError) as error:
        raise SourceEnded(f"cannot open: {type(error).__name__}") from None


def pictures(source: Source, stop: threading.Event) -> Iterator[tuple[float, Picture]]:
    """(arrival time, picture) until `stop` is set; raises SourceEnded when the source fails. A
    file source plays at its own pace, round and round, as a live camera would."""
    is_file = urlsplit(source.url).scheme.lower() == "file"
    container = _open(source.url)
    try:
        if not container.streams.video:
            raise SourceEnded("the source has no video")
        stream = container.streams.video[0]
        context = stream.codec_context
        context.thread_count = 1  # many cameras share the cores: one thread each is cheapest overall
        if source.keyframes_only:
            context.skip_frame = "NONKEY"
        width = source.tile_width
        height = 2 * round(width * (stream.height or 9) / (stream.width or 16) / 2)
        interval = 1.0 / source.max_fps
        next_at = 0.0
        pace = _Pace() if is_file else None
        while not stop.is_set():
            try:
                for packet in container.demux(stream):
                    if stop.is_set():
                        return
                    if pace is not None and packet.pts is not None and packet.time_base is not None:
                        pace.wait(float(packet.pts * packet.time_base), stop)
                    if packet.size == 0 or (source.keyframes_only and not packet.is_keyframe):
                        continue
                    now = time.time()
                    if source.keyframes_only and now < next_at:
                        continue  # a short-GOP stream: keyframes come faster than analysis needs
                    for frame in packet.decode():
                        if now < next_at:
                            continue
                        next_at = now + interval * 0.9
                        yield now, np.asarray(frame.to_ndarray(width=width, height=height, format="bgr24",
                                                               interpolation="AREA"), dtype=np.uint8)
            except (av.FFmpegError, OSError) as error:
                raise SourceEnded(f"stopped sending: {type(error).__name__}") from None
            if pace is None:
                raise SourceEnded("the stream ended")
            container.seek(0)  # a file: play it again, continuing the clock
            pace.restart()
    finally:
        container.close()


class _Pace:
    """Plays a file's timestamps against the wall clock, across loops."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._offset = 0.0  # stream seconds played in earlier loops
        self._last = 0.0

    def wait(self, pts_s: float, stop: threading.Event) -> None:
        self._last = max(self._last, pts_s)
        delay = self._start + self._offset + pts_s - time.monotonic()
        if delay > 0:
            stop.wait(delay)

    def restart(self) -> None:
        self._offset += self._last + 0.04
        self._last = 0.0
