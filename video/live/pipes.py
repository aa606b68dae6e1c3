"""Reading what a camera's ingest ffmpeg writes to its pipes, as fast as it writes it: the live
stream (fragmented MP4) into the camera's feed, and the keyframe pictures (multipart JPEG) to a
callback. A pipe not drained would stall ffmpeg and with it the recording, so neither reader ever
waits for a consumer.
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
from video.live.fmp4 import Malformed, header_size, opens_with_keyframe, read_init

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
    size = header_size(head)
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


class Pipes:
    """The pipes of one ffmpeg run: its stdout for the live stream, an inherited fd for pictures.
    Open before spawning; `spawned` after, which closes ffmpeg's ends here and starts the readers."""

    def __init__(self, feed: LiveFeed | None, picture: Callable[[float, bytes], None] | None) -> None:
        self._feed = feed
        self._picture = picture
        self._live = os.pipe() if feed is not None else None
        self._pictures = os.pipe() if picture is not None else None
        for pair in (self._live, self._pictures):
            if pair is not None:
                widen(pair[0])
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def stdout(self) -> int:
        return self._live[1] if self._live else asyncio.subprocess.DEVNULL

    @property
    def pictures_fd(self) -> int | None:
        return self._pictures[1] if self._pictures else None

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self._pictures[1],) if self._pictures else ()

    async def spawned(self, progress: Callable[[], None]) -> None:
        for pair, read in ((self._live, self._read_live), (self._pictures, self._read_pictures)):
            if pair is None:
                continue
            os.close(pair[1])
            self._tasks.append(asyncio.create_task(read(await reader_of(pair[0]), progress)))

    async def _read_live(self, reader: asyncio.StreamReader, progress: Callable[[], None]) -> None:
        assert self._feed is not None
        await read_live(reader, self._feed, progress)

    async def _read_pictures(self, reader: asyncio.StreamReader, progress: Callable[[], None]) -> None:
        assert self._picture is not None
        picture = self._picture

        def arrived(at: float, jpeg: bytes) -> None:
            progress()
            picture(at, jpeg)

        await read_pictures(reader, arrived)

    async def close(self) -> None:
        """After ffmpeg has exited: the readers finish what is in the pipes, then stop."""
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def abandon(self) -> None:
        """ffmpeg never started: close both ends here."""
        for pair in (self._live, self._pictures):
            if pair is not None:
                for fd in pair:
                    with contextlib.suppress(OSError):
                        os.close(fd)
