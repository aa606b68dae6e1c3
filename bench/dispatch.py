"""Dispatch benchmark: incident POST → ticket at every terminal of the sub-centre, under load.

    python -m bench.dispatch --terminals 1000 --rate 100 --duration 30 --json

Starts the embedded PostgreSQL and one `liandong serve` process on a fresh database, registers
synthetic sub-centres (a grid over the Yichang districts, a few terminals each, as in a
province-wide deployment), connects the terminals (websockets) and a dispatcher console, then
posts incidents at a fixed rate at random points over the districts. Each terminal sends its
delivery receipt; one terminal per sub-centre acknowledges, and the console times the change.

The floor, measured in the same run on the same database: one durable INSERT commit plus one
WebSocket echo round trip to a bare aiohttp server — what no implementation can beat.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import msgspec
import psutil
import shapely
import websockets

from app.server import PACKAGES
from base.accounts import Role, create_user
from base.database import migrate, open_pool, start_embedded
from dispatch.client import TerminalClient
from gis.boundaries import city_area, yichang_districts

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def grid(count: int) -> list[shapely.Polygon]:
    """`count` or more rectangles tiling the city's bounding box."""
    x0, y0, x1, y1 = city_area(yichang_districts()).bounds
    side = int(count ** 0.5) + 1
    dx, dy = (x1 - x0) / side, (y1 - y0) / side
    return [shapely.box(x0 + i * dx, y0 + j * dy, x0 + (i + 1) * dx, y0 + (j + 1) * dy)
            for i in range(side) for j in range(side)]


async def fresh_database(workdir: Path, name: str, postgres: str | None = None) -> str:
    """An empty database `name`, migrated, on the PostgreSQL at admin URL `postgres` or else on the
    embedded one started in `workdir`; its URL."""
    admin_url = postgres or start_embedded(workdir)
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f"DROP DATABASE IF EXISTS {name}")
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    async with open_pool(url, 1, 2) as pool:
        await migrate(pool, PACKAGES)
    return url


async def prepare_database(url: str, subcentres: int) -> list[str]:
    """Schema, one dispatcher, and `subcentres` fire sub-centres with an operator each; their names."""
    names: list[str] = []
    async with open_pool(url, 1, 2) as pool, pool.acquire() as connection, connection.transaction():
        await create_user(connection, "bench-dispatcher", "bench", PASSWORD, Role.DISPATCHER)
        for n, cell in enumerate(grid(subcentres)):
            code = f"bench-fire-{n}"
            subcentre_id = await connection.fetchval(
                "INSERT INTO subcentres (code, name, department, site_lon, site_lat, jurisdiction)"
                " VALUES ($1, $2, 'fire', $3, $4, $5) RETURNING id",
                code, f"合成消防站 {n}", cell.centroid.x, cell.centroid.y, shapely.geometry.mapping(cell))
            await create_user(connection, code, code, PASSWORD, Role.OPERATOR, subcentre_id)
            names.append(code)
    return names


def bench_config(workdir: Path, edits: dict[str, str]) -> Path:
    """The shipped config.toml in `workdir`, without demo data or cameras (the benchmarks register what
    they measure), `edits` applied; its path."""
    config = (ROOT / "config.toml").read_text(encoding="utf-8").replace("seed = true", "seed = false")
    config = config.replace('facilities = "gis/data/', f'facilities = "{ROOT}/gis/data/')
    config = config.replace("cameras = 4", "cameras = 0")
    for old, new in edits.items():
        if old not in config:
            raise ValueError(f"config.toml has no {old!r} to replace")
        config = config.replace(old, new)
    path = workdir / "config.toml"
    path.write_text(config, encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def server_process(url: str, port: int, workdir: Path,
                         edits: dict[str, str] | None = None) -> AsyncIterator[psutil.Process]:
    """`liandong serve` on the shipped config.toml, without demo data or cameras, `edits` applied."""
    env = {**os.environ, "LIANDONG_CONFIG": str(bench_config(workdir, edits or {})), "LIANDONG_DATABASE_URL": url,
           "LIANDONG_LISTEN": f"127.0.0.1:{port}"}
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                if process.poll() is not None:
                    raise RuntimeError((workdir / "server.log").read_text())
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


ECHO_SERVER = """
import sys
from aiohttp import web
async def echo(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(msg.data)
    return ws
app = web.Application()
app.router.add_get('/', echo)
web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None)
"""


async def measure_floor(url: str, samples: int) -> dict[str, float]:
    """p99 of (durable INSERT commit + WebSocket echo round trip), sample by sample."""
    port = free_port()
    echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)])
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, body text)")
        for _ in range(100):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            await asyncio.sleep(0.05)
        inserts, echoes = [], []
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            for i in range(samples):
                t0 = time.perf_counter()
                await connection.execute("INSERT INTO bench_floor (body) VALUES ($1)", f"sample {i}")
                t1 = time.perf_counter()
                await ws.send("x" * 600)
                await ws.recv()
                t2 = time.perf_counter()
                inserts.append((t1 - t0) * 1000)
                echoes.append((t2 - t1) * 1000)
        totals = [a + b for a, b in zip(inserts, echoes, strict=True)]
        return {"floor_p50_ms": percentile(totals, 50), "floor_p99_ms": percentile(totals, 99),
                "floor_insert_p99_ms": percentile(inserts, 99), "floor_echo_p99_ms": percentile(echoes, 99)}
    finally:
        await connection.close()
        echo.terminate()
        echo.wait(10)


LOOP_LAG: list[float] = []


async def _loop_lag() -> None:
    """How late this process's own event loop wakes: latency it adds to what it measures."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(0.005)
        LOOP_LAG.append((time.perf_counter() - t0 - 0.005) * 1000)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def is_postgres(name: str, cmdline: list[str] | None) -> bool:
    """A PostgreSQL process: the postmaster (by its binary) or a backend (which retitles itself
    "postgres: …"). Not any process whose arguments mention postgres, such as this benchmark's own
    `--postgres URL`."""
    first = (cmdline or [""])[0]
    return name == "postgres" or Path(first.split(" ")[0]).name == "postgres" or first.startswith("postgres:")


def random_points(count: int, seed: int) -> list[tuple[float, float]]:
    area = city_area(yichang_districts())
    shapely.prepare(area)
    x0, y0, x1, y1 = area.bounds
    rng = random.Random(seed)
    points: list[tuple[float, float]] = []
    while len(points) < count:
        lon, lat = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if area.contains(shapely.Point(lon, lat)):
            points.append((lon, lat))
    return points


class Load:
    """One server with its terminals and console connected, driven through load phases."""

    def __init__(self, base: str, http: aiohttp.ClientSession, server: psutil.Process, dispatcher: str,
                 clients: list[TerminalClient], console: aiohttp.ClientWebSocketResponse) -> None:
        self.base, self.http, self.server, self.dispatcher = base, http, server, dispatcher
        self.clients, self.console = clients, console
        self.by_subcentre: dict[int, list[TerminalClient]] = {}
        for client in clients:
            self.by_subcentre.setdefault(client.welcome["user"]["subcentre_id"], []).append(client)
        self.received: dict[int, list[float]] = {}  # incident id -> arrival times at terminals
        self.console_seen: dict[int, float] = {}    # ticket id -> ticket.acknowledged seen on the console
        self.points = random_points(5000, seed=7)
        me = psutil.Process()
        postgres = [p for p in psutil.process_iter(["name", "cmdline"])
                    if is_postgres(p.info["name"], p.info["cmdline"])]
        self.watched = {"server": [server], "bench": [me], "postgres": postgres}

    def arrival(self, ticket: dict[str, Any]) -> None:
        self.received.setdefault(ticket["incident_id"], []).append(time.perf_counter())

    async def watch_console(self) -> None:
        async for message in self.console:
            event = msgspec.json.decode(message.data)
            if event.get("kind") == "ticket.acknowledged":
                self.console_seen.setdefault(event["ticket_id"], time.perf_counter())

    async def phase(self, rate: float, duration: float) -> dict[str, Any]:
        """Incidents at `rate` per second for `duration` seconds (open loop), then count what arrived."""
        sent: dict[int, float] = {}               # incident id -> POST sent
        acks_sent: dict[int, float] = {}          # ticket id -> ack sent
        expected: dict[int, tuple[int, int]] = {}  # ticket id -> (incident id, sub-centre id)
        ack_tasks: list[asyncio.Task[None]] = []
        failures = 0
        repeats_before = sum(c.repeats for c in self.clients)
        count = int(rate * duration)

        async def post(n: int) -> None:
            nonlocal failures
            lon, lat = self.points[n % len(self.points)]
            body = {"type_code": "201", "severity": 3 + n % 2, "location": {"lon": lon, "lat": lat},
                    "description": f"bench incident {n}"}
            t0 = time.perf_counter()
            async with self.http.post(self.base + "/api/incidents", json=body,
                                      headers={"Authorization": f"Bearer {self.dispatcher}"}) as response:
                if response.status != 201:
                    failures += 1
                    return
                incident = await response.json()
            sent[incident["id"]] = t0
            for ticket in incident["tickets"]:
                expected[ticket["id"]] = (incident["id"], ticket["subcentre_id"])
                ack_tasks.append(asyncio.create_task(acknowledge_later(ticket["id"], ticket["subcentre_id"])))

        async def acknowledge_later(ticket_id: int, subcentre_id: int) -> None:
            client = self.by_subcentre[subcentre_id][0]
            await asyncio.sleep(0.2)
            acks_sent[ticket_id] = time.perf_counter()
            with contextlib.suppress(Exception):
                await client.acknowledge(ticket_id)

        rss_peak = 0.0
        cpu_before = {k: cpu_seconds(v) for k, v in self.watched.items()}
        LOOP_LAG.clear()
        lag = asyncio.create_task(_loop_lag())
        # The terminals and their state live for the whole run: keep this process's collector pauses out
        # of the timings (the server is measured as it runs, untouched).
        gc.freeze()
        gc.disable()
        started = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        for n in range(count):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(n)))
            if n % 100 == 0:
                rss_peak = max(rss_peak, self.server.memory_info().rss / 2**20)
        await asyncio.gather(*tasks)
        await asyncio.gather(*ack_tasks)
        elapsed = time.perf_counter() - started
        await asyncio.sleep(3.0)  # let the last deliveries land before counting losses
        cpu_after = {k: cpu_seconds(v) for k, v in self.watched.items()}
        lag.cancel()
        gc.enable()
        rss_peak = max(rss_peak, self.server.memory_info().rss / 2**20)
        async with self.http.get(self.base + "/healthz") as response:
            server_lag = (await response.json())["loop_lag"]

        latencies = [arrival_t - sent[incident_id] for incident_id, times in self.received.items()
                     if incident_id in sent for arrival_t in times]
        lost = 0
        for ticket_id, (_, subcentre_id) in expected.items():
            lost += sum(1 for client in self.by_subcentre.get(subcentre_id, []) if ticket_id not in client.tickets)
        ack_latencies = [self.console_seen[t] - acks_sent[t] for t in acks_sent if t in self.console_seen]
        # A terminal the server cut off (too slow, session ended) misses what follows: name why, so a
        # loss in the figures explains itself (browsers reconnect and replay; this client does not).
        drops = collections.Counter(f"{code} {reason}".strip() for c in self.clients for code, reason in c.dropped)
        cpu = {k: cpu_after[k] - cpu_before[k] for k in self.watched}
        return {
            "rate": rate, "duration_s": duration,
            "incidents": len(sent), "failed_posts": failures, "tickets": len(expected),
            "deliveries": len(latencies),
            "p50_ms": percentile([x * 1000 for x in latencies], 50),
            "p99_ms": percentile([x * 1000 for x in latencies], 99),
            "max_ms": max(latencies) * 1000 if latencies else float("nan"),
            "ack_p50_ms": percentile([x * 1000 for x in ack_latencies], 50),
            "ack_p99_ms": percentile([x * 1000 for x in ack_latencies], 99),
            "acks_unseen": len(acks_sent) - len(ack_latencies),
            "lost": lost, "duplicates": sum(c.repeats for c in self.clients) - repeats_before,
            "terminals_dropped": dict(drops), "rss_mb": round(rss_peak, 1),
            **{f"{k}_cpu_cores": round(cpu[k] / elapsed, 2) for k in self.watched},
            # CPU per incident: everything the process did over the phase (its background passes
            # included) divided by the incidents it carried.
            **{f"{k}_cpu_ms_per_incident": cpu[k] * 1000 / max(1, len(sent)) for k in ("server", "postgres")},
            "server_loop_lag_p99_ms": server_lag["p99_ms"], "server_loop_lag_max_ms": server_lag["max_ms"],
            "bench_loop_lag_p99_ms": percentile(LOOP_LAG, 99), "bench_loop_lag_max_ms": max(LOOP_LAG, default=0.0),
        }


CAPACITY_P99_MS = 25.0
STEP_FIELDS = ("rate", "incidents", "p50_ms", "p99_ms", "ack_p99_ms", "lost", "duplicates", "failed_posts",
               "acks_unseen", "terminals_dropped", "server_cpu_cores", "postgres_cpu_cores", "bench_cpu_cores",
               "server_cpu_ms_per_incident", "postgres_cpu_ms_per_incident", "bench_loop_lag_p99_ms")


def held_criterion(figures: dict[str, Any]) -> bool:
    """Whether a phase stayed inside the capacity criterion: p99 <= 25 ms with nothing lost or failed."""
    return bool(figures["p99_ms"] <= CAPACITY_P99_MS and figures["lost"] == 0 and figures["failed_posts"] == 0
                and figures["acks_unseen"] == 0 and not figures["terminals_dropped"])


async def reset_statements(url: str) -> None:
    """Zero pg_stat_statements (the server must preload it: `--postgres` on one that does)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await connection.execute("SELECT pg_stat_statements_reset()")
    finally:
        await connection.close()


async def top_statements(url: str, limit: int, incidents: int) -> list[dict[str, Any]]:
    """The statements that took the most database time, per incident carried."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT calls, total_exec_time + total_plan_time AS ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 140)"
            " AS query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname ="
            " current_database()) ORDER BY ms DESC LIMIT $1", limit)
    finally:
        await connection.close()
    return [{"calls_per_incident": round(r["calls"] / max(1, incidents), 2),
             "ms_per_incident": round(r["ms"] / max(1, incidents), 3), "query": r["query"]} for r in rows]


async def run(terminals: int, rate: float, duration: float, per_subcentre: int, *, capacity: bool = False,
              step: float = 50.0, postgres: str | None = None, statements: int = 0) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="liandong-bench-"))
    url = await fresh_database(workdir, "bench", postgres)
    subcentre_codes = await prepare_database(url, max(1, terminals // per_subcentre))
    floor = await measure_floor(url, 1000)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with server_process(url, port, workdir) as server, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200)) as http:
        async def login(username: str) -> str:
            async with http.post(base + "/api/login", json={"username": username, "password": PASSWORD}) as r:
                token: str = (await r.json())["token"]
                return token

        dispatcher = await login("bench-dispatcher")
        rss_idle = server.memory_info().rss / 2**20
        url_ws = base.replace("http", "ws") + "/ws/terminal"
        tokens: list[str] = []
        for start in range(0, len(subcentre_codes), 50):
            tokens += await asyncio.gather(*(login(code) for code in subcentre_codes[start:start + 50]))
        load: Load
        # Terminals dealt round the sub-centres, so every sub-centre has one or more.
        clients = [TerminalClient(url_ws, tokens[n % len(tokens)], on_new_ticket=lambda t: load.arrival(t))
                   for n in range(terminals)]
        for start in range(0, len(clients), 100):
            await asyncio.gather(*(c.connect() for c in clients[start:start + 100]))
        console = await http.ws_connect(base.replace("http", "ws") + "/ws/console")
        await console.send_str(msgspec.json.encode({"type": "hello", "token": dispatcher}).decode())
        await console.receive_json()
        load = Load(base, http, server, dispatcher, clients, console)
        watcher = asyncio.create_task(load.watch_console())
        rss_connected = server.memory_info().rss / 2**20
        if statements:
            await reset_statements(url)
        result: dict[str, Any] = {"terminals": len(clients), "subcentres": len(load.by_subcentre),
                                  **await load.phase(rate, duration), "rss_idle_mb": round(rss_idle, 1),
                                  "rss_connected_mb": round(rss_connected, 1), **floor}
        if statements:
            result["statements"] = await top_statements(url, statements, result["incidents"])
        if capacity:
            # Step the rate up from the measured one until a phase breaks the criterion; the capacity is
            # the last rate that held (0 if even the first did not).
            steps: list[dict[str, Any]] = []
            held = held_criterion(result)
            steps.append({k: result[k] for k in STEP_FIELDS})
            next_rate = rate
            while held:
                next_rate += step
                figures = await load.phase(next_rate, duration)
                steps.append({k: figures[k] for k in STEP_FIELDS})
                held = held_criterion(figures)
            result["capacity_per_s"] = max((s["rate"] for s in steps if held_criterion(s)), default=0.0)
            result["capacity_steps"] = steps
        watcher.cancel()
        await console.close()
        await asyncio.gather(*(c.close() for c in clients))
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="incidents per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--per-subcentre", type=int, default=3, help="terminals per sub-centre (about)")
    parser.add_argument("--capacity", action="store_true",
                        help=f"after the measured phase, step the rate up until p99 > {CAPACITY_P99_MS:g} ms or"
                             " anything is lost; report the last rate that held as capacity_per_s")
    parser.add_argument("--step", type=float, default=50.0, help="incidents per second added per capacity step")
    parser.add_argument("--postgres", help="admin URL of a running PostgreSQL to use instead of the embedded one")
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="list the N statements that took most database time (needs --postgres on a server"
                             " that preloads pg_stat_statements)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args()
    result = asyncio.run(run(args.terminals, args.rate, args.duration, args.per_subcentre, capacity=args.capacity,
                             step=args.step, postgres=args.postgres, statements=args.statements))
    for key, value in result.items():
        if isinstance(value, float):
            result[key] = round(value, 2)
    if args.json:
        print(msgspec.json.encode(result).decode())
    else:
        width = max(map(len, result))
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
        print(f"p99 / floor p99 = {result['p99_ms'] / result['floor_p99_ms']:.2f}  (target: p99 <= 25 ms and <= 3x)")


if __name__ == "__main__":
    main()
