"""One camera's recorder: a supervised ffmpeg that copies the main stream into segments.

The watchdog restarts ffmpeg when it exits or stalls (no finished segment for two segment lengths
and a margin), with backoff; the time between the last segment before a failure and the first
after it is stored as a gap. Finished segments are read from ffmpeg's segment list and indexed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from video.cameras.spec import scrub
from video.recording.ffmpeg import record_args

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Segment:
    path: Path
    started_at: datetime
    ended_at: datetime
    bytes: int


class RecordingIndex(Protocol):
    """Where a recorder reports (video/recordings.py keeps it in PostgreSQL)."""

    async def segment(self, segment: Segment) -> None: ...

    async def gap_opened(self, at: datetime, reason: str) -> None: ...

    async def gap_closed(self, at: datetime) -> None: ...


class Recorder:
    def __init__(self, ffmpeg: str, url: str, directory: Path, segment_s: int, index: RecordingIndex,
                 name: str) -> None:
        self._ffmpeg = ffmpeg
        self._url = url
        self._directory = directory
        self._segment_s = segment_s
        self._index = index
        self._name = name
        self._stall_s = 2 * segment_s + 10
        self.restarts = 0

    async def run(self) -> None:
        """Record until cancelled."""
        self._directory.mkdir(parents=True, exist_ok=True)
        backoff = 1.0
        gap_open = False
        while True:
            started = time.monotonic()
            last_end, reason = await self._run_once(gap_open)
            if last_end is not None:
                gap_open = False
            if not gap_open:  # the gap starts where the recording stopped, not where we noticed
                await self._index.gap_opened(last_end or datetime.now(UTC), reason)
                gap_open = True
            self.restarts += 1
            backoff = 1.0 if time.monotonic() - started > 60 else min(_MAX_BACKOFF_S, backoff * 2)
            log.warning("recorder %s: %s; restarting in %.0f s", self._name, reason, backoff)
            await asyncio.sleep(backoff)

    async def _run_once(self, gap_open: bool) -> tuple[datetime | None, str]:
        """Run ffmpeg until it fails; the end of the last segment it finished, and why it stopped."""
        listing = self._directory / "segments.csv"
        listing.unlink(missing_ok=True)
        process = await asyncio.create_subprocess_exec(
            self._ffmpeg, *record_args(self._url, self._segment_s), cwd=self._directory,
            env={**os.environ, "TZ": "UTC"}, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        listed = SegmentList(listing, self._directory)
        last_end: datetime | None = None
        last_progress = time.monotonic()
        try:
            while True:
                await asyncio.sleep(0.5)
                for segment in listed.finished(process.pid if process.returncode is None else None):
                    if last_end is None and gap_open:
                        await self._index.gap_closed(segment.started_at)
                    last_end = segment.ended_at
                    last_progress = time.monotonic()
                    await self._index.segment(segment)
                if process.returncode is not None:
                    error = (await process.stderr.read()).decode(errors="replace") if process.stderr else ""
                    return last_end, f"ffmpeg exited ({process.returncode}): {_clean(error, self._url)}"
                if time.monotonic() - last_progress > self._stall_s:
                    return last_end, f"no segment for {self._stall_s} s"
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 5)
                except TimeoutError:
                    process.kill()
                    await process.wait()
                # ffmpeg writes the last segment's line as it stops: index it too (it has closed every file).
                for segment in listed.finished(None):
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._index.segment(segment))


class SegmentList:
    """ffmpeg's segment list, read as it grows. ffmpeg prints a segment's line *before* it closes the
    segment's file (libavformat/segment.c: the list is flushed, then the file), so a listed segment is
    finished only once the writing process no longer holds it open; until then it waits here."""

    def __init__(self, listing: Path, directory: Path) -> None:
        self._listing = listing
        self._directory = directory
        self._read = 0
        self._anchor: datetime | None = None
        self._waiting: list[tuple[Path, datetime, datetime]] = []

    def finished(self, writer_pid: int | None) -> list[Segment]:
        """Listed segments whose file `writer_pid` (None: the writer has exited) no longer has open."""
        lines, self._read = _new_lines(self._listing, self._read)
        for line in lines:
            listed, self._anchor = _segment(self._directory, line, self._anchor)
            if listed is not None:
                self._waiting.append(listed)
        still_open = _open_files(writer_pid) if writer_pid is not None and self._waiting else set()
        done = []
        while self._waiting and self._waiting[0][0] not in still_open:
            path, started, ended = self._waiting.pop(0)
            with contextlib.suppress(FileNotFoundError):
                done.append(Segment(path, started, ended, path.stat().st_size))
        return done


def _open_files(pid: int) -> set[Path]:
    """The files a process has open (Linux /proc); empty if it is gone."""
    fds = Path(f"/proc/{pid}/fd")
    found = set()
    try:
        for fd in os.listdir(fds):
            with contextlib.suppress(OSError):
                found.add(Path(os.readlink(fds / fd)))
    except OSError:  # the process has exited: it holds nothing
        return set()
    return found


def _new_lines(listing: Path, read: int) -> tuple[list[str], int]:
    try:
        with listing.open("rb") as f:
            f.seek(read)
            chunk = f.read()
    except FileNotFoundError:
        return [], read
    complete = chunk[:chunk.rfind(b"\n") + 1]
    return complete.decode().splitlines(), read + len(complete)


def _segment(directory: Path, line: str,
             anchor: datetime | None) -> tuple[tuple[Path, datetime, datetime] | None, datetime | None]:
    """A segment-list line (name, start, end in stream seconds) as its file and wall-clock times. The
    first segment's file name (its UTC opening second) anchors the stream clock of this ffmpeg run."""
    name, start_s, end_s = line.split(",")[:3]
    path = directory / name
    if not path.exists():
        return None, anchor
    start, end = float(start_s), float(end_s)
    if anchor is None:
        anchor = datetime.strptime(name.removesuffix(".mp4"), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        anchor -= timedelta(seconds=start)
    return (path.resolve(), anchor + timedelta(seconds=start), anchor + timedelta(seconds=end)), anchor


def _clean(stderr: str, url: str) -> str:
    """The end of ffmpeg's complaint, with the stream's credentials taken out."""
    return scrub(stderr, url).strip()[-300:]
