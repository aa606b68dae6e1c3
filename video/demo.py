"""Simulated window cameras for the demo: ffmpeg draws each clip once — a service window with a
moving picture, a tone, and a clerk (a block at the desk) who leaves the seat for part of every
loop — and the camera reads it as a live file source, round and round."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from pathlib import Path

import av
import cv2
import numpy as np

from base.pg import Pool
from gis.coords import Location
from video.analysis.detectors import Roi, Thresholds
from video.cameras.spec import CameraSpec, OpeningHours, RegionOfInterest

log = logging.getLogger(__name__)

HALL = (111.2905, 30.7008)  # 宜昌市民中心 (approximate), in 西陵区
LOOP_S = 120
AWAY = (60, 90)  # seconds of each loop the clerk is away from the seat
SEAT = RegionOfInterest(0.35, 0.30, 0.30, 0.45)


def clip(path: Path, ffmpeg: str, window: int) -> None:
    """A 640x360, 25 fps H.264 + AAC clip; the clerk is drawn inside SEAT except during AWAY."""
    away = f"between(t,{AWAY[0]},{AWAY[1]})"
    # A tiled wall and a counter give the picture edges (as a real hall has); a customer walks
    # past and a small clock runs in the corner, so the picture is never still.
    video = (f"color=c=0x2d3a45:size=640x360:rate=25,drawgrid=w=32:h=32:t=2:c=0x4a5d6e,"
             f"drawbox=x=0:y=230:w=640:h=130:color=0x6b4f35:t=fill,"  # the counter
             f"drawbox=x=232:y=118:w=176:h=140:color=0xd9b38c:t=fill:enable='not({away})',"  # the clerk
             f"drawbox=x=282:y=70:w=76:h=60:color=0xf1d2b0:t=fill:enable='not({away})'[hall];"  # the clerk's head
             f"color=c=0x3a6b99:size=40x60:rate=25[customer];"
             f"testsrc2=size=96x54:rate=25[clock];"
             f"[hall][customer]overlay=x='mod(t*{40 + 10 * window}\\,600)':y=290[walk];"
             f"[walk][clock]overlay=x=536:y=8")
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video,
                    "-f", "lavfi", "-i", f"sine=frequency={300 + 60 * window}", "-t", str(LOOP_S),
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p", "-b:v", "600k",
                    "-c:a", "aac", "-b:a", "48k", "-shortest", str(path)], check=True, timeout=300)


def cameras(media_dir: Path, ffmpeg: str, count: int) -> list[CameraSpec]:
    """The demo cameras, drawing any clip that is missing."""
    media_dir.mkdir(parents=True, exist_ok=True)
    missing = [w for w in range(1, count + 1) if not (media_dir / f"demo-window-{w}.mp4").exists()]
    if missing:  # the first start: say what the wait is for
        log.info("first start: drawing %d demo window-camera clips (%d s each) with ffmpeg into %s; this takes"
                 " about %d s (longer on a busy machine) and happens once", len(missing), LOOP_S, media_dir,
                 10 * len(missing))
    specs = []
    for window in range(1, count + 1):
        path = media_dir / f"demo-window-{window}.mp4"
        if window in missing:
            started = time.monotonic()
            drawing = path.with_suffix(".drawing.mp4")  # renamed when whole: an interrupted start redraws it
            clip(drawing, ffmpeg, window)
            drawing.replace(path)
            log.info("demo clip %d of %d drawn in %.0f s", missing.index(window) + 1, len(missing),
                     time.monotonic() - started)
        department = HALL_DEPARTMENTS[(window - 1) % len(HALL_DEPARTMENTS)]
        specs.append(CameraSpec(code=f"demo-window-{window}", name=f"市民中心 {window}号窗口 · {department}",
                                department=department, window=f"{window}号窗口",
                                location=Location(HALL[0] + 0.0002 * window, HALL[1]), main_url=f"file://{path}",
                                roi=SEAT, opening_hours=ALWAYS_OPEN, thresholds=DEMO_THRESHOLDS))
    return specs


# The departments whose windows the demo cameras watch, in window order: those of the demo licensing
# hall's catalogue (efficiency/demo.py), so a case done at a window links to its camera's recording.
HALL_DEPARTMENTS = ("市场监管局", "自然资源和规划局", "公安局", "税务局", "人力资源和社会保障局", "卫生健康委",
                    "交通运输局", "住房和城乡建设局", "生态环境局")

# The demo hall never closes and its clerks may not leave for more than 20 s, so an absence alert
# opens (and clears) within every loop of the clip.
ALWAYS_OPEN = OpeningHours(days=[1, 2, 3, 4, 5, 6, 7], periods=["00:00-23:59"])
DEMO_THRESHOLDS = Thresholds(absence_limit_s=20)


def empty_seat(path: Path, tile_width: int) -> bytes:
    """The clip's empty seat (a picture from while the clerk is away), as the analysis sees it: grey,
    at tile size, cut to the seat; PNG. A supervisor would mark it on the wall instead."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int((AWAY[0] + 5) / stream.time_base), stream=stream)  # type: ignore[operator]
        frame = next(container.decode(stream))
        height = 2 * round(tile_width * frame.height / frame.width / 2)
        picture = frame.to_ndarray(width=tile_width, height=height, format="bgr24", interpolation="AREA")
    gray = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
    seat = Roi.of((SEAT.x, SEAT.y, SEAT.width, SEAT.height), tile_width, height).cut(np.asarray(gray, np.uint8))
    ok, png = cv2.imencode(".png", seat)
    assert ok
    return png.tobytes()


async def seed_empty_seats(pool: Pool, specs: list[CameraSpec], tile_width: int) -> None:
    """Give each demo camera its empty seat, unless it has one (marked or learned) already."""
    for spec in specs:
        camera_id = await pool.fetchval("SELECT c.id FROM cameras c WHERE c.code = $1 AND NOT EXISTS"
                                        " (SELECT 1 FROM camera_empty_seats s WHERE s.camera_id = c.id)", spec.code)
        if camera_id is not None:
            png = await asyncio.to_thread(empty_seat, Path(spec.main_url.removeprefix("file://")), tile_width)
            await pool.execute("INSERT INTO camera_empty_seats (camera_id, png, how) VALUES ($1, $2, 'demo')"
                               " ON CONFLICT DO NOTHING", camera_id, png)
