"""The supervision detectors on scripted pictures: a clerk who leaves the seat and comes back, a clerk
who sits still for an hour, a covered lens, a blurred lens, a frozen picture, a camera knocked
aside, a camera that falls silent, and a hall that closes for the night."""

from __future__ import annotations

import cv2
import numpy as np

from video.analysis.detectors import (
    ABSENT,
    COVERED,
    DEFOCUSED,
    FROZEN,
    MOVED,
    OFFLINE,
    Change,
    Gray,
    Roi,
    Thresholds,
    Watch,
    opening_hours,
)

W, H = 384, 216
SEAT = Roi.of((0.35, 0.30, 0.30, 0.45), W, H)
LIMITS = Thresholds(absence_limit_s=60, offline_after_s=10, tamper_after_s=5, frozen_after_s=20)
ALWAYS = opening_hours([1, 2, 3, 4, 5, 6, 7], ["00:00-23:59"], 8 * 3600)
rng = np.random.default_rng(7)


def hall(clerk: bool, walker_x: int = 0) -> Gray:
    """A tiled wall, a counter, a passer-by, and (if present) the clerk in the seat; sensor noise."""
    picture = np.full((H, W), 70, np.uint8)
    picture[::16, :] = 110
    picture[:, ::16] = 110
    picture[140:, :] = 60
    cv2.rectangle(picture, (walker_x % W, 170), (walker_x % W + 20, 205), 150, -1)
    if clerk:
        cv2.rectangle(picture, (150, 70), (235, 150), 190, -1)
        cv2.rectangle(picture, (172, 45), (212, 72), 220, -1)
    noise = rng.integers(-3, 4, picture.shape)
    return np.clip(picture.astype(int) + noise, 0, 255).astype(np.uint8)


def watch(is_open=ALWAYS) -> Watch:  # type: ignore[no-untyped-def]
    return Watch(LIMITS, SEAT, is_open, empty_seat=SEAT.cut(hall(clerk=False)))


def play(w: Watch, start: float, seconds: int, picture: object) -> list[Change]:
    """One picture a second; `picture(t)` draws the picture at second t."""
    changes: list[Change] = []
    for t in range(start_s := int(start), start_s + seconds):
        changes += w.tick(float(t))
        changes += w.observe(picture(t), float(t))  # type: ignore[operator]
    return changes


def kinds(changes: list[Change]) -> list[tuple[str, bool]]:
    return [(c.kind, c.opened) for c in changes]


def test_a_clerk_who_leaves_longer_than_the_limit_raises_absent_which_clears_on_return() -> None:
    w = watch()
    assert play(w, 0, 30, lambda t: hall(True, 3 * t)) == []
    away = play(w, 30, 90, lambda t: hall(False, 3 * t))
    assert kinds(away) == [(ABSENT, True)]
    assert away[0].at - away[0].began_at >= 60 and away[0].began_at == 30  # since the clerk left
    back = play(w, 120, 5, lambda t: hall(True, 3 * t))
    assert kinds(back) == [(ABSENT, False)]


def test_a_short_break_under_the_limit_raises_nothing() -> None:
    w = watch()
    changes = play(w, 0, 10, lambda t: hall(True, t)) + play(w, 10, 40, lambda t: hall(False, t))
    assert changes + play(w, 50, 10, lambda t: hall(True, t)) == []


def test_a_clerk_sitting_perfectly_still_for_an_hour_is_never_absent() -> None:
    w = watch()
    still = hall(True)
    assert ABSENT not in {c.kind for c in play(w, 0, 3600, lambda t: still + (t % 2))}


def test_absence_is_not_judged_while_the_hall_is_closed() -> None:
    closed = opening_hours([1], ["08:30-09:00"], 8 * 3600)  # 1970-01-01 was a Thursday
    w = watch(closed)
    assert play(w, 0, 300, lambda t: hall(False, t)) == []


def test_the_empty_seat_is_learned_while_closed_and_the_seat_has_not_changed() -> None:
    closed = opening_hours([1], ["08:30-09:00"], 8 * 3600)
    w = Watch(Thresholds(learn_empty_s=120), SEAT, closed, empty_seat=None)
    empty = hall(False)
    play(w, 0, 130, lambda t: empty)
    assert w.learned_empty_seat and w.empty_seat is not None


def test_a_covered_lens_raises_covered_after_the_tamper_limit_and_clears_when_uncovered() -> None:
    w = watch()
    play(w, 0, 5, lambda t: hall(True, t))
    dark = np.full((H, W), 12, np.uint8)
    covered = play(w, 5, 10, lambda t: dark + (t % 2))
    assert kinds(covered) == [(COVERED, True)] and covered[0].at == 10
    assert kinds(play(w, 15, 2, lambda t: hall(True, t))) == [(COVERED, False)]


def test_a_blurred_picture_raises_defocused() -> None:
    w = watch()
    play(w, 0, 5, lambda t: hall(True, t))
    blurred = play(w, 5, 10, lambda t: cv2.GaussianBlur(hall(True, t), (15, 15), 8))
    assert DEFOCUSED in {c.kind for c in blurred if c.opened}
    assert ABSENT not in {c.kind for c in blurred}


def test_a_picture_that_stops_changing_raises_frozen() -> None:
    w = watch()
    play(w, 0, 5, lambda t: hall(True, t))
    still = hall(True)
    frozen = play(w, 5, 30, lambda t: still)
    assert kinds(frozen) == [(FROZEN, True)] and frozen[0].began_at == 6


def test_a_camera_turned_aside_raises_moved_but_the_clerk_leaving_does_not() -> None:
    w = watch()
    play(w, 0, 5, lambda t: hall(True, t))
    assert MOVED not in {c.kind for c in play(w, 5, 20, lambda t: hall(False, t))}
    shifted = play(w, 25, 10, lambda t: np.roll(hall(True, t), 40, axis=1))
    assert (MOVED, True) in kinds(shifted)


def test_a_camera_that_falls_silent_goes_offline_and_comes_back_with_its_first_picture() -> None:
    w = watch()
    play(w, 0, 3, lambda t: hall(True, t))
    silent = [c for t in range(3, 20) for c in w.tick(float(t))]
    assert kinds(silent) == [(OFFLINE, True)] and silent[0].at == 12 and silent[0].began_at == 2
    assert kinds(w.observe(hall(True), 20.0)) == [(OFFLINE, False)]


def test_a_camera_never_heard_from_is_offline() -> None:
    w = watch()
    assert kinds([c for t in range(0, 12) for c in w.tick(float(t))]) == [(OFFLINE, True)]
