"""A server killed with SIGKILL while incidents pour in loses nothing: every incident that was answered
201 is there with its tickets after a restart, and every terminal, reconnecting with the last sequence
number it saw, gets each of its tickets once — none missing, none twice."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
import shapely

from dispatch.client import TerminalClient
from gis.boundaries import city_area, yichang_districts
from tests.conftest import free_port, start_server, wait_healthy
from tests.helpers import Liandong


def points_in_the_city(count: int, seed: int) -> list[tuple[float, float]]:
    area, chance = city_area(yichang_districts()), random.Random(seed)
    min_lon, min_lat, max_lon, max_lat = area.bounds
    found: list[tuple[float, float]] = []
    while len(found) < count:
        lon, lat = chance.uniform(min_lon, max_lon), chance.uniform(min_lat, max_lat)
        if area.contains(shapely.Point(lon, lat)):
            found.append((round(lon, 6), round(lat, 6)))
    return found


async def test_a_server_killed_under_load_loses_no_incident_and_no_ticket(database_url: str, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    server = start_server(database_url, port, log)
    try:
        await wait_healthy(base, server, log)
        async with Liandong(base) as liandong:
            status, features = await liandong.call("GET", "/api/subcentres", as_user="dispatcher")
            assert status == 200
            by_subcentre = {int(f["id"]): f["properties"]["code"] for f in features["features"]}
            terminals: dict[int, TerminalClient] = {}
            for subcentre_id, code in by_subcentre.items():
                terminals[subcentre_id] = await liandong.terminal(code)
            token = await liandong.token("dispatcher")
            accepted: list[int] = []
            points = iter(points_in_the_city(10_000, seed=7))
            stop = asyncio.Event()

            async def keep_reporting() -> None:
                """A dispatcher's console: one report every 20 ms, whatever the server is doing."""
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                    while not stop.is_set():
                        lon, lat = next(points)
                        try:
                            async with http.post(f"{base}/api/incidents", headers={"Authorization": f"Bearer {token}"},
                                                 json={"type_code": "201", "severity": 4,
                                                       "location": {"lon": lon, "lat": lat}}) as response:
                                if response.status == 201:
                                    accepted.append((await response.json())["id"])
                        except (aiohttp.ClientError, TimeoutError):
                            pass  # the server is down: the console would retry; what it was not told 201 is not counted
                        await asyncio.sleep(0.02)

            reporting = asyncio.create_task(keep_reporting())
            await asyncio.sleep(2.0)
            server.kill()  # SIGKILL: no shutdown, no flush, mid-request
            server.wait()
            killed_after = len(accepted)
            server = start_server(database_url, port, log)
            await wait_healthy(base, server, log)
            for terminal in terminals.values():  # each reconnects, saying the last sequence number it saw
                deadline = time.monotonic() + 10
                while not terminal.connected:
                    try:
                        await terminal.connect()
                    except OSError:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)
            stop.set()
            await reporting
            assert killed_after > 20 and len(accepted) > killed_after + 20  # load before and after the kill

            expected: dict[int, set[int]] = {s: set() for s in terminals}
            for incident_id in accepted:
                incident = await liandong.incident(incident_id)
                assert incident["tickets"], incident_id
                for ticket in incident["tickets"]:
                    expected[ticket["subcentre_id"]].add(ticket["id"])
            deadline = time.monotonic() + 20
            while any(not expected[s] <= set(t.tickets) for s, t in terminals.items()):
                assert time.monotonic() < deadline, "a terminal is missing tickets"
                await asyncio.sleep(0.2)
            for subcentre_id, terminal in terminals.items():
                created = [ticket_id for event, ticket_id in terminal.heard if event == "created"]
                assert len(created) == len(set(created)), by_subcentre[subcentre_id]  # none offered twice
                assert terminal.repeats == 0
                await terminal.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
