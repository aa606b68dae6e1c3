"""The camera registry in PostgreSQL: cameras from config.toml are kept in step at start-up, more
are registered through the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from dispatch.pg import Connection, Pool
from video.cameras import CameraSpec, redact

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


def public(row: asyncpg.Record) -> dict[str, Any]:
    """A camera as browsers and other clients see it: stream credentials removed."""
    return {"id": row["id"], "code": row["code"], "name": row["name"], "department": row["department"],
            "window": row["window_label"], "location": {"lon": row["lon"], "lat": row["lat"]},
            "main_url": redact(row["main_url"]), "sub_url": redact(row["sub_url"]), "roi": row["roi"],
            "opening_hours": row["opening_hours"], "thresholds": row["thresholds"],
            "retention_days": row["retention_days"]}


async def cameras(pool: Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM cameras ORDER BY department, window_label, id")
