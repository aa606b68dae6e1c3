"""Escalation until someone answers: each step, with time named by the test rather than waited for;
exactly once across restarts and across two server processes."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from alerts.escalation import Measure, escalate
from dispatch.deadlines import Stage, StageLimits
from dispatch.tickets import TicketState
from tests.conftest import free_port, start_server, wait_healthy
from tests.helpers import Liandong

XILING = (111.29, 30.70)
FIRE = StageLimits(deliver_s=15, acknowledge_s=45, feedback_s=4 * 3600)  # the demo "fire" plan's limits


def test_the_rules_step_by_step() -> None:
    assert escalate(Stage.DELIVER, 0, TicketState.CREATED, FIRE).measures == (Measure.SHOW_OFFLINE,
                                                                            Measure.FALLBACK_TO_DUTY_PHONE)
    assert escalate(Stage.DELIVER, 0, TicketState.DELIVERED, FIRE).measures == ()  # arrived after all
    assert escalate(Stage.ACKNOWLEDGE, 0, TicketState.DELIVERED, FIRE).measures == (Measure.REALERT,)
    assert escalate(Stage.ACKNOWLEDGE, 0, TicketState.DELIVERED, FIRE).next_step_after_s == 45
    assert escalate(Stage.ACKNOWLEDGE, 1, TicketState.CREATED, FIRE).measures == (Measure.NOTIFY_LEADER,)
    last = escalate(Stage.ACKNOWLEDGE, 2, TicketState.CREATED, FIRE)
    assert (last.measures, last.next_step_after_s) == ((Measure.NOTIFY_SUPERVISOR, Measure.DISPATCH_BACKUP), None)
    assert escalate(Stage.ACKNOWLEDGE, 1, TicketState.ACKNOWLEDGED, FIRE).measures == ()
    assert escalate(Stage.FEEDBACK, 0, TicketState.ACKNOWLEDGED, FIRE).measures == (Measure.REMIND,)
    assert escalate(Stage.FEEDBACK, 1, TicketState.ACKNOWLEDGED, FIRE).measures == (Measure.NOTIFY_SUPERVISOR,)
    assert escalate(Stage.FEEDBACK, 0, TicketState.CLOSED, FIRE).measures == ()
    assert escalate(Stage.ACKNOWLEDGE, 0, TicketState.CANCELLED, FIRE).measures == ()


def escalations(timeline: list[dict[str, Any]], ticket_id: int) -> list[tuple[str, int]]:
    return [(e["kind"], e["detail"]["step"]) for e in timeline
            if e["kind"].startswith("escalation.") and e["ticket_id"] == ticket_id]


async def notifications(database_url: str, ticket_id: int) -> list[tuple[str, str, str]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT reason, channel, address FROM notifications WHERE ticket_id = $1 ORDER BY id", ticket_id)
        return [(r["reason"], r["channel"], r["address"]) for r in rows]
    finally:
        await connection.close()


async def test_a_ticket_nobody_answers_climbs_every_step_once(liandong: Liandong, database_url: str) -> None:
    incident = await liandong.report("201", 4, *XILING, address="西陵区东山大道")  # nobody is at the terminal
    ticket_id = incident["tickets"][0]["id"]
    t0 = datetime.fromisoformat(incident["created_at"])

    def at(seconds: int) -> datetime:  # the test's clock
        return t0 + timedelta(seconds=seconds)

    escalator = liandong.alerts.escalator

    assert await escalator.tick(at(10)) == 0
    assert await escalator.tick(at(16)) == 1  # not delivered in 15 s: offline, and the duty phone gets it
    assert await escalator.tick(at(16)) == 0  # nothing fires twice
    assert await notifications(database_url, ticket_id) == [("undelivered", "sms", "13807170000")]

    assert await escalator.tick(at(46)) == 1  # not acknowledged in 45 s: re-alert, louder
    station = await liandong.terminal("fire-xiling")
    try:
        shown = await station.next_ticket()
        assert shown["id"] == ticket_id and shown["alert"]["escalated"] and shown["alert"]["tone"] == "siren"
    finally:
        await station.close()
    assert await escalator.tick(at(92)) == 1  # 45 s later: the sub-centre's leader
    assert [n[0] for n in await notifications(database_url, ticket_id)][1:] == ["leader", "leader"]

    backup = await liandong.terminal("fire-yiling")  # Xiling's backup: the nearest other station
    try:
        assert await escalator.tick(at(138)) == 1  # 45 s more: the supervisor, and the backup station
        backup_ticket = await backup.next_ticket()
        assert backup_ticket["incident_id"] == incident["id"] and backup_ticket["department"] == "fire"
    finally:
        await backup.close()
    assert (await notifications(database_url, ticket_id))[-1] == ("supervisor", "sms", "13800000000")

    await escalator.tick(at(24 * 3600))  # much later: only the backup ticket's own deadlines remain
    stored = await liandong.incident(incident["id"])
    assert escalations(stored["timeline"], ticket_id) == [
        ("escalation.deliver", 0), ("escalation.acknowledge", 0), ("escalation.acknowledge", 1),
        ("escalation.acknowledge", 2)]
    assert sorted(t["subcentre_id"] for t in stored["tickets"]) == sorted(
        [incident["tickets"][0]["subcentre_id"], backup_ticket["subcentre_id"]])


async def test_an_answered_ticket_is_left_alone_and_a_late_report_is_chased(liandong: Liandong,
                                                                          database_url: str) -> None:
    station = await liandong.terminal("fire-xiling")
    try:
        incident = await liandong.report("201", 4, *XILING)
        ticket = await station.next_ticket()
        await station.acknowledge(ticket["id"])
        t0 = datetime.fromisoformat(incident["created_at"])
        assert await liandong.alerts.escalator.tick(t0 + timedelta(seconds=60)) == 2  # both deadlines: satisfied
        stored = await liandong.incident(incident["id"])
        assert escalations(stored["timeline"], ticket["id"]) == []

        acknowledged = datetime.fromisoformat(stored["tickets"][0]["acknowledged_at"])
        assert await liandong.alerts.escalator.tick(acknowledged + timedelta(hours=4, seconds=1)) == 1  # reminder
        for _ in range(100):
            if ("reminder", ticket["id"]) in station.heard:
                break
            await asyncio.sleep(0.02)
        assert ("reminder", ticket["id"]) in station.heard  # the terminal was reminded
        assert await liandong.alerts.escalator.tick(acknowledged + timedelta(hours=8, seconds=2)) == 1  # supervisor
        await station.report_back(ticket["id"], "已处置")
        assert await liandong.alerts.escalator.tick(acknowledged + timedelta(days=2)) == 0
    finally:
        await station.close()
    timeline = (await liandong.incident(incident["id"]))["timeline"]
    assert escalations(timeline, ticket["id"]) == [("escalation.feedback", 0), ("escalation.feedback", 1)]
    assert "ticket.reminder" in [e["kind"] for e in timeline]
    assert [n[0] for n in await notifications(database_url, ticket["id"])] == ["supervisor"]


async def move_deadlines_into_the_past(database_url: str) -> int:
    """The test's clock: every pending deadline falls due now, without waiting for it."""
    connection = await asyncpg.connect(database_url)
    try:
        result: str = await connection.execute(
            "UPDATE deadlines SET due_at = now() - interval '1 second' WHERE fired_at IS NULL")
        return int(result.split()[-1])
    finally:
        await connection.close()


async def escalation_events(database_url: str) -> list[tuple[str, int]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT kind, (data->>'step')::int AS step FROM events WHERE kind LIKE 'escalation.%' ORDER BY id")
        return [(r["kind"], r["step"]) for r in rows]
    finally:
        await connection.close()


async def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    pytest.fail("condition not reached in time")


async def test_with_two_servers_each_escalation_step_fires_exactly_once(
        two_servers: tuple[Liandong, Liandong], database_url: str) -> None:
    a, _ = two_servers
    await a.report("201", 4, *XILING)  # both servers' escalators watch the same deadlines
    expected = [("escalation.deliver", 0), ("escalation.acknowledge", 0), ("escalation.acknowledge", 1),
                ("escalation.acknowledge", 2)]
    for fired in range(2, 5):  # deliver and acknowledge step 0 fall due together, then one step at a time
        assert await move_deadlines_into_the_past(database_url) >= 1
        await wait_for(lambda n=fired: _count_is(database_url, n))
    await asyncio.sleep(1.5)  # both escalators poll several times more: still once each
    assert sorted(await escalation_events(database_url)) == sorted(expected)


async def _count_is(database_url: str, n: int) -> bool:
    return len(await escalation_events(database_url)) >= n


async def test_a_restart_during_a_pending_escalation_loses_none_and_repeats_none(
        database_url: str, tmp_path: Path) -> None:
    port = free_port()
    server = start_server(database_url, port, tmp_path / "first.log")
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server, tmp_path / "first.log")
        async with Liandong(f"http://127.0.0.1:{port}") as client:
            await client.report("201", 4, *XILING)
    finally:
        server.terminate()
        server.wait(30)
    assert await move_deadlines_into_the_past(database_url) == 2  # they fell due while the server was down
    for run in ("second", "third"):
        server = start_server(database_url, port, tmp_path / f"{run}.log")
        try:
            await wait_healthy(f"http://127.0.0.1:{port}", server, tmp_path / f"{run}.log")
            await wait_for(lambda: _count_is(database_url, 2))
            await asyncio.sleep(1.0)
        finally:
            server.terminate()
            server.wait(30)
        assert sorted(await escalation_events(database_url)) == [("escalation.acknowledge", 0),
                                                                 ("escalation.deliver", 0)]
