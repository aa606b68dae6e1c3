"""Cards told to the people who must answer them, and escalated while nobody does (escalation.py).

Every process runs the pass with the card sweep. A batch of due cards is claimed with FOR UPDATE SKIP
LOCKED, and each card's step is marked done in the same transaction that queues its message in the
notification outbox, so with several processes, or across a restart, each step happens once. The
outbox delivers with retries; the card lists what was sent and what became of it.

A card counts as answered when the department acknowledges it, answers a correction notice on it,
or (for a complaint's card) answers the complaint.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
import msgspec

from base import audit
from base.errors import DomainError, NotFound
from base.messages import PLAIN
from base.outbox import Message, queue
from base.pg import Connection, Pool
from efficiency.escalation import Recipient, recipient, step
from efficiency.evidence import hold_for_card
from efficiency.store import CARD_DEPARTMENT, CARD_SUBJECT, CARDS_CHANNEL

_BATCH = 100
COLOURS = {"yellow": "黄牌", "red": "红牌"}
Named = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]


class Contact(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who in a department hears of its cards, and how."""

    name: Named
    channel: Literal["sms", "email", "webhook"]
    address: Annotated[str, PLAIN, msgspec.Meta(min_length=3, max_length=300)]  # phone, e-mail or URL


class Contacts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    department: Named
    contact: Contact | None = None  # told of every card as it opens
    leader: Contact | None = None  # told if nobody acknowledges it in time; neither named: the centre hears


async def set_contacts(pool: Pool, contacts: Contacts, actor: audit.Actor) -> None:
    department = contacts.department
    entry = audit.Entry(actor, "efficiency.contacts", f"department:{department}")
    async with audit.recorded(pool, entry) as connection:
        if not await connection.fetchval("SELECT true FROM approval_items WHERE department = $1 LIMIT 1", department):
            raise DomainError(f"there is no department {department!r} in the hall", "department")
        named = [(role, c) for role, c in (("contact", contacts.contact), ("leader", contacts.leader)) if c]
        await connection.execute("DELETE FROM efficiency_contacts WHERE department = $1 AND role <> ALL($2::text[])",
                                 department, [role for role, _ in named])
        await connection.executemany(  # an upsert: two servers seeding the demo at once both succeed
            "INSERT INTO efficiency_contacts (department, role, name, channel, address) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (department, role) DO UPDATE SET name = $3, channel = $4, address = $5, updated_at = now()",
            [(department, role, c.name, c.channel, c.address) for role, c in named])


async def contacts(pool: Pool, departments: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT department, role, name, channel, address, updated_at FROM efficiency_contacts"
                            " WHERE cardinality($1::text[]) = 0 OR department = ANY($1::text[])"
                            " ORDER BY department, role", list(departments))
    return [dict(r.items()) for r in rows]


async def acknowledge(pool: Pool, card_id: int, departments: tuple[str, ...], actor: audit.Actor) -> dict[str, Any]:
    """The department has seen the card and is acting on it: the card stops escalating (it stays open)."""
    entry = audit.Entry(actor, "efficiency.card.acknowledge", f"card:{card_id}")
    async with audit.recorded(pool, entry) as connection:
        row = await connection.fetchrow(
            f"SELECT k.closed_at, k.acknowledged_at, {CARD_DEPARTMENT} AS department FROM {CARD_SUBJECT}"
            " WHERE k.id = $1 FOR UPDATE OF k", card_id)
        if row is None:
            raise NotFound(f"there is no card {card_id}", "id")
        if row["department"] not in departments:
            raise DomainError(f"only {row['department']}'s own account acknowledges its cards", code="forbidden")
        if row["closed_at"] is not None or row["acknowledged_at"] is not None:
            raise DomainError(f"card {card_id} is already {'closed' if row['closed_at'] else 'acknowledged'}",
                              "id", "illegal_transition")
        await connection.execute("UPDATE efficiency_cards SET acknowledged_at = now(), acknowledged_by = $2,"
                                 " escalate_at = NULL WHERE id = $1", card_id, actor.name)
        await connection.execute("SELECT pg_notify($1, '')", CARDS_CHANNEL)
    return await notices(pool, card_id)


async def department_of(pool: Pool, card_id: int) -> str:
    department: str | None = await pool.fetchval(
        f"SELECT {CARD_DEPARTMENT} FROM {CARD_SUBJECT} WHERE k.id = $1", card_id)
    if department is None:
        raise NotFound(f"there is no card {card_id}", "id")
    return department


async def notices(pool: Pool, card_id: int) -> dict[str, Any]:
    """A card's acknowledgement and every message its escalation sent, with what became of each."""
    card = await pool.fetchrow("SELECT id, acknowledged_at, acknowledged_by, escalation_step, escalate_at"
                               " FROM efficiency_cards WHERE id = $1", card_id)
    if card is None:
        raise NotFound(f"there is no card {card_id}", "id")
    sent = await pool.fetch(
        "SELECT s.step, s.role, n.id AS notification_id, n.channel, n.recipient, n.status, n.attempts,"
        " n.last_error, n.created_at, n.sent_at FROM efficiency_card_notices s JOIN notifications n"
        " ON n.id = s.notification_id WHERE s.card_id = $1 ORDER BY s.step", card_id)
    return {**dict(card.items()), "notices": [dict(s.items()) for s in sent]}


_DUE = (
    "SELECT k.id, k.colour, k.reason, k.detail, k.escalation_step, k.case_id, k.complaint_id,"
    " k.closed_at IS NOT NULL AS closed,"
    " k.acknowledged_at IS NOT NULL OR p.answered_at IS NOT NULL OR EXISTS (SELECT 1 FROM correction_notices n"
    "  WHERE n.card_id = k.id AND n.state IN ('answered', 'accepted')) AS answered,"
    f" {CARD_DEPARTMENT} AS department, coalesce(c.window_label, p.window_label) AS window_label,"
    f" c.reference, c.item_code, coalesce($1::timestamptz, now()) AS now FROM {CARD_SUBJECT}"
    " WHERE k.escalate_at <= coalesce($1::timestamptz, now())"
    " ORDER BY k.escalate_at, k.id LIMIT $2 FOR UPDATE OF k SKIP LOCKED")


class CardEscalator:
    def __init__(self, pool: Pool, centre: Recipient, wait_s: int) -> None:
        self._pool = pool
        self._centre = centre  # the centre's supervisor on duty: [escalation].supervisor
        self._wait_s = wait_s

    async def tick(self, now: datetime | None = None) -> int:
        """Take every card step due at `now` (default: the database's clock); how many were taken."""
        taken = 0
        while batch := await self._batch(now):
            taken += batch
        return taken

    async def _batch(self, now: datetime | None) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            due = await connection.fetch(_DUE, now, _BATCH)
            if not due:
                return 0
            named = await _named(connection, list({r["department"] for r in due}))
            for card in due:
                await self._step(connection, card, named.get(card["department"], {}))
        return len(due)

    async def _step(self, connection: Connection, card: asyncpg.Record, named: dict[str, Recipient]) -> None:
        number = card["escalation_step"]
        if number == 0 and not card["closed"] and card["colour"] == "red" and card["case_id"] is not None:
            await hold_for_card(connection, card["id"], card["case_id"])  # the window's recording is evidence
        decided = step(number, card["closed"], card["answered"], self._wait_s)
        if decided is None:
            await connection.execute("UPDATE efficiency_cards SET escalate_at = NULL WHERE id = $1", card["id"])
            return
        role, whom = recipient(decided.role, named, self._centre)
        [notification] = await queue(connection, [_message(card, whom)])
        await connection.execute("INSERT INTO efficiency_card_notices (card_id, step, role, notification_id)"
                                 " VALUES ($1, $2, $3, $4)", card["id"], number, role, notification)
        later = None if decided.next_after_s is None else card["now"] + timedelta(seconds=decided.next_after_s)
        await connection.execute("UPDATE efficiency_cards SET escalation_step = $2, escalate_at = $3 WHERE id = $1",
                                 card["id"], number + 1, later)


async def _named(connection: Connection, departments: list[str]) -> dict[str, dict[str, Recipient]]:
    rows = await connection.fetch("SELECT department, role, name, channel, address FROM efficiency_contacts"
                                  " WHERE department = ANY($1::text[])", departments)
    named: dict[str, dict[str, Recipient]] = {}
    for r in rows:
        named.setdefault(r["department"], {})[r["role"]] = Recipient(r["name"], r["channel"], r["address"])
    return named


def _message(card: asyncpg.Record, whom: Recipient) -> Message:
    colour = COLOURS[card["colour"]]
    if card["complaint_id"] is not None:
        about = f"投诉 #{card['complaint_id']}（{card['department']}）答复时限"
    else:
        window = f"，{card['window_label']}" if card["window_label"] else ""
        about = f"{card['department']} 办件 {card['reference']}（{card['item_code']}{window}）"
    cause = "时限" if card["reason"] == "time" else card["reason"]
    subject = f"【效能监察{colour}】{about}"
    body = (f"{subject}：{cause}，{card['detail']}。请登录效能监察页面确认并答复（卡 #{card['id']}）。"
            f"\n{card['colour']} card #{card['id']}: {card['reason']}, {card['detail']}")
    return Message(None, None, f"efficiency_{card['colour']}_card", whom.channel, whom.name, whom.address, subject,
                   body)
