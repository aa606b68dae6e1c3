"""Tickets and events in PostgreSQL.

Every change is one transaction: the new state, its event rows (each ticket event with its
sub-centre's next sequence number) and a NOTIFY, which PostgreSQL sends only on commit — so
nothing reaches a terminal that is not stored, and nothing stored goes unannounced. The writes of
one change are a single statement (data-modifying CTEs), because on this path every round trip
to the database is latency a terminal waits for. The notification carries the events themselves
when they fit in PostgreSQL's 8000-byte payload, and their ids otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from base import audit, outbox
from base.errors import DomainError
from base.outbox import Message
from base.pg import Connection, Pool
from dispatch.deadlines import StageLimits, first_deadlines
from dispatch.ids import IdReserves
from dispatch.routing import Assignment
from dispatch.tickets import Feedback, Ticket, TicketState
from dispatch.views import Views

JSON = dict[str, Any]

CHANNEL = "liandong_events"

_TICKET_COLUMNS = ("id, incident_id, subcentre_id, department, state, created_at, delivered_at, acknowledged_at,"
                   " closed_at, rejected_at, cancelled_at, reason, feedback, outside_jurisdiction, distance_m, tasks,"
                   " limits")



def _next_seqs(subcentre_ids: str) -> str:
    """The CTE `seq` (id, last_seq): each named sub-centre's next sequence number. Rows are locked in
    id order, so concurrent statements never deadlock, and held to commit, so numbers follow commit
    order: what lets a terminal say "I saw up to N" and be sent exactly what it missed. (The id test
    is repeated on `s` so the prepared statement's generic plan reads it through the index rather
    than scanning every sub-centre.)"""
    return (f"seq AS (UPDATE subcentres s SET last_seq = s.last_seq + 1 FROM (SELECT id FROM subcentres"
            f" WHERE id = ANY({subcentre_ids}::int[]) ORDER BY id FOR UPDATE) locked"
            f" WHERE s.id = locked.id AND s.id = ANY({subcentre_ids}::int[]) RETURNING s.id, s.last_seq)")


# Appended to a statement whose CTE `event` inserted events RETURNING *: announce them on commit.
_ANNOUNCE = f"""
SELECT pg_notify('{CHANNEL}', CASE WHEN octet_length(p.full) < 7900 THEN p.full ELSE p.ids END)
FROM (SELECT json_build_object('events', json_agg(e ORDER BY e.id))::text AS full,
             json_build_object('ids', json_agg(e.id ORDER BY e.id))::text AS ids FROM event e) p
"""


class StoredEvent(msgspec.Struct, frozen=True):
    """One row of the event log, as the fan-out hands it to subscribers."""

    id: int
    incident_id: int
    ticket_id: int | None
    subcentre_id: int | None
    subcentre_seq: int | None
    kind: str
    actor_id: int | None
    at: datetime
    data: dict[str, Any]


class Announcement(msgspec.Struct, frozen=True):
    """A NOTIFY payload: the events, or only their ids when they were too large to carry."""

    events: list[StoredEvent] | None = None
    ids: list[int] | None = None


class TicketNotFound(DomainError):
    code = "not_found"

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} does not exist", "ticket_id")


class NotYourTicket(DomainError):
    code = "forbidden"

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} belongs to another sub-centre", "ticket_id")


def ticket_from_row(row: Mapping[str, Any] | asyncpg.Record) -> Ticket:
    feedback = row["feedback"]
    return Ticket(
        id=row["id"], incident_id=row["incident_id"], subcentre_id=row["subcentre_id"],
        department=row["department"], state=TicketState(row["state"]), created_at=row["created_at"],
        delivered_at=row["delivered_at"], acknowledged_at=row["acknowledged_at"], closed_at=row["closed_at"],
        rejected_at=row["rejected_at"], cancelled_at=row["cancelled_at"], reason=row["reason"],
        feedback=msgspec.convert(feedback, Feedback) if feedback is not None else None,
        outside_jurisdiction=row["outside_jurisdiction"], tasks=tuple(row["tasks"]),
    )


def ticket_json(ticket: Ticket, incident: JSON, tone: JSON) -> JSON:
    """A ticket as terminals and consoles see it: with its incident and the tone to sound (`alert`)."""
    body: JSON = msgspec.to_builtins(ticket, builtin_types=(datetime,))
    body["incident"] = incident
    body["alert"] = tone
    return body


async def tickets_told(connection: Connection, views: Views, incident_id: int, now: datetime,
                       actor_id: int | None, incident: JSON | None = None) -> list[NewEvent]:
    """An incident changed (its level, its place): each ticket still out learns it, with the incident as
    it now is (read here unless given); finished and rejected ones are left alone."""
    if incident is None:
        row = await connection.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
        assert row is not None, "called inside the transaction that changed the incident"
        incident = views.incident(row)
    tone = views.tone(incident)
    rows = await connection.fetch("SELECT * FROM tickets WHERE incident_id = $1 ORDER BY id", incident_id)
    return [NewEvent(incident_id, "ticket.updated", now, {"ticket": ticket_json(t, incident, tone)}, t.id,
                     t.subcentre_id, actor_id)
            for t in map(ticket_from_row, rows) if not t.state.finished and t.state is not TicketState.REJECTED]


class TicketBatch(msgspec.Struct, frozen=True):
    """New tickets for one incident, rendered once (the bodies terminals receive are stored as sent),
    with what the statement that stores them needs."""

    tickets: list[Ticket]
    bodies: list[JSON]
    distances: list[float]
    limits: StageLimits

    def columns(self) -> list[object]:
        """The parameters of `_insert_tickets`, in order."""
        first = first_deadlines(self.limits)
        return [[t.id for t in self.tickets], [t.subcentre_id for t in self.tickets],
                [t.department for t in self.tickets], [t.outside_jurisdiction for t in self.tickets],
                self.distances, [msgspec.json.encode(list(t.tasks)).decode() for t in self.tickets],
                msgspec.to_builtins(self.limits), [s.value for s, _ in first], [float(secs) for _, secs in first]]


async def new_tickets(connection: Connection, ids: IdReserves, incident: JSON, tone: JSON,
                      assignments: Sequence[Assignment], tasks: Mapping[str, Sequence[str]], limits: StageLimits,
                      now: datetime) -> TicketBatch:
    """The one way tickets come into being: ids reserved, bodies rendered, ready for `_insert_tickets`."""
    ticket_ids = await ids.tickets.take(connection, len(assignments))
    tickets = [Ticket(id=i, incident_id=incident["id"], subcentre_id=a.subcentre_id, department=a.department,
                      state=TicketState.CREATED, created_at=now, outside_jurisdiction=a.outside_jurisdiction,
                      tasks=tuple(tasks.get(a.department, ()))) for i, a in zip(ticket_ids, assignments, strict=True)]
    return TicketBatch(tickets, [ticket_json(t, incident, tone) for t in tickets],
                       [a.distance_m for a in assignments], limits)


def _insert_tickets(incident: str, at: str, first: int) -> str:
    """CTEs `ticket` and `deadline`: a TicketBatch's tickets with their first deadlines, from its
    `columns()` bound at $first onwards, for the incident and time named by the SQL `incident` and `at`."""
    t, s, d, o, m, k, lim, stages, secs = (f"${first + i}" for i in range(9))
    return f"""ticket AS (
    INSERT INTO tickets (id, incident_id, subcentre_id, department, state, created_at, outside_jurisdiction,
                         distance_m, tasks, limits)
    SELECT a.t, {incident}, a.s, a.d, 'created', {at}, a.o, a.m, a.k::jsonb, {lim}::jsonb
    -- checklists travel as JSON text: nested lists would be read as a 2-D array
    FROM unnest({t}::bigint[], {s}::int[], {d}::text[], {o}::bool[], {m}::float8[], {k}::text[])
        AS a(t, s, d, o, m, k)),
deadline AS (
    INSERT INTO deadlines (ticket_id, stage, due_at)
    SELECT a.t, f.stage, {at}::timestamptz + make_interval(secs => f.secs)
    FROM unnest({t}::bigint[]) AS a(t) CROSS JOIN unnest({stages}::text[], {secs}::float8[]) AS f(stage, secs))"""


_OPEN_INCIDENT = f"""
WITH incident AS (
    INSERT INTO incidents (id, type_code, severity, lon, lat, address, caller_name, caller_phone, description,
                           flagged, created_by, created_at, plan_key, plan_version, state, report_key)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $43)),
{_next_seqs("$20")},
{_insert_tickets("$1", "$12", 19)},
notice AS (  -- whom the plan tells on activation, queued in the same commit as the incident
    {outbox.insert(28)}),
audited AS (  -- who reported it, from where: in the audit log's chain, in the same commit
    {audit.insert(36)}),  -- $36 to $42; the report's key is $43
event AS (  -- in timeline order: the report, the plan it activated, then the tickets
    INSERT INTO events (incident_id, ticket_id, subcentre_id, subcentre_seq, kind, actor_id, at, data)
    SELECT $1::bigint, t, s, q, k, $11::int, $12::timestamptz, d FROM (
        SELECT 0 AS o, NULL::bigint AS t, NULL::int AS s, NULL::bigint AS q, 'incident.created' AS k, $16::jsonb AS d
        UNION ALL
        SELECT 1, NULL, NULL, NULL, 'plan.activated', $17::jsonb WHERE $17::jsonb IS NOT NULL
        UNION ALL
        SELECT 2, a.t, a.s, seq.last_seq, 'ticket.created', a.data
        FROM unnest($19::bigint[], $20::int[], $18::jsonb[]) AS a(t, s, data)
        JOIN seq ON seq.id = a.s) ordered
    ORDER BY o, t
    RETURNING *)
{_ANNOUNCE}"""


class RepeatedReport(Exception):
    """The account has already stored a report under this key (the same report, sent again)."""


async def stored_report(pool: Pool, created_by: int, report_key: str) -> tuple[JSON, list[JSON], JSON] | None:
    """The incident, ticket bodies and routing an account stored under a report key, as first answered."""
    rows = await pool.fetch(
        "SELECT e.kind, e.data FROM incidents i JOIN events e ON e.incident_id = i.id"
        " WHERE i.created_by = $1 AND i.report_key = $2 AND e.kind IN ('incident.created', 'ticket.created')"
        " ORDER BY e.id", created_by, report_key)
    created = next((r["data"] for r in rows if r["kind"] == "incident.created"), None)
    if created is None:
        return None
    return created["incident"], [r["data"]["ticket"] for r in rows if r["kind"] == "ticket.created"], created["routing"]


class PlanRef(msgspec.Struct, frozen=True):
    """The contingency plan an incident runs under, as the store needs it."""

    key: str
    version: int
    activation: JSON  # the plan.activated event's data
    tasks: dict[str, list[str]]  # checklist by department


async def open_incident(pool: Pool, ids: IdReserves, views: Views, fields: Mapping[str, Any],
                        assignments: Sequence[Assignment], actor: audit.Actor, routing: JSON,
                        plan: PlanRef | None, limits: StageLimits,
                        notices: Callable[[JSON], Sequence[Message]] | None = None,
                        pending: bool = False, report_key: str | None = None) -> tuple[JSON, list[JSON]]:
    """Store a new incident with one ticket per assignment, the events that start its timeline and the
    messages `notices` composes for the incident (its plan's notification list) and the audit entry
    for `actor`, in one statement.

    `fields` are the incident's columns (type_code, severity, lon, lat, address, caller_name,
    caller_phone, description, flagged). A `pending` report is stored without tickets, to be
    dispatched or merged by a dispatcher. When this returns, all of it is durable. A `report_key` the
    actor has stored a report under already raises RepeatedReport, storing nothing.
    """
    assert not (pending and (assignments or plan)), "a pending report has no tickets and no plan yet"
    async with pool.acquire() as connection:
        # Ids first, so the ticket bodies terminals receive are rendered once, here, and stored as sent.
        (incident_id,) = await ids.incidents.take(connection, 1)
        now = datetime.now(UTC)
        incident = views.incident({**fields, "id": incident_id, "state": "pending" if pending else "open",
                                   "created_by": actor.user_id, "created_at": now, "closed_at": None,
                                   "plan_key": plan.key if plan else None,
                                   "plan_version": plan.version if plan else None})
        batch = await new_tickets(connection, ids, incident, views.tone(incident), assignments,
                                  plan.tasks if plan else {}, limits, now)
        try:
            await _open(connection, incident, fields, now, plan, routing, batch, notices, actor, report_key)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "incidents_report_key":
                raise RepeatedReport(report_key) from None
            raise
    return incident, batch.bodies


async def _open(connection: Connection, incident: JSON, fields: Mapping[str, Any], now: datetime,
                plan: PlanRef | None, routing: JSON, batch: TicketBatch,
                notices: Callable[[JSON], Sequence[Message]] | None, actor: audit.Actor,
                report_key: str | None) -> None:
    incident_id = incident["id"]
    await connection.execute(
        _OPEN_INCIDENT, incident_id, fields["type_code"], fields["severity"], fields["lon"], fields["lat"],
        fields["address"], fields["caller_name"], fields["caller_phone"], fields["description"],
        fields["flagged"], actor.user_id, now, plan.key if plan else None, plan.version if plan else None,
        incident["state"], {"incident": incident, "routing": routing}, plan.activation if plan else None,
        [{"ticket": body} for body in batch.bodies], *batch.columns(),
        *outbox.columns(notices(incident) if notices else ()),
        *audit.Entry(actor, "incident.report", f"incident:{incident_id}",
                     details={"type_code": fields["type_code"], "severity": fields["severity"],
                              "state": incident["state"], "tickets": len(batch.bodies)}).columns(),
        report_key)


class TicketAction(msgspec.Struct, frozen=True):
    """What a person asks of a ticket; `kind` names the state machine's method."""

    kind: str  # "deliver" | "acknowledge" | "report_back" | "reject" | "cancel"
    reason: str = ""
    feedback: Feedback | None = None


def _apply(ticket: Ticket, action: TicketAction, now: datetime) -> Ticket:
    if action.kind == "deliver":
        return ticket.deliver(now)
    if action.kind == "acknowledge":
        return ticket.acknowledge(now)
    if action.kind == "report_back":
        assert action.feedback is not None
        return ticket.report_back(action.feedback, now)
    if action.kind == "reject":
        return ticket.reject(action.reason, now)
    if action.kind == "cancel":
        return ticket.cancel(action.reason, now)
    raise ValueError(f"unknown action {action.kind!r}")


_CHANGE_TICKET = f"""
WITH changed AS (
    UPDATE tickets SET state = $2, delivered_at = $3, acknowledged_at = $4, closed_at = $5, rejected_at = $6,
                       cancelled_at = $7, reason = $8, feedback = $9
    WHERE id = $1),
{_next_seqs("ARRAY[$10::int]")},
closed AS (UPDATE incidents SET state = 'closed', closed_at = $12 WHERE id = $13 AND $15::bool),
deadline AS (  -- once a person has acknowledged, the clock runs for their feedback
    INSERT INTO deadlines (ticket_id, stage, due_at)
    SELECT $1, 'feedback', $12::timestamptz + make_interval(secs => $17::float8) WHERE $17::float8 IS NOT NULL),
event AS (
    INSERT INTO events (incident_id, ticket_id, subcentre_id, subcentre_seq, kind, actor_id, at, data)
    SELECT $13::bigint, $1::bigint, $10::int, seq.last_seq, 'ticket.' || $2::text, $11::int, $12::timestamptz,
           $14::jsonb FROM seq
    UNION ALL
    SELECT $13::bigint, NULL::bigint, NULL::int, NULL::bigint, 'incident.closed', $11::int, $12::timestamptz,
           $16::jsonb WHERE $15::bool
    RETURNING *)
{_ANNOUNCE}"""


class TicketChange(msgspec.Struct, frozen=True):
    """A person's action on one ticket. `actor_subcentre` is set for operators: they may only act on
    their own sub-centre's tickets."""

    ticket_id: int
    action: TicketAction
    actor_id: int
    actor_subcentre: int | None = None


_LOCK_INCIDENTS = f"""
SELECT i.*, now() AS now, (SELECT array_agg(to_jsonb(t)) FROM (SELECT {_TICKET_COLUMNS} FROM tickets
    WHERE incident_id = i.id) t) AS tickets
FROM incidents i WHERE i.id IN (SELECT incident_id FROM tickets WHERE id = ANY($1::bigint[]))
ORDER BY i.id FOR NO KEY UPDATE"""


async def change_tickets(pool: Pool, views: Views, changes: Sequence[TicketChange]) -> list[JSON | DomainError | None]:
    """Apply `changes` in order, in one transaction. For each: the ticket as it now is, None when a
    repeated delivery receipt changed nothing, or the error it alone raises (TicketNotFound,
    NotYourTicket, the state machine's IllegalTransition) while the others still apply.
    """
    async with pool.acquire() as connection, connection.transaction():
        # The incident row locks serialise all changes to one incident's tickets, so two tickets
        # closing at once cannot both miss that the incident is now finished. They are taken in id
        # order, so two batches sharing incidents never deadlock; NO KEY, so the foreign-key checks
        # of events being recorded for the incident meanwhile do not wait for them.
        rows = await connection.fetch(_LOCK_INCIDENTS, sorted({c.ticket_id for c in changes}))
        incidents: dict[int, JSON] = {r["id"]: dict(r.items()) for r in rows}
        raw = {t["id"]: t for r in rows for t in r["tickets"]}
        tickets = {ticket_id: _ticket_from_json(t) for ticket_id, t in raw.items()}  # as changed so far
        siblings = {r["id"]: [t["id"] for t in r["tickets"]] for r in rows}  # incident -> its tickets
        results: list[JSON | DomainError | None] = []
        writes: list[tuple[object, ...]] = []
        for change in changes:
            try:
                ticket = tickets.get(change.ticket_id)
                if ticket is None:
                    raise TicketNotFound(change.ticket_id)
                if change.actor_subcentre is not None and ticket.subcentre_id != change.actor_subcentre:
                    raise NotYourTicket(change.ticket_id)
                if change.action.kind == "deliver" and ticket.state is not TicketState.CREATED:
                    results.append(None)  # at-least-once delivery: a second receipt is expected and harmless
                    continue
                row = incidents[ticket.incident_id]
                now: datetime = row["now"]
                changed = _apply(ticket, change.action, now)
            except DomainError as error:
                results.append(error)
                continue
            tickets[changed.id] = changed
            finishes_incident = changed.state.finished and all(
                tickets[t].state.finished for t in siblings[changed.incident_id])
            incident = views.incident(row)
            body = ticket_json(changed, incident, views.tone(incident))
            closed = None
            if finishes_incident:
                incidents[changed.incident_id] = {**row, "state": "closed", "closed_at": now}
                closed = views.incident(incidents[changed.incident_id])
            limits = raw[changed.id]["limits"]
            acknowledged = changed.state is TicketState.ACKNOWLEDGED
            feedback_s = float(limits.get("feedback_s", 0)) if acknowledged and limits else None
            writes.append((
                changed.id, changed.state.value, changed.delivered_at, changed.acknowledged_at,
                changed.closed_at, changed.rejected_at, changed.cancelled_at, changed.reason,
                msgspec.to_builtins(changed.feedback) if changed.feedback else None, changed.subcentre_id,
                change.actor_id, now, changed.incident_id, {"ticket": body}, finishes_incident, {"incident": closed},
                feedback_s))
            results.append(body)
        if writes:
            # One pipelined round trip for the batch; each change still takes its sub-centre's next
            # sequence number and announces its own event, in the batch's order.
            await connection.executemany(_CHANGE_TICKET, writes)
    return results


_ADD_TICKETS = f"""
WITH {_insert_tickets("$1::bigint", "$2::timestamptz", 3)}
SELECT 1"""


async def add_tickets(connection: Connection, ids: IdReserves, incident: JSON, tone: JSON,
                      assignments: Sequence[Assignment], tasks: Mapping[str, Sequence[str]], limits: StageLimits,
                      now: datetime) -> list[JSON]:
    """Add tickets, with their first deadlines, to a running incident inside the caller's transaction;
    returns their bodies. The caller records their `ticket.created` events (see record_events)."""
    batch = await new_tickets(connection, ids, incident, tone, assignments, tasks, limits, now)
    await connection.execute(_ADD_TICKETS, incident["id"], now, *batch.columns())
    return batch.bodies


class NewEvent(msgspec.Struct, frozen=True):
    """An event to record; ticket events name their sub-centre and are numbered in its stream."""

    incident_id: int
    kind: str
    at: datetime
    data: JSON
    ticket_id: int | None = None
    subcentre_id: int | None = None
    actor_id: int | None = None


_RECORD_EVENTS = f"""
WITH {_next_seqs("$1")},
event AS (
    INSERT INTO events (incident_id, ticket_id, subcentre_id, subcentre_seq, kind, actor_id, at, data)
    SELECT e.i, e.t, e.s, seq.last_seq, e.k, e.a, e.w, e.d::jsonb
    FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::text[], $6::int[], $7::timestamptz[], $8::text[])
        WITH ORDINALITY AS e(i, t, s, k, a, w, d, n)
    LEFT JOIN seq ON seq.id = e.s
    ORDER BY e.n
    RETURNING *)
{_ANNOUNCE}"""


async def record_events(connection: Connection, events: Sequence[NewEvent]) -> None:
    """Record events (inside the caller's transaction) and announce them on commit. For the rarer
    changes (severity raised, escalations); each sub-centre may appear once per call."""
    subcentres = [e.subcentre_id for e in events if e.subcentre_id is not None]
    assert len(subcentres) == len(set(subcentres)), "one event per sub-centre per call keeps seqs simple"
    await connection.execute(
        _RECORD_EVENTS, subcentres, [e.incident_id for e in events], [e.ticket_id for e in events],
        [e.subcentre_id for e in events], [e.kind for e in events], [e.actor_id for e in events],
        [e.at for e in events], [msgspec.json.encode(e.data).decode() for e in events])


def _ticket_from_json(row: JSON) -> Ticket:
    """A ticket read back through to_jsonb: timestamps arrive as text."""
    times = ("created_at", "delivered_at", "acknowledged_at", "closed_at", "rejected_at", "cancelled_at")
    return ticket_from_row({**row, **{k: datetime.fromisoformat(row[k]) if row[k] else None for k in times}})


async def replay(pool: Pool, subcentre_id: int, after_seq: int, limit: int = 1000) -> list[asyncpg.Record]:
    """A sub-centre's ticket events with seq > after_seq, in order."""
    return await pool.fetch(
        "SELECT subcentre_seq, kind, data FROM events WHERE subcentre_id = $1 AND subcentre_seq > $2"
        " ORDER BY subcentre_seq LIMIT $3", subcentre_id, after_seq, limit)


async def current_seq(pool: Pool, subcentre_id: int) -> int:
    seq: int = await pool.fetchval("SELECT last_seq FROM subcentres WHERE id = $1", subcentre_id)
    return seq


async def events_by_id(pool: Pool, ids: Sequence[int]) -> list[StoredEvent]:
    rows = await pool.fetch(
        "SELECT id, incident_id, ticket_id, subcentre_id, subcentre_seq, kind, actor_id, at, data"
        " FROM events WHERE id = ANY($1::bigint[]) ORDER BY id", list(ids))
    return [StoredEvent(**dict(r.items())) for r in rows]
