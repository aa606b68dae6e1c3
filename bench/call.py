"""Three-way call benchmark: N concurrent calls through the server, three aiortc parties each.

    python -m bench.call --calls 10 --duration 30 --json

Starts the embedded PostgreSQL and one `liandong serve` process on a fresh database, records one
incident per call, opens its call, and joins its dispatcher, a ticketed sub-centre and the caller
(by the link's token) as aiortc parties in this process, each speaking its own tone in 200 ms bursts
every 600 ms. Each party times the others' bursts from the moment the speaker handed the burst's
first frame to its encoder to the moment the burst's tone rose in what it received.

The floor, measured in the same run: two of the same parties connected directly to each other (no
server between), timed the same way — what a call through any server adds to.

Prints: calls; mouth_to_ear_ms p50/p99 and their ratio to the floor's; lost_audio_ratio (bursts a
party should have heard and did not); server_cpu_cores and server CPU ms per call-second; the
parties' own CPU (they share the machine); recorded_s / call_s for every call; the server's RSS and
PSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec
import psutil

from bench.dispatch import PASSWORD, cpu_seconds, fresh_database, percentile, prepare_database, server_process
from bench.dispatch import free_port as port
from bench.video import pss_mb, rss_mb
from calls.client import Party, Speech

TONES = (500.0, 1100.0, 1700.0)  # dispatcher, sub-centre, caller
BURST_S, PERIOD_S = 0.2, 0.6
_SETTLE_S = 3.0  # connections settle before bursts are counted


def speaker(hz: float) -> Party:
    return Party(Speech(hz, BURST_S, PERIOD_S), [f for f in TONES if f != hz])


def burst_figures(parties: list[Party], since: float, until: float) -> tuple[list[float], int, int]:
    """Mouth-to-ear delays (s) of bursts started in [since, until), and how many were due and heard."""
    delays: list[float] = []
    due = heard = 0
    for listener in parties:
        for talker in parties:
            if talker is listener:
                continue
            starts = [s for s in talker.speech.started if since <= s < until]
            onsets = listener.ear.onsets.get(talker.speech.hz, [])
            for start in starts:
                due += 1
                caught = [o - start for o in onsets if start <= o < start + PERIOD_S]
                if caught:
                    heard += 1
                    delays.append(caught[0])
    return delays, due, heard


async def floor(seconds: float) -> list[float]:
    """Two parties straight to each other on loopback."""
    a, b = speaker(TONES[0]), speaker(TONES[1])
    try:
        await a.join(b.answer)
        await asyncio.wait_for(asyncio.gather(a.connected.wait(), b.connected.wait()), 15)
        start = time.monotonic() + _SETTLE_S
        await asyncio.sleep(_SETTLE_S + seconds)
        delays, _, _ = burst_figures([a, b], start, time.monotonic() - PERIOD_S)
        return delays
    finally:
        await a.close()
        await b.close()


async def run(calls: int, duration: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="liandong-bench-call-"))
    url = await fresh_database(workdir, "bench")
    codes = await prepare_database(url, 4)
    floor_delays = await floor(min(duration, 10.0))
    listen = port()
    base = f"http://127.0.0.1:{listen}"
    edits = {'recordings_dir = "var/calls"': f'recordings_dir = "{workdir / "calls"}"'}
    async with server_process(url, listen, workdir, edits) as server, aiohttp.ClientSession() as http:
        async def post(path: str, body: Any, token: str | None = None) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.post(base + path, json=body, headers=headers) as response:
                answer = await response.json()
                if response.status >= 300:
                    raise RuntimeError(f"{path}: {response.status} {answer}")
                return answer

        tokens = {name: (await post("/api/login", {"username": name, "password": PASSWORD}))["token"]
                  for name in ("bench-dispatcher", *codes)}
        dispatcher = tokens["bench-dispatcher"]
        by_id = {}
        async with http.get(base + "/api/subcentres", headers={"Authorization": f"Bearer {dispatcher}"}) as r:
            by_id = {f["id"]: f["properties"]["code"] for f in (await r.json())["features"]}

        rooms: list[tuple[int, list[Party]]] = []
        for n in range(calls):
            incident = await post("/api/incidents", {"type_code": "201", "severity": 3,
                                                     "location": {"lon": 111.2 + 0.01 * n, "lat": 30.7}}, dispatcher)
            station = next(by_id[t["subcentre_id"]] for t in incident["tickets"] if by_id[t["subcentre_id"]] in tokens)
            opened = await post(f"/api/incidents/{incident['id']}/calls", {}, dispatcher)
            call_id, token = opened["call"]["id"], urlsplit(opened["caller_link"]).fragment
            parties = [speaker(hz) for hz in TONES]

            def join(path: str, who: str | None, **fields: str) -> Any:
                async def signal(sdp: str) -> str:
                    return str((await post(path, {"sdp": sdp, **fields}, tokens[who] if who else None))["sdp"])
                return signal
            await parties[0].join(join(f"/api/calls/{call_id}/join", "bench-dispatcher"))
            await parties[1].join(join(f"/api/calls/{call_id}/join", station))
            await parties[2].join(join("/api/caller/join", None, token=token))
            rooms.append((call_id, parties))
        everyone = [p for _, parties in rooms for p in parties]
        await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in everyone)), 30)
        await asyncio.sleep(_SETTLE_S)

        me = psutil.Process()
        cpu_server, cpu_parties, started = cpu_seconds([server]), cpu_seconds([me]), time.monotonic()
        await asyncio.sleep(duration)
        ended = time.monotonic()
        server_cores = (cpu_seconds([server]) - cpu_server) / (ended - started)
        party_cores = (cpu_seconds([me]) - cpu_parties) / (ended - started)
        memory = {"rss_mb": rss_mb([server]), "pss_mb": pss_mb([server])}

        delays: list[float] = []
        due = heard = 0
        for _, parties in rooms:
            d, n_due, n_heard = burst_figures(parties, started, ended - PERIOD_S)
            delays += d
            due += n_due
            heard += n_heard
        recorded = []
        for call_id, parties in rooms:
            stored = await post(f"/api/calls/{call_id}/hangup", {}, dispatcher)
            for party in parties:
                await party.close()
            length = (datetime.fromisoformat(stored["ended_at"]) - datetime.fromisoformat(stored["opened_at"]))
            recorded.append({"call": call_id, "recorded_s": stored["recorded_s"],
                             "call_s": round(length.total_seconds(), 2)})

    floor_p50, floor_p99 = percentile(floor_delays, 50) * 1000, percentile(floor_delays, 99) * 1000
    p50, p99 = percentile(delays, 50) * 1000, percentile(delays, 99) * 1000
    return {
        "calls": calls, "duration_s": duration,
        "mouth_to_ear_ms": {"p50": p50, "p99": p99, "max": max(delays, default=float("nan")) * 1000,
                            "samples": len(delays)},
        "floor_mouth_to_ear_ms": {"p50": floor_p50, "p99": floor_p99, "samples": len(floor_delays)},
        "ratio_to_floor": {"p50": p50 / floor_p50 if floor_p50 else None,
                           "p99": p99 / floor_p99 if floor_p99 else None},
        "lost_audio_ratio": 1 - heard / due if due else None,
        "server_cpu_cores": server_cores,
        "server_cpu_ms_per_call_s": server_cores * 1000 / calls,
        "parties_cpu_cores": party_cores,
        "recorded_s_per_call_s": min(r["recorded_s"] / r["call_s"] for r in recorded),
        "recordings": recorded,
        **memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of talk measured")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args()
    result = asyncio.run(run(args.calls, args.duration))
    if args.json:
        print(msgspec.json.encode(result).decode())
    else:
        for key, value in result.items():
            print(f"{key:<24}  {value}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
