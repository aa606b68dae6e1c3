"""Video benchmark: N window cameras recorded, analysed, shown on one wall and four focused views.

    python -m bench.video --cameras 64 --duration 60 --json

Encodes a 1080p 25 fps H.264 clip of about 4 Mbit/s with AAC sound once (a service window: the clerk
is in the seat, then leaves for good at LEAVES_S; the frame number is burned into the picture as
16 bars, and the sound clicks at each whole second), serves it on N mounts of a GStreamer RTSP server
with stream copy, starts `liandong serve` on the embedded PostgreSQL, registers the cameras, marks
their empty seats, connects one wall showing 16 of them and FOCUSED focused views, waits for steady
state (however long start-up takes), and measures over `duration` seconds:

- cpu_cores: Liandong's process tree (server, recorder ffmpegs, analysis workers), not PostgreSQL;
- per_camera_cpu_ratio: Liandong's CPU per camera over the floor measured in the same run on a
  sample of the same streams: a bare `ffmpeg -c copy` segmenter plus a bare keyframe-only decode;
- completeness: recorded seconds indexed over the window / (cameras × window);
- alert_latency_s: staff leaves → the wall receives the absence alert, minus the configured limit;
- tile_latency_ms: picture arrival at Liandong → tile received by the wall (p50, p99);
- source_sessions_per_camera: the most RTSP sessions any camera had open during the window, as
  the RTSP server counts them (the recorder, analysis, wall and focused views share one);
- pss_mb: Liandong's process tree, proportional set size (shared libraries counted once), and per
  camera; rss_mb beside it for comparison;
- focus_latency_ms: a frame leaving the camera (the mount's start + frame number / 25, the number
  read from the bars) → the fragment holding it received by a focused view's socket (p50, p99);
- screen_latency_ms (with --screen): a frame leaving the camera → the wall page in Chromium presenting
  it, read back off the screen (p50, p99; drift: the last minute's median minus the first's);
- audio_offset_ms: in what a focused view received, each whole second's click against the frame
  shown at that second (median and the largest, signed: positive is sound late).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import av
import numpy as np
import psutil

from base.accounts import Role, create_user
from base.database import open_pool
from bench.dispatch import ROOT, cpu_seconds, free_port, fresh_database, percentile, server_process
from bench.screen import Bars, focused_screen, summary
from video.live.fmp4 import opens_with_keyframe, read_init
from video.recording import ffmpeg

PASSWORD = "bench-password"
LEAVES_S = 40  # the clerk leaves the seat this long into the clip
EMPTY_UNTIL_S = 15  # the seat is empty at first: that picture is marked as the empty seat
ABSENCE_LIMIT_S = 5
SEGMENT_S = 10
FLOOR_SAMPLE = 4
WALL_TILES = 16
FOCUSED = 4  # focused views attached through the window
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


BARS = 16  # the frame number, bit i a white bar at x = BAR_X0 + i * BAR_STEP along the bottom
BAR_X0, BAR_STEP, BAR_W, BAR_Y, BAR_H = 24, 118, 100, 1020, 48
FPS = 25


def clip(path: Path, seconds: int) -> None:
    """The benchmark's window camera, encoded once (kept between runs)."""
    if path.exists():
        return
    clerk = f"between(t,{EMPTY_UNTIL_S},{LEAVES_S})"
    bars = "".join(f",drawbox=x={BAR_X0 + i * BAR_STEP}:y={BAR_Y}:w={BAR_W}:h={BAR_H}:color=white:t=fill"
                   f":enable='mod(floor(n/{2**i}),2)'" for i in range(BARS))
    video = ("color=c=0x2d3a45:size=1920x1080:rate=25,drawgrid=w=96:h=96:t=4:c=0x4a5d6e,"
             "drawbox=x=0:y=690:w=1920:h=390:color=0x6b4f35:t=fill,"
             f"drawbox=x=696:y=354:w=528:h=420:color=0xd9b38c:t=fill:enable='{clerk}',"
             f"drawbox=x=846:y=210:w=228:h=180:color=0xf1d2b0:t=fill:enable='{clerk}',"
             f"drawbox=x=0:y={BAR_Y - 8}:w=1920:h={BAR_H + 16}:color=black:t=fill{bars}[hall];"
             "testsrc2=size=480x270:rate=25[clock];[hall][clock]overlay=x=1400:y=24")
    click = "aevalsrc=exprs='if(lt(mod(t\\,1)\\,0.04)\\,0.5*sin(2*PI*1000*t)\\,0)':s=48000"
    partial = path.with_suffix(".partial.mp4")
    subprocess.run([ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video,
                    "-f", "lavfi", "-i", click, "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
                    "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M", "-g", str(FPS), "-keyint_min", str(FPS),
                    "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
                    "-movflags", "+faststart", str(partial)], check=True)
    partial.rename(path)


def frame_number(gray: Any) -> int:
    """The frame number burned into a full-size grey picture."""
    y = BAR_Y + BAR_H // 2
    return sum(1 << i for i in range(BARS) if gray[y, BAR_X0 + i * BAR_STEP + BAR_W // 2] > 128)


class Sources:
    """What the RTSP server reports: when each mount started playing, and its sessions over time."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.playing: dict[str, float] = {}
        self.sessions: dict[str, int] = {}
        self.most: dict[str, int] = {}  # the most sessions each mount had since `reset`
        self._process = process
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            words = line.decode().split()
            if words[:1] == ["playing"]:
                self.playing[words[1]] = float(words[2])
            elif words[:1] == ["sessions"]:
                path, count = words[1], int(words[2])
                self.sessions[path] = count
                self.most[path] = max(self.most.get(path, 0), count)

    def reset(self) -> None:
        self.most = dict(self.sessions)


@contextlib.contextmanager
def rtsp_sources(port: int, path: Path, count: int) -> Any:
    server = subprocess.Popen(["/usr/bin/python3", str(ROOT / "bench" / "rtsp_sources.py"), str(port), str(path),
                               str(count)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
        yield Sources(server)
    finally:
        server.kill()
        server.wait()


def tree(process: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [process, *process.children(recursive=True)]
    return []


def rss_mb(processes: list[psutil.Process]) -> float:
    return _memory_mb(processes, lambda p: int(p.memory_info().rss))


def pss_mb(processes: list[psutil.Process]) -> float:
    """Proportional set size: each shared page divided among the processes sharing it."""
    return _memory_mb(processes, lambda p: int(p.memory_full_info().pss))


def _memory_mb(processes: list[psutil.Process], measure: Callable[[psutil.Process], int]) -> float:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += measure(process)
    return total / 2**20


class FocusedView:
    """A focused view's socket: every message kept with the time it arrived."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received: list[tuple[float, bytes]] = []
        self.codecs: list[str] = []
        self.measuring = False
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                if self.measuring or not self.received or self.received[-1][1][4:8] != b"moof":
                    self.received.append((time.time(), message.data))
            elif message.type is aiohttp.WSMsgType.TEXT:
                self.codecs.append(json.loads(message.data).get("mime", ""))

    def stream(self) -> tuple[bytes, list[tuple[float, bytes]]]:
        """The last init segment before the window, and the fragments received in it."""
        init = b""
        fragments: list[tuple[float, bytes]] = []
        for at, data in self.received:
            if data[4:8] == b"ftyp":
                init, fragments = data, []
            elif data[4:8] == b"moof":
                fragments.append((at, data))
        return init, fragments


def busiest_keyframe_window(starts: list[float], window_s: float = 0.1) -> int:
    """The most cameras whose keyframes arrive within one `window_s` of the GOP (a keyframe a second,
    from each mount's start): the analysis decodes them together, and the tiles wait their turn."""
    phases = sorted(start % 1.0 for start in starts)
    wrapped = phases + [phase + 1.0 for phase in phases]
    return max((sum(1 for q in wrapped[i:i + len(phases)] if q < p + window_s) for i, p in enumerate(phases)),
               default=0)


def focus_latencies(view: FocusedView, started_at: float) -> list[float]:
    """Milliseconds from each keyframe leaving the camera to its fragment reaching the view."""
    init_data, fragments = view.stream()
    if not init_data:
        return []
    init = read_init(init_data)
    latencies = []
    for at, fragment in fragments:
        if not opens_with_keyframe(fragment, init):
            continue
        with av.open(io.BytesIO(init_data + fragment), "r") as container:
            frame = next(container.decode(container.streams.video[0]))
            n = frame_number(frame.to_ndarray(format="gray"))
        latencies.append((at - (started_at + n / FPS)) * 1000)
    return latencies


def audio_offsets(view: FocusedView) -> list[float]:
    """Milliseconds from the frame of each whole second (frame number a multiple of 25) to the click
    heard with it, in the stream the view received; positive: the sound is late."""
    init_data, fragments = view.stream()
    if not init_data or not fragments:
        return []
    seconds: dict[int, float] = {}  # source second → when the view shows its frame
    onsets: list[float] = []
    quiet = True
    with av.open(io.BytesIO(init_data + b"".join(f for _, f in fragments)), "r") as container:
        for packet in container.demux():
            if packet.stream.type == "video" and not packet.is_keyframe:
                continue
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame) and frame.time is not None:
                    n = frame_number(frame.to_ndarray(format="gray"))
                    if n % FPS == 0:
                        seconds[n // FPS] = float(frame.time)
                elif isinstance(frame, av.AudioFrame) and frame.time is not None:
                    loud = np.flatnonzero(np.abs(frame.to_ndarray()).max(axis=0) > 0.1)
                    if quiet and loud.size:
                        onsets.append(float(frame.time) + float(loud[0]) / frame.sample_rate)
                    quiet = loud.size == 0
    offsets: list[float] = []
    for shown in seconds.values():
        nearest = min(onsets, key=lambda onset: abs(onset - shown), default=None)
        if nearest is not None and abs(nearest - shown) < 0.5:
            offsets.append((nearest - shown) * 1000)
    return offsets


async def run(cameras: int, duration: float, on_screen: bool = False) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="liandong-video-bench-"))
    cache = ROOT / "var" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    length = int(duration) + 240  # start-up takes what it takes; the clip must outlast it
    source = cache / f"window-1080p-{length}s-seat{EMPTY_UNTIL_S}-{LEAVES_S}-bars-click.mp4"
    await asyncio.to_thread(clip, source, length)

    url = await fresh_database(workdir, "video_bench")
    async with open_pool(url, 1, 2) as pool, pool.acquire() as connection:
        await create_user(connection, "bench-supervisor", "bench", PASSWORD, Role.SUPERVISOR)

    rtsp_port, port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    edits = {"segment_s = 10": f"segment_s = {SEGMENT_S}",
             'recordings_dir = "var/recordings"': f'recordings_dir = "{workdir / "recordings"}"',
             'media_dir = "var/media"': f'media_dir = "{workdir / "media"}"'}
    with rtsp_sources(rtsp_port, source, cameras + FLOOR_SAMPLE) as sources:
        async with server_process(url, port, workdir, edits) as server, aiohttp.ClientSession() as http, \
                contextlib.AsyncExitStack() as screens:  # the browser, if any, closed whatever happens
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
                # Every camera's first pictures show the empty seat: the supervisor marks them. A camera
                # whose first picture came after the clerk sat down is marked too late, and left out of
                # the alert latency (`alerts` says how many were measured).
                while len(marked) < len(ids):
                    for n, camera_id in enumerate(ids):
                        if camera_id in marked:
                            continue
                        async with http.get(f"{base}/api/cameras/{camera_id}/tile", headers=headers) as tile:
                            if tile.status == 200:
                                await http.post(f"{base}/api/cameras/{camera_id}/empty-seat", headers=headers)
                                marked.add(camera_id)
                                if time.time() - sources.playing.get(f"/cam{n}", time.time()) > EMPTY_UNTIL_S - 1:
                                    late.add(camera_id)
                    await asyncio.sleep(0.2)
            late: set[int] = set()
            await asyncio.wait_for(mark_empty_seats(), 600)
            token = headers["Authorization"].split()[1]
            views = []
            for camera_id in ids[:FOCUSED]:
                ws = await http.ws_connect(base.replace("http", "ws") + "/ws/focus", max_msg_size=0)
                await ws.send_json({"type": "hello", "token": token, "camera": camera_id})
                views.append(FocusedView(ws))

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
            screen = None
            if on_screen:  # the supervisor's own view of the first camera, as a browser presents it
                screen = await screens.enter_async_context(focused_screen(
                    base, "bench-supervisor", PASSWORD, ids[0], Bars(BAR_Y + BAR_H // 2, BAR_X0, BAR_STEP, BAR_W,
                                                                      BARS, FPS)))
            await asyncio.sleep(5)  # everything connected and steady

            floor = [psutil.Process(p.pid) for p in floor_processes]
            liandong = tree(server)
            cpu0, floor0, t0 = cpu_seconds(liandong), cpu_seconds(floor), time.monotonic()
            parts0 = {name: cpu_seconds(group) for name, group in _parts(server, liandong).items()}
            measuring = True
            for view in views:
                view.measuring = True
            sources.reset()
            window_start = datetime.now(UTC)
            if screen:
                await screen.start()
            await asyncio.sleep(duration)
            on_screen_ms = screen.latencies_ms(await screen.samples(), sources.playing["/cam0"]) if screen else []
            await screens.aclose()
            liandong = tree(server)
            cpu1, floor1, elapsed = cpu_seconds(liandong), cpu_seconds(floor), time.monotonic() - t0
            parts = {name: round((cpu_seconds(group) - parts0[name]) / elapsed, 3)
                     for name, group in _parts(server, liandong).items()}
            window_end = datetime.now(UTC)
            for view in views:
                view.measuring = False
            sessions = [sources.most.get(f"/cam{n}", 0) for n in range(cameras)]
            ingests = [p for p in liandong if p.name().startswith("ffmpeg")]
            others = [p for p in liandong[1:] if not p.name().startswith("ffmpeg")]
            memory = {"total": rss_mb(liandong), "server": rss_mb([server]), "recorders": rss_mb(ingests),
                      "analysis": rss_mb(others)}
            proportional = {"total": pss_mb(liandong), "server": pss_mb([server]), "ingest_ffmpeg": pss_mb(ingests),
                            "analysis": pss_mb(others)}
            for process in floor_processes:
                process.kill()
                process.wait()
            await asyncio.sleep(SEGMENT_S + 2)  # the last segments of the window are indexed
            reader.cancel()
            await wall.close()
            for view in views:
                view.task.cancel()
                await view.ws.close()

    recorded = await _recorded(url, window_start, window_end)
    stream_start = {camera_id: sources.playing[f"/cam{n}"] for n, camera_id in enumerate(ids)
                    if f"/cam{n}" in sources.playing}
    focus = [ms for n, view in enumerate(views) for ms in focus_latencies(view, sources.playing[f"/cam{n}"])]
    offsets = audio_offsets(views[0]) if views else []
    liandong_cores = (cpu1 - cpu0) / elapsed
    floor_per_camera = (floor1 - floor0) / elapsed / FLOOR_SAMPLE
    # A mount plays the clip from its first client on (the RTSP server says when): the clerk leaves
    # LEAVES_S later. The seat is also empty before the clerk first sits down: only an alert after the leaving counts.
    # A run too short for the clerk to leave has no latency (null), rather than a made-up one.
    latencies = []
    for camera_id, leaves_at in ((c, at + LEAVES_S) for c, at in stream_start.items() if c not in late):
        after = [seen for seen in alerts_seen.get(camera_id, []) if seen >= leaves_at]
        if after:
            latencies.append(min(after) - leaves_at - ABSENCE_LIMIT_S)
    return {
        "cameras": cameras, "duration_s": round(elapsed, 1), "source": "1080p25 H.264 ~4 Mbit/s over RTSP (TCP)",
        "cpu_cores": round(liandong_cores, 3),
        "per_camera_cpu_ratio": round(liandong_cores / cameras / floor_per_camera, 3) if floor_per_camera else None,
        "cpu_cores_by_part": parts,
        "floor_cores_per_camera": round(floor_per_camera, 4),
        "completeness": round(recorded / (cameras * (window_end - window_start).total_seconds()), 4),
        "alert_latency_s": {"p50": round(percentile(latencies, 50), 2), "max": round(max(latencies), 2),
                            "alerts": len(latencies)} if latencies else None,
        "tile_latency_ms": {"p50": round(percentile(tile_latencies, 50), 1),
                            "p99": round(percentile(tile_latencies, 99), 1), "tiles": len(tile_latencies)},
        "keyframes_in_busiest_100ms": busiest_keyframe_window(list(stream_start.values())),
        "source_sessions_per_camera": max(sessions) if sessions else None,
        "cameras_with_more_than_one_session": sum(1 for count in sessions if count > 1),
        "focused_views": len(views),
        "focus_latency_ms": {"p50": round(percentile(focus, 50)), "p99": round(percentile(focus, 99)),
                             "keyframes": len(focus)} if focus else None,
        "screen_latency_ms": summary(on_screen_ms),
        "audio_offset_ms": {"median": round(percentile(offsets, 50)),
                            "largest": round(_largest(offsets)),
                            "seconds": len(offsets)} if offsets else None,
        "pss_mb": round(proportional["total"], 1),
        "pss_mb_per_camera": round(proportional["total"] / cameras, 2),
        "pss_mb_by_part": {k: round(v, 1) for k, v in proportional.items() if k != "total"},
        "rss_mb": round(memory["total"], 1),
        "rss_mb_by_part": {k: round(v, 1) for k, v in memory.items() if k != "total"},
        "late_marked_cameras": len(late),
        "machine_cores": psutil.cpu_count(),
    }


def _parts(server: psutil.Process, liandong: list[psutil.Process]) -> dict[str, list[psutil.Process]]:
    """Liandong's processes by role: the server, the ingest ffmpegs, the analysis workers."""
    ingests = [p for p in liandong if p.name().startswith("ffmpeg")]
    return {"server": [server], "ingest_ffmpeg": ingests,
            "analysis": [p for p in liandong[1:] if p not in ingests]}


def _largest(offsets: list[float]) -> float:
    """The offset farthest from zero, with its sign."""
    return max(offsets, key=abs)


async def _recorded(url: str, since: datetime, until: datetime) -> float:
    """Seconds recorded within the window, all cameras."""
    connection = await asyncpg.connect(url)
    try:
        seconds: float = await connection.fetchval(
            "SELECT coalesce(sum(extract(epoch FROM least(ended_at, $2) - greatest(started_at, $1))), 0)::float8"
            " FROM segments WHERE ended_at > $1 AND started_at < $2", since, until)
        return seconds
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--screen", action="store_true",
                        help="also focus the first camera on the wall page in Chromium; read its frames off the screen")
    args = parser.parse_args()
    result = asyncio.run(run(args.cameras, args.duration, args.screen))
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
