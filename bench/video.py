"""Video benchmark: N window cameras recorded, analysed and shown on one wall.

    python -m bench.video --cameras 64 --duration 60 --json

Encodes a 1080p 25 fps H.264 clip of about 4 Mbit/s once (a service window: the clerk is in the
seat, then leaves for good at LEAVES_S), serves it on N mounts of a GStreamer RTSP server with
stream copy, starts `liandong serve` on the embedded PostgreSQL, registers the cameras, marks their
empty seats, connects one wall showing 16 of them, and measures over `duration` seconds:

- cpu_cores: Liandong's process tree (server, recorder ffmpegs, analysis workers), not PostgreSQL;
- per_camera_cpu_ratio: Liandong's CPU per camera over the floor measured in the same run on a
  sample of the same streams: a bare `ffmpeg -c copy` segmenter plus a bare keyframe-only decode;
- completeness: recorded seconds indexed over the window / (cameras × window);
- alert_latency_s: staff leaves → the wall receives the absence alert, minus the configured limit;
- tile_latency_ms: picture arrival at Liandong → tile received by the wall (p50, p99);
- rss_mb: Liandong's process tree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil

from base.accounts import Role, create_user
from base.database import open_pool
from bench.dispatch import ROOT, cpu_seconds, free_port, fresh_database, percentile, server_process
from video.recording import ffmpeg

PASSWORD = "bench-password"
LEAVES_S = 40  # the clerk leaves the seat this long into the clip
EMPTY_UNTIL_S = 15  # the seat is empty at first: that picture is marked as the empty seat
ABSENCE_LIMIT_S = 5
SEGMENT_S = 10
FLOOR_SAMPLE = 4
WALL_TILES = 16
SEAT = {"x": 0.35, "y": 0.30, "width": 0.30, "height": 0.45}
FLOOR_DECODE = """
import sys, av
container = av.open(sys.argv[1], options={"rtsp_transport": "tcp"})
stream = container.streams.video[0]
stream.codec_context.skip_frame = "NONKEY"
stream.codec_context.thread_count = 1
for packet in container.demux(stream):
    if packet.is_keyframe:
        for frame in packet.decode():
            frame.to_ndarray(width=384, height=216, format="bgr24")
"""


def clip(path: Path, seconds: int) -> None:
    """The benchmark's window camera, encoded once (kept between runs)."""
    if path.exists():
        return
    clerk = f"between(t,{EMPTY_UNTIL_S},{LEAVES_S})"
    video = ("color=c=0x2d3a45:size=1920x1080:rate=25,drawgrid=w=96:h=96:t=4:c=0x4a5d6e,"
             "drawbox=x=0:y=690:w=1920:h=390:color=0x6b4f35:t=fill,"
             f"drawbox=x=696:y=354:w=528:h=420:color=0xd9b38c:t=fill:enable='{clerk}',"
             f"drawbox=x=846:y=210:w=228:h=180:color=0xf1d2b0:t=fill:enable='{clerk}'[hall];"
             "testsrc2=size=480x270:rate=25[clock];[hall][clock]overlay=x=1400:y=24")
    subprocess.run([ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video,
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-b:v", "4M", "-maxrate", "4M",
                    "-bufsize", "8M", "-g", "25", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)],
                   check=True)


@contextlib.contextmanager
def rtsp_sources(port: int, path: Path, count: int) -> Any:
    server = subprocess.Popen(["/usr/bin/python3", str(ROOT / "bench" / "rtsp_sources.py"), str(port), str(path),
                               str(count)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
        yield
    finally:
        server.kill()
        server.wait()


def tree(process: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return []


def rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total / 2**20


async def run(cameras: int, duration: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="liandong-video-bench-"))
    cache = ROOT / "var" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    source = cache / f"window-1080p-{int(duration) + 90}s-seat{EMPTY_UNTIL_S}-{LEAVES_S}.mp4"
    await asyncio.to_thread(clip, source, int(duration) + 90)

    url = await fresh_database(workdir, "video_bench")
    async with open_pool(url, 1, 2) as pool, pool.acquire() as connection:
        await create_user(connection, "bench-supervisor", "bench", PASSWORD, Role.SUPERVISOR)

    rtsp_port, port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    edits = {"segment_s = 10": f"segment_s = {SEGMENT_S}",
             'recordings_dir = "var/recordings"': f'recordings_dir = "{workdir / "recordings"}"',
             'media_dir = "var/media"': f'media_dir = "{workdir / "media"}"'}
    with rtsp_sources(rtsp_port, source, cameras + FLOOR_SAMPLE):
        async with server_process(url, port, workdir, edits) as server, aiohttp.ClientSession() as http:
            async with http.post(base + "/api/login", json={"username": "bench-supervisor",
                                                            "password": PASSWORD}) as response:
                headers = {"Authorization": f"Bearer {(await response.json())['token']}"}
            ids = []
            for n in range(cameras):
                async with http.post(base + "/api/cameras", headers=headers, json={
                        "code": f"bench-{n}", "name": f"窗口 {n}", "department": f"部门 {n % 8}", "window": str(n),
                        "location": {"lon": 111.29, "lat": 30.70}, "main_url": f"rtsp://127.0.0.1:{rtsp_port}/cam{n}",
                        "roi": SEAT, "opening_hours": {"days": [1, 2, 3, 4, 5, 6, 7], "periods": ["00:00-23:59"]},
                        "thresholds": {"absence_limit_s": ABSENCE_LIMIT_S}}) as response:
                    assert response.status == 201, await response.text()
                    ids.append((await response.json())["id"])
            wall = await http.ws_connect(base.replace("http", "ws") + "/ws/wall")
            await wall.send_json({"type": "hello", "token": headers["Authorization"].split()[1]})
            await wall.receive_json()
            await wall.send_json({"type": "show", "cameras": ids[:WALL_TILES]})
            measuring = False
            tile_latencies: list[float] = []
            alerts_seen: dict[int, list[float]] = {}  # camera → when each new absence alert reached the wall
            alert_ids: set[int] = set()
            marked: set[int] = set()

            async def read_wall() -> None:
                async for message in wall:
                    now = time.time()
                    if message.type is aiohttp.WSMsgType.BINARY:
                        _camera, at_ms = struct.unpack(">Id", message.data[:12])
                        if measuring:
                            tile_latencies.append(now * 1000 - at_ms)
                    elif message.type is aiohttp.WSMsgType.TEXT:
                        for alert in json.loads(message.data).get("alerts", []):
                            if alert["kind"] == "absent" and alert["id"] not in alert_ids:
                                alert_ids.add(alert["id"])
                                alerts_seen.setdefault(alert["camera_id"], []).append(now)
            reader = asyncio.create_task(read_wall())

            async def mark_empty_seats() -> None:
                # Every camera's first pictures show the empty seat: the supervisor marks them.
                while len(marked) < len(ids):
                    for camera_id in ids:
                        if camera_id in marked:
                            continue
                        async with http.get(f"{base}/api/cameras/{camera_id}/tile", headers=headers) as tile:
                            if tile.status == 200:
                                await http.post(f"{base}/api/cameras/{camera_id}/empty-seat", headers=headers)
                                marked.add(camera_id)
                    await asyncio.sleep(0.2)
            await asyncio.wait_for(mark_empty_seats(), EMPTY_UNTIL_S - 2)

            # The floor, on a sample of the same kind of streams, running alongside.
            floor_processes = []
            for n in range(cameras, cameras + FLOOR_SAMPLE):
                stream = f"rtsp://127.0.0.1:{rtsp_port}/cam{n}"
                (workdir / f"floor{n}").mkdir()
                floor_processes.append(subprocess.Popen(
                    [ffmpeg.binary(), *ffmpeg.record_args(stream, SEGMENT_S, "floor")], cwd=workdir / f"floor{n}",
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env={**os.environ, "TZ": "UTC"}))
                floor_processes.append(subprocess.Popen([sys.executable, "-c", FLOOR_DECODE, stream]))
            await asyncio.sleep(5)  # everything connected and steady

            floor = [psutil.Process(p.pid) for p in floor_processes]
            liandong = tree(server)
            cpu0, floor0, t0 = cpu_seconds(liandong), cpu_seconds(floor), time.monotonic()
            measuring = True
            window_start = datetime.now(UTC)
            await asyncio.sleep(duration)
            liandong = tree(server)
            cpu1, floor1, elapsed = cpu_seconds(liandong), cpu_seconds(floor), time.monotonic() - t0
            window_end = datetime.now(UTC)
            memory = {"total": rss_mb(liandong), "server": rss_mb([server]),
                      "recorders": rss_mb([p for p in liandong if p.name().startswith("ffmpeg")]),
                      "analysis": rss_mb([p for p in liandong[1:] if not p.name().startswith("ffmpeg")])}
            for process in floor_processes:
                process.kill()
                process.wait()
            await asyncio.sleep(SEGMENT_S + 2)  # the last segments of the window are indexed
            reader.cancel()
            await wall.close()

    recorded, stream_start = await _recorded(url, window_start, window_end)
    liandong_cores = (cpu1 - cpu0) / elapsed
    floor_per_camera = (floor1 - floor0) / elapsed / FLOOR_SAMPLE
    # A mount plays the clip from its first client on, which is when the camera's first segment
    # opened (its recorder is that client or joined within a pass): the clerk leaves LEAVES_S later.
    # The seat is also empty before the clerk first sits down: only an alert after the leaving counts.
    # A run too short for the clerk to leave has no latency (null), rather than a made-up one.
    latencies = []
    for camera_id, leaves_at in ((c, at + LEAVES_S) for c, at in stream_start.items()):
        after = [seen for seen in alerts_seen.get(camera_id, []) if seen >= leaves_at]
        if after:
            latencies.append(min(after) - leaves_at - ABSENCE_LIMIT_S)
    return {
        "cameras": cameras, "duration_s": round(elapsed, 1), "source": "1080p25 H.264 ~4 Mbit/s over RTSP (TCP)",
        "cpu_cores": round(liandong_cores, 3),
        "per_camera_cpu_ratio": round(liandong_cores / cameras / floor_per_camera, 3) if floor_per_camera else None,
        "floor_cores_per_camera": round(floor_per_camera, 4),
        "completeness": round(recorded / (cameras * (window_end - window_start).total_seconds()), 4),
        "alert_latency_s": {"p50": round(percentile(latencies, 50), 2), "max": round(max(latencies), 2),
                            "alerts": len(latencies)} if latencies else None,
        "tile_latency_ms": {"p50": round(percentile(tile_latencies, 50), 1),
                            "p99": round(percentile(tile_latencies, 99), 1), "tiles": len(tile_latencies)},
        "rss_mb": round(memory["total"], 1),
        "rss_mb_by_part": {k: round(v, 1) for k, v in memory.items() if k != "total"},
        "machine_cores": psutil.cpu_count(),
    }


async def _recorded(url: str, since: datetime, until: datetime) -> tuple[float, dict[int, float]]:
    """Seconds recorded within the window, all cameras; and when each camera's stream began."""
    connection = await asyncpg.connect(url)
    try:
        seconds: float = await connection.fetchval(
            "SELECT coalesce(sum(extract(epoch FROM least(ended_at, $2) - greatest(started_at, $1))), 0)::float8"
            " FROM segments WHERE ended_at > $1 AND started_at < $2", since, until)
        starts = await connection.fetch("SELECT camera_id, min(started_at) AS at FROM segments GROUP BY 1")
        return seconds, {r["camera_id"]: r["at"].timestamp() for r in starts}
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args()
    result = asyncio.run(run(args.cameras, args.duration))
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
