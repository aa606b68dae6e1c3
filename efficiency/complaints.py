"""Complaints (投诉) about a department's efficiency, from the public page or typed in by the centre for a
hotline call: received → assigned → answered (with the department's finding) → closed (with the
complainant's verdict). The answer has its own limit in working days, carded like a case's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from base import audit
from base.errors import DomainError, NotFound
from base.messages import PLAIN
from base.pg import Pool
from efficiency.calendar import WorkingCalendar
from efficiency.corrections import WrongState
from efficiency.evidence import hold_for_complaint
from efficiency.store import CARDS_CHANNEL, departments, recording_link, window_camera

Line = Annotated[str, PLAIN, msgspec.Meta(max_length=100)]
Named = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]
Text = Annotated[str, msgspec.Meta(min_length=5, max_length=2000)]  # free text: line breaks allowed
OLDEST_DAYS = 366  # a complaint about something more than a year ago goes to the hotline, not this form


class NewComplaint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the public page (or the centre, for a hotline call) sends."""

    department: Named
    complainant: Named
    contact: Annotated[str, PLAIN, msgspec.Meta(min_length=5, max_length=100)]  # a phone number or e-mail
    body: Text
    window: Line = ""
    case: Line = ""  # the department's case number, if the complainant has one
    staff: Line = ""
    happened_at: datetime | None = None


class Assignment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    to: Named  # who in the department answers it


class Reply(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    answer: Text
    upheld: bool  # the department's own finding: was the complaint founded?


class Closing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    verdict: Literal["satisfied", "unsatisfied"]  # the complainant's, as told to the centre


async def receive(pool: Pool, calendar: WorkingCalendar, complaint: NewComplaint, channel: str, address: str,
                  answer_days: int, yellow_share: float, actor: audit.Actor) -> dict[str, Any]:
    async with pool.acquire() as connection:
        now: datetime = await connection.fetchval("SELECT now()")
    if complaint.happened_at is not None:
        if complaint.happened_at.tzinfo is None:
            raise DomainError("give the time zone, e.g. 2026-11-24T09:30:00+08:00", "happened_at")
        if complaint.happened_at > now or (now - complaint.happened_at).days > OLDEST_DAYS:
            raise DomainError("the time must be within the last year, not in the future", "happened_at")
    yellow_at = calendar.instant(now, yellow_share * answer_days)
    due_at = calendar.instant(now, answer_days)
    entry = audit.Entry(actor, "efficiency.complaint", f"department:{complaint.department}",
                        details={"channel": channel})
    async with audit.recorded(pool, entry) as connection:
        if not await departments(connection, [complaint.department]):
            raise DomainError(f"there is no department {complaint.department!r} in the hall", "department")
        case_id = None
        if complaint.case:
            case_id = await connection.fetchval("SELECT id FROM approval_cases WHERE department = $1"
                                                " AND reference = $2", complaint.department, complaint.case)
            if case_id is None:
                raise DomainError(f"{complaint.department} has no case {complaint.case!r}", "case", "not_found")
        complaint_id: int = await connection.fetchval(
            "INSERT INTO complaints (channel, department, window_label, case_id, staff, complainant, contact, body,"
            " happened_at, address, yellow_at, due_at, state)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'received') RETURNING id",
            channel, complaint.department, complaint.window, case_id, complaint.staff, complaint.complainant,
            complaint.contact, complaint.body, complaint.happened_at, address, yellow_at, due_at)
        await hold_for_complaint(connection, complaint_id, complaint.department, complaint.window,
                                 complaint.happened_at, case_id, now)
    return {"id": complaint_id, "due_at": due_at}


async def department_of(pool: Pool, complaint_id: int) -> str:
    department: str | None = await pool.fetchval("SELECT department FROM complaints WHERE id = $1", complaint_id)
    if department is None:
        raise NotFound(f"there is no complaint {complaint_id}", "id")
    return department


async def _move(pool: Pool, complaint_id: int, allowed: tuple[str, ...], becomes: str, actor: audit.Actor,
                assignments: str, *values: object) -> dict[str, Any]:
    entry = audit.Entry(actor, f"efficiency.complaint.{becomes}", f"complaint:{complaint_id}")
    async with audit.recorded(pool, entry) as connection:
        state = await connection.fetchval("SELECT state FROM complaints WHERE id = $1 FOR UPDATE", complaint_id)
        if state is None:
            raise NotFound(f"there is no complaint {complaint_id}", "id")
        if state not in allowed:
            raise WrongState(f"the complaint is {state}; it can be {becomes} only when {' or '.join(allowed)}",
                             "id")
        await connection.execute(f"UPDATE complaints SET state = $2, {assignments} WHERE id = $1",
                                 complaint_id, becomes, *values)
        if becomes == "answered":  # an answer, however late, settles the warning; a red card stays on record
            closed = await connection.fetch(
                "UPDATE efficiency_cards SET closed_at = now(), closed_by = 'answered' WHERE complaint_id = $1"
                " AND colour = 'yellow' AND closed_at IS NULL RETURNING id", complaint_id)
            if closed:
                await connection.execute("SELECT pg_notify($1, '')", CARDS_CHANNEL)
    return await one(pool, complaint_id)


async def assign(pool: Pool, complaint_id: int, assignment: Assignment, actor: audit.Actor) -> dict[str, Any]:
    return await _move(pool, complaint_id, ("received", "assigned"), "assigned", actor, "assigned_to = $3",
                       assignment.to)


async def answer(pool: Pool, complaint_id: int, reply: Reply, actor: audit.Actor) -> dict[str, Any]:
    return await _move(pool, complaint_id, ("received", "assigned"), "answered", actor,
                       "answer = $3, upheld = $4, answered_at = now()", reply.answer, reply.upheld)


async def close(pool: Pool, complaint_id: int, closing: Closing, actor: audit.Actor) -> dict[str, Any]:
    return await _move(pool, complaint_id, ("answered",), "closed", actor, "verdict = $3, closed_at = now()",
                       closing.verdict)


_PUBLIC = ("id, channel, department, window_label, case_id, staff, complainant, contact, body, happened_at,"
           " received_at, yellow_at, due_at, state, assigned_to, answer, answered_at, upheld, verdict, closed_at")


async def one(pool: Pool, complaint_id: int) -> dict[str, Any]:
    """A complaint, with its window camera's recording around what it complains of (or its receipt)."""
    row = await pool.fetchrow(f"SELECT {_PUBLIC} FROM complaints WHERE id = $1", complaint_id)
    if row is None:
        raise NotFound(f"there is no complaint {complaint_id}", "id")
    camera = await window_camera(pool, row["department"], row["window_label"])
    return {**dict(row.items()), "recording": recording_link(camera, row["happened_at"] or row["received_at"])}


async def listing(pool: Pool, departments: tuple[str, ...], open_only: bool, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {_PUBLIC} FROM complaints WHERE (cardinality($1::text[]) = 0 OR department = ANY($1))"
        " AND (NOT $2 OR closed_at IS NULL) ORDER BY id DESC LIMIT $3", list(departments), open_only, limit)
    return [dict(r.items()) for r in rows]


async def open_due_cards(pool: Pool, since: datetime | None = None) -> int:
    """Cards for complaints whose answer is late (since `since`, if given): yellow at the share of the limit,
    red past it."""
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            "INSERT INTO efficiency_cards (complaint_id, colour, reason, detail)"
            " SELECT k.id, d.colour, 'complaint', 'the answer to a complaint is late' FROM complaints k,"
            " LATERAL (VALUES ('yellow', k.yellow_at), ('red', k.due_at)) AS d(colour, due)"
            " WHERE k.answered_at IS NULL AND d.due <= now() AND d.due > coalesce($1::timestamptz, '-infinity')"
            " ON CONFLICT (complaint_id, colour) WHERE complaint_id IS NOT NULL DO NOTHING RETURNING id", since)
        if rows:
            await connection.execute("SELECT pg_notify($1, '')", CARDS_CHANNEL)
    return len(rows)
