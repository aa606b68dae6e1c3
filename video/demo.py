"""Simulated window cameras for the demo: ffmpeg draws each clip once — a service window with a
moving picture, a tone, and a clerk (a block at the desk) who leaves the seat for part of every
loop — and the camera reads it as a live file source, round and round."""

from __future__ import annotations

import subprocess
from pathlib import Path

from video.cameras import CameraSpec, Location, RegionOfInterest

HALL = (111.2905, 30.7008)  # 宜昌市民中心 (approximate), in 西陵区
LOOP_S = 120
AWAY = (60, 90)  # seconds of each loop the clerk is away from the seat
SEAT = RegionOfInterest(0.35, 0.30, 0.30, 0.45)


def clip(path: Path, ffmpeg: str, window: int) -> None:
    """A 640x360, 25 fps H.264 + AAC clip; the clerk is drawn inside SEAT except during AWAY."""
    away = f"between(t,{AWAY[0]},{AWAY[1]})"
    video = (f"color=c=0x2d3a45:size=640x360:rate=25,"
             f"drawbox=x=0:y=230:w=640:h=130:color=0x6b4f35:t=fill,"  # the counter
             f"drawbox=x=232:y=118:w=176:h=140:color=0xd9b38c:t=fill:enable='not({away})',"  # the clerk
             f"drawbox=x=282:y=70:w=76:h=60:color=0xf1d2b0:t=fill:enable='not({away})',"  # the clerk's head
             f"drawbox=x='mod(t*{40 + 10 * window}\\,600)':y=290:w=40:h=60:color=0x3a6b99:t=fill")  # a customer
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video,
                    "-f", "lavfi", "-i", f"sine=frequency={300 + 60 * window}", "-t", str(LOOP_S),
                    "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p", "-b:v", "600k",
                    "-c:a", "aac", "-b:a", "48k", "-shortest", str(path)], check=True, timeout=300)


def cameras(media_dir: Path, ffmpeg: str, count: int) -> list[CameraSpec]:
    """The demo cameras, drawing any clip that is missing."""
    media_dir.mkdir(parents=True, exist_ok=True)
    specs = []
    for window in range(1, count + 1):
        path = media_dir / f"demo-window-{window}.mp4"
        if not path.exists():
            clip(path, ffmpeg, window)
        specs.append(CameraSpec(code=f"demo-window-{window}", name=f"市民中心 {window}号窗口",
                                department="行政服务中心", window=str(window),
                                location=Location(HALL[0] + 0.0002 * window, HALL[1]), main_url=f"file://{path}",
                                roi=SEAT))
    return specs
