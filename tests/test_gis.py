"""Datum conversion and jurisdiction lookup, on the real Yichang boundaries (no server needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from command.demo import demo_subcentres
from gis.boundaries import DATA, district_outlines, yichang_districts
from gis.coords import gcj02_to_wgs84, wgs84_to_gcj02
from gis.jurisdictions import Jurisdiction, Jurisdictions


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    kx = 111_319.49 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * 110_574.0)


def test_gcj02_offset_in_yichang_is_hundreds_of_metres_and_inverts_to_a_centimetre() -> None:
    lon, lat = np.array([111.29, 110.75, 111.79]), np.array([30.70, 31.35, 30.82])
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    offsets = [metres(lon[i], lat[i], g_lon[i], g_lat[i]) for i in range(3)]
    assert all(300 < d < 800 for d in offsets), offsets
    back_lon, back_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert max(metres(lon[i], lat[i], back_lon[i], back_lat[i]) for i in range(3)) < 0.01


def test_outside_china_gcj02_is_wgs84() -> None:
    lon, lat = wgs84_to_gcj02(np.array([2.35]), np.array([48.85]))  # Paris
    assert (lon[0], lat[0]) == (2.35, 48.85)


def _district_index() -> tuple[Jurisdictions, dict[int, str]]:
    districts = yichang_districts()
    index = Jurisdictions(Jurisdiction(i, "district", d.area) for i, d in enumerate(districts, start=1))
    return index, {i: d.name for i, d in enumerate(districts, start=1)}


def test_a_gps_fix_near_a_boundary_goes_where_the_gcj02_map_says_not_where_the_raw_numbers_fall() -> None:
    """Compare a WGS-84 fix with GCJ-02 boundaries without converting, and calls near the 西陵/伍家岗
    boundary go to the wrong district. Search such a spot, then check routing gets it right."""
    source = json.loads((DATA / "yichang_districts.geojson").read_text(encoding="utf-8"))
    raw = {f["properties"]["name"]: shapely.geometry.shape(f["geometry"]) for f in source["features"]}
    index, names = _district_index()
    shared = raw["西陵区"].boundary.intersection(raw["伍家岗区"].boundary)
    middle = shared.interpolate(0.5, normalized=True)
    found = None
    for dx in np.linspace(-0.008, 0.008, 33):
        for dy in np.linspace(-0.008, 0.008, 33):
            lon, lat = middle.x + dx, middle.y + dy  # a WGS-84 fix near the boundary
            g_lon, g_lat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
            truth = [n for n in ("西陵区", "伍家岗区") if raw[n].contains(shapely.Point(g_lon[0], g_lat[0]))]
            naive = [n for n in ("西陵区", "伍家岗区") if raw[n].contains(shapely.Point(lon, lat))]
            if len(truth) == 1 and len(naive) == 1 and truth != naive:
                found = (lon, lat, truth[0], naive[0])
                break
        if found:
            break
    assert found is not None, "no spot where the datum matters: the search area is wrong"
    lon, lat, truth_name, naive_name = found
    placement = index.locate("district", lon, lat)
    assert placement is not None and placement.inside
    assert names[placement.subcentre_id] == truth_name != naive_name


Fire = tuple[Jurisdictions, dict[str, int], dict[int, BaseGeometry]]


@pytest.fixture(scope="module")
def fire() -> Fire:
    demo = [s for s in demo_subcentres() if s.department == "fire"]
    index = Jurisdictions(Jurisdiction(i, "fire", s.area) for i, s in enumerate(demo, start=1))
    return index, {s.code: i for i, s in enumerate(demo, start=1)}, {i: s.area for i, s in enumerate(demo, start=1)}


def test_a_point_inside_a_station_area_goes_to_that_station(fire: Fire) -> None:
    index, ids, _ = fire
    placement = index.locate("fire", 111.29, 30.70)  # 西陵区, beside the Xiling station
    assert placement is not None
    assert (placement.subcentre_id, placement.inside, placement.distance_m) == (ids["fire-xiling"], True, 0.0)


def test_a_point_on_a_shared_boundary_goes_to_exactly_one_station_every_time(fire: Fire) -> None:
    index, ids, areas = fire
    a, b = ids["fire-xiling"], ids["fire-wujiagang"]
    edge = areas[a].intersection(areas[b])
    assert edge.length > 0, "the two station areas share an edge"
    for fraction in (0.1, 0.5, 0.9):
        point = edge.interpolate(fraction, normalized=True)
        assert areas[a].distance(point) < 1e-9 and areas[b].distance(point) < 1e-9
        placements = {index.locate("fire", point.x, point.y) for _ in range(3)}
        assert len(placements) == 1
        (placement,) = placements
        assert placement is not None and placement.inside and placement.subcentre_id in (a, b)
    vertex = shapely.get_coordinates(edge)[0]
    placement = index.locate("fire", float(vertex[0]), float(vertex[1]))
    assert placement is not None and placement.inside


def test_a_point_outside_every_area_goes_to_the_nearest_station_and_is_flagged(fire: Fire) -> None:
    index, _, areas = fire
    placement = index.locate("fire", 112.30, 30.60)  # east of 枝江市, beyond the city's edge
    assert placement is not None and not placement.inside
    nearest = min(areas, key=lambda i: areas[i].distance(shapely.Point(112.30, 30.60)))
    assert placement.subcentre_id == nearest
    assert 5_000 < placement.distance_m < 60_000


def test_the_map_outlines_are_lighter_but_keep_each_districts_shape() -> None:
    outlines = district_outlines(30.0)
    by_code = {d.adcode: d for d in yichang_districts()}
    assert len(outlines["features"]) == len(by_code) == 13
    for feature in outlines["features"]:
        outline, district = shapely.geometry.shape(feature["geometry"]), by_code[feature["id"]]
        assert outline.is_valid
        assert abs(outline.area - district.area.area) / district.area.area < 0.01
        assert shapely.get_num_coordinates(outline) < shapely.get_num_coordinates(district.area)
    assert len(json.dumps(outlines)) < (DATA / "yichang_districts.geojson").stat().st_size * 0.7
