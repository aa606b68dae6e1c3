"""Where a time range has no recording: the holes between a camera's indexed segments, each with
the reason the recorder stored for it (camera unreachable, recorder stopped, segment unreadable).

Holes come from the segments themselves, which is what playback and export actually contain; the
stored gaps only explain them. Playback joins segments end to end, so without this a hole would
pass as a jump of the clock in the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from video.recording.evidence import Piece

TOLERANCE = timedelta(seconds=1)  # segments meet to within a frame or two; less than this is no hole


@dataclass(frozen=True)
class Stored:
    """A gap as the recorder recorded it (ended_at None: still open)."""

    started_at: datetime
    ended_at: datetime | None
    reason: str


@dataclass(frozen=True)
class Hole:
    started_at: datetime
    ended_at: datetime
    reason: str

    def json(self) -> dict[str, str | float]:
        return {"started_at": self.started_at.isoformat(), "ended_at": self.ended_at.isoformat(),
                "seconds": round((self.ended_at - self.started_at).total_seconds(), 3), "reason": self.reason}

    def interval(self) -> str:
        """ISO 8601 time interval: start/end."""
        return f"{self.started_at.isoformat()}/{self.ended_at.isoformat()}"


def holes(pieces: Sequence[Piece], since: datetime, until: datetime, stored: Sequence[Stored]) -> list[Hole]:
    """The unrecorded stretches of [since, until), given its segments in time order."""
    found = []
    at = since
    for piece in pieces:
        if piece.started_at - at > TOLERANCE:
            found.append(_explained(at, piece.started_at, stored))
        at = max(at, piece.ended_at)
    if until - at > TOLERANCE:
        found.append(_explained(at, until, stored))
    return found


def _explained(start: datetime, end: datetime, stored: Sequence[Stored]) -> Hole:
    """The hole, with the reason of the stored gap overlapping it most."""
    def overlap(gap: Stored) -> timedelta:
        return min(end, gap.ended_at or end) - max(start, gap.started_at)

    best = max(stored, key=overlap, default=None)
    reason = best.reason if best is not None and overlap(best) > timedelta(0) else "not recorded"
    return Hole(start, end, reason)
