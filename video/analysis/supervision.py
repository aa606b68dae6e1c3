"""Supervision alerts in PostgreSQL: opened by the analysis (or the storage check), cleared when the
condition ends, acknowledged and closed by supervisors; and the figures per department and window.

Every change announces itself on SUPERVISION_CHANNEL in its own transaction, so every server
process's walls reload the alert list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg

from base import audit
from base.errors import DomainError
from base.pg import Connection, Pool

SUPERVISION_CHANNEL = "liandong_supervision"
MARK_EMPTY_CHANNEL = "liandong_mark_empty_seat"  # payload: a camera id
_ANNOUNCE = "SELECT pg_notify('" + SUPERVISION_CHANNEL + "', $1::text)"

# What each kind means, for people (the wall shows these).
KINDS = {"absent": "离岗", "offline": "离线", "covered": "遮挡/黑屏", "defocused": "失焦", "frozen": "画面冻结",
         "moved": "移位", "storage": "存储将满"}

_PUBLIC = ("a.id, a.kind, a.camera_id, a.began_at, a.opened_at, a.cleared_at, a.acknowledged_at, a.acknowledged_by,"
           " a.closed_at, a.closed_by, a.note, a.detail, a.snapshot IS NOT NULL AS has_snapshot,"
           " c.code AS camera_code, c.name AS camera_name, c.department, c.window_label")


async def open_alert(db: Connection | Pool, kind: str, camera_id: int | None, began_at: datetime, opened_at: datetime,
                     detail: dict[str, Any], snapshot: bytes | None = None) -> int | None:
    """Open an alert unless one of this kind is already active on the camera; its id, if new."""
    alert_id: int | None = await db.fetchval(
        "WITH opened AS (INSERT INTO supervision_alerts (kind, camera_id, began_at, opened_at, detail, snapshot)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id)"
        " SELECT id FROM opened, LATERAL (SELECT pg_notify($7, id::text)) announce",
        kind, camera_id, began_at, opened_at, detail, snapshot, SUPERVISION_CHANNEL)
    return alert_id


async def clear_alert(db: Connection | Pool, kind: str, camera_id: int | None, at: datetime,
                      detail: dict[str, Any]) -> None:
    """The condition ended (the clerk is back, the camera is online again)."""
    await db.execute(
        "WITH cleared AS (UPDATE supervision_alerts SET cleared_at = greatest($3, opened_at), detail = detail || $4"
        " WHERE kind = $1 AND coalesce(camera_id, 0) = coalesce($2, 0) AND cleared_at IS NULL RETURNING id)"
        " SELECT pg_notify($5, id::text) FROM cleared", kind, camera_id, at, detail, SUPERVISION_CHANNEL)


async def clear_camera(db: Connection | Pool, camera_id: int, reason: str) -> None:
    """This process starts watching the camera afresh: whatever was active is no longer known.
    A condition that still lasts opens a new alert once its limit passes again."""
    await db.execute(
        "WITH cleared AS (UPDATE supervision_alerts SET cleared_at = now(), detail = detail || $2"
        " WHERE camera_id = $1 AND cleared_at IS NULL RETURNING id)"
        " SELECT pg_notify($3, id::text) FROM cleared", camera_id, {"cleared_by": reason}, SUPERVISION_CHANNEL)


async def acknowledge(pool: Pool, alert_id: int, by: str, entry: audit.Entry) -> dict[str, Any]:
    return await _handle(pool, alert_id, "acknowledged_at = coalesce(acknowledged_at, now()),"
                                         " acknowledged_by = coalesce(acknowledged_by, $2)", by, "", False, entry)


async def close(pool: Pool, alert_id: int, by: str, note: str, entry: audit.Entry) -> dict[str, Any]:
    return await _handle(pool, alert_id, "acknowledged_at = coalesce(acknowledged_at, now()),"
                                         " acknowledged_by = coalesce(acknowledged_by, $2),"
                                         " closed_at = now(), closed_by = $2, note = $3", by, note, True, entry)


async def _handle(pool: Pool, alert_id: int, assignments: str, by: str, note: str, closing: bool,
                  entry: audit.Entry) -> dict[str, Any]:
    async with audit.recorded(pool, entry) as connection:
        current = await connection.fetchrow("SELECT closed_at FROM supervision_alerts WHERE id = $1 FOR UPDATE",
                                            alert_id)
        if current is None:
            raise DomainError(f"supervision alert {alert_id} does not exist", "id", "not_found")
        if current["closed_at"] is not None:
            raise DomainError(f"supervision alert {alert_id} is already closed", "id", "closed")
        await connection.execute(f"UPDATE supervision_alerts SET {assignments} WHERE id = $1", alert_id, by,
                                 *([note] if closing else []))
        await connection.execute(_ANNOUNCE, str(alert_id))
        row = await connection.fetchrow(f"SELECT {_PUBLIC} FROM supervision_alerts a"
                                        " LEFT JOIN cameras c ON c.id = a.camera_id WHERE a.id = $1", alert_id)
    assert row is not None
    return alert_json(row)


def alert_json(row: asyncpg.Record) -> dict[str, Any]:
    alert = dict(row)
    alert["label"] = KINDS.get(alert["kind"], alert["kind"])
    alert["window"] = alert.pop("window_label")
    alert["snapshot_url"] = f"/api/supervision/alerts/{alert['id']}/snapshot" if alert.pop("has_snapshot") else None
    return alert


async def alerts(pool: Pool, open_only: bool, since: datetime | None, limit: int,
                 departments: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Alerts newest first: those still to close, or all since a time; only those of `departments`'
    cameras when any are given (before the limit, so another department's alarms cannot crowd them out)."""
    rows = await pool.fetch(
        f"SELECT {_PUBLIC} FROM supervision_alerts a LEFT JOIN cameras c ON c.id = a.camera_id"
        " WHERE ($1 = false OR a.closed_at IS NULL) AND ($2::timestamptz IS NULL OR a.opened_at >= $2)"
        " AND (cardinality($4::text[]) = 0 OR c.department = ANY($4::text[]))"
        " ORDER BY a.opened_at DESC, a.id DESC LIMIT $3", open_only, since, limit, list(departments))
    return [alert_json(r) for r in rows]


async def snapshot(pool: Pool, alert_id: int) -> bytes:
    row = await pool.fetchrow("SELECT snapshot FROM supervision_alerts WHERE id = $1", alert_id)
    if row is None:
        raise DomainError(f"supervision alert {alert_id} does not exist", "id", "not_found")
    if row["snapshot"] is None:
        raise DomainError(f"supervision alert {alert_id} has no picture", "id", "no_snapshot")
    data: bytes = row["snapshot"]
    return data


@dataclass(frozen=True)
class WindowDay:
    day: date
    department: str
    window: str
    camera_id: int
    absence_minutes: float
    alerts: dict[str, int]


async def statistics(pool: Pool, since: date, until: date, offset: timedelta) -> list[WindowDay]:
    """Per department, window and local day: minutes the seat stood empty (from the clerk leaving to
    coming back, within the day) and the alerts opened, by kind."""
    zone = timezone(offset)
    start = datetime.combine(since, datetime.min.time(), zone)
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), zone)
    rows = await pool.fetch(
        "WITH days AS (SELECT d FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 day',"
        " interval '1 day') AS d),"
        " absence AS (SELECT a.camera_id, days.d, sum(extract(epoch FROM least(coalesce(a.cleared_at, now()),"
        "   days.d + interval '1 day') - greatest(a.began_at, days.d))) / 60 AS minutes"
        "   FROM supervision_alerts a JOIN days ON a.began_at < days.d + interval '1 day'"
        "   AND coalesce(a.cleared_at, now()) > days.d WHERE a.kind = 'absent' GROUP BY 1, 2),"
        " counts AS (SELECT a.camera_id, days.d, jsonb_object_agg(a.kind, a.n) AS alerts FROM days JOIN LATERAL"
        "   (SELECT camera_id, kind, count(*) AS n FROM supervision_alerts WHERE opened_at >= days.d"
        "    AND opened_at < days.d + interval '1 day' AND camera_id IS NOT NULL GROUP BY 1, 2) a ON true"
        "   GROUP BY 1, 2)"
        " SELECT days.d, c.id AS camera_id, c.department, c.window_label,"
        "  coalesce(absence.minutes, 0)::float8 AS minutes, coalesce(counts.alerts, '{}') AS alerts"
        " FROM days CROSS JOIN cameras c"
        " LEFT JOIN absence ON absence.camera_id = c.id AND absence.d = days.d"
        " LEFT JOIN counts ON counts.camera_id = c.id AND counts.d = days.d"
        " ORDER BY days.d, c.department, c.window_label, c.id", start, end)
    return [WindowDay(r["d"].astimezone(zone).date(), r["department"], r["window_label"], r["camera_id"],
                      round(r["minutes"], 1), dict(r["alerts"])) for r in rows]


async def store_empty_seat(pool: Pool, camera_id: int, png: bytes, how: str) -> None:
    await pool.execute(
        "INSERT INTO camera_empty_seats (camera_id, png, how) VALUES ($1, $2, $3) ON CONFLICT (camera_id)"
        " DO UPDATE SET png = $2, how = $3, taken_at = now()", camera_id, png, how)


async def empty_seat(db: Connection | Pool, camera_id: int) -> bytes | None:
    png: bytes | None = await db.fetchval("SELECT png FROM camera_empty_seats WHERE camera_id = $1", camera_id)
    return png
