"""Great-circle distance between WGS-84 points (haversine on a sphere of the mean Earth radius)."""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def degrees_around(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-widths (lon, lat) in degrees of a box that holds a circle of `radius_m` at `lat`."""
    d_lat = math.degrees(radius_m / EARTH_RADIUS_M)
    d_lon = d_lat / max(math.cos(math.radians(lat)), 1e-6)
    return d_lon, d_lat
