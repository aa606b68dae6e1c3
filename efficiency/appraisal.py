"""Performance appraisal (绩效考核): a department's score for a period out of 100, from its figures.

Six parts, each with a weight (the part's full marks, from `[efficiency.appraisal]`):
- on time: weight × the share of completed cases finished within the promised limit;
- satisfaction: weight × (satisfied + ½ basically satisfied) / ratings;
- cards: weight less `red_card_points` per red card and `yellow_card_points` per yellow card opened;
- anomalies: weight less `anomaly_points` per stage-rule anomaly found;
- complaints: weight less `complaint_points` per complaint the department itself found upheld;
- presence: weight less `absence_points_per_hour` per hour a window's seat was seen empty.
No part goes below zero. A part with nothing to judge (no case completed, no rating) scores full marks
and says so: a quiet month is not a bad one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec


class Weights(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    on_time: float = 35.0
    satisfaction: float = 20.0
    cards: float = 15.0
    anomalies: float = 10.0
    complaints: float = 10.0
    presence: float = 10.0
    red_card_points: float = 2.0
    yellow_card_points: float = 0.5
    anomaly_points: float = 1.0
    complaint_points: float = 3.0
    absence_points_per_hour: float = 1.0


@dataclass(frozen=True)
class Part:
    name: str
    points: float
    of: float
    basis: str  # what the points were worked out from, in words


@dataclass(frozen=True)
class Score:
    department: str
    total: float
    parts: tuple[Part, ...]


def _less(weight: float, count: float, each: float) -> float:
    return max(0.0, weight - count * each)


def score(department: str, figures: Mapping[str, Any], weights: Weights) -> Score:
    w = weights
    completed, rated = figures["completed"], figures["ratings"]
    red, yellow, anomalies = figures["red_cards"], figures["yellow_cards"], figures["anomalies"]
    upheld, absent = figures["complaints_upheld"], figures["absence_minutes"] or 0.0
    parts = (
        Part("on_time", w.on_time * figures["on_time"] / completed if completed else w.on_time, w.on_time,
             f"{figures['on_time']} of {completed} completed within the promise" if completed
             else "no case completed"),
        Part("satisfaction", w.satisfaction * figures["satisfaction"] if rated else w.satisfaction, w.satisfaction,
             f"{figures['satisfied']} satisfied, {figures['basically']} basically, {figures['unsatisfied']}"
             f" unsatisfied of {rated}" if rated else "no rating"),
        Part("cards", _less(w.cards, 1, red * w.red_card_points + yellow * w.yellow_card_points), w.cards,
             f"{red} red, {yellow} yellow"),
        Part("anomalies", _less(w.anomalies, anomalies, w.anomaly_points), w.anomalies, f"{anomalies} anomalies"),
        Part("complaints", _less(w.complaints, upheld, w.complaint_points), w.complaints,
             f"{upheld} upheld of {figures['complaints']}"),
        Part("presence", _less(w.presence, absent / 60, w.absence_points_per_hour), w.presence,
             f"{absent:.0f} minutes of empty seat"),
    )
    return Score(department, round(sum(p.points for p in parts), 2),
                 tuple(Part(p.name, round(p.points, 2), p.of, p.basis) for p in parts))


def ranking(rows: list[dict[str, Any]], weights: Weights) -> list[Score]:
    """Departments by score, best first (ties by name, so the order is stable)."""
    return sorted((score(row["key"], row, weights) for row in rows), key=lambda s: (-s.total, s.department))
