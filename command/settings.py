"""The command centre's sections of config.toml: [surge], [decision], [map]."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import msgspec

from base.settings import Section, problem
from dispatch.taxonomy import Severity


class SurgeConfig(Section, frozen=True, forbid_unknown_fields=True):
    duplicate_radius_m: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 500.0
    duplicate_window_min: Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 60)] = 120.0


class ServiceAreaConfig(Section, frozen=True, forbid_unknown_fields=True):
    max_distance_km: Annotated[float, msgspec.Meta(gt=0, le=20_000)] = 30.0


class DecisionConfig(Section, frozen=True, forbid_unknown_fields=True):
    facilities: str = ""
    affected_radius_m: dict[str, Annotated[float, msgspec.Meta(gt=0, le=200_000)]] = msgspec.field(
        default_factory=lambda: {"I": 5000.0, "II": 3000.0, "III": 1500.0, "IV": 500.0})
    similar_radius_m: Annotated[float, msgspec.Meta(gt=0, le=200_000)] = 2000.0
    camera_radius_m: Annotated[float, msgspec.Meta(gt=0, le=200_000)] = 1000.0
    video_before_min: Annotated[float, msgspec.Meta(ge=0, le=24 * 60)] = 10.0
    similar_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30


class MapConfig(Section, frozen=True, forbid_unknown_fields=True):
    tile_url: Annotated[str, msgspec.Meta(max_length=500)] = ""
    attribution: Annotated[str, msgspec.Meta(max_length=200)] = ""
    max_zoom: Annotated[int, msgspec.Meta(ge=1, le=22)] = 18
    boundary_tolerance_m: Annotated[float, msgspec.Meta(ge=0, le=1000)] = 30.0


def check_map(map_: MapConfig, path: Path) -> None:
    """What the types cannot say; raises ConfigError naming the key."""
    tile_url = map_.tile_url
    placeholders = all(k in tile_url for k in ("{z}", "{x}", "{y}"))
    if tile_url and (not re.match(r"^(https?://|/)", tile_url) or not placeholders):
        raise problem(path, "map.tile_url",
                      "an http(s):// or /path URL template with {z}, {x} and {y}, or \"\" for none")


def check_decision(decision: DecisionConfig, path: Path) -> None:
    """What the types cannot say; raises ConfigError naming the key."""
    if decision.facilities and not (path.parent / decision.facilities).is_file():
        raise problem(path, "decision.facilities", f"no such file: {(path.parent / decision.facilities).resolve()}")
    if set(decision.affected_radius_m) != set(Severity.__members__):
        raise problem(path, "decision.affected_radius_m", "give a radius for each of I, II, III and IV")
