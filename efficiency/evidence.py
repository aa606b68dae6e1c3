"""The window's recording kept as evidence while a red card or a complaint about it is open.

A red card on a case holds its window camera's recording from just before the case's first event on;
a complaint holds its window's recording from just before what it complains of (when said; else the
case's first event; else the week before it was received). The holds are placed as the card is first
told and as the complaint is received, and released by a pass once the card or complaint is closed;
retention then treats the recording like any other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from base.pg import Connection, Pool
from efficiency.store import RECORDING_BEFORE, window_camera
from video.recording import holds

CARD, COMPLAINT = "efficiency-card:", "efficiency-complaint:"
UNSAID = timedelta(days=7)  # a complaint that says neither when nor which case: the week before it


async def hold_for_card(connection: Connection, card_id: int, case_id: int) -> None:
    case = await connection.fetchrow("SELECT department, window_label, (SELECT min(at) FROM case_events"
                                     " WHERE case_id = $1) AS began FROM approval_cases WHERE id = $1", case_id)
    if case is None or case["began"] is None:
        return
    camera = await window_camera(connection, case["department"], case["window_label"])
    if camera is not None:
        await holds.place(connection, camera, case["began"] - RECORDING_BEFORE, None, f"{CARD}{card_id}")


async def hold_for_complaint(connection: Connection, complaint_id: int, department: str, window: str,
                             happened_at: datetime | None, case_id: int | None, received_at: datetime) -> None:
    camera = await window_camera(connection, department, window)
    if camera is None:
        return
    began = None if case_id is None else await connection.fetchval(
        "SELECT min(at) FROM case_events WHERE case_id = $1", case_id)
    since = happened_at or began or received_at - UNSAID
    await holds.place(connection, camera, since - RECORDING_BEFORE, None, f"{COMPLAINT}{complaint_id}")


async def release_closed(pool: Pool) -> int:
    """Release the holds of cards and complaints that have closed; how many were released."""
    async with pool.acquire() as connection, connection.transaction():
        held = await holds.active(connection, "efficiency-")
        cards = [int(r.removeprefix(CARD)) for r in held if r.startswith(CARD)]
        complaints = [int(r.removeprefix(COMPLAINT)) for r in held if r.startswith(COMPLAINT)]
        closed = await connection.fetch(
            "SELECT $3 || id AS reference FROM efficiency_cards WHERE id = ANY($1::bigint[]) AND closed_at IS NOT NULL"
            " UNION ALL SELECT $4 || id FROM complaints WHERE id = ANY($2::bigint[]) AND closed_at IS NOT NULL",
            cards, complaints, CARD, COMPLAINT)
        return await holds.release(connection, [r["reference"] for r in closed])
