"""One camera's ingest: a supervised ffmpeg, the only connection to the camera's main stream, that
copies it into segments and, when asked, also writes the live stream to a pipe (video.live.pipes)
for the focused viewers, the wall's tiles and the analysis.

The watchdog restarts ffmpeg when it exits or stalls (no finished segment for two segment lengths
and a margin), with backoff; the time between the last segment before a failure and the first
after it is stored as a gap. Finished segments are read from ffmpeg's segment list and indexed,
each only once it is a complete, readable file (video.recording.mp4file).

Taking a camera over (after a crash, or from a process that died) starts by ending any writer still
in its folder and indexing what that writer finished; the time the camera went unrecorded is a gap.
ffmpeg dies with the server (base.children), so a killed server loses at most the segment being
written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from base.children import die_with_parent
from video.cameras.spec import scrub
from video.live.feed import LiveFeed
from video.live.pipes import LivePipe
from video.recording.ffmpeg import Outputs, audio_unfit_for_mp4, ingest_args, segment_listing
from video.recording.mp4file import unreadable

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

    async def last_end(self) -> datetime | None:
        """The end of the camera's last indexed segment."""


@dataclass(frozen=True)
class Consumers:
    """Who else takes the camera's stream from the recorder's one connection."""

    live: LiveFeed | None = None  # focused viewers, tiles and analysis
    lost: Callable[[str], None] | None = None  # the stream stopped, and why


class Recorder:
    """With `index` None nothing is recorded: the ingest serves only its consumers."""

    def __init__(self, ffmpeg: str, url: str, directory: Path, segment_s: int, index: RecordingIndex | None,
                 name: str, consumers: Consumers | None = None) -> None:
        self._ffmpeg = ffmpeg
        self._url = url
        self._directory = directory
        self._segment_s = segment_s
        self._index = index
        self._name = name
        self._consumers = consumers or Consumers()
        self._stall_s = 2 * segment_s + 10
        self._audio = "copy"  # "aac" once the camera's audio proves unfit for MP4
        self._audio_refused = False  # the last ffmpeg run stopped because MP4 cannot hold the audio
        self.restarts = 0

    async def run(self) -> None:
        """Record until cancelled."""
        self._directory.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(end_leftover_writers, self._directory)
        gap_open = False
        if self._index is not None:
            await self._recover(self._index)
            last = await self._index.last_end()
            gap_open = last is not None  # unrecorded from the last segment until this recorder's first
            if gap_open:
                await self._index.gap_opened(last or datetime.now(UTC), "not recorded: the recorder was stopped")
        backoff = 1.0
        while True:
            started = time.monotonic()
            last_end, reason = await self._run_once(gap_open)
            if self._consumers.lost is not None:
                self._consumers.lost(reason)
            if last_end is None and self._audio == "copy" and self._audio_refused:
                log.info("recorder %s: the camera's audio cannot go into MP4 as it is: recording it as AAC",
                         self._name)
                self._audio = "aac"
                continue
            if last_end is not None:
                gap_open = False
            if not gap_open and self._index is not None:  # the gap starts where the recording stopped
                await self._index.gap_opened(last_end or datetime.now(UTC), reason)
                gap_open = True
            self.restarts += 1
            backoff = 1.0 if time.monotonic() - started > 60 else min(_MAX_BACKOFF_S, backoff * 2)
            log.warning("recorder %s: %s; restarting in %.0f s", self._name, reason, backoff)
            await asyncio.sleep(backoff)

    async def _recover(self, index: RecordingIndex) -> None:
        """Index what an earlier run (of this process or of one that died) finished but did not index."""
        for listing in sorted(self._directory.glob("segments*.csv")):
            listed = SegmentList(listing, self._directory)
            for segment in listed.finished(None):
                if self._readable(segment):
                    await index.segment(segment)
            self._drop_unlisted(listing.stem.removeprefix("segments-"), listed)
            listing.unlink(missing_ok=True)

    def _drop_unlisted(self, run: str, listed: SegmentList) -> None:
        """Delete a stopped run's files its list never named: the segment it was writing as it died,
        unfinished (a run that stopped cleanly has listed every file it wrote)."""
        for path in self._directory.glob(f"*-{run}.mp4"):
            if path.name not in listed.names:
                log.warning("recorder %s: %s was being written as its writer stopped; not indexed", self._name,
                            path.name)
                path.unlink(missing_ok=True)

    async def _run_once(self, gap_open: bool) -> tuple[datetime | None, str]:
        """Run ffmpeg until it fails; the end of the last segment it finished, and why it stopped."""
        run = secrets.token_hex(4)
        listing = self._directory / segment_listing(run)
        consumers, index = self._consumers, self._index
        pipes = LivePipe(consumers.live)
        outputs = Outputs(record=index is not None, live=consumers.live is not None)
        opened = datetime.now(UTC)
        try:
            process = await asyncio.create_subprocess_exec(
                self._ffmpeg, *ingest_args(self._url, self._segment_s, run, outputs, self._audio, opened),
                cwd=self._directory, stdin=asyncio.subprocess.DEVNULL,
                stdout=pipes.stdout, stderr=asyncio.subprocess.PIPE, preexec_fn=die_with_parent())
        except BaseException:
            pipes.abandon()
            raise
        listed = SegmentList(listing, self._directory, opened)
        last_end: datetime | None = None
        last_progress = time.monotonic()

        def progressed() -> None:
            nonlocal last_progress
            last_progress = time.monotonic()

        try:
            await pipes.spawned(progressed if index is None else lambda: None)
            while True:
                await asyncio.sleep(0.5)
                writing = process.pid if process.returncode is None else None
                for segment in listed.finished(writing) if index is not None else ():
                    assert index is not None
                    last_progress = time.monotonic()
                    if not await asyncio.to_thread(self._readable, segment):
                        if last_end is not None or not gap_open:  # mid-run: the lost segment is a gap of its own
                            await index.gap_opened(segment.started_at, "a segment was unreadable")
                            await index.gap_closed(segment.ended_at)
                        continue
                    if last_end is None and gap_open:
                        await index.gap_closed(segment.started_at)
                    last_end = segment.ended_at
                    await index.segment(segment)
                if process.returncode is not None:
                    error = (await process.stderr.read()).decode(errors="replace") if process.stderr else ""
                    self._audio_refused = audio_unfit_for_mp4(error)
                    return last_end, f"ffmpeg exited ({process.returncode}): {_clean(error, self._url)}"
                if time.monotonic() - last_progress > self._stall_s:
                    return last_end, f"nothing from the camera for {self._stall_s} s"
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 5)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            await pipes.close()
            if index is not None:
                # ffmpeg writes the last segment's line as it stops: index it too (it has closed every file).
                for segment in listed.finished(None):
                    if self._readable(segment):
                        with contextlib.suppress(Exception):
                            await asyncio.shield(index.segment(segment))
                self._drop_unlisted(run, listed)
                listing.unlink(missing_ok=True)

    def _readable(self, segment: Segment) -> bool:
        """True if the segment may be indexed; an unreadable one is deleted, with the reason logged."""
        problem = unreadable(segment.path)
        if problem is None:
            return True
        log.warning("recorder %s: %s is not indexed, %s", self._name, segment.path.name, problem)
        segment.path.unlink(missing_ok=True)
        return False


def end_leftover_writers(directory: Path, grace_s: float = 3.0) -> list[int]:
    """End every process (an orphaned ffmpeg) still working in `directory`, which this process has just
    claimed; give each `grace_s` to close its file, then kill it. The processes ended."""
    here = directory.resolve()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if Path(os.readlink(f"/proc/{entry}/cwd")) == here:
                found.append(int(entry))
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while any(_running(pid) for pid in found) and time.monotonic() < deadline:
            time.sleep(0.05)
    if found:
        log.warning("ended %d process(es) left writing in %s: %s", len(found), here, found)
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie is reaped by init; it writes nothing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


class SegmentList:
    """ffmpeg's segment list, read as it grows. ffmpeg prints a segment's line *before* it closes the
    segment's file (libavformat/segment.c: the list is flushed, then the file), so a listed segment is
    finished only once the writing process no longer holds it open; until then it waits here.

    Stream seconds become wall-clock time from `started` (when ffmpeg was started: the stream's
    first packet arrived a connection's setup later, and the run before had ended, so segments are
    placed at most that setup early and never over the run before). A run recovered after its
    writer died has no known start: the segments' own write times place it (_latest_anchor)."""

    def __init__(self, listing: Path, directory: Path, started: datetime | None = None) -> None:
        self._listing = listing
        self._directory = directory
        self._read = 0
        self._anchor = started
        self._waiting: list[tuple[Path, datetime, datetime]] = []
        self.names: set[str] = set()  # every file the list has named so far

    def finished(self, writer_pid: int | None) -> list[Segment]:
        """Listed segments whose file `writer_pid` (None: the writer has exited) no longer has open."""
        lines, self._read = _new_lines(self._listing, self._read)
        if self._anchor is None and lines:
            self._anchor = _latest_anchor(self._directory, lines)
        for line in lines:
            self.names.add(line.split(",", 1)[0])
            if self._anchor is not None and (listed := _segment(self._directory, line, self._anchor)):
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


def _segment(directory: Path, line: str, anchor: datetime) -> tuple[Path, datetime, datetime] | None:
    """A segment-list line (name, start, end in stream seconds) as its file and wall-clock times."""
    name, start_s, end_s = line.split(",")[:3]
    path = directory / name
    if not path.exists():
        return None
    return path.resolve(), anchor + timedelta(seconds=float(start_s)), anchor + timedelta(seconds=float(end_s))


def _latest_anchor(directory: Path, lines: list[str]) -> datetime | None:
    """For a run that was not watched as it started (recovered after it died): a segment is last
    written once its end has arrived, so each one's modification time less its end is a moment at or
    after the stream's second 0 arrived; the earliest of them is the closest."""
    bounds = []
    for line in lines:
        name, _, end_s = line.split(",")[:3]
        with contextlib.suppress(OSError):
            written = datetime.fromtimestamp((directory / name).stat().st_mtime, UTC)
            bounds.append(written - timedelta(seconds=float(end_s)))
    return min(bounds, default=None)


def _clean(stderr: str, url: str) -> str:
    """The end of ffmpeg's complaint, with the stream's credentials taken out."""
    return scrub(stderr, url).strip()[-300:]
