"""The camera registry in PostgreSQL: cameras from config.toml are kept in step at start-up, more
are registered through the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from base.pg import Connection, Pool
from gis.distance import degrees_around, metres
from video.cameras.spec import CameraSpec, redact

_COLUMNS = ("code, name, department, window_label, lon, lat, main_url, sub_url, roi, opening_hours, thresholds,"
            " retention_days")


def _values(spec: CameraSpec) -> tuple[Any, ...]:
    return (spec.code, spec.name, spec.department, spec.window, spec.location.lon, spec.location.lat, spec.main_url,
            spec.sub_url, msgspec.to_builtins(spec.roi), msgspec.to_builtins(spec.opening_hours),
            msgspec.to_builtins(spec.thresholds), spec.retention_days)


async def register(connection: Connection | Pool, spec: CameraSpec, from_config: bool = False) -> int:
    """Insert, or update a camera of the same code; its id."""
    camera_id: int = await connection.fetchval(
        f"INSERT INTO cameras ({_COLUMNS}, from_config) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
        " $13) ON CONFLICT (code) DO UPDATE SET name = $2, department = $3, window_label = $4, lon = $5, lat = $6,"
        " main_url = $7, sub_url = $8, roi = $9, opening_hours = $10, thresholds = $11, retention_days = $12,"
        " from_config = $13 RETURNING id", *_values(spec), from_config)
    return camera_id


async def sync_from_config(pool: Pool, specs: Sequence[CameraSpec]) -> None:
    async with pool.acquire() as connection, connection.transaction():
        for spec in specs:
            await register(connection, spec, from_config=True)


def camera_json(row: asyncpg.Record) -> dict[str, Any]:
    """A camera as browsers and other clients see it: stream credentials removed."""
    return {"id": row["id"], "code": row["code"], "name": row["name"], "department": row["department"],
            "window": row["window_label"], "location": {"lon": row["lon"], "lat": row["lat"]},
            "main_url": redact(row["main_url"]), "sub_url": redact(row["sub_url"]), "roi": row["roi"],
            "opening_hours": row["opening_hours"], "thresholds": row["thresholds"],
            "retention_days": row["retention_days"]}


async def cameras(pool: Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM cameras ORDER BY department, window_label, id")


async def cameras_near(pool: Pool, lon: float, lat: float, radius_m: float) -> list[dict[str, Any]]:
    """The cameras within `radius_m` of a point, nearest first (decision support offers them for the wall)."""
    d_lon, d_lat = degrees_around(lat, radius_m)
    nearby = await pool.fetch(
        "SELECT id, code, name, department, window_label, lon, lat FROM cameras"
        " WHERE lon BETWEEN $1 AND $2 AND lat BETWEEN $3 AND $4", lon - d_lon, lon + d_lon, lat - d_lat, lat + d_lat)
    found = [{"id": c["id"], "code": c["code"], "name": c["name"], "department": c["department"],
              "window": c["window_label"], "location": {"lon": c["lon"], "lat": c["lat"]},
              "distance_m": round(metres(lon, lat, c["lon"], c["lat"]), 1)} for c in nearby]
    return sorted((c for c in found if c["distance_m"] <= radius_m), key=lambda c: c["distance_m"])
