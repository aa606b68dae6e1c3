"""The supervision centre's figures for a period, by department, item, window or staff member: cases
received (accepted), completed, on time (within the promise) and late (past the legal limit), and in
progress (accepted by the period's end and still open now); working days used; cards; anomalies; complaints;
satisfaction; and the minutes the video analysis found a window's seat empty (离岗).

Every figure is counted in SQL from stored outcomes, one query per kind of record, each reading only
the period's rows through an index on its time that also carries the keys the figures are grouped by
(migration 0004), and each card its case's keys: at a million cases, a month's figures never visit
the cases' rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from base.pg import Pool
from efficiency import store

# how each grouping names a case's row, a complaint's and a camera's ('' where it has no such key)
GROUPS: dict[str, tuple[str, str, str | None]] = {
    "department": ("c.department", "k.department", "m.department"),
    "item": ("c.item_code", "coalesce(kc.item_code, '')", None),
    "window": ("c.department || ' · ' || c.window_label", "k.department || ' · ' || k.window_label",
               "m.department || ' · ' || m.window_label"),
    "staff": ("c.department || ' · ' || c.staff", "k.department || ' · ' || k.staff", None),
}
ZERO = {"received": 0, "in_progress": 0, "completed": 0, "on_time": 0, "late": 0, "average_days": None,
        "p90_days": None, "red_cards": 0, "yellow_cards": 0, "open_cards": 0, "anomalies": 0, "complaints": 0,
        "complaints_upheld": 0, "ratings": 0, "satisfied": 0, "basically": 0, "unsatisfied": 0,
        "absence_minutes": None}
CONCURRENT = 2  # queries of one request at a time: each is a core's work, and the pool serves others too
WORK_MEM = "64MB"  # a period's working days are sorted for their p90 in memory, not in temporary files
_IN = "BETWEEN $1 AND $2"  # timestamps are to the microsecond: `until` is the period's last instant


def _queries(by: str) -> list[str]:
    case, complaint, camera = GROUPS[by]
    card = case.replace("c.", "k.")
    mine = "(cardinality($3::text[]) = 0 OR c.department = ANY($3))"
    mine_card = mine.replace("c.", "k.")
    queries = [
        f"SELECT {case} AS key, count(*) AS received FROM approval_cases c WHERE c.accepted_at {_IN} AND {mine}"
        " GROUP BY 1",
        f"SELECT {case} AS key, count(*) AS completed, count(*) FILTER (WHERE c.used_days <= c.promised_days)"
        " AS on_time, count(*) FILTER (WHERE c.used_days > c.legal_days) AS late, avg(c.used_days) AS average_days,"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY c.used_days) AS p90_days FROM approval_cases c"
        f" WHERE c.completed_at {_IN} AND {mine} GROUP BY 1",
        f"SELECT {case} AS key, count(*) AS in_progress FROM approval_cases c WHERE c.completed_at IS NULL"
        f" AND c.accepted_at <= $2 AND {mine} AND $1::timestamptz IS NOT NULL GROUP BY 1",
        # a card carries its case's keys (migration 0004): k.* stands for c.* without a join to every case
        f"SELECT {card} AS key, count(*) FILTER (WHERE k.colour = 'red') AS red_cards,"
        " count(*) FILTER (WHERE k.colour = 'yellow') AS yellow_cards FROM efficiency_cards k"
        f" WHERE k.case_id IS NOT NULL AND k.opened_at {_IN}"
        " AND k.closed_by <> 'cause gone'"  # a card a late event showed was never due does not count
        f" AND {mine_card} GROUP BY 1",
        f"SELECT {card} AS key, count(*) AS open_cards FROM efficiency_cards k WHERE k.case_id IS NOT NULL"
        f" AND k.closed_at IS NULL AND {mine_card} AND $1::timestamptz IS NOT NULL AND $2::timestamptz IS NOT NULL"
        " GROUP BY 1",
        f"SELECT {case} AS key, count(*) AS anomalies FROM case_anomalies a JOIN approval_cases c"
        f" ON c.id = a.case_id WHERE a.found_at {_IN} AND {mine} GROUP BY 1",
        f"SELECT {complaint} AS key, count(*) AS complaints, count(*) FILTER (WHERE k.upheld) AS complaints_upheld"
        " FROM complaints k LEFT JOIN approval_cases kc ON kc.id = k.case_id"
        f" WHERE k.received_at {_IN} AND (cardinality($3::text[]) = 0 OR k.department = ANY($3)) GROUP BY 1",
        f"SELECT {case} AS key, count(*) AS ratings, count(*) FILTER (WHERE r.verdict = 'satisfied') AS satisfied,"
        " count(*) FILTER (WHERE r.verdict = 'basically') AS basically,"
        " count(*) FILTER (WHERE r.verdict = 'unsatisfied') AS unsatisfied FROM window_ratings r"
        f" JOIN approval_cases c ON c.id = r.case_id WHERE r.at {_IN} AND {mine} GROUP BY 1",
    ]
    if camera is not None:  # absence is seen per window camera: it has no item and no staff member
        queries.append(
            f"SELECT {camera} AS key, (sum(extract(epoch FROM least(coalesce(a.cleared_at, now()), $2)"
            " - greatest(a.began_at, $1))) / 60)::float8 AS absence_minutes FROM supervision_alerts a"
            " JOIN cameras m ON m.id = a.camera_id WHERE a.kind = 'absent' AND a.began_at <= $2"
            " AND coalesce(a.cleared_at, now()) >= $1"
            " AND (cardinality($3::text[]) = 0 OR m.department = ANY($3)) GROUP BY 1")
    return queries


async def figures(pool: Pool, since: datetime, until: datetime, by: str = "department",
                  departments: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per department (item, window, staff member) with everything in ZERO, in key order."""
    rows: dict[str, dict[str, Any]] = {}
    if by == "department":  # every department of the hall has its row, a quiet one too
        for department in await store.departments(pool, departments):
            rows[department] = {"key": department, **ZERO}
    gate = asyncio.Semaphore(CONCURRENT)

    async def fetch(query: str) -> list[asyncpg.Record]:
        async with gate, pool.acquire() as connection, connection.transaction():
            await connection.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            return await connection.fetch(query, since, until, list(departments))

    for records in await asyncio.gather(*(fetch(query) for query in _queries(by))):
        for record in records:
            row = rows.setdefault(record["key"], {"key": record["key"], **ZERO})
            row.update((name, value) for name, value in record.items() if name != "key")
    if GROUPS[by][2] is not None:  # a department or window with cameras but nothing found empty: 0 minutes
        for row in rows.values():
            row["absence_minutes"] = row["absence_minutes"] or 0.0
    for row in rows.values():
        row["on_time_rate"] = row["on_time"] / row["completed"] if row["completed"] else None
        rated = row["ratings"]
        row["satisfaction"] = (row["satisfied"] + 0.5 * row["basically"]) / rated if rated else None
    return sorted(rows.values(), key=lambda row: row["key"])


def totals(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The whole hall: counts summed; rates recomputed from the sums, not averaged."""
    summed = {name: sum(row[name] or 0 for row in rows) for name, zero in ZERO.items() if zero is not None}
    summed["absence_minutes"] = sum(row["absence_minutes"] or 0 for row in rows)
    completed, rated = summed["completed"], summed["ratings"]
    summed["on_time_rate"] = summed["on_time"] / completed if completed else None
    summed["satisfaction"] = (summed["satisfied"] + 0.5 * summed["basically"]) / rated if rated else None
    summed["average_days"] = (sum((row["average_days"] or 0) * row["completed"] for row in rows) / completed
                              if completed else None)
    return summed
