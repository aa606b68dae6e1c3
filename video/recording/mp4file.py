"""Whether a recorded segment is a complete fragmented MP4, read from its box structure alone.

A segment is indexed only if it is whole: ftyp, moov, then at least one moof with its mdat, every box
ending inside the file and the last one exactly at its end. A file cut short (a writer killed, a disk
full) or holding a header and no picture (a camera that dropped as the segment opened) fails, so
playback and evidence never meet a file that cannot be opened.
"""

from __future__ import annotations

import itertools
import os
import struct
from pathlib import Path


def unreadable(path: Path) -> str | None:
    """Why the segment is not complete and readable, or None if it is."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            kinds: list[bytes] = []
            offset = 0
            while offset < size:
                f.seek(offset)
                header = f.read(16)
                if len(header) < 8:
                    return f"a box header is cut short at byte {offset}"
                length, kind = struct.unpack(">I4s", header[:8])
                if length == 1:  # a 64-bit size follows the type
                    if len(header) < 16:
                        return f"a box header is cut short at byte {offset}"
                    (length,) = struct.unpack(">Q", header[8:16])
                elif length == 0:  # the box runs to the end of the file
                    length = size - offset
                if length < 8 or offset + length > size:
                    return f"the {kind.decode(errors='replace')!r} box at byte {offset} is cut short"
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
