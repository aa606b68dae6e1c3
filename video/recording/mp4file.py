"""Whether a recorded segment is a complete fragmented MP4, read from its box structure alone.

A segment is indexed only if it is whole: ftyp, moov, then at least one moof with its mdat, every box
ending inside the file and the last one exactly at its end. A file cut short (a writer killed, a disk
full) or holding a header and no picture (a camera that dropped as the segment opened) fails, so
playback and evidence never meet a file that cannot be opened.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from video.live.fmp4 import Malformed, box_header


def unreadable(path: Path) -> str | None:
    """Why the segment is not complete and readable, or None if it is."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            kinds: list[bytes] = []
            offset = 0
            while offset < size:
                f.seek(offset)
                head = f.read(16)
                try:
                    kind, length, _ = box_header(head, size - offset)
                except Malformed:
                    if len(head) < 8:
                        return f"a box header is cut short at byte {offset}"
                    return f"the {head[4:8].decode(errors='replace')!r} box at byte {offset} is cut short"
                kinds.append(kind)
                offset += length
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not kinds or kinds[0] != b"ftyp":
        return "it does not begin as an MP4 file"
    if b"moov" not in kinds:
        return "it has no movie header"
    if not any(kind == b"moof" and following == b"mdat" for kind, following in itertools.pairwise(kinds)):
        return "it holds no picture (no fragment)"
    return None
