"""Surge triage: a flood of calls about one fire becomes one incident with every caller on it."""

from __future__ import annotations

from typing import Any

from tests.helpers import Liandong

FIRE = (111.2900, 30.7000)
NEXT_STREET = (111.2930, 30.7010)  # about 300 m away
ACROSS_TOWN = (111.3600, 30.6500)  # about 8 km away


async def queue_report(liandong: Liandong, type_code: str, severity: int, at: tuple[float, float],
                       **details: Any) -> dict[str, Any]:
    return await liandong.report(type_code, severity, *at, dispatch=False, **details)


async def test_duplicate_reports_are_suggested_and_merged_without_new_tickets(liandong: Liandong) -> None:
    fire = await liandong.report("201", 3, *FIRE, caller_name="张先生", caller_phone="13900000001")
    station = await liandong.terminal("fire-xiling")
    try:
        assert (await station.next_ticket())["incident_id"] == fire["id"]
        second = await queue_report(liandong, "201", 3, NEXT_STREET, caller_name="李女士", caller_phone="13900000002",
                                    description="看到浓烟")
        assert second["state"] == "pending" and second["tickets"] == []
        status, suggested = await liandong.call("GET", f"/api/incidents/{second['id']}/duplicates",
                                                as_user="dispatcher")
        assert status == 200 and [s["id"] for s in suggested] == [fire["id"]]
        assert 200 < suggested[0]["distance_m"] < 400

        status, merged = await liandong.call("POST", f"/api/incidents/{second['id']}/merge", {"into": fire["id"]},
                                             as_user="dispatcher")
        assert status == 200 and (merged["state"], merged["merged_into"]) == ("closed", fire["id"])
        assert station.new_tickets.empty()  # the merge sent nothing
    finally:
        await station.close()
    timeline = (await liandong.incident(fire["id"]))["timeline"]
    (caller,) = [e["detail"] for e in timeline if e["kind"] == "incident.report_merged"]
    assert (caller["caller_name"], caller["caller_phone"], caller["description"]) == ("李女士", "13900000002",
                                                                                     "看到浓烟")
    assert len((await liandong.incident(fire["id"]))["tickets"]) == 1


async def test_only_the_same_category_near_in_place_and_time_is_suggested(liandong: Liandong) -> None:
    fire = await liandong.report("201", 3, *FIRE)
    await liandong.report("202", 3, *NEXT_STREET)  # a traffic accident is category 2 too: also suggested
    await liandong.report("302", 3, *NEXT_STREET)  # food poisoning is category 3: not
    await liandong.report("201", 3, *ACROSS_TOWN)  # too far
    status, suggested = await liandong.call("POST", "/api/duplicates",
                                            {"type_code": "203", "location": {"lon": FIRE[0], "lat": FIRE[1]}},
                                            as_user="dispatcher")
    assert status == 200
    assert [s["type_code"] for s in suggested] == ["201", "202"] and suggested[0]["id"] == fire["id"]


async def test_the_pending_queue_is_worked_gravest_first_then_longest_waiting(liandong: Liandong) -> None:
    minor_first = await queue_report(liandong, "202", 4, ACROSS_TOWN)
    grave = await queue_report(liandong, "201", 2, FIRE)
    minor_second = await queue_report(liandong, "202", 4, NEXT_STREET)
    serious = await queue_report(liandong, "103", 3, FIRE)
    status, queue = await liandong.call("GET", "/api/incidents?state=pending", as_user="dispatcher")
    assert status == 200
    assert [i["id"] for i in queue] == [grave["id"], serious["id"], minor_first["id"], minor_second["id"]]

    station = await liandong.terminal("fire-xiling")
    try:
        status, dispatched = await liandong.call("POST", f"/api/incidents/{grave['id']}/dispatch",
                                                 as_user="dispatcher")
        assert status == 200 and dispatched["state"] == "open"
        assert dispatched["plan"] == {"key": "fire-major", "version": 1}
        ticket = await station.next_ticket()
        assert ticket["incident_id"] == grave["id"] and ticket["tasks"][0] == "出动灭火救援力量"
    finally:
        await station.close()
    status, again = await liandong.call("POST", f"/api/incidents/{grave['id']}/dispatch", as_user="dispatcher")
    assert (status, again["error"]["code"]) == (409, "not_pending")


async def test_merging_what_cannot_be_merged_is_refused_and_changes_nothing(liandong: Liandong) -> None:
    fire = await liandong.report("201", 3, *FIRE)
    other = await liandong.report("201", 3, *ACROSS_TOWN)
    report = await queue_report(liandong, "201", 3, NEXT_STREET)
    cases = [(other["id"], {"into": fire["id"]}, 409, "id"),      # already dispatched
             (report["id"], {"into": report["id"]}, 422, "into"),  # into itself
             (report["id"], {"into": 999_999}, 404, "into"),
             (report["id"], {"into": "one"}, 422, "into")]
    for source, body, status, field in cases:
        got, answer = await liandong.call("POST", f"/api/incidents/{source}/merge", body, as_user="dispatcher")
        assert (got, answer["error"]["field"]) == (status, field), answer
    assert (await liandong.incident(report["id"]))["state"] == "pending"
    assert (await liandong.incident(other["id"]))["state"] == "open"
