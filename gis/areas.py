"""Areas around a point and point layers (facilities) found inside them, in WGS-84."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from gis.distance import degrees_around, metres


def circle(lon: float, lat: float, radius_m: float, segments: int = 64) -> BaseGeometry:
    """A circle of `radius_m` around a point, as a WGS-84 polygon (scaled for the local latitude)."""
    d_lon, d_lat = degrees_around(lat, radius_m)
    angles = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    ring = np.column_stack([lon + d_lon * np.cos(angles), lat + d_lat * np.sin(angles)])
    polygon: BaseGeometry = shapely.Polygon(ring)
    return polygon


@dataclass(frozen=True)
class Facility:
    name: str
    kind: str  # "school", "hospital", "shelter", ...
    lon: float
    lat: float


class Facilities:
    """Points of interest (schools, hospitals, shelters) from a GeoJSON FeatureCollection in WGS-84."""

    def __init__(self, facilities: list[Facility]) -> None:
        self._facilities = facilities
        self._tree = STRtree([shapely.Point(f.lon, f.lat) for f in facilities])

    @classmethod
    def load(cls, path: Path | None) -> Facilities:
        if path is None:
            return cls([])
        document = json.loads(path.read_text(encoding="utf-8"))
        return cls([Facility(f["properties"]["name"], f["properties"].get("kind", "facility"),
                             *f["geometry"]["coordinates"][:2])
                    for f in document["features"] if f["geometry"]["type"] == "Point"])

    def __len__(self) -> int:
        return len(self._facilities)

    def within(self, lon: float, lat: float, radius_m: float) -> list[tuple[Facility, float]]:
        """Facilities within `radius_m` of the point, nearest first, with their distance in metres."""
        found = []
        for index in self._tree.query(circle(lon, lat, radius_m * 1.01).envelope):
            facility = self._facilities[int(index)]
            distance = metres(lon, lat, facility.lon, facility.lat)
            if distance <= radius_m:
                found.append((facility, distance))
        return sorted(found, key=lambda pair: pair[1])
