"""Items, cases and their events in PostgreSQL; each event checked, clocked and carded as it is stored.

An event is stored once per (department, event id): a retry with the same content is acknowledged
and changes nothing, a different content under the same id is refused. Every stored event re-reads
the case's whole history under the case's row lock, so late and reordered pushes end in the same
anomalies, clock and cards as an orderly one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import msgspec

from base import audit
from base.errors import DomainError, NotFound
from base.messages import PLAIN
from base.pg import Connection, Pool
from efficiency.calendar import WorkingCalendar
from efficiency.clock import CaseClock, clock
from efficiency.items import ApprovalItem, ItemProblem, Stage, check_item
from efficiency.rules import Anomaly, CaseEvent, anomalies

CARDS_CHANNEL = "liandong_efficiency_cards"
FUTURE_SLACK = timedelta(minutes=5)  # clocks of departments' systems drift; beyond this, "in the future"
OLDEST = timedelta(days=3660)  # no approval runs ten years; older is a wrong clock or a wrong field
Short = Annotated[str, PLAIN, msgspec.Meta(max_length=200)]
Reference = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=64)]


class IncomingEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One case event as a department's system (or the manual entry form) sends it."""

    department: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]
    case: Reference  # the department's case number
    item: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=64)]
    event_id: Reference
    kind: Literal["stage", "suspend", "resume"]
    at: datetime
    stage: Stage | None = None
    actor: Short = ""
    documents: Annotated[list[Short], msgspec.Meta(max_length=100)] = []
    fee_yuan: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    applicant: Short = ""
    window: Short = ""


class EventConflict(DomainError):
    code = "duplicate"

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event {event_id!r} was received before with different content", "event_id")


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


def _digest(event: IncomingEvent) -> bytes:
    return hashlib.sha256(msgspec.json.encode(event)).digest()


def _check(event: IncomingEvent, item: ApprovalItem, now: datetime) -> None:
    if event.at.tzinfo is None:
        raise DomainError("give the time zone, e.g. 2026-11-24T09:30:00+08:00", "at")
    if event.at > now + FUTURE_SLACK:
        raise DomainError("the event is in the future", "at")
    if event.at < now - OLDEST:
        raise DomainError("the event is more than ten years old", "at")
    if (event.kind == "stage") != (event.stage is not None):
        raise DomainError("a stage event names its stage, and only a stage event does", "stage")
    if event.stage is not None and event.stage not in item.stages:
        raise DomainError(f"item {item.code} has no {event.stage} stage (it has {', '.join(item.stages)})", "stage")
    if item.department != event.department:
        raise DomainError(f"item {item.code} belongs to {item.department}, not {event.department}", "item")


async def ingest(pool: Pool, calendar: WorkingCalendar, yellow_share: float, event: IncomingEvent
                 ) -> tuple[int, bool]:
    """Store one event and bring its case's anomalies, clock and cards up to date; (case id, new?)."""
    async with pool.acquire() as connection, connection.transaction():
        now: datetime = await connection.fetchval("SELECT now()")
        case_id, item = await _store(connection, event, now, {})
        if item is not None:
            await _bring_up_to_date(connection, case_id, item, calendar, yellow_share, now)
    return case_id, item is not None


async def ingest_batch(pool: Pool, calendar: WorkingCalendar, yellow_share: float,
                       events: Sequence[IncomingEvent]) -> list[tuple[int, bool]]:
    """Store a batch of events all or none (a refused one names itself as events[i]); each case touched is
    brought up to date once, after all its events. (case id, new?) for each event, in order."""
    async with pool.acquire() as connection, connection.transaction():
        now: datetime = await connection.fetchval("SELECT now()")
        items: dict[str, ApprovalItem] = {}
        touched: dict[int, ApprovalItem] = {}
        outcomes: dict[int, tuple[int, bool]] = {}
        # Cases are locked in one order, (department, case number), so two batches never wait on each other
        # in a circle; a case's own events keep the batch's order.
        for n, event in sorted(enumerate(events), key=lambda e: (e[1].department, e[1].case)):
            try:
                case_id, item = await _store(connection, event, now, items)
            except DomainError as error:
                error.field = f"events[{n}]" + (f".{error.field}" if error.field else "")
                raise
            if item is not None:
                touched[case_id] = item
            outcomes[n] = (case_id, item is not None)
        for case_id, item in touched.items():
            await _bring_up_to_date(connection, case_id, item, calendar, yellow_share, now)
    return [outcomes[n] for n in range(len(events))]


async def _store(connection: Connection, event: IncomingEvent, now: datetime, items: dict[str, ApprovalItem]
                 ) -> tuple[int, ApprovalItem | None]:
    """Store one event, checked, under its case's row lock; (case id, its item), or (case id, None) for a
    retry already stored. The caller brings the case up to date."""
    digest = _digest(event)
    seen = await connection.fetchrow("SELECT case_id, digest FROM case_events WHERE department = $1"
                                     " AND event_id = $2", event.department, event.event_id)
    if seen is not None:
        if bytes(seen["digest"]) != digest:
            raise EventConflict(event.event_id)
        return seen["case_id"], None  # a retry: already counted
    item = items.get(event.item)
    if item is None:
        body = await connection.fetchval("SELECT body FROM approval_items WHERE code = $1", event.item)
        if body is None:
            raise DomainError(f"unknown approval item {event.item!r}", "item")
        item = items[event.item] = msgspec.convert(body, ApprovalItem)
    _check(event, item, now)
    # The upsert locks the case's row: one event of a case at a time, each reading the history the last left.
    case = await connection.fetchrow(
        "INSERT INTO approval_cases (department, reference, item_code, applicant, window_label, promised_days,"
        " legal_days) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (department, reference) DO UPDATE"
        " SET applicant = CASE WHEN $4 = '' THEN approval_cases.applicant ELSE $4 END,"
        " window_label = CASE WHEN $5 = '' THEN approval_cases.window_label ELSE $5 END RETURNING id, item_code",
        event.department, event.case, event.item, event.applicant, event.window, item.promised_days,
        item.legal_days)
    assert case is not None, "an upsert returns its row"
    if case["item_code"] != event.item:
        raise DomainError(f"case {event.case} is for item {case['item_code']}, not {event.item}", "item")
    await _check_beginning(connection, case["id"], event)
    await connection.execute(
        "INSERT INTO case_events (case_id, department, event_id, kind, stage, at, actor, documents, fee_yuan,"
        " digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", case["id"], event.department, event.event_id,
        event.kind, event.stage, event.at, event.actor, event.documents, event.fee_yuan, digest)
    return case["id"], item


async def _check_beginning(connection: Connection, case_id: int, event: IncomingEvent) -> None:
    """A case begins with its acceptance (受理): nothing of it is dated before. A stage before acceptance is
    an anomaly only while no acceptance is known; once one is, an earlier date is a wrong clock or case."""
    row = await connection.fetchrow("SELECT min(at) FILTER (WHERE stage = 'accept') AS began, min(at) AS earliest"
                                    " FROM case_events WHERE case_id = $1", case_id)
    assert row is not None, "an aggregate gives one row"
    began, earliest = row["began"], row["earliest"]
    accepting = event.stage is Stage.ACCEPT
    if not accepting and began is not None and event.at < began:
        raise DomainError(f"case {event.case} began with its acceptance at {began.isoformat()};"
                          " this event is dated before it", "at")
    if accepting and began is None and earliest is not None and earliest < event.at:
        raise DomainError(f"case {event.case} has events dated before this acceptance (the earliest at"
                          f" {earliest.isoformat()}): a case begins with its acceptance", "at")


async def _events(connection: Connection, case_id: int) -> list[CaseEvent]:
    rows = await connection.fetch("SELECT event_id, kind, at, actor, stage, documents, fee_yuan FROM case_events"
                                  " WHERE case_id = $1", case_id)
    return [CaseEvent(r["event_id"], r["kind"], r["at"], r["actor"], Stage(r["stage"]) if r["stage"] else None,
                      tuple(r["documents"]), r["fee_yuan"]) for r in rows]


async def _bring_up_to_date(connection: Connection, case_id: int, item: ApprovalItem, calendar: WorkingCalendar,
                            yellow_share: float, now: datetime) -> None:
    events = await _events(connection, case_id)
    found = anomalies(item, events, now)
    state = clock(item, events, calendar, now, yellow_share)
    staff = next((e.actor for e in events if e.kind == "stage" and e.stage is Stage.ACCEPT), "")
    await connection.execute(
        "UPDATE approval_cases SET accepted_at = $2, completed_at = $3, suspended = $4, used_days = $5,"
        " yellow_at = $6, red_at = $7, estimated = $8, staff = $9 WHERE id = $1", case_id, state.accepted_at,
        state.completed_at, state.suspended, state.used_days, state.yellow_at, state.red_at, state.estimated, staff)
    await _anomalies(connection, case_id, found)
    changed = await _cards(connection, case_id, found, state, now)
    if state.completed_at is not None:  # a warning is moot once the case is done; a red card stays to be answered
        changed += await _close(connection, "case_id = $1 AND colour = 'yellow' AND reason = 'time'", case_id,
                               by="completed")
    if changed:
        await connection.execute("SELECT pg_notify($1, $2)", CARDS_CHANNEL, str(case_id))


async def _anomalies(connection: Connection, case_id: int, found: list[Anomaly]) -> None:
    """The stored anomalies become exactly `found` (a late event can make one vanish)."""
    await connection.execute(
        "DELETE FROM case_anomalies WHERE case_id = $1 AND (rule, event_id) NOT IN"
        " (SELECT * FROM unnest($2::text[], $3::text[]))", case_id, [a.rule for a in found],
        [a.event_id for a in found])
    await connection.executemany(
        "INSERT INTO case_anomalies (case_id, rule, event_id, detail) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (case_id, rule, event_id) DO UPDATE SET detail = $4",
        [(case_id, a.rule, a.event_id, a.detail) for a in found])


async def _cards(connection: Connection, case_id: int, found: list[Anomaly], state: CaseClock,
                 now: datetime) -> int:
    """A red card for each anomaly, yellow and red for time as the days used call for them; cards whose
    cause is gone (a late event settled it) are closed. How many cards opened or closed."""
    wanted = [("red", a.rule, a.event_id, a.detail, now) for a in found]
    wanted += [(colour, "time", "", f"{state.used_days:.2f} working days used", state.since(colour, now))
               for colour in state.due]
    changed = await _close(
        connection, "case_id = $1 AND (colour, reason, event_id) NOT IN"
        " (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]))",
        case_id, [w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted], by="cause gone")
    for colour, reason, event_id, detail, since in wanted:
        inserted = await connection.fetchval(
            "INSERT INTO efficiency_cards (case_id, colour, reason, event_id, detail, opened_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id, colour, reason, event_id) DO NOTHING"
            " RETURNING true", case_id, colour, reason, event_id, detail, since)
        changed += bool(inserted)
    return changed


async def _close(connection: Connection, where: str, *arguments: Any, by: str) -> int:
    """Close the open cards `where` says, naming why; how many closed."""
    closed = await connection.fetch(
        f"UPDATE efficiency_cards SET closed_at = now(), closed_by = ${len(arguments) + 1} WHERE closed_at IS NULL"
        f" AND {where} RETURNING id", *arguments, by)
    return len(closed)


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
