"""Fan-out through PostgreSQL: several server processes on one database all deliver, a dropped
LISTEN connection heals itself, and the dispatchers' console hears every change."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import msgspec

from tests.helpers import Liandong

XILING = (111.29, 30.70)


async def test_a_ticket_created_through_one_server_reaches_a_terminal_on_another(
        two_servers: tuple[Liandong, Liandong]) -> None:
    a, b = two_servers
    station = await b.terminal("fire-xiling")
    try:
        incident = await a.report("201", 4, *XILING)
        ticket = await station.next_ticket()
        assert ticket["id"] == incident["tickets"][0]["id"]
        await station.acknowledge(ticket["id"])  # acknowledged through B, seen through A
        assert (await a.incident(incident["id"]))["tickets"][0]["state"] == "acknowledged"
    finally:
        await station.close()


async def test_a_new_jurisdiction_registered_on_one_server_routes_calls_on_the_other(
        two_servers: tuple[Liandong, Liandong]) -> None:
    a, b = two_servers
    query = {"type_code": "201", "severity": 4, "location": {"lon": 112.30, "lat": 30.60}}  # east of the city
    status, before = await b.call("POST", "/api/routing/preview", query, as_user="dispatcher")
    assert before["flagged"] and before["assignments"][0]["outside_jurisdiction"]
    square = [[112.25, 30.55], [112.35, 30.55], [112.35, 30.65], [112.25, 30.65], [112.25, 30.55]]
    status, body = await a.call("POST", "/api/subcentres", {
        "code": "fire-jingzhou-west", "name": "荆州西消防站", "department": "fire", "site": {"lon": 112.3, "lat": 30.6},
        "jurisdiction": {"type": "Polygon", "coordinates": [square]}}, as_user="dispatcher")
    assert status == 201, body
    new_id = body["id"]
    deadline = time.monotonic() + 10
    routed: list[int] = []
    while time.monotonic() < deadline:
        status, preview = await b.call("POST", "/api/routing/preview", query, as_user="dispatcher")
        assert status == 200
        routed = [x["subcentre_id"] for x in preview["assignments"]]
        if routed == [new_id]:
            break
        await asyncio.sleep(0.1)
    assert routed == [new_id]
    assert not preview["flagged"]


async def test_a_dropped_listen_connection_reconnects_and_nothing_is_missed(
        liandong: Liandong, database_url: str) -> None:
    station = await liandong.terminal("fire-xiling")
    admin = await asyncpg.connect(database_url)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'liandong-listen'"
            " AND datname = current_database()")
        assert killed == 1
        incident = await liandong.report("201", 4, *XILING)  # announced while nobody listens
        ticket = await station.next_ticket(wait_s=15)
        assert ticket["id"] == incident["tickets"][0]["id"]
        for _ in range(100):
            status, health = await liandong.call("GET", "/healthz")
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert (health["status"], health["database"], health["listening"]) == ("ok", True, True)
        assert set(health["loop_lag"]) == {"p99_ms", "max_ms"}
    finally:
        await admin.close()
        await station.close()


async def test_the_console_hears_incidents_and_ticket_changes_live(liandong: Liandong) -> None:
    events: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
            liandong.base_url.replace("http", "ws") + "/ws/console") as console:
        await console.send_str(msgspec.json.encode({"type": "hello", "token": await liandong.token("dispatcher")})
                               .decode())
        welcome = await console.receive_json(timeout=5)
        assert welcome["type"] == "welcome"
        # The server's clock, which the console times ticket stages by.
        assert abs(datetime.fromisoformat(welcome["now"]) - datetime.now(UTC)) < timedelta(seconds=5)
        incident = await liandong.report("201", 4, *XILING)
        station = await liandong.terminal("fire-xiling")
        try:
            await station.acknowledge(incident["tickets"][0]["id"])
        finally:
            await station.close()
        while not any(e["kind"] == "ticket.acknowledged" for e in events):
            events.append(await console.receive_json(timeout=5))
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["incident.created", "plan.activated", "ticket.created"]
    assert "ticket.delivered" in kinds
    assert all(e["incident_id"] == incident["id"] for e in events)


