"""Full-time recording against real sources: an ffmpeg-made file, and a GStreamer RTSP server that
is killed and restored. Segments are checked by opening them (PyAV, the same libraries ffprobe uses)."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import av
import pytest

from tests.conftest import ROOT, free_port, server_with_media
from tests.helpers import Liandong
from video.recording import ffmpeg
from video.recording.mp4file import unreadable
from video.recording.retention import Policy, Retention

SEGMENT_S = 2
HALL = {"lon": 111.2905, "lat": 30.7008}


@pytest.fixture
async def recording(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Liandong, Path]]:
    """The server recording in 2-second segments, with its media folder in the test's own folder."""
    async with server_with_media(database_url, tmp_path, {"segment_s = 10": f"segment_s = {SEGMENT_S}"}) as server:
        yield server


def make_clip(path: Path, seconds: int = 6) -> None:
    subprocess.run([ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(path)], check=True, timeout=60)


@pytest.fixture
def rtsp_port() -> Iterator[int]:
    yield free_port()


def start_rtsp(port: int, *options: str) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(["/usr/bin/python3", str(ROOT / "tests" / "rtsp_server.py"), str(port), *options, "cam"],
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


def exists(path: str) -> bool:
    return Path(path).exists()


def size(path: str) -> int:
    return Path(path).stat().st_size


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
        assert segment["bytes"] == size(segment["path"])  # indexed once ffmpeg finished it, not before
    for before, after in itertools.pairwise(segments):
        assert abs((after["started_at"] - before["ended_at"]).total_seconds()) < 0.2  # no hole between them


async def test_a_camera_with_g711_audio_is_recorded_with_its_sound_as_aac(
        recording: tuple[Liandong, Path], database_url: str) -> None:
    """PCMA (G.711 A-law, common on Chinese cameras) has no place in MP4: the video is still copied,
    the sound is recorded as AAC rather than lost, and the first segment is not preceded by a gap."""
    liandong, media = recording
    subprocess.run([ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", "6", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p",
                    "-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1", str(media / "g711.mkv")], check=True, timeout=60)
    camera_id = await register(liandong, "g711-window", f"file://{media / 'g711.mkv'}")
    segments = await wait_until(lambda: _segments(database_url, camera_id, 2), 40)
    for segment in segments:
        assert probe(segment["path"])[0] == ["h264", "aac"]
    assert await _gaps(database_url, camera_id) is None


async def _segments(database_url: str, camera_id: int, at_least: int) -> list[asyncpg.Record] | None:
    rows = await query(database_url, "SELECT * FROM segments WHERE camera_id = $1 ORDER BY started_at", camera_id)
    return rows if len(rows) >= at_least else None


async def test_an_rtsp_camera_that_goes_down_is_offline_leaves_a_recorded_gap_and_recording_resumes(
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
    (offline,) = await wait_until(lambda: _offline(database_url, camera_id, cleared=False), 20)
    assert 10 <= (offline["opened_at"] - offline["began_at"]).total_seconds() < 13  # offline_after_s is 10
    server = start_rtsp(rtsp_port)
    try:
        await wait_until(lambda: _offline(database_url, camera_id, cleared=True), 40)  # the analysis sees it again
        closed = await wait_until(lambda: _closed_gaps(database_url, camera_id), 60)
        gap = closed[0]
        assert gap["ended_at"] > gap["started_at"]
        resumed = await wait_until(lambda: _segments_after(database_url, camera_id, gap["ended_at"]), 30)
        codecs, _ = probe(resumed[0]["path"])
        assert codecs[0] == "h264"
    finally:
        server.kill()
        server.wait()
    await _the_gap_is_told_in_playback_and_in_the_export(liandong, database_url, camera_id, gap, resumed[0])


async def _the_gap_is_told_in_playback_and_in_the_export(liandong: Liandong, database_url: str, camera_id: int,
                                                        gap: asyncpg.Record, resumed: asyncpg.Record) -> None:
    """Played or exported across the outage, the recording says where it has nothing, and why."""
    first = (await _segments(database_url, camera_id, 1) or [])[0]
    since, until = first["started_at"], resumed["ended_at"]
    before = await query(database_url, "SELECT max(ended_at) AS at FROM segments WHERE camera_id = $1"
                         " AND ended_at <= $2", camera_id, gap["ended_at"])
    hole = f"{before[0]['at'].isoformat()}/{resumed['started_at'].isoformat()}"
    rows = await query(database_url, "SELECT started_at, ended_at FROM segments WHERE camera_id = $1"
                       " AND ended_at > $2 AND started_at < $3 ORDER BY started_at", camera_id, since, until)
    # Every hole between the indexed segments is told, the outage among them; nothing else is.
    between = [f"{a['ended_at'].isoformat()}/{b['started_at'].isoformat()}" for a, b in itertools.pairwise(rows)
               if (b["started_at"] - a["ended_at"]).total_seconds() > 1.0]
    assert hole in between
    window = f"since={since.isoformat().replace('+', '%2B')}&until={until.isoformat().replace('+', '%2B')}"
    headers = {"Authorization": f"Bearer {await liandong.token('supervisor')}"}
    async with liandong.http.get(f"{liandong.base_url}/api/cameras/{camera_id}/playback?{window}",
                                 headers=headers) as response:
        assert response.status == 200
        assert response.headers["Recording-Gaps"] == ",".join(between)
        await response.read()
    async with liandong.http.get(f"{liandong.base_url}/api/cameras/{camera_id}/recordings?{window}",
                                 headers=headers) as response:
        timeline = await response.json()
    assert [f"{g['started_at']}/{g['ended_at']}" for g in timeline["gaps"]] == between
    (told,) = [g for g in timeline["gaps"] if f"{g['started_at']}/{g['ended_at']}" == hole]
    assert told["reason"] == gap["reason"]
    assert len(timeline["recorded"]) == len(between) + 1
    assert (timeline["recorded"][0]["started_at"], timeline["recorded"][-1]["ended_at"]) == (
        since.isoformat(), until.isoformat())
    status, _ = await liandong.call("GET", f"/api/cameras/{camera_id}/recordings?{window}", as_user="dispatcher")
    assert status == 200
    async with liandong.http.post(f"{liandong.base_url}/api/cameras/{camera_id}/exports", headers=headers,
                                  json={"since": since.isoformat(), "until": until.isoformat()}) as response:
        archive = await response.read()
    with zipfile.ZipFile(io.BytesIO(archive)) as export:
        manifest = json.loads(export.read("manifest.json"))
    assert manifest["gaps"] == timeline["gaps"]


async def _offline(database_url: str, camera_id: int, cleared: bool) -> list[asyncpg.Record] | None:
    return await query(database_url, "SELECT * FROM supervision_alerts WHERE camera_id = $1 AND kind = 'offline'"
                       " AND (cleared_at IS NOT NULL) = $2", camera_id, cleared) or None


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


async def _recorded(liandong: Liandong, media: Path, database_url: str, count: int) -> tuple[int, list[Any]]:
    make_clip(media / "window.mp4")
    camera_id = await register(liandong, "evidence-window", f"file://{media / 'window.mp4'}")
    return camera_id, await wait_until(lambda: _segments(database_url, camera_id, count), 40)


async def test_playback_joins_segments_and_a_signed_export_tells_when_it_was_altered(
        recording: tuple[Liandong, Path], database_url: str, tmp_path: Path) -> None:
    liandong, media = recording
    camera_id, segments = await _recorded(liandong, media, database_url, 3)
    since, until = segments[0]["started_at"], segments[2]["ended_at"]
    window = f"since={since.isoformat().replace('+', '%2B')}&until={until.isoformat().replace('+', '%2B')}"
    headers = {"Authorization": f"Bearer {await liandong.token('supervisor')}"}
    async with liandong.http.get(f"{liandong.base_url}/api/cameras/{camera_id}/playback?{window}",
                                 headers=headers) as response:
        assert response.status == 200 and response.content_type == "video/mp4"
        (tmp_path / "played.mp4").write_bytes(await response.read())
    codecs, duration = probe(str(tmp_path / "played.mp4"))
    assert codecs == ["h264", "aac"] and abs(duration - (until - since).total_seconds()) < 1.0

    async with liandong.http.post(f"{liandong.base_url}/api/cameras/{camera_id}/exports", headers=headers,
                                  json={"since": since.isoformat(), "until": until.isoformat()}) as response:
        assert response.status == 200 and response.content_type == "application/zip"
        (tmp_path / "export.zip").write_bytes(await response.read())
    async with liandong.http.get(f"{liandong.base_url}/api/video/signing-key") as response:
        (tmp_path / "key.pem").write_bytes(await response.read())

    def verify(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", "video", "verify", str(path), "--key",
                               str(tmp_path / "key.pem")], capture_output=True, text=True, cwd=ROOT, timeout=60)

    intact = verify(tmp_path / "export.zip")
    assert intact.returncode == 0 and "intact" in intact.stdout
    with zipfile.ZipFile(tmp_path / "export.zip") as original:
        entries = {name: original.read(name) for name in original.namelist()}
    first_segment = next(name for name in entries if name.startswith("segments/"))
    def flip_last_bit(data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1])

    def pad_a_key(data: bytes) -> bytes:
        return data.replace(b'"since"', b'"since" ', 1)

    for tampered_name, change in ((first_segment, flip_last_bit), ("manifest.json", pad_a_key)):
        tampered = tmp_path / f"tampered-{tampered_name.replace('/', '-')}.zip"
        with zipfile.ZipFile(tampered, "w") as out:
            for name, data in entries.items():
                out.writestr(name, change(data) if name == tampered_name else data)
        result = verify(tampered)
        assert result.returncode == 1 and "ALTERED" in result.stdout, result.stdout


async def test_bad_playback_and_export_ranges_are_refused(recording: tuple[Liandong, Path], database_url: str) -> None:
    liandong, media = recording
    camera_id, segments = await _recorded(liandong, media, database_url, 1)
    start = segments[0]["started_at"]
    cases = [({"since": start.isoformat(), "until": (start - timedelta(hours=1)).isoformat()}, 400, "until"),
             ({"since": start.isoformat(), "until": (start + timedelta(days=730)).isoformat()}, 400, "until"),
             ({"since": "2026-11-23T08:00:00", "until": "2026-11-23T09:00:00"}, 422, "since"),
             ({"since": (start - timedelta(days=3)).isoformat(), "until": (start - timedelta(days=2)).isoformat()},
              404, "since")]
    for body, status, field in cases:
        got, answer = await liandong.call("POST", f"/api/cameras/{camera_id}/exports", body, as_user="supervisor")
        assert (got, answer["error"]["field"]) == (status, field), (body, answer)
    got, answer = await liandong.call("POST", "/api/cameras/9999/exports", cases[0][0], as_user="supervisor")
    assert got == 404
    got, answer = await liandong.call("POST", f"/api/cameras/{camera_id}/exports", cases[0][0], as_user="dispatcher")
    assert got == 403


async def test_retention_removes_what_is_too_old_and_keeps_under_the_quota_with_an_alert(
        recording: tuple[Liandong, Path], database_url: str, tmp_path: Path) -> None:
    liandong, media = recording
    camera_id, segments = await _recorded(liandong, media, database_url, 4)
    sizes = [s["bytes"] for s in segments]
    pool = liandong.platform.pool
    tight = Retention(pool, Policy(default_days=30, quota_bytes=sum(sizes[:2]) + 1000, root=tmp_path))
    outcome = await tight.enforce()
    assert outcome is not None and outcome.over_quota >= 1 and outcome.used_bytes <= sum(sizes[:2]) + 1000
    assert not exists(segments[0]["path"])  # the oldest went first
    (alert,) = await query(database_url, "SELECT * FROM supervision_alerts WHERE kind = 'storage'")
    assert alert["cleared_at"] is None and json.loads(alert["detail"])["share"] >= 0.9

    await query(database_url, "UPDATE segments SET started_at = started_at - interval '40 days',"
                              " ended_at = ended_at - interval '40 days' WHERE camera_id = $1", camera_id)
    roomy = Retention(pool, Policy(default_days=30, quota_bytes=10 * 2**30, root=tmp_path))
    outcome = await roomy.enforce()
    assert outcome is not None and outcome.expired >= 1
    remaining = await query(database_url, "SELECT path FROM segments WHERE ended_at < now() - interval '30 days'")
    assert remaining == []
    (alert,) = await query(database_url, "SELECT * FROM supervision_alerts WHERE kind = 'storage'")
    assert alert["cleared_at"] is not None  # well under the quota now


def test_a_listed_segment_is_finished_only_once_its_writer_has_closed_it(tmp_path: Path) -> None:
    """ffmpeg lists a segment before it closes the file (its last fragment may still be in a buffer):
    a segment still held open by the writing process is not reported, whatever the list says."""
    from video.recording.recorder import SegmentList

    segment = tmp_path / "20261124T080000.mp4"
    segment.write_bytes(b"x" * 1000)
    writer = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               f"f = open({str(segment)!r}, 'ab'); sys.stdout.write('open\\n'); sys.stdout.flush()\n"
                               "sys.stdin.readline(); f.write(b'y' * 500); f.close(); time.sleep(30)"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == "open\n"
        (tmp_path / "segments.csv").write_text(f"{segment.name},0.000000,2.000000\n")
        listing = SegmentList(tmp_path / "segments.csv", tmp_path)
        assert listing.finished(writer.pid) == []  # listed, but its writer still has it open
        writer.stdin.write("close\n")
        writer.stdin.flush()
        deadline = time.monotonic() + 10
        while not (done := listing.finished(writer.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(s.path.name, s.bytes) for s in done] == [(segment.name, 1500)]
    finally:
        writer.kill()
        writer.wait()


async def test_reconnects_under_load_never_index_an_unreadable_segment(
        recording: tuple[Liandong, Path], database_url: str, rtsp_port: int) -> None:
    """The camera drops and comes back four times, at different points of a segment, while two
    processes keep both cores busy: whatever is indexed opens and plays."""
    liandong, _ = recording
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        camera_id = await register(liandong, "flaky-window", f"rtsp://127.0.0.1:{rtsp_port}/cam")
        for up_s in (5.0, 3.3, 6.1, 4.7):
            server = start_rtsp(rtsp_port)
            await asyncio.sleep(up_s)
            server.kill()
            server.wait()
            await asyncio.sleep(1.0)
        server = start_rtsp(rtsp_port)
        try:
            back = datetime.now(UTC)
            await wait_until(lambda: _segments_after(database_url, camera_id, back), 60)
        finally:
            server.kill()
            server.wait()
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    indexed = await _segments(database_url, camera_id, 1)
    assert indexed is not None
    for segment in indexed:
        assert unreadable(Path(segment["path"])) is None, segment["path"]
        with av.open(segment["path"]) as container:
            assert next(container.decode(video=0)).width == 640, segment["path"]
    gaps = await _closed_gaps(database_url, camera_id)
    assert gaps is not None  # the drops are on record


def test_only_a_whole_fragmented_mp4_counts_as_readable(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp4"
    subprocess.run([ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=25", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                    "-movflags", "+frag_keyframe+empty_moov+default_base_moof", str(whole)], check=True, timeout=60)
    assert unreadable(whole) is None
    data = whole.read_bytes()
    moof = data.find(b"moof") - 4
    cases = {"cut.mp4": (data[:-100], "box at byte"), "header-only.mp4": (data[:moof], "no fragment"),
             "empty.mp4": (b"", "does not begin"), "noise.mp4": (bytes(range(256)) * 8, "cut short"),
             "headerless.mp4": (data[data.find(b"moov") - 4:], "does not begin")}
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        problem = unreadable(tmp_path / name)
        assert problem is not None and reason in problem, (name, problem)
