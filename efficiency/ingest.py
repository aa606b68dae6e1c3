"""Case events as the departments' systems push them: each stored once, checked, and its case clocked
and carded from the case's whole history.

An event is stored once per (department, event id): a retry with the same content is acknowledged
and changes nothing, a different content under the same id is refused. A batch is stored all or
none, in a fixed handful of statements however many events and cases it holds (a statement per
event cost more CPU than everything else together): the cases' rows are locked in one order, their
histories read at once, and each case touched is then brought up to date once, from its whole
history, so late and reordered pushes end in the same anomalies, clock and cards as an orderly one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec

from base.errors import DomainError
from base.messages import PLAIN
from base.pg import Connection, Pool
from efficiency.calendar import WorkingCalendar
from efficiency.clock import CaseClock, clock
from efficiency.items import ApprovalItem, Stage
from efficiency.rules import Anomaly, CaseEvent, anomalies, history
from efficiency.store import CARDS_CHANNEL

FUTURE_SLACK = timedelta(minutes=5)  # clocks of departments' systems drift; beyond this, "in the future"
OLDEST = timedelta(days=3660)  # no approval runs ten years; older is a wrong clock or a wrong field
Short = Annotated[str, PLAIN, msgspec.Meta(max_length=200)]
Reference = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=64)]
_JSON = msgspec.json.Encoder()  # an event's documents travel as JSON text: asyncpg reads nested lists as dimensions


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


async def ingest(pool: Pool, calendar: WorkingCalendar, yellow_share: float, event: IncomingEvent
                 ) -> tuple[int, bool]:
    """Store one event and bring its case's anomalies, clock and cards up to date; (case id, new?)."""
    return (await _ingest(pool, _Batch([event], calendar, yellow_share, lambda n: "")))[0]


async def ingest_batch(pool: Pool, calendar: WorkingCalendar, yellow_share: float,
                       events: Sequence[IncomingEvent]) -> list[tuple[int, bool]]:
    """Store a batch of events all or none (a refused one names itself as events[i]); each case touched is
    brought up to date once, after all its events. (case id, new?) for each event, in order."""
    return await _ingest(pool, _Batch(events, calendar, yellow_share, lambda n: f"events[{n}]"))


def _digest(event: IncomingEvent) -> bytes:
    return hashlib.sha256(msgspec.json.encode(event)).digest()


def check(event: IncomingEvent, item: ApprovalItem, now: datetime) -> None:
    """What one event must be, whatever its case holds."""
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


def check_beginning(event: IncomingEvent, history: Sequence[CaseEvent]) -> None:
    """A case begins with its acceptance (受理): nothing of it is dated before. A stage before acceptance is
    an anomaly only while no acceptance is known; once one is, an earlier date is a wrong clock or case."""
    accepted = [e.at for e in history if e.stage is Stage.ACCEPT]
    began = min(accepted, default=None)
    if event.stage is not Stage.ACCEPT:
        if began is not None and event.at < began:
            raise DomainError(f"case {event.case} began with its acceptance at {began.isoformat()};"
                              " this event is dated before it", "at")
    elif began is None and history and (earliest := min(e.at for e in history)) < event.at:
        raise DomainError(f"case {event.case} has events dated before this acceptance (the earliest at"
                          f" {earliest.isoformat()}): a case begins with its acceptance", "at")


@dataclass
class _Case:
    """A case the batch touches: its row, and its history as stored plus the batch's events so far."""

    id: int
    item: ApprovalItem
    history: list[CaseEvent]
    ids: dict[str, bytes]  # event id → digest, of what is stored


@dataclass
class _Batch:
    events: Sequence[IncomingEvent]
    calendar: WorkingCalendar
    yellow_share: float
    named: Callable[[int], str]  # how the reply names events[n]
    digests: list[bytes] = field(default_factory=list)
    outcomes: dict[int, tuple[int, bool]] = field(default_factory=dict)

    def refuse(self, n: int, error: DomainError) -> DomainError:
        prefix = self.named(n)
        if prefix:
            error.field = prefix + (f".{error.field}" if error.field else "")
        return error

    def key(self, n: int) -> tuple[str, str]:
        return self.events[n].department, self.events[n].event_id


async def _ingest(pool: Pool, batch: _Batch) -> list[tuple[int, bool]]:
    events = batch.events
    batch.digests = [_digest(e) for e in events]
    # Cases are locked in one order, (department, case number), so two batches never wait on each other in a
    # circle; a case's own events keep the batch's order.
    order = sorted(range(len(events)), key=lambda n: (events[n].department, events[n].case))
    async with pool.acquire() as connection, connection.transaction():
        now, fresh, echoes = await _sort_out(connection, batch, order)
        if fresh:
            items = await _items(connection, batch, fresh)
            for n in fresh:
                try:
                    check(events[n], items[events[n].item], now)
                except DomainError as error:
                    raise batch.refuse(n, error) from None
            cases = await _lock_cases(connection, batch, fresh, items)
            fresh = _against_histories(batch, fresh, cases)
            await _insert(connection, batch, fresh, cases)
            touched = {batch.outcomes[n][0]: cases[(events[n].department, events[n].case)] for n in fresh}
            if touched:
                await _bring_up_to_date(connection, list(touched.values()), batch, now)
        for n, first in echoes.items():  # the same event twice in one batch: the second is its retry
            batch.outcomes[n] = (batch.outcomes[first][0], False)
    return [batch.outcomes[n] for n in range(len(events))]


async def _sort_out(connection: Connection, batch: _Batch, order: list[int]
                    ) -> tuple[datetime, list[int], dict[int, int]]:
    """The transaction's now; the events new to the store, in lock order; and each event repeated within
    the batch, with the first it repeats. Retries already stored get their outcome."""
    rows = await connection.fetch(
        "SELECT now() AS now, e.* FROM (SELECT 1) AS one LEFT JOIN (SELECT department, event_id, case_id, digest"
        " FROM case_events JOIN unnest($1::text[], $2::text[]) AS k(d, e) ON department = k.d AND event_id = k.e)"
        " AS e ON true",
        [e.department for e in batch.events], [e.event_id for e in batch.events])
    now: datetime = rows[0]["now"]
    stored = {(r["department"], r["event_id"]): (r["case_id"], bytes(r["digest"])) for r in rows if r["case_id"]}
    fresh: list[int] = []
    first: dict[tuple[str, str], int] = {}
    echoes: dict[int, int] = {}
    for n in order:
        key = batch.key(n)
        if key in stored:
            case_id, digest = stored[key]
            if digest != batch.digests[n]:
                raise batch.refuse(n, EventConflict(key[1]))
            batch.outcomes[n] = (case_id, False)  # a retry: already counted
        elif key in first:
            if batch.digests[first[key]] != batch.digests[n]:
                raise batch.refuse(n, EventConflict(key[1]))
            echoes[n] = first[key]
        else:
            first[key] = n
            fresh.append(n)
    return now, fresh, echoes


async def _items(connection: Connection, batch: _Batch, fresh: list[int]) -> dict[str, ApprovalItem]:
    codes = sorted({batch.events[n].item for n in fresh})
    rows = await connection.fetch("SELECT code, body FROM approval_items WHERE code = ANY($1::text[])", codes)
    items = {r["code"]: msgspec.convert(r["body"], ApprovalItem) for r in rows}
    for n in fresh:
        if batch.events[n].item not in items:
            raise batch.refuse(n, DomainError(f"unknown approval item {batch.events[n].item!r}", "item"))
    return items


async def _lock_cases(connection: Connection, batch: _Batch, fresh: list[int], items: dict[str, ApprovalItem]
                      ) -> dict[tuple[str, str], _Case]:
    """Create or lock each case the new events belong to, in lock order, and read their histories. A case
    is for the item its first event names; the applicant and window are the latest given."""
    events = batch.events
    first: dict[tuple[str, str], IncomingEvent] = {}
    applicant: dict[tuple[str, str], str] = {}
    window: dict[tuple[str, str], str] = {}
    for n in fresh:
        event = events[n]
        key = (event.department, event.case)
        first.setdefault(key, event)
        applicant[key] = event.applicant or applicant.get(key, "")
        window[key] = event.window or window.get(key, "")
    keys = list(first)
    rows = await connection.fetch(
        "INSERT INTO approval_cases (department, reference, item_code, applicant, window_label, promised_days,"
        " legal_days) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],"
        " $7::int[]) ON CONFLICT (department, reference) DO UPDATE"
        " SET applicant = CASE WHEN excluded.applicant = '' THEN approval_cases.applicant ELSE excluded.applicant END,"
        " window_label = CASE WHEN excluded.window_label = '' THEN approval_cases.window_label"
        " ELSE excluded.window_label END RETURNING id, department, reference, item_code",
        [k[0] for k in keys], [k[1] for k in keys], [first[k].item for k in keys], [applicant[k] for k in keys],
        [window[k] for k in keys], [items[first[k].item].promised_days for k in keys],
        [items[first[k].item].legal_days for k in keys])
    found = {(r["department"], r["reference"]): (r["id"], r["item_code"]) for r in rows}
    cases = {key: _Case(case_id, items[code], [], {}) for key, (case_id, code) in found.items()}
    for n in fresh:
        event = events[n]
        _, code = found[(event.department, event.case)]
        if code != event.item:
            raise batch.refuse(n, DomainError(f"case {event.case} is for item {code}, not {event.item}", "item"))
    by_id = {case.id: case for case in cases.values()}
    history = await connection.fetch(
        "SELECT case_id, event_id, kind, at, actor, stage, documents, fee_yuan, digest FROM case_events"
        " WHERE case_id = ANY($1::bigint[])", list(by_id))
    for r in history:
        case = by_id[r["case_id"]]
        case.history.append(CaseEvent(r["event_id"], r["kind"], r["at"], r["actor"],
                                      Stage(r["stage"]) if r["stage"] else None, tuple(r["documents"]),
                                      r["fee_yuan"]))
        case.ids[r["event_id"]] = bytes(r["digest"])
    return cases


def _against_histories(batch: _Batch, fresh: list[int], cases: dict[tuple[str, str], _Case]) -> list[int]:
    """Check each new event against its case's history, taking in the batch's events one by one; the events
    still new (one pushed at the same time by another request, committed while this one waited for the
    case's lock, is a retry now)."""
    still: list[int] = []
    for n in fresh:
        event = batch.events[n]
        case = cases[(event.department, event.case)]
        if event.event_id in case.ids:
            if case.ids[event.event_id] != batch.digests[n]:
                raise batch.refuse(n, EventConflict(event.event_id))
            batch.outcomes[n] = (case.id, False)
            continue
        try:
            check_beginning(event, case.history)
        except DomainError as error:
            raise batch.refuse(n, error) from None
        case.history.append(CaseEvent(event.event_id, event.kind, event.at, event.actor, event.stage,
                                      tuple(event.documents), event.fee_yuan))
        batch.outcomes[n] = (case.id, True)
        still.append(n)
    return still


async def _insert(connection: Connection, batch: _Batch, fresh: list[int], cases: dict[tuple[str, str], _Case]
                  ) -> None:
    events = [batch.events[n] for n in fresh]
    stored = await connection.fetch(
        "INSERT INTO case_events (case_id, department, event_id, kind, stage, at, actor, documents, fee_yuan, digest)"
        " SELECT c, d, e, k, s, a, p, ARRAY(SELECT jsonb_array_elements_text(docs::jsonb)), f, g"
        " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[],"
        " $8::text[], $9::float8[], $10::bytea[]) AS u(c, d, e, k, s, a, p, docs, f, g)"
        " ON CONFLICT (department, event_id) DO NOTHING RETURNING department, event_id",
        [cases[(e.department, e.case)].id for e in events], [e.department for e in events],
        [e.event_id for e in events], [e.kind for e in events], [e.stage for e in events], [e.at for e in events],
        [e.actor for e in events], [_JSON.encode(e.documents).decode() for e in events], [e.fee_yuan for e in events],
        [batch.digests[n] for n in fresh])
    if len(stored) < len(fresh):  # its id came, at the same moment, with another case: not the same event
        kept = {(r["department"], r["event_id"]) for r in stored}
        n = next(n for n in fresh if batch.key(n) not in kept)
        raise batch.refuse(n, EventConflict(batch.events[n].event_id))


@dataclass(frozen=True)
class _Verdict:
    """What a case's history says now: its clock, anomalies and the cards they call for."""

    case_id: int
    clock: CaseClock
    staff: str
    found: list[Anomaly]
    cards: list[tuple[str, str, str, str, datetime]]  # colour, reason, event id, detail, since


def _verdict(case: _Case, batch: _Batch, now: datetime) -> _Verdict:
    found = anomalies(case.item, case.history, now)
    state = clock(case.item, case.history, batch.calendar, now, batch.yellow_share)
    accepting = [e for e in history(case.history) if e.stage is Stage.ACCEPT]
    cards = [("red", a.rule, a.event_id, a.detail, now) for a in found]
    cards += [(colour, "time", "", f"{state.used_days:.2f} working days used", state.since(colour, now))
              for colour in state.due]
    return _Verdict(case.id, state, accepting[0].actor if accepting else "", found, cards)


async def _bring_up_to_date(connection: Connection, cases: list[_Case], batch: _Batch, now: datetime) -> None:
    verdicts = [_verdict(case, batch, now) for case in cases]
    ids = [v.case_id for v in verdicts]
    clocks = [v.clock for v in verdicts]
    await connection.execute(
        "UPDATE approval_cases c SET accepted_at = u.accepted_at, completed_at = u.completed_at,"
        " suspended = u.suspended, used_days = u.used_days, yellow_at = u.yellow_at, red_at = u.red_at,"
        " estimated = u.estimated, staff = u.staff FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[],"
        " $4::bool[], $5::float8[], $6::timestamptz[], $7::timestamptz[], $8::bool[], $9::text[])"
        " AS u(id, accepted_at, completed_at, suspended, used_days, yellow_at, red_at, estimated, staff)"
        " WHERE c.id = u.id", ids, [c.accepted_at for c in clocks], [c.completed_at for c in clocks],
        [c.suspended for c in clocks], [c.used_days for c in clocks], [c.yellow_at for c in clocks],
        [c.red_at for c in clocks], [c.estimated for c in clocks], [v.staff for v in verdicts])
    await _anomalies(connection, verdicts)
    changed = await _cards(connection, verdicts)
    done = [v.case_id for v in verdicts if v.clock.completed_at is not None]
    if done:  # a warning is moot once the case is done; a red card stays to be answered
        changed += len(await connection.fetch(
            "UPDATE efficiency_cards SET closed_at = now(), closed_by = 'completed' WHERE closed_at IS NULL"
            " AND case_id = ANY($1::bigint[]) AND colour = 'yellow' AND reason = 'time' RETURNING id", done))
    if changed:
        await connection.execute("SELECT pg_notify($1, '')", CARDS_CHANNEL)


async def _anomalies(connection: Connection, verdicts: list[_Verdict]) -> None:
    """The stored anomalies of each case become exactly those found (a late event can make one vanish)."""
    found = {(v.case_id, a.rule, a.event_id): a.detail for v in verdicts for a in v.found}
    keys = list(found)
    await connection.execute(
        "DELETE FROM case_anomalies WHERE case_id = ANY($1::bigint[]) AND (case_id, rule, event_id) NOT IN"
        " (SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[]))", [v.case_id for v in verdicts],
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])
    if keys:
        await connection.execute(
            "INSERT INTO case_anomalies (case_id, rule, event_id, detail)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])"
            " ON CONFLICT (case_id, rule, event_id) DO UPDATE SET detail = excluded.detail",
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], list(found.values()))


async def _cards(connection: Connection, verdicts: list[_Verdict]) -> int:
    """A red card for each anomaly, yellow and red for time as the days used call for them; cards whose
    cause is gone (a late event settled it) are closed. How many cards opened or closed."""
    wanted = {(v.case_id, colour, reason, event_id): (detail, since)
              for v in verdicts for colour, reason, event_id, detail, since in v.cards}
    keys = list(wanted)
    closed = await connection.fetch(
        "UPDATE efficiency_cards SET closed_at = now(), closed_by = 'cause gone' WHERE closed_at IS NULL"
        " AND case_id = ANY($1::bigint[]) AND (case_id, colour, reason, event_id) NOT IN"
        " (SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])) RETURNING id",
        [v.case_id for v in verdicts], [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
        [k[3] for k in keys])
    if not keys:
        return len(closed)
    opened = await connection.fetch(
        "INSERT INTO efficiency_cards (case_id, colour, reason, event_id, detail, opened_at)"
        " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])"
        " ON CONFLICT (case_id, colour, reason, event_id) DO NOTHING RETURNING id",
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys],
        [w[0] for w in wanted.values()], [w[1] for w in wanted.values()])
    return len(closed) + len(opened)
