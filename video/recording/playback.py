"""Playback: a camera's segments over a time range, joined without re-encoding (ffmpeg's concat
demuxer, copy) into one fragmented MP4 streamed as it is produced."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from base.children import die_with_parent
from video.recording.evidence import Piece


def _quoted(path: Path) -> str:
    """A path in the concat format's quoting: inside single quotes, a quote is written '\\''."""
    return "'" + str(path).replace("'", "'\\''") + "'"


def concat_list(pieces: Sequence[Piece]) -> str:
    """The segments to join; their paths come from our own index (the recordings folder)."""
    return "ffconcat version 1.0\n" + "".join(f"file {_quoted(p.path)}\n" for p in pieces)


async def stream(ffmpeg: str, pieces: Sequence[Piece]) -> AsyncIterator[bytes]:
    with tempfile.TemporaryDirectory(prefix="liandong-playback-") as folder:
        listing = Path(folder) / "segments.ffconcat"
        listing.write_text(concat_list(pieces), encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "concat", "-safe", "0", "-i",
            str(listing), "-c", "copy", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4",
            "pipe:1", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent(signal.SIGKILL))
        assert process.stdout is not None
        try:
            while chunk := await process.stdout.read(1 << 16):
                yield chunk
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
