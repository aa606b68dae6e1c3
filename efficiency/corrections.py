"""Correction (纠错): the centre issues a notice to a department about a case, the department answers
with the measure it took, and the centre accepts the answer or returns it for another. Accepting
closes the card the notice answers. Each step is kept, in order, on the case's timeline."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from base import audit
from base.errors import DomainError, NotFound
from base.messages import PLAIN
from base.pg import Connection, Pool
from efficiency.store import CARDS_CHANNEL

Body = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=2000)]

# step → the states a notice may be in for it, and the state it leaves the notice in
STEPS: dict[str, tuple[tuple[str, ...], str]] = {
    "answered": (("issued", "returned"), "answered"),
    "accepted": (("answered",), "accepted"),
    "returned": (("answered",), "returned"),
}


class Notice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    body: Body  # what is wrong and what the department must do
    card_id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None


class Answer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    body: Body  # the measure taken


class Decision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    verdict: Literal["accepted", "returned"]
    body: Body


class WrongState(DomainError):
    code = "illegal_transition"


async def issue(pool: Pool, case_id: int, notice: Notice, actor: audit.Actor) -> dict[str, Any]:
    entry = audit.Entry(actor, "efficiency.correction", f"case:{case_id}")
    async with audit.recorded(pool, entry) as connection:
        department = await connection.fetchval("SELECT department FROM approval_cases WHERE id = $1", case_id)
        if department is None:
            raise NotFound(f"there is no case {case_id}", "id")
        if notice.card_id is not None and not await connection.fetchval(
                "SELECT true FROM efficiency_cards WHERE id = $1 AND case_id = $2", notice.card_id, case_id):
            raise DomainError(f"card {notice.card_id} is not a card of case {case_id}", "card_id")
        notice_id: int = await connection.fetchval(
            "INSERT INTO correction_notices (case_id, card_id, department, state) VALUES ($1, $2, $3, 'issued')"
            " RETURNING id", case_id, notice.card_id, department)
        await _step(connection, notice_id, "issued", notice.body, actor)
    return await one(pool, notice_id)


async def department_of(pool: Pool, notice_id: int) -> str:
    department: str | None = await pool.fetchval("SELECT department FROM correction_notices WHERE id = $1",
                                                 notice_id)
    if department is None:
        raise NotFound(f"there is no correction notice {notice_id}", "id")
    return department


async def advance(pool: Pool, notice_id: int, step: str, body: str, actor: audit.Actor) -> dict[str, Any]:
    """Take one step (answered, accepted, returned) if the notice's state allows it."""
    allowed, becomes = STEPS[step]
    entry = audit.Entry(actor, f"efficiency.correction.{step}", f"correction:{notice_id}")
    async with audit.recorded(pool, entry) as connection:
        row = await connection.fetchrow("SELECT state, card_id FROM correction_notices WHERE id = $1 FOR UPDATE",
                                        notice_id)
        if row is None:
            raise NotFound(f"there is no correction notice {notice_id}", "id")
        if row["state"] not in allowed:
            raise WrongState(f"the notice is {row['state']}; it can be {step} only when "
                             + " or ".join(allowed), "verdict" if step != "answered" else "id")
        await connection.execute(
            "UPDATE correction_notices SET state = $2, closed_at = CASE WHEN $2 = 'accepted' THEN now() END"
            " WHERE id = $1", notice_id, becomes)
        await _step(connection, notice_id, step, body, actor)
        if step == "accepted" and row["card_id"] is not None:
            await connection.execute(
                "UPDATE efficiency_cards SET closed_at = now(), closed_by = $2 WHERE id = $1 AND closed_at IS NULL",
                row["card_id"], f"correction {notice_id}")
            await connection.execute("SELECT pg_notify($1, '')", CARDS_CHANNEL)
    return await one(pool, notice_id)


async def _step(connection: Connection, notice_id: int, kind: str, body: str, actor: audit.Actor) -> None:
    await connection.execute("INSERT INTO correction_steps (notice_id, kind, body, actor) VALUES ($1, $2, $3, $4)",
                             notice_id, kind, body, actor.name)


async def one(pool: Pool, notice_id: int) -> dict[str, Any]:
    notices = await _notices(pool, "n.id = $1", notice_id)
    if not notices:
        raise NotFound(f"there is no correction notice {notice_id}", "id")
    return notices[0]


async def of_case(pool: Pool, case_id: int) -> list[dict[str, Any]]:
    return await _notices(pool, "n.case_id = $1", case_id)


async def open_notices(pool: Pool, departments: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return await _notices(pool, "n.closed_at IS NULL AND (cardinality($1::text[]) = 0 OR n.department = ANY($1))",
                          list(departments))


async def _notices(pool: Pool, where: str, argument: object) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT n.id, n.case_id, n.card_id, n.department, n.state, n.issued_at, n.closed_at, c.reference,"
        " coalesce(json_agg(json_build_object('kind', s.kind, 'body', s.body, 'actor', s.actor, 'at', s.at)"
        " ORDER BY s.id), '[]') AS steps FROM correction_notices n JOIN approval_cases c ON c.id = n.case_id"
        f" JOIN correction_steps s ON s.notice_id = n.id WHERE {where} GROUP BY n.id, c.reference"
        " ORDER BY n.id", argument)
    return [dict(r.items()) for r in rows]
