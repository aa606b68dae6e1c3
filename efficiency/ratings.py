"""Satisfaction at the window (评价器): the tablet on the counter shows the case just accepted or
completed there, and the applicant rates it once for that moment. A rating must name a real case of
the window, at a moment the case has reached, and each (case, moment) counts once."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

import asyncpg
import msgspec

from base.errors import DomainError, NotFound
from base.messages import PLAIN
from base.pg import Pool

Named = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]
VERDICTS = {"satisfied": "满意", "basically": "基本满意", "unsatisfied": "不满意"}
FRESH = timedelta(minutes=30)  # a tablet offers a case for rating this long after its moment


class Rating(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    department: Named
    window: Named
    case: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=64)]  # the department's case number
    moment: Literal["accepted", "completed"]
    verdict: Literal["satisfied", "basically", "unsatisfied"]


class AlreadyRated(DomainError):
    code = "duplicate"


async def rate(pool: Pool, rating: Rating) -> int:
    row = await pool.fetchrow("SELECT id, window_label, accepted_at, completed_at FROM approval_cases"
                              " WHERE department = $1 AND reference = $2", rating.department, rating.case)
    if row is None or row["window_label"] != rating.window:
        raise NotFound(f"window {rating.window} of {rating.department} has no case {rating.case!r}", "case")
    if row[f"{rating.moment}_at"] is None:
        raise DomainError(f"case {rating.case} is not {rating.moment} yet", "moment")
    try:
        rating_id: int = await pool.fetchval(
            "INSERT INTO window_ratings (case_id, moment, verdict, department, window_label)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id", row["id"], rating.moment, rating.verdict,
            rating.department, rating.window)
    except asyncpg.UniqueViolationError:
        raise AlreadyRated(f"case {rating.case} was already rated when {rating.moment}", "case") from None
    return rating_id


async def waiting(pool: Pool, department: str, window: str) -> dict[str, Any] | None:
    """The case the window's tablet offers now: the latest accepted or completed there within FRESH and
    not yet rated for that moment. Only what the applicant already knows is shown: number and item."""
    row = await pool.fetchrow(
        "SELECT c.reference, i.name AS item, m.moment, m.at FROM approval_cases c"
        " JOIN approval_items i ON i.code = c.item_code,"
        " LATERAL (VALUES ('accepted', c.accepted_at), ('completed', c.completed_at)) AS m(moment, at)"
        " WHERE c.department = $1 AND c.window_label = $2 AND m.at > now() - $3::interval"
        " AND NOT EXISTS (SELECT 1 FROM window_ratings r WHERE r.case_id = c.id AND r.moment = m.moment)"
        " ORDER BY m.at DESC LIMIT 1", department, window, FRESH)
    return dict(row.items()) if row else None
