"""The spine, end to end on a real server and PostgreSQL: a dispatcher reports, the right terminal
hears it, acknowledges, reports back, and the incident closes."""

from __future__ import annotations

import asyncio

import pytest

from dispatch.client import TerminalClient, TerminalError
from dispatch.context import DISPATCH
from dispatch.store import TicketAction, TicketChange, change_tickets
from tests.helpers import Liandong

XILING = (111.29, 30.70)


async def test_a_fire_in_xiling_reaches_the_xiling_station_which_acknowledges_and_reports_back(
        liandong: Liandong) -> None:
    station = await liandong.terminal("fire-xiling")
    elsewhere = await liandong.terminal("fire-dangyang")
    try:
        incident = await liandong.report("201", 4, *XILING, address="西陵区 东山大道 1 号",
                                         caller_phone="13800000000", description="居民楼三层起火")
        assert [t["department"] for t in incident["tickets"]] == ["fire"]
        ticket = await station.next_ticket()
        assert ticket["id"] == incident["tickets"][0]["id"]
        assert ticket["incident"]["description"] == "居民楼三层起火"
        assert ticket["alert"] == {"tone": "chime", "repeat_s": 2.0, "until": "acknowledged", "escalated": False}
        with pytest.raises(asyncio.TimeoutError):
            await elsewhere.next_ticket(wait_s=0.3)

        await station.acknowledge(ticket["id"])
        await station.report_back(ticket["id"], "明火已扑灭", people_affected=3, resources_used="2 车 10 人")

        stored = await liandong.incident(incident["id"])
        assert stored["state"] == "closed"
        (closed,) = stored["tickets"]
        assert closed["state"] == "closed"
        assert closed["delivered_at"] and closed["acknowledged_at"] and closed["closed_at"]
        assert closed["feedback"]["outcome"] == "明火已扑灭"
        assert [e["kind"] for e in stored["timeline"]] == [
            "incident.created", "plan.activated", "ticket.created", "ticket.delivered", "ticket.acknowledged",
            "ticket.closed", "incident.closed"]
        assert stored["plan"] == {"key": "fire", "version": 1}
        assert closed["tasks"] == ["出动灭火救援力量", "核实被困人员", "设置警戒区"]
    finally:
        await station.close()
        await elsewhere.close()


async def test_the_incident_stays_open_until_every_ticket_is_closed_or_cancelled(liandong: Liandong) -> None:
    flood = await liandong.report("101", 1, *XILING)  # the severe-flood plan: four departments
    by_department = {t["department"]: t for t in flood["tickets"]}
    assert set(by_department) == {"water", "civil_defence", "civil_affairs", "health"}
    water = await liandong.terminal("water")
    try:
        await water.acknowledge(by_department["water"]["id"])
        await water.report_back(by_department["water"]["id"], "排涝完成")
    finally:
        await water.close()
    assert (await liandong.incident(flood["id"]))["state"] == "open"
    for department in ("health", "civil_defence"):
        status, _ = await liandong.call("POST", f"/api/tickets/{by_department[department]['id']}/cancel",
                                        {"reason": "not needed"}, as_user="dispatcher")
        assert status == 200
    assert (await liandong.incident(flood["id"]))["state"] == "open"
    affairs = await liandong.terminal("civil-affairs")
    try:
        await affairs.acknowledge(by_department["civil_affairs"]["id"])
        await affairs.report_back(by_department["civil_affairs"]["id"], "安置 12 人")
    finally:
        await affairs.close()
    assert (await liandong.incident(flood["id"]))["state"] == "closed"


async def test_a_terminal_that_reconnects_gets_what_it_missed_in_order_and_nothing_twice(
        liandong: Liandong) -> None:
    station = await liandong.terminal("fire-xiling")
    first = await liandong.report("201", 4, *XILING)
    await station.next_ticket()
    await station.close()  # the line drops

    missed = [await liandong.report("201", 3, *XILING) for _ in range(3)]
    await liandong.call("POST", f"/api/tickets/{missed[0]['tickets'][0]['id']}/cancel", {"reason": "duplicate"},
                        as_user="dispatcher")
    seen_before = station.last_seq
    await station.connect()  # gives last_seq: the server replays from there
    try:
        replayed = [await station.next_ticket() for _ in range(3)]
        assert [t["id"] for t in replayed] == [m["tickets"][0]["id"] for m in missed]
        await asyncio.sleep(0.2)
        assert station.tickets[missed[0]["tickets"][0]["id"]]["state"] == "cancelled"
        assert station.new_tickets.empty()
        assert first["tickets"][0]["id"] in station.tickets
        assert station.last_seq is not None and seen_before is not None and station.last_seq > seen_before
        assert station.repeats == 0
    finally:
        await station.close()


async def test_a_fresh_terminal_is_shown_the_open_tickets_of_its_sub_centre(liandong: Liandong) -> None:
    waiting = await liandong.report("201", 2, *XILING)
    station = await liandong.terminal("fire-xiling")
    try:
        ticket = await station.next_ticket()
        assert ticket["id"] == next(t["id"] for t in waiting["tickets"] if t["department"] == "fire")
    finally:
        await station.close()


async def test_an_operator_cannot_touch_another_sub_centres_ticket(liandong: Liandong) -> None:
    incident = await liandong.report("201", 4, *XILING)
    intruder = await liandong.terminal("fire-dangyang")
    try:
        with pytest.raises(TerminalError) as refused:
            await intruder.acknowledge(incident["tickets"][0]["id"])
        assert refused.value.payload["code"] == "forbidden"
        assert refused.value.payload["field"] == "ticket_id"
    finally:
        await intruder.close()
    status, body = await liandong.call("POST", f"/api/tickets/{incident['tickets'][0]['id']}/acknowledge",
                                       as_user="fire-dangyang")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert (await liandong.incident(incident["id"]))["tickets"][0]["state"] in ("created", "delivered")


async def test_acknowledging_twice_is_refused_and_changes_nothing(liandong: Liandong) -> None:
    incident = await liandong.report("201", 4, *XILING)
    station = await liandong.terminal("fire-xiling")
    try:
        ticket = await station.next_ticket()
        await station.acknowledge(ticket["id"])
        with pytest.raises(TerminalError) as refused:
            await station.acknowledge(ticket["id"])
        assert refused.value.payload["code"] == "illegal_transition"
    finally:
        await station.close()
    stored = await liandong.incident(incident["id"])
    assert [e["kind"] for e in stored["timeline"]].count("ticket.acknowledged") == 1


async def test_a_second_terminal_of_the_same_sub_centre_stops_ringing_when_one_acknowledges(
        liandong: Liandong) -> None:
    desk, tablet = await liandong.terminal("fire-xiling"), await liandong.terminal("fire-xiling")
    try:
        await liandong.report("201", 4, *XILING)
        ticket = await desk.next_ticket()
        assert (await tablet.next_ticket())["id"] == ticket["id"]
        await desk.acknowledge(ticket["id"])
        for _ in range(50):
            if tablet.tickets[ticket["id"]]["state"] == "acknowledged":
                break
            await asyncio.sleep(0.02)
        assert tablet.tickets[ticket["id"]]["state"] == "acknowledged"
    finally:
        await desk.close()
        await tablet.close()


async def test_a_long_report_to_all_six_departments_reaches_every_terminal(liandong: Liandong) -> None:
    """Six tickets with a 2000-character description exceed what a NOTIFY can carry: the servers
    fetch the announced events instead, and every sub-centre still hears its ticket."""
    dangyang = (111.79, 30.82)
    codes = ["fire-dangyang", "water", "civil-defence", "earthquake", "civil-affairs", "health-dangyang"]
    terminals = [await liandong.terminal(code) for code in codes]
    try:
        quake = await liandong.report("103", 1, *dangyang, description="震" * 2000)
        assert len(quake["tickets"]) == 6
        received = [await t.next_ticket() for t in terminals]
        assert sorted(t["id"] for t in received) == sorted(t["id"] for t in quake["tickets"])
        assert all(t["incident"]["description"] == "震" * 2000 for t in received)
    finally:
        for terminal in terminals:
            await terminal.close()


async def test_a_terminal_remembering_more_than_the_database_holds_starts_from_the_open_tickets(
        liandong: Liandong) -> None:
    """A terminal kept last_seq 5000 while the database was restored to an older state: it must not
    wait for the numbers to catch up, it gets the open tickets and then every new one."""
    waiting = await liandong.report("201", 4, *XILING)
    station = TerminalClient(liandong.terminal_url, await liandong.token("fire-xiling"))
    station.last_seq = 5000
    await station.connect()
    try:
        assert station.welcome["seq"] < 5000 and "tickets" in station.welcome
        assert (await station.next_ticket())["id"] == waiting["tickets"][0]["id"]
        fresh = await liandong.report("201", 4, *XILING)
        assert (await station.next_ticket())["id"] == fresh["tickets"][0]["id"]
    finally:
        await station.close()


async def test_an_operator_sees_an_incident_through_its_own_tickets_only(liandong: Liandong) -> None:
    flood = await liandong.report("101", 1, *XILING)  # water, civil affairs and health
    seen_by_water = await liandong.incident(flood["id"], as_user="water")
    assert [t["department"] for t in seen_by_water["tickets"]] == ["water"]
    water_id = seen_by_water["tickets"][0]["subcentre_id"]
    assert {e["subcentre_id"] for e in seen_by_water["timeline"]} <= {None, water_id}
    status, body = await liandong.call("GET", f"/api/incidents/{flood['id']}", as_user="fire-xiling")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, _ = await liandong.call("GET", "/api/incidents", as_user="water")
    assert status == 403


async def test_every_terminal_of_a_sub_centre_sends_a_receipt_and_the_ticket_is_delivered_once(
        liandong: Liandong) -> None:
    terminals = [await liandong.terminal("fire-xiling") for _ in range(3)]
    try:
        incident = await liandong.report("201", 4, *XILING)
        ticket_id = incident["tickets"][0]["id"]
        for terminal in terminals:
            assert (await terminal.next_ticket())["id"] == ticket_id
        for _ in range(100):
            if (await liandong.incident(incident["id"]))["tickets"][0]["state"] == "delivered":
                break
            await asyncio.sleep(0.02)
        # A receipt sent again later, asking for its answer: nothing left to change.
        again = await terminals[1].request("received", ticket_id=ticket_id)
        assert again["changed"] is False
    finally:
        for terminal in terminals:
            await terminal.close()
    stored = await liandong.incident(incident["id"])
    assert stored["tickets"][0]["state"] == "delivered"
    assert [e["kind"] for e in stored["timeline"]].count("ticket.delivered") == 1


async def test_changes_written_together_apply_in_order_and_close_the_incident_once(liandong: Liandong) -> None:
    """One batch of the group commit, as concurrent requests make it: the dispatcher cancels all four
    tickets of a flood at once, with a repeat and a ticket that does not exist among them. Each
    refusal is that change's own; the incident closes once, with the last ticket."""
    flood = await liandong.report("101", 1, *XILING)
    ids = [t["id"] for t in flood["tickets"]]
    dispatcher = await query(liandong, "SELECT id FROM users WHERE username = 'dispatcher'")
    cancel = TicketAction("cancel", reason="false alarm")
    changes = [TicketChange(ids[0], cancel, dispatcher), TicketChange(ids[1], cancel, dispatcher),
               TicketChange(ids[0], cancel, dispatcher), TicketChange(999_999, cancel, dispatcher),
               TicketChange(ids[2], cancel, dispatcher), TicketChange(ids[3], cancel, dispatcher)]
    results = await change_tickets(liandong.platform.pool, liandong.app[DISPATCH].views, changes)  # type: ignore[index]

    assert [r["state"] if isinstance(r, dict) else type(r).__name__ for r in results] == [
        "cancelled", "cancelled", "IllegalTransition", "TicketNotFound", "cancelled", "cancelled"]
    stored = await liandong.incident(flood["id"])
    assert stored["state"] == "closed"
    kinds = [e["kind"] for e in stored["timeline"]]
    assert kinds.count("ticket.cancelled") == 4 and kinds.count("incident.closed") == 1
    assert kinds[-2:] == ["ticket.cancelled", "incident.closed"]


async def query(liandong: Liandong, sql: str) -> int:
    value: int = await liandong.platform.pool.fetchval(sql)
    return value
