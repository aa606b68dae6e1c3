"""Coordinates: the WGS-84 point every package speaks, and WGS-84 ↔ GCJ-02 datum conversion.

GPS and phones give WGS-84; Chinese map data (the Yichang boundaries here) is published in GCJ-02,
which is WGS-84 with a deliberate, position-dependent shift of a few hundred metres. Routing in the
wrong datum sends a call near a boundary to the wrong station, so everything stored is converted to
WGS-84 once, when it is loaded. The forward transform is the published GCJ-02 formula on the
Krasovsky 1940 ellipsoid; the inverse has no closed form and is found by fixed-point iteration.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import numpy as np
from numpy.typing import NDArray

_A = 6378245.0  # Krasovsky 1940 semi-major axis, metres
_EE = 0.00669342162296594323  # its first eccentricity squared

Array = NDArray[np.float64]


def _shift(lon: Array, lat: Array) -> tuple[Array, Array]:
    """GCJ-02 minus WGS-84, in degrees, at a WGS-84 position."""
    x, y = lon - 105.0, lat - 35.0
    waves = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
             + waves
             + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
             + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    d_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
             + waves
             + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
             + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = d_lat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = d_lon * 180.0 / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return d_lon, d_lat


def _in_china(lon: Array, lat: Array) -> NDArray[np.bool_]:
    """GCJ-02 is only applied inside China's rough bounding box; elsewhere it equals WGS-84."""
    return (lon > 72.004) & (lon < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def wgs84_to_gcj02(lon: Array, lat: Array) -> tuple[Array, Array]:
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    d_lon, d_lat = _shift(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + d_lon, lon), np.where(inside, lat + d_lat, lat)


def gcj02_to_wgs84(lon: Array, lat: Array, tolerance_deg: float = 1e-9) -> tuple[Array, Array]:
    """Invert the shift by iteration: the shift varies so slowly that a few rounds reach 1e-9°."""
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    w_lon, w_lat = lon.copy(), lat.copy()
    for _ in range(30):
        g_lon, g_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = g_lon - lon, g_lat - lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if max(float(np.max(np.abs(e_lon), initial=0.0)), float(np.max(np.abs(e_lat), initial=0.0))) < tolerance_deg:
            break
    return w_lon, w_lat


class Location(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A point in WGS-84 longitude/latitude, as GPS and phones give it (incidents, sites, cameras)."""

    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
