"""A call's recording, written by a thread of its own so that encoding never holds up the mixer.

The sound is the mix every party heard, Opus in WebM, one 20 ms frame per mixer beat from the start
of the call to its end (silence included: the file's length is the call's length). The caller's
picture, when there is one, goes to its own WebM (VP8, at most 10 pictures a second), a new file
whenever the picture's size changes (a phone turned, a rejoin). WebM is written as it goes, so a
crash loses at most the last cluster of each file and the half second of sound not yet handed to the
writer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.container

from calls.mixing import FRAME, RATE, Samples

log = logging.getLogger(__name__)

_VIDEO_EVERY_S = 0.1
# Opus for speech, here and for what each party hears: CELT alone ("lowdelay": 2.5 ms look-ahead, not
# the 6.5+ of voip's mode) at a low complexity, which costs about a third of the CPU of libopus's
# defaults per frame on this project's machine (49 µs against 80–136) at the same 32 kbit/s.
VOICE_BIT_RATE = 32_000
VOICE_OPTIONS = {"application": "lowdelay", "compression_level": "3"}
# Frames of sound handed to the writer at once (0.5 s): waking it every 20 ms per call cost more than
# the writing.
_BATCH = 25
_QUEUE = 20  # batches (10 s of sound): beyond it the disk is not keeping up, and frames are counted lost
_STOP = None


def voice_frame(samples: Samples, pts: int) -> av.AudioFrame:
    """20 ms of the mixer's sound as PyAV's frame, at `pts` samples from the start."""
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(samples))
    frame.planes[0].update(samples.tobytes())
    frame.sample_rate, frame.time_base, frame.pts = RATE, Fraction(1, RATE), pts
    return frame


@dataclass(frozen=True)
class Recorded:
    files: tuple[Path, ...]  # the sound first, then each stretch of picture
    seconds: float  # of sound
    lost_frames: int  # frames the writer could not keep up with


@dataclass
class _Picture:
    container: av.container.OutputContainer
    stream: av.VideoStream
    size: tuple[int, int]
    started: float


@dataclass
class Recorder:
    folder: Path
    name: str  # files are <name>.webm, <name>-picture-<n>.webm
    _queue: queue.Queue[tuple[str, object, float] | None] = field(default_factory=lambda: queue.Queue(_QUEUE))
    _frames: int = 0
    _batch: list[Samples] = field(default_factory=list)
    _lost: int = 0
    _last_picture: float = 0.0
    _files: list[Path] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._write, name=f"recorder {self.name}", daemon=True)
        self._thread.start()

    def audio(self, samples: Samples) -> None:
        self._batch.append(samples)
        if len(self._batch) >= _BATCH:
            self._hand_over()

    def _hand_over(self) -> None:
        batch, self._batch = self._batch, []
        if batch and not self._offer(("audio", batch, 0.0)):
            self._lost += len(batch) - 1  # _offer counted one

    def video(self, frame: av.VideoFrame) -> None:
        now = time.monotonic()
        if now - self._last_picture >= _VIDEO_EVERY_S:
            self._last_picture = now
            self._offer(("video", frame, now))

    def _offer(self, item: tuple[str, object, float]) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._lost += 1
            return False
        return True

    def finish(self) -> Recorded:
        """Write what is queued and close the files (blocking: call from a thread)."""
        if self._thread is not None:
            self._hand_over()
            # A writer that failed reads no more: waiting for room in its queue would wait forever.
            while self._thread.is_alive():
                try:
                    self._queue.put(_STOP, timeout=0.5)
                    break
                except queue.Full:
                    continue
            self._thread.join()
        return Recorded(tuple(self._files), self._frames * FRAME / RATE, self._lost)

    def _write(self) -> None:
        sound_path = self.folder / f"{self.name}.webm"
        self._files.append(sound_path)
        sound = av.open(str(sound_path), "w", format="webm")
        voice = sound.add_stream("libopus", rate=RATE, layout="mono", options=VOICE_OPTIONS)
        voice.bit_rate = VOICE_BIT_RATE
        picture: _Picture | None = None
        try:
            while (item := self._queue.get()) is not _STOP:
                kind, payload, at = item
                if kind == "audio":
                    assert isinstance(payload, list)
                    for samples in payload:
                        sound.mux(voice.encode(voice_frame(samples, self._frames * FRAME)))
                        self._frames += 1
                else:
                    assert isinstance(payload, av.VideoFrame)
                    picture = self._picture(picture, payload, at)
            sound.mux(voice.encode(None))
        except Exception:
            log.exception("call recording %s failed", self.name)
        finally:
            sound.close()
            if picture is not None:
                _close_picture(picture)

    def _picture(self, picture: _Picture | None, frame: av.VideoFrame, at: float) -> _Picture:
        size = (frame.width - frame.width % 2, frame.height - frame.height % 2)
        if picture is None or picture.size != size:
            if picture is not None:
                _close_picture(picture)
            path = self.folder / f"{self.name}-picture-{len(self._files)}.webm"
            self._files.append(path)
            container = av.open(str(path), "w", format="webm")
            stream = container.add_stream("libvpx", rate=10)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.time_base = Fraction(1, 1000)
            stream.bit_rate = 600_000
            picture = _Picture(container, stream, size, at)
        image = frame.reformat(width=size[0], height=size[1], format="yuv420p")
        image.pts, image.time_base = int((at - picture.started) * 1000), Fraction(1, 1000)
        picture.container.mux(picture.stream.encode(image))
        return picture


def _close_picture(picture: _Picture) -> None:
    try:
        picture.container.mux(picture.stream.encode(None))
    finally:
        picture.container.close()
