"""What supervision sees in a window camera's picture: staff absent from the seat (离岗), the lens
covered or dark, the picture defocused or frozen, the view moved.

Plain functions on small grey frames, and `Watch`, one camera's detector state: it takes frames
and the time, and says when a condition opens and when it clears. No video, process or database
code here, so scripted frames test it directly.

Presence is judged against a picture of the empty seat, not against a learned background: a clerk
who sits still for an hour never fades into "empty", which background subtraction would let happen.
The empty-seat picture comes from the supervisor ("mark seat empty") or is learned while the hall
is closed and the seat has not changed for a while.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import cv2
import msgspec
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.uint8]

# Pictures come a keyframe apart, their arrival times a few milliseconds early or late: a condition
# that began at one picture has lasted its limit at the picture the limit later, even if that picture
# came a hair early (else the alert waits a whole keyframe more, half the time).
_ARRIVAL_JITTER_S = 0.05

ABSENT, OFFLINE, COVERED, DEFOCUSED, FROZEN, MOVED = "absent", "offline", "covered", "defocused", "frozen", "moved"


Seconds = Annotated[int, msgspec.Meta(ge=1, le=24 * 3600)]


class Thresholds(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One camera's thresholds (config.toml [[cameras]] thresholds; the defaults suit a lit service hall)."""

    absence_limit_s: Annotated[int, msgspec.Meta(ge=5, le=24 * 3600)] = 300  # seat empty this long while open: 离岗
    offline_after_s: Annotated[int, msgspec.Meta(ge=2, le=3600)] = 10  # no picture this long: offline
    tamper_after_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 10  # covered, defocused or moved this long
    frozen_after_s: Annotated[int, msgspec.Meta(ge=2, le=3600)] = 30  # the picture has not changed at all this long
    dark_level: Annotated[float, msgspec.Meta(ge=0, le=255)] = 30.0  # mean grey below this: covered or dark
    uniform_std: Annotated[float, msgspec.Meta(ge=0, le=128)] = 8.0  # contrast below this: covered (hand, cloth)
    defocus_ratio: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.3  # sharpness below this share of the usual
    moved_fraction: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.06  # scene shifted by this share of the width
    seat_change: Annotated[float, msgspec.Meta(gt=0, le=255)] = 14.0  # seat this far from empty: someone is there
    frozen_change: Annotated[float, msgspec.Meta(gt=0, le=255)] = 0.3  # pictures closer than this are the same
    learn_empty_s: Seconds = 600  # while closed, a seat unchanged this long is taken as the empty seat


@dataclass(frozen=True)
class Roi:
    """The seat, in pixels of the analysed frame."""

    x: int
    y: int
    width: int
    height: int

    @staticmethod
    def of(fractions: tuple[float, float, float, float], frame_width: int, frame_height: int) -> Roi:
        x, y, w, h = fractions
        return Roi(round(x * frame_width), round(y * frame_height), max(1, round(w * frame_width)),
                   max(1, round(h * frame_height)))

    def cut(self, gray: Gray) -> Gray:
        return gray[self.y:self.y + self.height, self.x:self.x + self.width]


def brightness(gray: Gray) -> tuple[float, float]:
    """Mean grey level and contrast (standard deviation)."""
    mean, std = cv2.meanStdDev(gray)
    return float(mean[0][0]), float(std[0][0])


def sharpness(gray: Gray) -> float:
    """Variance of the Laplacian: edges make it large, a blurred picture small."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def difference(a: Gray, b: Gray) -> float:
    """Mean absolute grey difference of two pictures of the same size."""
    return float(cv2.absdiff(a, b).mean())


def seat_difference(seat: Gray, empty_seat: Gray) -> float:
    """How far the seat is from the empty seat, with the overall light level taken out (lamps,
    daylight) and pixel noise smoothed away."""
    a = cv2.GaussianBlur(seat, (5, 5), 0).astype(np.float32)
    b = cv2.GaussianBlur(empty_seat, (5, 5), 0).astype(np.float32)
    return float(np.abs((a - a.mean()) - (b - b.mean())).mean())


def shift(reference: Gray, gray: Gray, ignore: Roi | None = None) -> tuple[float, float]:
    """How far the scene moved since `reference` (pixels, by phase correlation), and how sure.
    The seat is left out: a clerk coming and going is not the camera moving."""
    a, b = reference.astype(np.float32), gray.astype(np.float32)
    if ignore is not None:
        for picture in (a, b):
            ignore.cut(picture)[...] = picture.mean()  # type: ignore[arg-type]
    window = cv2.createHanningWindow((gray.shape[1], gray.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a, b, window)
    return float(np.hypot(dx, dy)), float(response)


@dataclass(frozen=True)
class Change:
    """A condition opened (or cleared) on a camera."""

    kind: str
    opened: bool
    at: float  # when it was decided (epoch seconds)
    began_at: float  # when the condition itself began (the clerk left; the last frame arrived)
    detail: dict[str, float | str]


@dataclass
class _Episode:
    since: float  # first observation of the condition
    raised: bool = False  # the change was reported (after its limit)
    detail: dict[str, float | str] = field(default_factory=dict)


IsOpen = Callable[[float], bool]  # opening hours: is the window open at this epoch second?


class Watch:
    """One camera's detectors. `observe` each analysed frame, `tick` now and then (offline needs
    time to pass without frames); both return the conditions that opened or cleared."""

    def __init__(self, limits: Thresholds, roi: Roi, is_open: IsOpen, empty_seat: Gray | None = None) -> None:
        self.limits = limits
        self.roi = roi
        self._is_open = is_open
        self.empty_seat = empty_seat
        self._reference: Gray | None = None  # the healthy view: for "moved"
        self._reference_sharpness = 0.0
        self._previous: Gray | None = None
        self._last_frame_at: float | None = None
        self._started_at: float | None = None
        self._episodes: dict[str, _Episode] = {}
        self._occupied_streak = 0
        self._seat_still_since: float | None = None
        self.learned_empty_seat = False  # set when the empty seat was learned; the owner stores it

    def active(self) -> set[str]:
        return {kind for kind, episode in self._episodes.items() if episode.raised}

    def tick(self, now: float) -> list[Change]:
        if self._started_at is None:
            self._started_at = now
        last = self._last_frame_at if self._last_frame_at is not None else self._started_at
        if now - last >= self.limits.offline_after_s:
            return self._hold(OFFLINE, True, now, last, {"silent_s": round(now - last, 1)}, 0.0)
        return []

    def observe(self, gray: Gray, now: float) -> list[Change]:
        changes = self._hold(OFFLINE, False, now, now)
        self._last_frame_at = now
        mean, std = brightness(gray)
        covered = mean < self.limits.dark_level or std < self.limits.uniform_std
        changes += self._hold(COVERED, covered, now, now, {"mean": round(mean, 1), "contrast": round(std, 1)},
                              self.limits.tamper_after_s)
        changes += self._frozen(gray, now)
        if covered:  # nothing else can be judged through a covered lens
            self._previous = gray
            return changes
        sharp = sharpness(gray)
        if self._reference is None:
            self._reference, self._reference_sharpness = gray, sharp
        defocused = sharp < self.limits.defocus_ratio * self._reference_sharpness
        changes += self._hold(DEFOCUSED, defocused, now, now,
                              {"sharpness": round(sharp, 1), "usual": round(self._reference_sharpness, 1)},
                              self.limits.tamper_after_s)
        moved_px, _ = shift(self._reference, gray, self.roi)
        moved = moved_px > self.limits.moved_fraction * gray.shape[1]
        changes += self._hold(MOVED, moved, now, now, {"shift_px": round(moved_px, 1)}, self.limits.tamper_after_s)
        if not (defocused or moved):
            # Follow slow drift (daylight, a re-aimed camera accepted by the supervisor) while healthy.
            self._reference_sharpness = 0.9 * self._reference_sharpness + 0.1 * sharp
        if not moved:
            changes += self._presence(gray, now)
        self._previous = gray
        return changes

    def _frozen(self, gray: Gray, now: float) -> list[Change]:
        if self._previous is None or self._previous.shape != gray.shape:
            return []
        change = difference(self._previous, gray)
        return self._hold(FROZEN, change < self.limits.frozen_change, now, now, {"change": round(change, 2)},
                          self.limits.frozen_after_s)

    def _presence(self, gray: Gray, now: float) -> list[Change]:
        seat = self.roi.cut(gray)
        if not self._is_open(now):
            self._learn_empty_seat(seat, now)
            return self._hold(ABSENT, False, now, now, {"reason": "closed"})
        if self.empty_seat is None or self.empty_seat.shape != seat.shape:
            return []  # without the empty seat, presence cannot be judged: the status says so
        distance = seat_difference(seat, self.empty_seat)
        empty = distance < self.limits.seat_change
        # One frame with someone in the seat is not yet a return (a passer-by leaning in): two are.
        self._occupied_streak = 0 if empty else self._occupied_streak + 1
        if not empty and self._occupied_streak < 2 and ABSENT in self.active():
            return []
        return self._hold(ABSENT, empty, now, now, {"seat_difference": round(distance, 1)},
                          self.limits.absence_limit_s)

    def _learn_empty_seat(self, seat: Gray, now: float) -> None:
        previous = self.roi.cut(self._previous) if self._previous is not None else None
        if previous is None or previous.shape != seat.shape or seat_difference(seat, previous) > 3.0:
            self._seat_still_since = now
            return
        if self._seat_still_since is not None and now - self._seat_still_since >= self.limits.learn_empty_s:
            if self.empty_seat is None or seat_difference(seat, self.empty_seat) > 3.0:
                self.empty_seat = seat.copy()
                self.learned_empty_seat = True
            self._seat_still_since = now

    def _hold(self, kind: str, present: bool, now: float, began: float,
              detail: dict[str, float | str] | None = None, limit_s: float = 0.0) -> list[Change]:
        """Keep an episode of `kind` while it is present; report it once it lasted `limit_s`, and
        its end if it was reported."""
        episode = self._episodes.get(kind)
        if present:
            if episode is None:
                episode = self._episodes[kind] = _Episode(began)
            episode.detail = detail or {}
            if not episode.raised and now - episode.since >= limit_s - _ARRIVAL_JITTER_S:
                episode.raised = True
                return [Change(kind, True, now, episode.since, episode.detail)]
            return []
        if episode is None:
            return []
        del self._episodes[kind]
        return [Change(kind, False, now, episode.since, detail or {})] if episode.raised else []


def opening_hours(days: list[int], periods: list[str], utc_offset_s: int) -> IsOpen:
    """Is the window open at an epoch second, by its ISO weekdays and "HH:MM-HH:MM" periods in the
    server's local time."""
    spans = [(int(p[0:2]) * 60 + int(p[3:5]), int(p[6:8]) * 60 + int(p[9:11])) for p in periods]
    weekdays = set(days)

    def is_open(at: float) -> bool:
        local = datetime.fromtimestamp(at + utc_offset_s, UTC)
        minute = local.hour * 60 + local.minute
        return local.isoweekday() in weekdays and any(start <= minute < end for start, end in spans)
    return is_open
