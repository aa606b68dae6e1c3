"""Statistics centres report against call-processing targets: incidents by type, district and day,
and per sub-centre the response intervals (created → delivered, → acknowledged, → feedback)."""

from __future__ import annotations

import csv
import functools
import io
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import shapely
from shapely import STRtree

from base.pg import Pool
from dispatch.taxonomy import IncidentType, Taxonomy
from gis.boundaries import yichang_districts

_STAGES = (("delivered", "delivered_at"), ("acknowledged", "acknowledged_at"), ("feedback", "closed_at"))


class DistrictIndex:
    """Which district of the shipped boundaries holds a point ("" outside them all)."""

    def __init__(self) -> None:
        self._districts = yichang_districts()
        self._tree = STRtree([d.area for d in self._districts])

    def name_at(self, lon: float, lat: float) -> str:
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return self._districts[int(min(hits))].name if len(hits) else ""


@functools.cache
def districts() -> DistrictIndex:
    return DistrictIndex()


async def summary(pool: Pool, taxonomy: Taxonomy, offset: timedelta, since: datetime,
                  until: datetime) -> dict[str, Any]:
    local = timezone(offset)
    incidents = await pool.fetch(
        "SELECT type_code, lon, lat, created_at FROM incidents WHERE created_at >= $1 AND created_at < $2"
        " AND merged_into IS NULL", since, until)
    by_type = Counter(r["type_code"] for r in incidents)
    by_district = Counter(districts().name_at(r["lon"], r["lat"]) or "(outside)" for r in incidents)
    by_day = Counter(r["created_at"].astimezone(local).date().isoformat() for r in incidents)
    percentiles = ", ".join(
        f"percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM t.{column} - t.created_at))"
        f" FILTER (WHERE t.{column} IS NOT NULL) AS {stage}, count(t.{column}) AS {stage}_n"
        for stage, column in _STAGES)
    rows = await pool.fetch(
        f"SELECT t.subcentre_id, s.name, s.department, count(*) AS tickets, {percentiles}"
        " FROM tickets t JOIN subcentres s ON s.id = t.subcentre_id JOIN incidents i ON i.id = t.incident_id"
        " WHERE i.created_at >= $1 AND i.created_at < $2 GROUP BY t.subcentre_id, s.name, s.department"
        " ORDER BY s.department, s.name", since, until)
    response = [{"subcentre_id": r["subcentre_id"], "subcentre": r["name"], "department": r["department"],
                 "tickets": r["tickets"],
                 **{stage: _seconds(r[stage], r[f"{stage}_n"]) for stage, _ in _STAGES}} for r in rows]
    return {
        "since": since, "until": until, "incidents": len(incidents),
        "by_type": [{"type_code": code, "type_name": _name(taxonomy.get(code)), "count": n}
                    for code, n in sorted(by_type.items())],
        "by_district": [{"district": name, "count": n} for name, n in sorted(by_district.items())],
        "by_day": [{"day": day, "count": n} for day, n in sorted(by_day.items())],
        "response_s": response,
    }


def _name(kind: IncidentType | None) -> str:
    return kind.name if kind else ""


def _seconds(values: list[float] | None, count: int) -> dict[str, Any]:
    p50, p90, p99 = values if values else (None, None, None)
    return {"n": count, "p50": _round(p50), "p90": _round(p90), "p99": _round(p99)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


async def tickets_csv(pool: Pool, since: datetime, until: datetime) -> str:
    """One row per ticket: the intervals a centre reports, in seconds."""
    rows = await pool.fetch(
        "SELECT i.id AS incident_id, i.type_code, i.severity, i.lon, i.lat, i.created_at, t.id AS ticket_id,"
        " s.name AS subcentre, t.department, t.state,"
        " extract(epoch FROM t.delivered_at - t.created_at) AS delivered_s,"
        " extract(epoch FROM t.acknowledged_at - t.created_at) AS acknowledged_s,"
        " extract(epoch FROM t.closed_at - t.created_at) AS feedback_s"
        " FROM tickets t JOIN incidents i ON i.id = t.incident_id JOIN subcentres s ON s.id = t.subcentre_id"
        " WHERE i.created_at >= $1 AND i.created_at < $2 ORDER BY i.created_at, t.id", since, until)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["incident_id", "type_code", "severity", "district", "created_at", "ticket_id", "subcentre",
                     "department", "state", "delivered_s", "acknowledged_s", "feedback_s"])
    for r in rows:
        writer.writerow([r["incident_id"], r["type_code"], r["severity"], districts().name_at(r["lon"], r["lat"]),
                         r["created_at"].isoformat(), r["ticket_id"], r["subcentre"], r["department"], r["state"],
                         *(f"{float(r[k]):.3f}" if r[k] is not None else "" for k in
                           ("delivered_s", "acknowledged_s", "feedback_s"))])
    return out.getvalue()


def chart_png(summary: dict[str, Any], kind: str) -> bytes:
    """A PNG chart (matplotlib, headless). Labels are ASCII so no CJK font is needed on the server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=100)
    if kind == "by_day":
        days = [d["day"] for d in summary["by_day"]]
        axes.bar(days, [d["count"] for d in summary["by_day"]], color="#3a6b99")
        axes.set_title("Incidents per day")
        axes.set_ylabel("incidents")
        axes.tick_params(axis="x", rotation=45)
    else:
        rows = [r for r in summary["response_s"] if r["acknowledged"]["p90"] is not None]
        labels = [f"#{r['subcentre_id']} {r['department']}" for r in rows]
        axes.barh(labels, [r["acknowledged"]["p90"] for r in rows], color="#c0392b", label="acknowledged p90")
        axes.barh(labels, [r["delivered"]["p90"] or 0 for r in rows], color="#3a6b99", label="delivered p90")
        axes.set_title("Response intervals per sub-centre (seconds, p90)")
        axes.set_xlabel("seconds after the ticket was created")
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
