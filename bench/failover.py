"""Failover benchmark: kill -9 one of three nodes behind HAProxy under load, and count the cost.

    python -m bench.failover --json

Three `liandong serve` nodes on one PostgreSQL (the embedded one, started for the run), HAProxy in
front (app/balancer.py's configuration), cameras recording (file clips played as live cameras), the
terminals of many sub-centres connected through the balancer and staying connected as the terminal
page does (dispatch.client.TerminalClient.stay_connected), incidents posted through the balancer at
a fixed rate. Most sub-centres acknowledge each ticket; every fifth never does, so its tickets
escalate while the node dies. Midway the node recording the first camera is killed with SIGKILL.

Figures:
- `terminal_resume_s` (p99, max): from the kill until each terminal it cut off is welcomed back
  by another node; `resumed_delivery_s_max`: from POST to arrival, for tickets posted in the
  5 s after the kill to the terminals it cut off.
- `lost`: (ticket, terminal) pairs never delivered, over every ticket in the database (escalation's
  backup tickets included); `duplicates`: tickets a terminal was offered again.
- `cameras_by_node`: which node recorded how many cameras before the kill (each takes its share);
  `camera_reclaim_s` (max): from the kill until another node holds each of its cameras' locks;
  `camera_recording_s` (max): until a segment of the new recording is indexed.
- `acknowledged_lost`: acknowledgements the server confirmed whose tickets are not acknowledged.
- `escalations_overdue`: escalation deadlines due more than two polls ago and not fired.
- `resent_posts`: reports sent again, as the console does, under their key after no answer or a
  502-504 (one in flight on the killed node gets 502 from the balancer, whether or not the node had
  committed it); `failed_posts`: reports never answered 201; `duplicate_incidents`: reports stored
  twice (the key makes a resent report return the incident stored the first time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import websockets

from app.server import PACKAGES
from base.accounts import Role, create_user
from base.database import migrate, open_pool
from base.pg import Pool
from bench.cluster import Cluster, Node, cluster
from bench.dispatch import PASSWORD, fresh_database, percentile, prepare_database, random_points
from dispatch.client import TerminalClient, TerminalError
from video.ingest import LOCK_BASE
from video.recording import ffmpeg

SILENT_EVERY = 5  # every fifth sub-centre never acknowledges: its tickets escalate
ACKNOWLEDGE_S = 4  # the acknowledgement limit the nodes run with, so escalations fall due in the run
CLUSTER_EDITS = {"segment_s = 10": "segment_s = 2", "analysis_workers = 2": "analysis_workers = 1",
                 "acknowledge_s = 60": f"acknowledge_s = {ACKNOWLEDGE_S}"}


def make_clip(path: Path, seconds: int = 10) -> None:
    """A small window camera's picture and sound, a keyframe a second."""
    subprocess.run([ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", "15", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True, timeout=120)


@dataclass
class Terminal:
    client: TerminalClient
    subcentre_id: int
    acknowledges: bool
    arrivals: dict[int, float] = field(default_factory=dict)  # ticket id -> when it arrived (monotonic)
    task: asyncio.Task[None] | None = None


class Failover:
    def __init__(self, running: Cluster, http: aiohttp.ClientSession) -> None:
        self.cluster, self.http = running, http
        self.terminals: list[Terminal] = []
        self.posted: dict[str, float] = {}   # description -> when the POST was sent
        self.failed_posts: list[str] = []    # descriptions of reports never answered 201, resent or not
        self.resent_posts = 0                # reports sent again after no answer or a 502-504
        self.acknowledged: set[int] = set()  # tickets whose acknowledgement the server confirmed
        self.tasks: set[asyncio.Task[None]] = set()

    async def login(self, username: str) -> str:
        async with self.http.post(self.cluster.base + "/api/login",
                                  json={"username": username, "password": PASSWORD}) as response:
            body = await response.json()
            assert response.status == 200, body
            token: str = body["token"]
            return token

    async def connect_terminals(self, codes: list[str], count: int) -> None:
        tokens = [await self.login(code) for code in codes]
        url = self.cluster.base.replace("http", "ws") + "/ws/terminal"
        for n in range(count):
            subcentre = n % len(tokens)
            client = TerminalClient(url, tokens[subcentre])
            terminal = Terminal(client, subcentre, acknowledges=subcentre % SILENT_EVERY != 0)
            client.on_new_ticket = lambda ticket, t=terminal: self._arrived(t, ticket)
            await client.connect()
            terminal.subcentre_id = client.welcome["user"]["subcentre_id"]
            terminal.task = asyncio.create_task(client.stay_connected())
            self.terminals.append(terminal)
        first_per_subcentre: dict[int, Terminal] = {}
        for terminal in self.terminals:  # one person per acknowledging sub-centre presses the button
            first_per_subcentre.setdefault(terminal.subcentre_id, terminal)
        for terminal in self.terminals:
            terminal.acknowledges = terminal.acknowledges and first_per_subcentre[terminal.subcentre_id] is terminal

    def _arrived(self, terminal: Terminal, ticket: dict[str, Any]) -> None:
        terminal.arrivals[ticket["id"]] = time.monotonic()
        if terminal.acknowledges:
            self._spawn(self._acknowledge(terminal.client, ticket["id"]))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _acknowledge(self, client: TerminalClient, ticket_id: int) -> None:
        """A person presses 确认 a moment after the alert, and again if the connection was down."""
        await asyncio.sleep(0.3)
        for _ in range(100):
            try:
                await asyncio.wait_for(client.acknowledge(ticket_id), 5)
            except TerminalError:
                return  # refused (already acknowledged by an earlier press whose answer was lost, say)
            except (ConnectionError, websockets.ConnectionClosed, TimeoutError):
                await asyncio.sleep(0.3)
                continue
            self.acknowledged.add(ticket_id)
            return

    async def post_incidents(self, dispatcher: str, rate: float, seconds: float) -> None:
        points = random_points(5000, seed=11)
        started = time.monotonic()
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            self._spawn(self._post(dispatcher, f"failover incident {n}", points[n % len(points)]))

    async def _post(self, dispatcher: str, description: str, point: tuple[float, float]) -> None:
        """As the console does: the report under a key of its own, sent again (up to 3 times, 1, 2, 3 s
        later) when no answer or a balancer's 502-504 came back."""
        self.posted[description] = time.monotonic()
        body = {"type_code": "201", "severity": 3, "location": {"lon": point[0], "lat": point[1]},
                "description": description, "report_key": secrets.token_hex(16)}
        for attempt in range(1, 5):
            try:
                async with self.http.post(self.cluster.base + "/api/incidents", json=body,
                                          headers={"Authorization": f"Bearer {dispatcher}"}) as response:
                    if response.status == 201:
                        return
                    if response.status not in (502, 503, 504):
                        break
            except aiohttp.ClientError:
                pass
            self.resent_posts += 1
            await asyncio.sleep(attempt)
        self.failed_posts.append(description)


def recorder_of(node: Node, clip: Path) -> bool:
    """Whether this node's ffmpeg is recording the camera playing `clip`."""
    assert node.process is not None
    with contextlib.suppress(psutil.NoSuchProcess):
        return any(str(clip) in " ".join(child.cmdline())
                   for child in psutil.Process(node.process.pid).children(recursive=True))
    return False


async def lock_holder(db: Pool, camera_id: int) -> int | None:
    pid: int | None = await db.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 0 AND objid = $1",
        LOCK_BASE + camera_id)
    return pid


async def recording(running: Cluster, clips: list[Path], within_s: float = 60.0) -> None:
    """Wait until some node records each camera."""
    deadline = time.monotonic() + within_s
    while not all(any(recorder_of(node, clip) for node in running.nodes) for clip in clips):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cameras were not all recording within {within_s} s")
        await asyncio.sleep(0.5)


def run_of(path: str) -> str:
    """The recording run a segment belongs to (video.recording.ffmpeg's file names end in it)."""
    return Path(path).stem.rsplit("-", 1)[-1]


async def watch_camera(db: Pool, camera_id: int, killed_at: float,
                       runs_before: set[str], within_s: float) -> tuple[float, float]:
    """Seconds from the kill until the camera's lock is held again, and until a new run's segment
    is indexed (inf if not within `within_s`)."""
    reclaimed = recording = float("inf")
    while time.monotonic() - killed_at < within_s and recording == float("inf"):
        now = time.monotonic() - killed_at
        if reclaimed == float("inf") and await lock_holder(db, camera_id) is not None:
            reclaimed = now
        paths = await db.fetch("SELECT path FROM segments WHERE camera_id = $1", camera_id)
        if any(run_of(p["path"]) not in runs_before for p in paths):
            recording = now
        await asyncio.sleep(0.1)
    return reclaimed, recording


async def run(*, terminals: int = 300, per_subcentre: int = 3, rate: float = 20.0, cameras: int = 3,
              before_s: float = 10.0, after_s: float = 20.0, database_url: str | None = None,
              workdir: Path | None = None) -> dict[str, Any]:
    own_workdir = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="liandong-failover-"))
    url = database_url or await fresh_database(workdir, "failover")
    if database_url is not None:  # an empty database of the caller's
        async with open_pool(url, 1, 2) as pool:
            await migrate(pool, PACKAGES)
    codes = await prepare_database(url, max(1, terminals // per_subcentre))
    async with open_pool(url, 1, 2) as pool, pool.acquire() as connection:
        await create_user(connection, "bench-supervisor", "bench", PASSWORD, Role.SUPERVISOR)
    (workdir / "media").mkdir(exist_ok=True)
    clips = [workdir / "media" / f"window-{n}.mp4" for n in range(1, cameras + 1)]
    for clip in clips:
        make_clip(clip)
    async with cluster(url, workdir, 3, CLUSTER_EDITS) as running, aiohttp.ClientSession() as http:
        failover = Failover(running, http)
        supervisor = await failover.login("bench-supervisor")
        camera_ids = []
        for n, clip in enumerate(clips, 1):
            async with http.post(running.base + "/api/cameras", headers={"Authorization": f"Bearer {supervisor}"},
                                 json={"code": f"w{n}", "name": f"{n}号窗口", "department": "行政服务中心",
                                       "window": str(n), "location": {"lon": 111.29, "lat": 30.70},
                                       "main_url": f"file://{clip}"}) as response:
                body = await response.json()
                assert response.status == 201, body
                camera_ids.append(body["id"])
        try:
            await failover.connect_terminals(codes, terminals)
            dispatcher = await failover.login("bench-dispatcher")
            async with open_pool(url, 1, 4) as db:
                await recording(running, clips)
                load = asyncio.create_task(failover.post_incidents(dispatcher, rate, before_s + after_s))
                await asyncio.sleep(before_s)
                split = {node.name: sum(recorder_of(node, clip) for clip in clips) for node in running.nodes}
                victim = next(node for node in running.nodes if recorder_of(node, clips[0]))
                its_cameras = [c for c, clip in zip(camera_ids, clips, strict=True) if recorder_of(victim, clip)]
                runs_before = {c: {run_of(r["path"]) for r in await db.fetch(
                    "SELECT path FROM segments WHERE camera_id = $1", c)} for c in its_cameras}
                killed_at = victim.kill()
                watched = await asyncio.gather(*(watch_camera(db, c, killed_at, runs_before[c], 60)
                                                 for c in its_cameras))
                await load
                await asyncio.sleep(5.0)  # the last deliveries and acknowledgements land
                while failover.tasks:
                    await asyncio.gather(*list(failover.tasks))
                await asyncio.sleep(2.0)  # a few escalation polls for deadlines that have just fallen due
                figures = await count(failover, db, killed_at, victim)
        finally:
            for terminal in failover.terminals:
                if terminal.task is not None:
                    terminal.task.cancel()
            await asyncio.gather(*(t.client.close() for t in failover.terminals), return_exceptions=True)
    if own_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"terminals": terminals, "rate": rate, "cameras": cameras, "cameras_by_node": split,
            "victim_cameras": len(its_cameras),
            "camera_reclaim_s": round(max(r for r, _ in watched), 2),
            "camera_recording_s": round(max(r for _, r in watched), 2), **figures}


async def count(failover: Failover, db: Pool, killed_at: float, victim: Node) -> dict[str, Any]:
    cut_off = [t for t in failover.terminals if t.client.dropped]
    resumes = [next((w for w in t.client.welcomed_at if w > killed_at), float("inf")) - killed_at for t in cut_off]
    tickets = await db.fetch("SELECT t.id, t.subcentre_id, t.state, i.description FROM tickets t"
                                     " JOIN incidents i ON i.id = t.incident_id")
    by_subcentre: dict[int, list[Terminal]] = {}
    for terminal in failover.terminals:
        by_subcentre.setdefault(terminal.subcentre_id, []).append(terminal)
    lost = 0
    resumed_delays: list[float] = []
    for ticket in tickets:
        posted = failover.posted.get(ticket["description"])
        for terminal in by_subcentre.get(ticket["subcentre_id"], []):
            arrived = terminal.arrivals.get(ticket["id"])
            if arrived is None:
                lost += 1
            elif terminal in cut_off and posted is not None and killed_at <= posted <= killed_at + 5:
                resumed_delays.append(arrived - posted)
    states = {r["id"]: r["state"] for r in tickets}
    descriptions = [r["description"] for r in await db.fetch("SELECT description FROM incidents")]
    overdue = await db.fetchval("SELECT count(*) FROM deadlines WHERE fired_at IS NULL"
                                        " AND due_at < now() - interval '2 seconds'")
    fired_after = await db.fetchval(
        "SELECT count(*) FROM deadlines WHERE outcome = 'escalated' AND fired_at > now() - make_interval(secs => $1)",
        time.monotonic() - killed_at)
    return {
        "victim": victim.name, "terminals_cut_off": len(cut_off),
        "terminal_resume_s_p99": round(percentile(resumes, 99), 2) if resumes else None,
        "terminal_resume_s_max": round(max(resumes), 2) if resumes else None,
        "resumed_delivery_s_max": round(max(resumed_delays), 2) if resumed_delays else None,
        "tickets": len(tickets), "lost": lost,
        "duplicates": sum(t.client.repeats for t in failover.terminals),
        "acknowledged": len(failover.acknowledged),
        "acknowledged_lost": sum(1 for t in failover.acknowledged if states.get(t) in (None, "created", "delivered")),
        "escalations_after_kill": fired_after, "escalations_overdue": overdue,
        "posts": len(failover.posted), "resent_posts": failover.resent_posts,
        "failed_posts": len(failover.failed_posts),
        "duplicate_incidents": len(descriptions) - len(set(descriptions)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="incidents per second")
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--before", type=float, default=10.0, help="seconds of load before the kill")
    parser.add_argument("--after", type=float, default=20.0, help="seconds of load after it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(terminals=args.terminals, rate=args.rate, cameras=args.cameras,
                             before_s=args.before, after_s=args.after))
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
