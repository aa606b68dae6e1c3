"""Administrative boundaries shipped with the project (宜昌市 districts), loaded in WGS-84."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.coords import gcj02_to_wgs84

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class District:
    adcode: str
    name: str
    area: BaseGeometry  # WGS-84 lon/lat


def to_wgs84(geometry: BaseGeometry, datum: str) -> BaseGeometry:
    """Bring a geometry stored in `datum` to WGS-84 (all vertices at once)."""
    if datum == "WGS-84":
        return geometry
    if datum != "GCJ-02":
        raise ValueError(f"unsupported datum {datum!r}")

    def convert(coords: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    converted: BaseGeometry = shapely.transform(geometry, convert)
    return converted


@cache
def yichang_districts() -> tuple[District, ...]:
    document = json.loads((DATA / "yichang_districts.geojson").read_text(encoding="utf-8"))
    districts = []
    for feature in document["features"]:
        area = to_wgs84(shapely.geometry.shape(feature["geometry"]), document["datum"])
        districts.append(District(feature["properties"]["adcode"], feature["properties"]["name"],
                                  shapely.make_valid(area)))
    return tuple(districts)


def city_area(districts: tuple[District, ...]) -> BaseGeometry:
    area: BaseGeometry = shapely.union_all([d.area for d in districts])
    return area


@cache
def district_outlines(tolerance_m: float) -> dict[str, Any]:
    """The districts as a GeoJSON FeatureCollection for browsers' maps, simplified to about
    `tolerance_m` (the shipped outlines are survey-detailed; a map of the city needs ~1 % of it)."""
    tolerance = tolerance_m / 111_000  # degrees of latitude; close enough for drawing
    def outline(area: BaseGeometry) -> BaseGeometry:
        simpler = shapely.simplify(area, tolerance, preserve_topology=True)
        rounded: BaseGeometry = shapely.set_precision(simpler, 1e-5)  # ~1 m: half the bytes of full floats
        return rounded

    features = [{"type": "Feature", "id": d.adcode, "properties": {"adcode": d.adcode, "name": d.name},
                 "geometry": shapely.geometry.mapping(outline(d.area))} for d in yichang_districts()]
    return {"type": "FeatureCollection", "features": features}
