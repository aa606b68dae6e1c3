"""Jurisdictions of sub-centres and the spatial index that finds which one holds a point.

Geometries arrive in WGS-84 lon/lat. For distances the index works in a local equirectangular
plane (metres) scaled at the mean latitude of all jurisdictions: over a city or province the error
is a few percent at most, which is ample for "which is nearest" and for the flag it raises.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

_METRES_PER_DEG_LAT = 110_574.0
_METRES_PER_DEG_LON_EQUATOR = 111_319.49
# A point this close to a jurisdiction counts as inside it: shared edges of clipped polygons can
# leave float-width slivers between them, and a point in one must not be flagged as "outside".
_EDGE_TOLERANCE_M = 1.0


@dataclass(frozen=True)
class Jurisdiction:
    subcentre_id: int
    department: str
    area: BaseGeometry  # WGS-84 lon/lat (Polygon or MultiPolygon)


@dataclass(frozen=True)
class Placement:
    """Which sub-centre of a department serves a point, and whether the point lay in its area."""

    subcentre_id: int
    inside: bool
    distance_m: float  # 0 when inside


class _DepartmentIndex:
    def __init__(self, members: list[Jurisdiction], project: Any) -> None:
        self.ids = np.array([m.subcentre_id for m in members], dtype=np.int64)
        self.tree = STRtree([project(m.area) for m in members])


class Jurisdictions:
    """An immutable spatial index; build a new one when jurisdictions change (it is cheap)."""

    def __init__(self, jurisdictions: Iterable[Jurisdiction]) -> None:
        members = list(jurisdictions)
        lats = [m.area.centroid.y for m in members]
        self._ref_lat = float(np.mean(lats)) if lats else 0.0
        self._kx = _METRES_PER_DEG_LON_EQUATOR * math.cos(math.radians(self._ref_lat))
        by_department: dict[str, list[Jurisdiction]] = {}
        for m in members:
            by_department.setdefault(m.department, []).append(m)
        self._departments = {d: _DepartmentIndex(ms, self._project) for d, ms in by_department.items()}
        self._everywhere = STRtree([self._project(m.area) for m in members])

    def distance_m(self, lon: float, lat: float) -> float | None:
        """How far a WGS-84 point lies from the nearest jurisdiction of any department (0 inside one);
        None when there are none. A local projection: close by it is metres, far away an estimate."""
        if not len(self._everywhere.geometries):
            return None
        point = shapely.Point(lon * self._kx, lat * _METRES_PER_DEG_LAT)
        _, distances = self._everywhere.query_nearest(point, return_distance=True)
        return float(distances[0])

    def _project(self, geometry: BaseGeometry) -> BaseGeometry:
        scale = np.array([self._kx, _METRES_PER_DEG_LAT])
        projected: BaseGeometry = shapely.transform(geometry, lambda coords: coords * scale)
        return projected

    def overlapping(self, department: str, area: BaseGeometry, min_overlap_m2: float = 1.0) -> list[int]:
        """Sub-centres of the department whose jurisdiction shares more than a sliver with `area`.

        Within a department areas must not overlap, or two stations would both own a street.
        """
        index = self._departments.get(department)
        if index is None:
            return []
        projected = self._project(area)
        candidates = index.tree.query(projected, predicate="intersects")
        return sorted(int(index.ids[i]) for i in candidates
                      if index.tree.geometries[i].intersection(projected).area > min_overlap_m2)

    def locate(self, department: str, lon: float, lat: float) -> Placement | None:
        """The department's sub-centre for a WGS-84 point; None if the department has none.

        Inside one jurisdiction: that one. On a shared boundary (covered by several): the lowest
        sub-centre id, so the same point always goes to exactly one. In none: the nearest, flagged.
        """
        index = self._departments.get(department)
        if index is None:
            return None
        point = shapely.Point(lon * self._kx, lat * _METRES_PER_DEG_LAT)
        covering = index.tree.query(point, predicate="covered_by")
        if len(covering):
            return Placement(int(index.ids[covering].min()), inside=True, distance_m=0.0)
        nearest, distances = index.tree.query_nearest(point, return_distance=True, all_matches=True)
        best = int(np.argmin(index.ids[nearest]))  # ties in distance also go to the lowest id
        distance = float(distances[best])
        inside = distance <= _EDGE_TOLERANCE_M
        return Placement(int(index.ids[nearest[best]]), inside=inside, distance_m=0.0 if inside else distance)
