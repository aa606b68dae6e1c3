"""Decision support and statistics, as a dispatcher and a centre's duty officer use them."""

from __future__ import annotations

import csv
import io

import aiohttp

from tests.helpers import Liandong

XILING = (111.29, 30.70)


async def test_a_fire_in_xiling_shows_the_nearest_stations_the_affected_area_and_earlier_fires(
        liandong: Liandong) -> None:
    earlier = await liandong.report("201", 4, 111.2950, 30.7030)  # about 600 m away, just before
    elsewhere = await liandong.report("201", 4, 111.79, 30.82)  # 当阳: far away
    fire = await liandong.report("201", 3, *XILING)
    status, support = await liandong.call("GET", f"/api/incidents/{fire['id']}/decision-support",
                                          as_user="dispatcher")
    assert status == 200
    stations = support["nearest_subcentres"]["fire"]
    assert stations[0]["name"] == "西陵消防站" and stations[0]["jurisdiction_covers"]
    assert [s["distance_m"] for s in stations] == sorted(s["distance_m"] for s in stations)
    area = support["affected_area"]
    assert area["radius_m"] == 1500 and area["geometry"]["type"] == "Polygon"  # level III
    assert [f["name"] for f in area["facilities"]] == ["西陵示例小学", "宜昌市中心人民医院", "东山公园应急避难场所"]
    similar = [i["id"] for i in support["similar_incidents"]]
    assert similar == [earlier["id"]] and elsewhere["id"] not in similar


async def test_statistics_count_by_type_district_and_day_and_time_each_stage(liandong: Liandong) -> None:
    station = await liandong.terminal("fire-xiling")
    try:
        fire = await liandong.report("201", 4, *XILING)
        await liandong.report("101", 4, 111.79, 30.82)  # a flood in 当阳
        ticket = await station.next_ticket()
        await station.acknowledge(ticket["id"])
        await station.report_back(ticket["id"], "已扑灭")
    finally:
        await station.close()
    status, stats = await liandong.call("GET", "/api/statistics", as_user="supervisor")
    assert status == 200 and stats["incidents"] == 2
    assert {t["type_code"]: t["count"] for t in stats["by_type"]} == {"101": 1, "201": 1}
    assert {d["district"]: d["count"] for d in stats["by_district"]} == {"西陵区": 1, "当阳市": 1}
    assert sum(d["count"] for d in stats["by_day"]) == 2
    (xiling,) = [r for r in stats["response_s"] if r["subcentre"] == "西陵消防站"]
    assert xiling["tickets"] == 1
    for stage in ("delivered", "acknowledged", "feedback"):
        assert xiling[stage]["n"] == 1 and 0 <= xiling[stage]["p50"] <= xiling[stage]["p99"] < 30
    assert xiling["delivered"]["p50"] <= xiling["acknowledged"]["p50"] <= xiling["feedback"]["p50"]

    status, text = await liandong.call("GET", "/api/statistics/tickets.csv", as_user="supervisor")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and len(rows) == 2
    (fire_row,) = [r for r in rows if r["incident_id"] == str(fire["id"])]
    assert fire_row["district"] == "西陵区" and fire_row["state"] == "closed" and float(fire_row["feedback_s"]) >= 0

    headers = {"Authorization": f"Bearer {await liandong.token('supervisor')}"}
    async with aiohttp.ClientSession() as http:
        for kind in ("by_day", "response"):
            async with http.get(f"{liandong.base_url}/api/statistics/chart.png?kind={kind}", headers=headers) as r:
                assert r.status == 200 and r.content_type == "image/png"
                assert (await r.read()).startswith(b"\x89PNG\r\n\x1a\n")


async def test_bad_statistics_periods_are_refused(liandong: Liandong) -> None:
    for query, field in (("since=2026-11-23T00:00:00%2B08:00&until=2026-11-22T00:00:00%2B08:00", "since"),
                         ("since=2020-01-01T00:00:00%2B08:00&until=2026-01-01T00:00:00%2B08:00", "since"),
                         ("until=tomorrow", "until")):
        status, body = await liandong.call("GET", f"/api/statistics?{query}", as_user="dispatcher")
        assert (status, body["error"]["field"]) == (400, field), query
    status, body = await liandong.call("GET", "/api/statistics/chart.png?kind=pie", as_user="dispatcher")
    assert (status, body["error"]["field"]) == (400, "kind")
    status, _ = await liandong.call("GET", "/api/statistics", as_user="fire-xiling")
    assert status == 403
