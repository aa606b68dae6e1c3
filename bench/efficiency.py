"""Efficiency supervision benchmark: a hall's years of cases pushed through the ingestion API, then
live events while time cards fall due, the dashboard's queries over everything, and one month's bulletin.

    python -m bench.efficiency --cases 1000000 --open 100000 --json

Starts the embedded PostgreSQL and one `liandong serve` on a fresh database with the demo catalogue
(33 items of 9 departments) and a hall platform account. Loads `--cases` cases spread over three years
(`--open` of them accepted in the last days and still running), every event through
POST /api/efficiency/events/batch (150 a request, `--clients` at once). Then, with a supervision page
connected to /ws/efficiency, names the clock of `--cards` open cases so their yellow limits pass over 20
seconds, while single events are pushed live at `--live-rate` a second: each card's latency is from its
limit to its arrival at the page. Then times the dashboard page's queries (a month's figures, over
everything loaded), apart from them the statistics API over all three years, and the issue of last
month's bulletin.

The floor, measured in the same run on the same database: `--clients` connections storing rows of the
events' shape, 150 a transaction as the load sends them: durable storage with no checking, no clock and
no HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import psutil

from base.accounts import Role, create_user
from base.database import open_pool
from bench.dispatch import cpu_seconds, free_port, fresh_database, percentile, server_process
from efficiency.demo import catalogue, seed_items
from efficiency.items import ApprovalItem, Stage

PASSWORD = "bench-password"
BATCH = 150  # events a request: what fits the server's shipped body limit ([server] max_body_bytes, 64 KiB)
CST = timedelta(hours=8)


def pss_mb(processes: list[psutil.Process]) -> float:
    """Proportional set size: shared pages counted once across the processes, as memory is really used."""
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_full_info().pss
    return round(total / 2**20, 1)


def postgres_of(workdir: Path) -> list[psutil.Process]:
    """The embedded PostgreSQL started in `workdir`: its postmaster and every backend."""
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "postgres" and str(workdir) in " ".join(process.info["cmdline"] or []):
            return [process, *process.children(recursive=True)]
    raise RuntimeError(f"no PostgreSQL runs from {workdir}")


def postgres_cpu_s(workdir: Path) -> float:
    """CPU seconds of the embedded PostgreSQL so far: the postmaster, its live backends, and those that
    have exited (the kernel adds a reaped child's time to its parent's)."""
    postmaster = postgres_of(workdir)[0]
    times = postmaster.cpu_times()
    return times.children_user + times.children_system + cpu_seconds(postgres_of(workdir))


def story(n: int, item: ApprovalItem, rng: random.Random, now: datetime, running: bool) -> list[dict[str, Any]]:
    """Case `n`'s events: a finished case somewhere in the last three years (a few late), or one accepted
    in the last days whose stages are under way."""
    if running:
        accepted = now - timedelta(hours=rng.uniform(2, 60))
        stages = item.stages[: rng.randint(1, max(1, len(item.stages) - 1))]
        step = timedelta(minutes=rng.uniform(5, 60))
    else:
        accepted = now - timedelta(days=rng.uniform(3, 3 * 365))
        stages = item.stages
        late = rng.random() < 0.03
        step = timedelta(days=(item.legal_days * 2 if late else item.promised_days * 0.6) / len(stages))
    events = []
    for k, stage in enumerate(stages):
        at = min(accepted + step * k, now - timedelta(seconds=len(stages) - k))
        body: dict[str, Any] = {"department": item.department, "case": f"B{n:08d}", "item": item.code,
                                "event_id": f"B{n:08d}-{k}", "kind": "stage", "stage": stage.value,
                                "at": (at + CST).replace(tzinfo=None).isoformat() + "+08:00",
                                "actor": f"staff-{n % 97}-{k % 2}", "window": f"{1 + n % 12}号窗口"}
        if stage is Stage.ACCEPT:
            body["documents"] = list(item.required_documents)
        events.append(body)
    return events


async def post(http: aiohttp.ClientSession, base: str, token: str, path: str, body: Any) -> tuple[int, Any, float]:
    t0 = time.perf_counter()
    async with http.post(base + path, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
        answer = await response.json()
    return response.status, answer, (time.perf_counter() - t0) * 1000


async def login(http: aiohttp.ClientSession, base: str, username: str) -> str:
    async with http.post(base + "/api/login", json={"username": username, "password": PASSWORD}) as response:
        token: str = (await response.json())["token"]
        return token


async def load(http: aiohttp.ClientSession, base: str, token: str, cases: int, running: int, clients: int,
               now: datetime) -> tuple[int, list[float]]:
    """Push every case's events; (events stored, batch latencies)."""
    items, rng = catalogue(), random.Random(7)
    queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(maxsize=clients * 2)
    latencies: list[float] = []
    stored = 0

    async def client() -> None:
        nonlocal stored
        while (batch := await queue.get()) is not None:
            status, answer, ms = await post(http, base, token, "/api/efficiency/events/batch", {"events": batch})
            if status != 200:
                raise RuntimeError(f"batch refused: {status} {answer}")
            stored += answer["new"]
            latencies.append(ms)

    async def produce() -> None:
        batch: list[dict[str, Any]] = []
        for n in range(cases):
            batch += story(n, items[n % len(items)], rng, now, running=n >= cases - running)
            if len(batch) >= BATCH:
                await queue.put(batch[:BATCH])
                batch = batch[BATCH:]
        if batch:
            await queue.put(batch)
        for _ in range(clients):
            await queue.put(None)

    async with asyncio.TaskGroup() as group:  # a refused batch stops everything, with its reason
        group.create_task(produce())
        for _ in range(clients):
            group.create_task(client())
    return stored, latencies


async def floor_events_per_s(url: str, clients: int, seconds: float) -> float:
    """Rows of the events' shape stored durably, 500 a transaction, by `clients` connections at once."""
    setup = await asyncpg.connect(url)
    await setup.execute("CREATE TABLE IF NOT EXISTS bench_floor_events (id bigserial PRIMARY KEY, department text,"
                        " event_id text, at timestamptz, body jsonb, UNIQUE (department, event_id))")
    await setup.close()
    stored, deadline = 0, time.perf_counter() + seconds

    async def writer(c: int) -> None:
        nonlocal stored
        connection = await asyncpg.connect(url)
        try:
            n = 0
            while time.perf_counter() < deadline:
                rows = [("市场监管局", f"{c}-{n + i}", datetime.now(UTC), '{"kind": "stage"}') for i in range(BATCH)]
                async with connection.transaction():
                    await connection.executemany("INSERT INTO bench_floor_events (department, event_id, at, body)"
                                                 " VALUES ($1, $2, $3, $4::jsonb)", rows)
                n += BATCH
                stored += BATCH
        finally:
            await connection.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(c) for c in range(clients)))
    return stored / (time.perf_counter() - t0)


async def card_latency(http: aiohttp.ClientSession, base: str, url: str, supervisor: str, system: str,
                       cards: int, live_rate: float) -> dict[str, Any]:
    """Yellow limits of `cards` open cases pass over 20 s while live events arrive; each card's latency."""
    ws_url = base.replace("http://", "ws://") + "/ws/efficiency"
    arrived: dict[int, float] = {}
    async with http.ws_connect(ws_url) as page:
        await page.send_json({"type": "hello", "token": supervisor})
        welcome = await page.receive_json(timeout=30)
        assert welcome["type"] == "welcome", welcome

        async def listen() -> None:
            async for message in page:
                for card in msgspec.json.decode(message.data).get("opened", []):
                    if card["colour"] == "yellow" and card["reason"] == "time":
                        arrived.setdefault(card["case_id"], time.time())

        listener = asyncio.create_task(listen())
        connection = await asyncpg.connect(url)
        try:
            due = await connection.fetch(
                "UPDATE approval_cases c SET yellow_at = now() + make_interval(secs => 2 + 20.0 * s.n / $1)"
                " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM approval_cases WHERE completed_at IS NULL"
                "  AND NOT suspended AND yellow_at > now() + interval '1 minute' ORDER BY id LIMIT $1) s"
                " WHERE c.id = s.id RETURNING c.id, extract(epoch FROM c.yellow_at)::float8 AS due", cards)
            running = await connection.fetch("SELECT id, department, reference, item_code FROM approval_cases"
                                             " WHERE completed_at IS NULL AND id <> ALL($1::bigint[]) LIMIT 2000",
                                             [r["id"] for r in due])
        finally:
            await connection.close()
        ingest: list[float] = []
        t_end = time.perf_counter() + 25
        n = 0
        while time.perf_counter() < t_end:  # live single events: a suspension and its resumption, over and over
            case = running[n % len(running)]
            kind = "suspend" if (n // len(running)) % 2 == 0 else "resume"
            body = {"department": case["department"], "case": case["reference"], "item": case["item_code"],
                    "event_id": f"live-{n}", "kind": kind, "at": datetime.now(UTC).isoformat()}
            status, answer, ms = await post(http, base, system, "/api/efficiency/events", body)
            if status != 201:
                raise RuntimeError(f"live event refused: {status} {answer}")
            ingest.append(ms)
            n += 1
            await asyncio.sleep(max(0.0, 1 / live_rate - ms / 1000))
        await asyncio.sleep(3)
        listener.cancel()
    latencies = [(arrived[r["id"]] - r["due"]) * 1000 for r in due if r["id"] in arrived]
    return {"cards": len(due), "cards_arrived": len(latencies), "card_latency_p50_ms": percentile(latencies, 50),
            "card_latency_p99_ms": percentile(latencies, 99), "live_events": len(ingest),
            "ingest_p50_ms": percentile(ingest, 50), "ingest_p99_ms": percentile(ingest, 99)}


DASHBOARD = ("/api/efficiency/statistics?by=department", "/api/efficiency/statistics?by=item",
             "/api/efficiency/statistics?by=window", "/api/efficiency/cases?state=open&limit=200",
             "/api/efficiency/cards", "/api/efficiency/appraisal")


async def dashboard(http: aiohttp.ClientSession, base: str, token: str, rounds: int) -> dict[str, Any]:
    """The dashboard page's queries (its figures are for a month: this one), and apart from them the
    statistics API asked for all three years loaded, which the page never asks."""
    three_years = datetime.now(UTC) - timedelta(days=3 * 365 + 5)
    long = "/api/efficiency/statistics?by=department&since=" + three_years.strftime("%Y-%m-%dT%H:%M:%SZ")
    paths = [*DASHBOARD, long]
    times: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(rounds):
        for path in paths:
            t0 = time.perf_counter()
            async with http.get(base + path, headers={"Authorization": f"Bearer {token}"}) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status} {await response.text()}")
            times[path].append((time.perf_counter() - t0) * 1000)
    page = [t for p in DASHBOARD for t in times[p]]
    return {"dashboard_p99_ms": percentile(page, 99),
            "dashboard_slowest": max(DASHBOARD, key=lambda p: percentile(times[p], 99)),
            "dashboard_slowest_p99_ms": max(percentile(times[p], 99) for p in DASHBOARD),
            "statistics_three_years_p99_ms": percentile(times[long], 99)}


async def run(cases: int, running: int, clients: int, cards: int, live_rate: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="liandong-bench-efficiency-"))
    url = await fresh_database(workdir, "bench_efficiency")
    async with open_pool(url, 1, 2) as pool:
        await seed_items(pool)
        departments = sorted({i.department for i in catalogue()})
        await create_user(pool, "bench-platform", "bench", PASSWORD, Role.SYSTEM, departments=departments)
        await create_user(pool, "bench-supervisor", "bench", PASSWORD, Role.SUPERVISOR)
    floor = await floor_events_per_s(url, clients, 5)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with server_process(url, port, workdir, {"hall_every_s = 15": "hall_every_s = 0"}) as server, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        system, supervisor = await login(http, base, "bench-platform"), await login(http, base, "bench-supervisor")
        now = datetime.now(UTC)
        cpu0 = {"server": cpu_seconds([server]), "postgres": postgres_cpu_s(workdir)}
        t0 = time.perf_counter()
        stored, batches = await load(http, base, system, cases, running, clients, now)
        load_s = time.perf_counter() - t0
        cpu1 = {"server": cpu_seconds([server]), "postgres": postgres_cpu_s(workdir)}
        live = await card_latency(http, base, url, supervisor, system, cards, live_rate)
        board = await dashboard(http, base, supervisor, 20)
        month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        t0 = time.perf_counter()
        status, answer, _ = await post(http, base, supervisor, "/api/efficiency/bulletins", {"month": month})
        bulletin_s = time.perf_counter() - t0
        if status != 201:
            raise RuntimeError(f"bulletin: {status} {answer}")
        memory = {"server_pss_mb": pss_mb([server]), "postgres_pss_mb": pss_mb(postgres_of(workdir))}
        async with open_pool(url, 1, 2) as pool:
            open_cases = await pool.fetchval("SELECT count(*) FROM approval_cases WHERE completed_at IS NULL")
            database_mb = await pool.fetchval("SELECT pg_database_size(current_database()) / 1048576")
    events_per_s = stored / load_s
    return {"cases": cases, "open_cases": open_cases, "events": stored, "load_s": round(load_s, 1),
            "events_per_s": round(events_per_s), "floor_events_per_s": round(floor),
            "ratio_to_floor": round(floor / events_per_s, 1), "batch_p99_ms": percentile(batches, 99),
            "server_cpu_ms_per_event": round((cpu1["server"] - cpu0["server"]) * 1000 / max(stored, 1), 3),
            "postgres_cpu_ms_per_event": round((cpu1["postgres"] - cpu0["postgres"]) * 1000 / max(stored, 1), 3),
            **live, **board, "bulletin_s": round(bulletin_s, 2), **memory, "database_mb": database_mb,
            "cpu_count": psutil.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=10_000, help="of the cases, how many are still running")
    parser.add_argument("--clients", type=int, default=4, help="batches in flight at once")
    parser.add_argument("--cards", type=int, default=500, help="open cases whose yellow limit passes live")
    parser.add_argument("--live-rate", type=float, default=50, help="single live events a second")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    result = asyncio.run(run(options.cases, min(options.open, options.cases), options.clients, options.cards,
                             options.live_rate))
    if options.json:
        print(msgspec.json.encode(result).decode())
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    sys.exit(0 if result["cards_arrived"] == result["cards"] else 1)


if __name__ == "__main__":
    main()
