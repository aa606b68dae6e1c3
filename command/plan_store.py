"""Plans in PostgreSQL: load the current versions, save a new version, retire a plan."""

from __future__ import annotations

from typing import Any

import msgspec

from base import audit
from base.errors import NotFound
from base.pg import Connection, Pool
from command.plans import AmbiguousPlan, Plan, PlanBody, PlanBook, check
from dispatch.taxonomy import Taxonomy

PLANS_CHANNEL = "liandong_plans"
_SAVE_LOCK = 727002  # serialises saves, so two edits cannot each miss the ambiguity the other creates


async def current_plans(connection: Connection | Pool) -> list[Plan]:
    rows = await connection.fetch(
        "SELECT DISTINCT ON (key) key, version, body, retired FROM plans ORDER BY key, version DESC")
    return [Plan(r["key"], r["version"], msgspec.convert(r["body"], PlanBody)) for r in rows if not r["retired"]]


async def save_plan(pool: Pool, taxonomy: Taxonomy, departments: list[str], key: str, body: PlanBody,
                    actor: audit.Actor) -> Plan:
    """Store `body` as the next version of plan `key`; raises PlanProblem if it is invalid or ambiguous."""
    check(body, taxonomy, departments)
    async with audit.recorded(pool, audit.Entry(actor, "plan.save", f"plan:{key}")) as connection:
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _SAVE_LOCK)
        book = PlanBook(taxonomy, await current_plans(connection))
        if problem := book.ambiguity(key, body):
            raise AmbiguousPlan("types", problem)
        version: int = await connection.fetchval(
            "INSERT INTO plans (key, version, body, created_by)"
            " SELECT $1, coalesce(max(version), 0) + 1, $2, $3 FROM plans WHERE key = $1 RETURNING version",
            key, msgspec.to_builtins(body), actor.user_id)
        await connection.execute("SELECT pg_notify($1, $2)", PLANS_CHANNEL, key)
    return Plan(key, version, body)


async def retire_plan(pool: Pool, key: str, actor: audit.Actor) -> int:
    """Add a retired version; running incidents keep theirs."""
    async with audit.recorded(pool, audit.Entry(actor, "plan.retire", f"plan:{key}")) as connection:
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _SAVE_LOCK)
        version: int | None = await connection.fetchval(
            "INSERT INTO plans (key, version, body, retired, created_by)"
            " SELECT key, version + 1, body, true, $2 FROM plans WHERE key = $1 AND NOT retired"
            " AND version = (SELECT max(version) FROM plans WHERE key = $1) RETURNING version", key, actor.user_id)
        if version is None:
            raise NotFound("no such plan, or it is retired already", "key")
        await connection.execute("SELECT pg_notify($1, $2)", PLANS_CHANNEL, key)
    return version


async def plan_versions(pool: Pool, key: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT version, body, retired, created_by, created_at FROM plans WHERE key = $1 ORDER BY version", key)
    return [dict(r.items()) for r in rows]


class LivePlans:
    """The plan book every request reads, replaced whole when any process announces a change."""

    def __init__(self, pool: Pool, taxonomy: Taxonomy) -> None:
        self._pool = pool
        self._taxonomy = taxonomy
        self.book = PlanBook(taxonomy)

    async def load(self) -> None:
        self.book = PlanBook(self._taxonomy, await current_plans(self._pool))
