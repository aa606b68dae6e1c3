"""Reading what an ffmpeg writes to a pipe, as fast as it writes it: a camera's live stream
(fragmented MP4) into its feed, a sub-stream's pictures (multipart JPEG) to a callback. A pipe not
drained would stall ffmpeg and with it the recording, so neither reader ever waits for a consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable

from video.live.feed import LiveFeed
from video.live.fmp4 import Malformed, box_header, opens_with_keyframe, read_init

log = logging.getLogger(__name__)

PIPE_BYTES = 2**20  # seconds of a camera's stream, should the event loop be busy for a moment
_F_SETPIPE_SZ = 1031  # Linux fcntl
_MAX_BOX = 64 * 2**20  # a fragment of half a second is far smaller; bigger means garbage


async def reader_of(fd: int) -> asyncio.StreamReader:
    """An asyncio reader of a pipe's read end (which it then owns)."""
    reader = asyncio.StreamReader(limit=PIPE_BYTES)
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                       os.fdopen(fd, "rb", 0))
    return reader


def widen(fd: int) -> None:
    """Give a pipe a buffer of PIPE_BYTES (Linux; the default 64 KiB is a fraction of a second)."""
    with contextlib.suppress(OSError):  # above pipe-max-size for an unprivileged user: the default works
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)


async def _box(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(8)
    if head[:4] == b"\x00\x00\x00\x01":
        head += await reader.readexactly(8)
    _, size, _ = box_header(head, None)
    if size > _MAX_BOX:
        raise Malformed(f"a box of {size} bytes")
    return head + await reader.readexactly(size - len(head))


async def read_live(reader: asyncio.StreamReader, feed: LiveFeed, progress: Callable[[], None]) -> None:
    """Until the pipe closes: the init segment, then each fragment (moof + mdat) to the feed."""
    head = b""
    try:
        while True:  # ftyp, then moov: the init segment
            box = await _box(reader)
            head += box
            if box[4:8] == b"moov":
                break
        init = read_init(head)
        feed.begin(init)
        while True:
            moof = await _box(reader)
            if moof[4:8] != b"moof":
                continue  # e.g. the mfra index ffmpeg writes as it ends
            mdat = await _box(reader)
            feed.fragment(moof + mdat, opens_with_keyframe(moof, init))
            progress()
    except asyncio.IncompleteReadError:
        pass  # ffmpeg exited
    except Malformed as error:  # never seen from ffmpeg; still, the pipe must be drained or ffmpeg stalls
        log.error("the live stream is not fragmented MP4 (%s); drained unread until ffmpeg restarts", error)
        await _drain(reader)
    finally:
        feed.ended()


async def read_pictures(reader: asyncio.StreamReader, picture: Callable[[float, bytes], None]) -> None:
    """Until the pipe closes: each JPEG of ffmpeg's multipart output, with the time it arrived."""
    try:
        while True:
            headers = await reader.readuntil(b"\r\n\r\n")
            length = _content_length(headers)
            if length is None:
                continue
            jpeg = await reader.readexactly(length)
            picture(time.time(), jpeg)
    except asyncio.IncompleteReadError:
        pass  # ffmpeg exited
    except (asyncio.LimitOverrunError, ValueError) as error:
        log.error("the pictures are not multipart JPEG (%s); drained unread until ffmpeg restarts", error)
        await _drain(reader)


def _content_length(headers: bytes) -> int | None:
    for line in headers.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
            if not 0 < length <= _MAX_BOX:
                raise ValueError(f"a picture of {length} bytes")
            return length
    return None


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(PIPE_BYTES):
        pass


class LivePipe:
    """ffmpeg's stdout, for the live stream of one run. Open before spawning; `spawned` after, which
    closes ffmpeg's end here and starts the reader."""

    def __init__(self, feed: LiveFeed | None) -> None:
        self._feed = feed
        self._pair = os.pipe() if feed is not None else None
        if self._pair is not None:
            widen(self._pair[0])
        self._task: asyncio.Task[None] | None = None

    @property
    def stdout(self) -> int:
        return self._pair[1] if self._pair else asyncio.subprocess.DEVNULL

    async def spawned(self, progress: Callable[[], None]) -> None:
        if self._pair is None or self._feed is None:
            return
        os.close(self._pair[1])
        self._task = asyncio.create_task(read_live(await reader_of(self._pair[0]), self._feed, progress))

    async def close(self) -> None:
        """After ffmpeg has exited: the reader finishes what is in the pipe, then stops."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 2)
            self._task = None

    def abandon(self) -> None:
        """ffmpeg never started: close both ends here."""
        for fd in self._pair or ():
            with contextlib.suppress(OSError):
                os.close(fd)
