"""Case events from a department's approval system: stored once per event id, checked against the
item, in any arrival order ending in the same anomalies and cards, and the time cards opened by the
server as their moment comes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg

from tests.hall import MARKET, days_ago, event, market_system, send
from tests.helpers import Liandong


async def test_the_demo_hall_has_its_catalogue_and_a_system_sees_its_own_departments_items(
        liandong: Liandong) -> None:
    system = await market_system(liandong)
    status, everything = await liandong.call("GET", "/api/efficiency/items", as_user="supervisor")
    assert status == 200 and len(everything) >= 30 and len({i["department"] for i in everything}) >= 8
    status, own = await liandong.call("GET", "/api/efficiency/items", as_user=system)
    assert {i["department"] for i in own} == {MARKET}


async def test_a_retried_event_counts_once_and_a_changed_one_under_its_id_is_refused(liandong: Liandong) -> None:
    system = await market_system(liandong)
    accepted = event("2026-0001", 1, "stage", days_ago(1), "accept", actor="张敏", documents=["营业执照"])
    status, first = await send(liandong, system, accepted)
    assert status == 201 and first["new"] is True
    status, again = await send(liandong, system, accepted)
    assert (status, again) == (200, {"case_id": first["case_id"], "new": False})
    status, changed = await send(liandong, system, {**accepted, "actor": "李强"})
    assert (status, changed["error"]["code"], changed["error"]["field"]) == (409, "duplicate", "event_id")
    status, case = await liandong.call("GET", f"/api/efficiency/cases/{first['case_id']}", as_user="supervisor")
    assert [e["event_id"] for e in case["events"]] == ["2026-0001-1"] and case["accepted_at"] is not None


async def test_bad_events_are_refused_naming_the_field_and_store_nothing(liandong: Liandong,
                                                                          database_url: str) -> None:
    system = await market_system(liandong)
    now = days_ago(0)
    for body, field in ((event("x", 1, "stage", now, "accept", item="NO-SUCH"), "item"),
                        (event("x", 2, "stage", now + timedelta(hours=1), "accept"), "at"),
                        (event("x", 3, "stage", now - timedelta(days=4000), "accept"), "at"),
                        (event("x", 4, "stage", now), "stage"),
                        (event("x", 5, "suspend", now, "accept"), "stage")):
        status, refused = await send(liandong, system, body)
        assert (status, refused["error"]["field"]) == (422, field), (body, refused)
    status, refused = await send(liandong, system, {**event("x", 6, "stage", now, "accept"), "department": "税务局"})
    assert (status, refused["error"]["code"]) == (403, "forbidden")  # not this system's department
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM case_events") == 0
        assert await connection.fetchval("SELECT count(*) FROM approval_cases") == 0
    finally:
        await connection.close()


async def test_nothing_of_a_case_is_dated_before_its_acceptance(liandong: Liandong) -> None:
    system = await market_system(liandong)
    accepted = days_ago(2)
    status, begun = await send(liandong, system, event("begun", 1, "stage", accepted, "accept"))
    assert status == 201
    for body in (event("begun", 2, "stage", accepted - timedelta(hours=1), "handle"),
                 event("begun", 3, "suspend", accepted - timedelta(minutes=1))):
        status, refused = await send(liandong, system, body)
        assert (status, refused["error"]["field"]) == (422, "at"), refused
        assert "began with its acceptance" in refused["error"]["message"]
    # Handled before any acceptance is known: an anomaly for now. An acceptance dated after it is refused.
    status, _ = await send(liandong, system, event("unaccepted", 1, "stage", accepted, "handle"))
    assert status == 201
    status, refused = await send(liandong, system, event("unaccepted", 2, "stage", accepted + timedelta(hours=1),
                                                         "accept"))
    assert (status, refused["error"]["field"]) == (422, "at"), refused
    status, case = await liandong.call("GET", f"/api/efficiency/cases/{begun['case_id']}", as_user="supervisor")
    assert [e["event_id"] for e in case["events"]] == ["begun-1"]


async def test_events_in_any_order_end_in_the_same_anomalies_and_cards(liandong: Liandong) -> None:
    system = await market_system(liandong)
    start = days_ago(2)

    def story(case: str) -> list[dict[str, Any]]:
        return [event(case, 1, "stage", start, "accept", actor="张敏"),  # without the licence
                event(case, 2, "stage", start + timedelta(hours=2), "handle", actor="王芳"),
                event(case, 3, "stage", start + timedelta(hours=4), "review", actor="李强"),
                event(case, 4, "stage", start + timedelta(hours=6), "approve", actor="李强")]  # the reviewer approves

    async def outcome(case_id: int) -> tuple[list[Any], list[Any]]:
        status, case = await liandong.call("GET", f"/api/efficiency/cases/{case_id}", as_user="supervisor")
        assert status == 200
        return (sorted((a["rule"], a["event_id"].split("-")[-1]) for a in case["anomalies"]),
                sorted((c["colour"], c["reason"], c["closed_at"] is None) for c in case["cards"]))

    for body in story("in-order"):
        status, sent = await send(liandong, system, body)
    orderly = await outcome(sent["case_id"])
    assert orderly[0] == [("documents_missing", "1"), ("same_person", "4")]
    assert orderly[1] == [("red", "documents_missing", True), ("red", "same_person", True)]

    late = story("late")
    for body in (late[3], late[2], late[0], late[1]):  # approval first, acceptance third
        status, sent = await send(liandong, system, body)
        assert status == 201
    settled = await outcome(sent["case_id"])
    assert settled[0] == orderly[0]
    # While acceptance had not arrived, "not accepted" and "handle skipped" were red cards; they are closed now.
    assert [c for c in settled[1] if c[2]] == orderly[1]
    assert {c[1] for c in settled[1] if not c[2]} == {"not_accepted", "stage_skipped"}


async def test_a_case_past_its_limits_gets_its_time_cards_and_the_server_opens_them_as_they_fall_due(
        liandong: Liandong, database_url: str) -> None:
    system = await market_system(liandong)
    status, overdue = await send(liandong, system, event("old", 1, "stage", days_ago(60), "accept",
                                                         documents=["营业执照"]))
    assert status == 201
    status, cards = await liandong.call("GET", "/api/efficiency/cards", as_user="supervisor")
    assert sorted((c["colour"], c["reason"]) for c in cards if c["case_id"] == overdue["case_id"]) == [
        ("red", "time"), ("yellow", "time")]  # 60 calendar days is past 20 working days

    status, fresh = await send(liandong, system, event("new", 1, "stage", days_ago(0), "accept",
                                                       documents=["营业执照"]))
    connection = await asyncpg.connect(database_url)
    try:  # the clock named by the test: its yellow card falls due in one second
        await connection.execute("UPDATE approval_cases SET yellow_at = now() + interval '1 second' WHERE id = $1",
                                 fresh["case_id"])
    finally:
        await connection.close()
    for _ in range(50):
        status, cards = await liandong.call("GET", "/api/efficiency/cards", as_user="supervisor")
        if any(c["case_id"] == fresh["case_id"] for c in cards):
            break
        await asyncio.sleep(0.1)
    assert [(c["colour"], c["reason"]) for c in cards if c["case_id"] == fresh["case_id"]] == [("yellow", "time")]


async def test_a_batch_is_stored_all_or_none_and_a_retried_batch_counts_nothing_twice(liandong: Liandong,
                                                                                      database_url: str) -> None:
    system = await market_system(liandong)
    start = days_ago(3)
    story = [event(f"B-{c}", n, "stage", start + timedelta(hours=n), stage, actor=actor, documents=["营业执照"])
             for c in range(3) for n, stage, actor in ((1, "accept", "张敏"), (2, "handle", "王芳"),
                                                       (3, "review", "李强"), (4, "approve", "李强"))]
    bad = [*story[:2], {**story[2], "at": (start - timedelta(days=1)).isoformat()}, *story[3:]]
    status, refused = await liandong.call("POST", "/api/efficiency/events/batch", {"events": bad}, as_user=system)
    assert (status, refused["error"]["field"]) == (422, "events[2].at"), refused  # reviewed before it began
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM case_events") == 0  # nothing of the batch
    finally:
        await connection.close()

    status, stored = await liandong.call("POST", "/api/efficiency/events/batch", {"events": story[::-1]},
                                         as_user=system)  # newest first: the order of arrival does not matter
    assert status == 200 and stored["new"] == 12 and len({e["case_id"] for e in stored["events"]}) == 3, stored
    status, again = await liandong.call("POST", "/api/efficiency/events/batch", {"events": story}, as_user=system)
    assert (status, again["new"]) == (200, 0)
    status, case = await liandong.call("GET", f"/api/efficiency/cases/{stored['events'][0]['case_id']}",
                                       as_user="supervisor")
    assert [a["rule"] for a in case["anomalies"]] == ["same_person"]
    status, refused = await liandong.call("POST", "/api/efficiency/events/batch", {"events": []}, as_user=system)
    assert (status, refused["error"]["field"]) == (422, "events")


async def test_an_event_twice_in_one_batch_counts_once_and_changed_content_names_the_second(
        liandong: Liandong, database_url: str) -> None:
    system = await market_system(liandong)
    accepted = event("twice", 1, "stage", days_ago(1), "accept", documents=["营业执照"])
    status, stored = await liandong.call("POST", "/api/efficiency/events/batch", {"events": [accepted, accepted]},
                                         as_user=system)
    assert status == 200 and stored["new"] == 1, stored
    assert stored["events"][0]["case_id"] == stored["events"][1]["case_id"]
    changed = event("twice-b", 1, "stage", days_ago(1), "accept")
    status, refused = await liandong.call("POST", "/api/efficiency/events/batch",
                                          {"events": [changed, {**changed, "actor": "李强"}]}, as_user=system)
    assert (status, refused["error"]["code"], refused["error"]["field"]) == (409, "duplicate", "events[1].event_id")
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM case_events") == 1
    finally:
        await connection.close()


async def test_the_same_batch_pushed_twice_at_once_is_stored_once(liandong: Liandong, database_url: str) -> None:
    system = await market_system(liandong)
    start = days_ago(3)
    story = [event(f"R-{c}", n, "stage", start + timedelta(hours=n), stage, documents=["营业执照"])
             for c in range(20) for n, stage in ((1, "accept"), (2, "handle"), (3, "review"))]

    async def push() -> tuple[int, Any]:
        return await liandong.call("POST", "/api/efficiency/events/batch", {"events": story}, as_user=system)

    # A department's system retrying before its first push was answered: each event counts in one of them.
    first = await asyncio.gather(push(), push())
    assert [status for status, _ in first] == [200, 200], first
    assert sum(body["new"] for _, body in first) == len(story)
    again = await asyncio.gather(push(), push())
    assert [body["new"] for _, body in again] == [0, 0]
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM case_events") == len(story)
        assert await connection.fetchval("SELECT count(*) FROM approval_cases") == 20
    finally:
        await connection.close()
