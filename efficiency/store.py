"""Items, cases and their cards in PostgreSQL: the catalogue, what a case holds, the time cards the
sweep opens as they fall due, and the lists the supervision pages read. Events are stored by
efficiency.ingest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import msgspec

from base import audit
from base.errors import DomainError, NotFound
from base.pg import Connection, Pool
from efficiency.items import ApprovalItem, ItemProblem, check_item

CARDS_CHANNEL = "liandong_efficiency_cards"


async def save_item(pool: Pool, item: ApprovalItem, actor: audit.Actor) -> bool:
    """Create or replace an item; True if it is new."""
    try:
        check_item(item)
    except ItemProblem as problem:
        raise DomainError(problem.message, problem.field) from None
    entry = audit.Entry(actor, "efficiency.item", f"item:{item.code}", details={"department": item.department})
    async with audit.recorded(pool, entry) as connection:
        created: bool = await connection.fetchval(
            "INSERT INTO approval_items (code, department, name, body) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (code) DO UPDATE SET department = $2, name = $3, body = $4, updated_at = now()"
            " RETURNING xmax = 0", item.code, item.department, item.name, msgspec.to_builtins(item))
    return created


async def save_items(pool: Pool, items: Sequence[ApprovalItem], actor: audit.Actor) -> int:
    """Create or replace a whole catalogue at once (all or nothing); how many items are new."""
    entry = audit.Entry(actor, "efficiency.items.import", "items",
                        details={"items": len(items), "departments": sorted({i.department for i in items})})
    async with audit.recorded(pool, entry) as connection:
        created: int = await connection.fetchval(
            "WITH saved AS (INSERT INTO approval_items (code, department, name, body)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])"
            " ON CONFLICT (code) DO UPDATE SET department = excluded.department, name = excluded.name,"
            " body = excluded.body, updated_at = now() RETURNING xmax = 0 AS new) SELECT count(*) FILTER (WHERE new)"
            " FROM saved", [i.code for i in items], [i.department for i in items], [i.name for i in items],
            [msgspec.to_builtins(i) for i in items])
    return created


async def items(pool: Pool, departments: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT body FROM approval_items WHERE cardinality($1::text[]) = 0"
                            " OR department = ANY($1::text[]) ORDER BY department, code", list(departments))
    return [r["body"] for r in rows]


async def departments(db: Pool | Connection, within: Sequence[str] = ()) -> list[str]:
    """The hall's departments: those with an approval item (only `within`, if given), by name."""
    rows = await db.fetch("SELECT DISTINCT department FROM approval_items WHERE cardinality($1::text[]) = 0"
                          " OR department = ANY($1) ORDER BY 1", list(within))
    return [r["department"] for r in rows]


async def open_due_cards(pool: Pool, since: datetime | None = None) -> int:
    """Time cards whose moment has come (after `since`, if given) for open, running cases; how many opened.
    Run every second; a card due earlier than `since` was opened by an earlier pass or by its event."""
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            "INSERT INTO efficiency_cards (case_id, colour, reason, detail)"
            " SELECT c.id, d.colour, 'time', 'the limit has come' FROM"
            " (SELECT id, yellow_at, red_at FROM approval_cases WHERE completed_at IS NULL AND NOT suspended"
            "  AND yellow_at <= now() AND yellow_at > coalesce($1::timestamptz, '-infinity')"
            "  UNION SELECT id, yellow_at, red_at FROM approval_cases WHERE completed_at IS NULL AND NOT suspended"
            "  AND red_at <= now() AND red_at > coalesce($1::timestamptz, '-infinity')) AS c,"
            " LATERAL (VALUES ('yellow', c.yellow_at), ('red', c.red_at)) AS d(colour, due) WHERE d.due <= now()"
            " ON CONFLICT (case_id, colour, reason, event_id) DO NOTHING RETURNING case_id", since)
        if rows:
            await connection.execute("SELECT pg_notify($1, $2)", CARDS_CHANNEL, "")
    return len(rows)


async def case(pool: Pool, case_id: int) -> dict[str, Any]:
    """A case with its events in the order they happened, its anomalies and cards."""
    row = await pool.fetchrow("SELECT * FROM approval_cases WHERE id = $1", case_id)
    if row is None:
        raise NotFound(f"there is no case {case_id}", "id")
    events = await pool.fetch("SELECT event_id, kind, stage, at, actor, documents, fee_yuan, received_at"
                              " FROM case_events WHERE case_id = $1 ORDER BY at, event_id", case_id)
    found = await pool.fetch("SELECT rule, event_id, detail, found_at FROM case_anomalies WHERE case_id = $1"
                             " ORDER BY found_at, rule", case_id)
    cards = await pool.fetch("SELECT id, colour, reason, event_id, detail, opened_at, closed_at, closed_by,"
                             " acknowledged_at, acknowledged_by, escalation_step FROM efficiency_cards"
                             " WHERE case_id = $1 ORDER BY id", case_id)
    ratings = await pool.fetch("SELECT moment, verdict, at FROM window_ratings WHERE case_id = $1 ORDER BY at",
                               case_id)
    complaints = await pool.fetch("SELECT id, received_at, state, upheld, verdict FROM complaints WHERE case_id = $1"
                                  " ORDER BY id", case_id)
    camera = await window_camera(pool, row["department"], row["window_label"])
    return {**dict(row.items()), "camera_id": camera,
            "events": [{**dict(e.items()), "recording": recording_link(camera, e["at"])} for e in events],
            "anomalies": [dict(a.items()) for a in found], "cards": [dict(c.items()) for c in cards],
            "ratings": [dict(r.items()) for r in ratings], "complaints": [dict(c.items()) for c in complaints]}


RECORDING_BEFORE, RECORDING_AFTER = timedelta(minutes=2), timedelta(minutes=3)


async def window_camera(db: Pool | Connection, department: str, window: str) -> int | None:
    """The camera watching a department's window (the first, if several do); None: it has none."""
    if not window:
        return None
    camera: int | None = await db.fetchval("SELECT id FROM cameras WHERE department = $1 AND window_label = $2"
                                           " ORDER BY id LIMIT 1", department, window)
    return camera


def recording_link(camera_id: int | None, at: datetime) -> str | None:
    """Where the window camera's recording around `at` plays (None: the window has no camera)."""
    if camera_id is None:
        return None
    since, until = (at - RECORDING_BEFORE).isoformat(), (at + RECORDING_AFTER).isoformat()
    return f"/api/cameras/{camera_id}/playback?" + urlencode({"since": since, "until": until})


CASE_STATES = {"open": "completed_at IS NULL", "late": "used_days > legal_days",
               "completed": "completed_at IS NOT NULL", "all": "true"}


async def cases(pool: Pool, departments: tuple[str, ...], state: str, department: str | None, item: str | None,
                window: str | None, limit: int) -> list[dict[str, Any]]:
    """Cases newest first: the dashboard's drill-down from a department, item or window to its cases."""
    rows = await pool.fetch(
        "SELECT id, department, reference, item_code, applicant, window_label, staff, accepted_at, completed_at,"
        " suspended, used_days, promised_days, legal_days, yellow_at, red_at,"
        " (SELECT count(*) FROM efficiency_cards k WHERE k.case_id = c.id AND k.closed_at IS NULL) AS open_cards"
        f" FROM approval_cases c WHERE {CASE_STATES[state]}"
        " AND (cardinality($1::text[]) = 0 OR department = ANY($1)) AND ($2::text IS NULL OR department = $2)"
        " AND ($3::text IS NULL OR item_code = $3) AND ($4::text IS NULL OR window_label = $4)"
        " ORDER BY id DESC LIMIT $5", list(departments), department, item, window, limit)
    return [dict(r.items()) for r in rows]


# A card `k` beside its subject: its case `c` or its complaint `p`, whichever it has; and their department.
CARD_SUBJECT = ("efficiency_cards k LEFT JOIN approval_cases c ON c.id = k.case_id"
                " LEFT JOIN complaints p ON p.id = k.complaint_id")
CARD_DEPARTMENT = "coalesce(c.department, p.department)"

# A card with what the supervision page shows beside it: the case's (or complaint's) department and window.
CARDS = ("SELECT k.id, k.case_id, k.complaint_id, k.colour, k.reason, k.event_id, k.detail, k.opened_at, k.closed_at,"
         f" k.closed_by, k.acknowledged_at, k.escalation_step, {CARD_DEPARTMENT} AS department,"
         " c.reference, c.item_code, coalesce(c.window_label, p.window_label) AS window_label"
         f" FROM {CARD_SUBJECT}")


async def open_cards(pool: Pool, departments: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"{CARDS} WHERE k.closed_at IS NULL AND (cardinality($1::text[]) = 0"
        f" OR {CARD_DEPARTMENT} = ANY($1::text[])) ORDER BY k.opened_at DESC, k.id DESC LIMIT 500",
        list(departments))
    return [dict(r.items()) for r in rows]
