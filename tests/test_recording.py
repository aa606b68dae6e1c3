"""Full-time recording against real sources: an ffmpeg-made file, and a GStreamer RTSP server that
is killed and restored. Segments are checked by opening them (PyAV, the same libraries ffprobe uses)."""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import av
import pytest
from aiohttp.test_utils import TestServer

from command.app import build_app
from command.config import DEFAULT_PATH, load
from tests.conftest import ROOT, free_port
from tests.helpers import Liandong
from video import ffmpeg

SEGMENT_S = 2
HALL = {"lon": 111.2905, "lat": 30.7008}


@pytest.fixture
async def recording(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Liandong, Path]]:
    """The server recording in 2-second segments, with its media folder in the test's own folder."""
    media = tmp_path / "media"
    media.mkdir()
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    text = text.replace('facilities = "gis/data/', f'facilities = "{DEFAULT_PATH.parent}/gis/data/')
    text = text.replace('media_dir = "var/media"', f'media_dir = "{media}"')
    text = text.replace('recordings_dir = "var/recordings"', f'recordings_dir = "{tmp_path / "recordings"}"')
    text = text.replace("segment_s = 10", f"segment_s = {SEGMENT_S}")
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    config = load(tmp_path / "config.toml", environ={"LIANDONG_DATABASE_URL": database_url})
    server = TestServer(build_app(config), host="127.0.0.1")
    await server.start_server()
    async with Liandong(str(server.make_url("/")), server.app) as client:
        yield client, media
    await server.close()


def make_clip(path: Path, seconds: int = 6) -> None:
    subprocess.run([ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True, timeout=60)


@pytest.fixture
def rtsp_port() -> Iterator[int]:
    yield free_port()


def start_rtsp(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(["/usr/bin/python3", str(ROOT / "tests" / "rtsp_server.py"), str(port), "cam"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("the GStreamer RTSP server did not start")


async def register(liandong: Liandong, code: str, url: str) -> int:
    status, body = await liandong.call("POST", "/api/cameras", {
        "code": code, "name": f"{code} 窗口", "department": "行政服务中心", "window": "1", "location": HALL,
        "main_url": url}, as_user="supervisor")
    assert status == 201, body
    camera_id: int = body["id"]
    return camera_id


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


async def wait_until(check: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.25)
    pytest.fail(f"not reached within {seconds} s")


def probe(path: str) -> tuple[list[str], float]:
    with av.open(path) as container:
        return [s.codec_context.name for s in container.streams], float(container.duration or 0) / 1e6


async def test_a_file_camera_is_recorded_in_playable_contiguous_segments_with_its_audio(
        recording: tuple[Liandong, Path], database_url: str) -> None:
    liandong, media = recording
    make_clip(media / "window.mp4")
    camera_id = await register(liandong, "file-window", f"file://{media / 'window.mp4'}")
    segments = await wait_until(lambda: _segments(database_url, camera_id, 3), 30)
    for segment in segments:
        codecs, duration = probe(segment["path"])
        assert codecs == ["h264", "aac"]  # copied, not re-encoded, and the audio kept
        assert abs(duration - SEGMENT_S) < 0.5
        assert segment["bytes"] > 10_000
    for before, after in itertools.pairwise(segments):
        assert abs((after["started_at"] - before["ended_at"]).total_seconds()) < 0.2  # no hole between them


async def _segments(database_url: str, camera_id: int, at_least: int) -> list[asyncpg.Record] | None:
    rows = await query(database_url, "SELECT * FROM segments WHERE camera_id = $1 ORDER BY started_at", camera_id)
    return rows if len(rows) >= at_least else None


async def test_an_rtsp_camera_that_goes_down_leaves_a_recorded_gap_and_recording_resumes(
        recording: tuple[Liandong, Path], database_url: str, rtsp_port: int) -> None:
    liandong, _ = recording
    server = start_rtsp(rtsp_port)
    try:
        camera_id = await register(liandong, "rtsp-window", f"rtsp://viewer:pw-9876@127.0.0.1:{rtsp_port}/cam")
        await wait_until(lambda: _segments(database_url, camera_id, 2), 30)
    finally:
        server.kill()
        server.wait()
    gaps = await wait_until(lambda: _gaps(database_url, camera_id), 30)
    assert gaps[0]["ended_at"] is None and "pw-9876" not in gaps[0]["reason"]
    await asyncio.sleep(2)
    server = start_rtsp(rtsp_port)
    try:
        closed = await wait_until(lambda: _closed_gaps(database_url, camera_id), 60)
        gap = closed[0]
        assert gap["ended_at"] > gap["started_at"]
        resumed = await wait_until(lambda: _segments_after(database_url, camera_id, gap["ended_at"]), 30)
        codecs, _ = probe(resumed[0]["path"])
        assert codecs[0] == "h264"
    finally:
        server.kill()
        server.wait()


async def _gaps(database_url: str, camera_id: int) -> list[asyncpg.Record] | None:
    return await query(database_url, "SELECT * FROM recording_gaps WHERE camera_id = $1", camera_id) or None


async def _closed_gaps(database_url: str, camera_id: int) -> list[asyncpg.Record] | None:
    return await query(database_url, "SELECT * FROM recording_gaps WHERE camera_id = $1 AND ended_at IS NOT NULL",
                       camera_id) or None


async def _segments_after(database_url: str, camera_id: int, moment: Any) -> list[asyncpg.Record] | None:
    return await query(database_url, "SELECT * FROM segments WHERE camera_id = $1 AND started_at >= $2",
                       camera_id, moment) or None


async def test_an_unreachable_camera_and_one_that_is_no_stream_are_recorded_as_gaps_with_the_reason(
        recording: tuple[Liandong, Path], database_url: str) -> None:
    liandong, _ = recording
    closed_port = free_port()
    unreachable = await register(liandong, "unreachable", f"rtsp://viewer:pw-1234@127.0.0.1:{closed_port}/cam")
    not_a_stream = await register(liandong, "web-page", f"{liandong.base_url}/console")  # HTML, not MJPEG
    for camera_id in (unreachable, not_a_stream):
        (gap,) = await wait_until(lambda c=camera_id: _gaps(database_url, c), 30)
        assert gap["ended_at"] is None and gap["reason"].startswith("ffmpeg exited")
        assert "pw-1234" not in gap["reason"]
    assert not await query(database_url, "SELECT 1 FROM segments WHERE camera_id = ANY($1::int[])",
                           [unreachable, not_a_stream])
