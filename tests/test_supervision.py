"""Supervision against real pictures: ffmpeg-drawn scenes played as window cameras through the whole
pipeline (worker processes, PyAV, OpenCV), alerts stored with their snapshot, pushed to a connected
wall, acknowledged and closed by a supervisor, and counted per window."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import Liandong
from tests.test_recording import HALL, query, wait_until
from video.recording import ffmpeg

SEAT = {"x": 0.35, "y": 0.30, "width": 0.30, "height": 0.45}
ALWAYS_OPEN = {"days": [1, 2, 3, 4, 5, 6, 7], "periods": ["00:00-23:59"]}


def scene(path: Path, seconds: int, clerk: str = "1", dark: str = "0", still: bool = False,
          sound: bool = False) -> None:
    """A service window: tiled wall, counter, a clerk in the seat while `clerk` (an ffmpeg expression
    of t) holds, a passer-by and a clock unless `still`, everything black while `dark` holds; with
    `sound`, a 440 Hz tone in AAC."""
    moving = "" if still else (
        "[hall];color=c=0x3a6b99:size=40x60:rate=25[walker];testsrc2=size=96x54:rate=25[clock];"
        "[hall][walker]overlay=x='mod(t*60\\,600)':y=290[walk];[walk][clock]overlay=x=536:y=8")
    video = ("color=c=0x2d3a45:size=640x360:rate=25,drawgrid=w=32:h=32:t=2:c=0x4a5d6e,"
             "drawbox=x=0:y=230:w=640:h=130:color=0x6b4f35:t=fill,"
             f"drawbox=x=232:y=118:w=176:h=140:color=0xd9b38c:t=fill:enable='{clerk}',"
             f"drawbox=x=282:y=70:w=76:h=60:color=0xf1d2b0:t=fill:enable='{clerk}'{moving}")
    video += f",drawbox=x=0:y=0:w=640:h=360:color=black:t=fill:enable='{dark}'"
    audio = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac"] if sound else []
    subprocess.run([ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video, *audio,
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p",
                    str(path)], check=True, timeout=120)


async def window_camera(liandong: Liandong, media: Path, code: str, thresholds: dict[str, Any],
                        department: str = "不动产登记中心") -> int:
    status, body = await liandong.call("POST", "/api/cameras", {
        "code": code, "name": f"{code} 窗口", "department": department, "window": code[-1], "location": HALL,
        "main_url": f"file://{media / (code + '.mp4')}", "roi": SEAT, "opening_hours": ALWAYS_OPEN,
        "thresholds": thresholds}, as_user="supervisor")
    assert status == 201, body
    camera_id: int = body["id"]
    return camera_id


async def alert(database_url: str, camera_id: int, kind: str, cleared: bool = False) -> dict[str, Any] | None:
    rows = await query(database_url, "SELECT * FROM supervision_alerts WHERE camera_id = $1 AND kind = $2"
                       + (" AND cleared_at IS NOT NULL" if cleared else ""), camera_id, kind)
    return dict(rows[0]) if rows else None


async def first_tile(liandong: Liandong, camera_id: int) -> bytes | None:
    async with liandong.http.get(f"{liandong.base_url}/api/cameras/{camera_id}/tile",
                                 headers={"Authorization": f"Bearer {await liandong.token('supervisor')}"}) as tile:
        return await tile.read() if tile.status == 200 else None


async def test_a_clerk_who_leaves_the_window_raises_an_alert_on_the_wall_which_clears_when_they_return(
        supervised: tuple[Liandong, Path], database_url: str) -> None:
    liandong, media = supervised
    # The seat is empty for the first 6 s (the supervisor marks it so), the clerk sits down, leaves
    # at 16 s for 14 s, comes back at 30 s; the camera's limit is 6 s.
    scene(media / "window-1.mp4", 60, clerk="between(t,6,16)+gte(t,30)")
    wall = await liandong.http.ws_connect(f"{liandong.base_url}/ws/wall")
    await wall.send_json({"type": "hello", "token": await liandong.token("supervisor")})
    assert (await wall.receive_json())["type"] == "welcome"
    camera_id = await window_camera(liandong, media, "window-1", {"absence_limit_s": 6})
    await wall.send_json({"type": "show", "cameras": [camera_id]})
    await wait_until(lambda: first_tile(liandong, camera_id), 20)
    status, _ = await liandong.call("POST", f"/api/cameras/{camera_id}/empty-seat", as_user="supervisor")
    assert status == 202
    await wait_until(lambda: query(database_url, "SELECT 1 FROM camera_empty_seats WHERE camera_id = $1"
                                                 " AND how = 'marked'", camera_id), 10)

    pushed = await _wall_until(wall, lambda m: any(a["camera_id"] == camera_id and a["kind"] == "absent"
                                                   for a in m.get("alerts", [])), 45)
    tiles = pushed["tiles"]
    assert tiles and all(cid == camera_id for cid in tiles)  # the wall saw the camera's moving picture
    opened = await alert(database_url, camera_id, "absent")
    assert opened is not None and opened["cleared_at"] is None
    assert 5.0 <= (opened["opened_at"] - opened["began_at"]).total_seconds() <= 9.0  # the limit, not longer
    snapshot = await liandong.http.get(f"{liandong.base_url}/api/supervision/alerts/{opened['id']}/snapshot",
                                       headers={"Authorization": f"Bearer {await liandong.token('supervisor')}"})
    assert snapshot.status == 200 and (await snapshot.read())[:2] == b"\xff\xd8"  # a JPEG of the empty seat

    cleared = await wait_until(lambda: alert(database_url, camera_id, "absent", cleared=True), 25)
    away_s = (cleared["cleared_at"] - cleared["began_at"]).total_seconds()
    assert 11 <= away_s <= 18  # the clerk was away 14 s

    status, acknowledged = await liandong.call("POST", f"/api/supervision/alerts/{opened['id']}/acknowledge",
                                               as_user="supervisor")
    assert status == 200 and acknowledged["acknowledged_by"] == "supervisor"
    status, closed = await liandong.call("POST", f"/api/supervision/alerts/{opened['id']}/close",
                                         {"note": "窗口人员已返回, 已提醒"}, as_user="supervisor")
    assert status == 200 and closed["closed_at"] is not None
    status, again = await liandong.call("POST", f"/api/supervision/alerts/{opened['id']}/close", {},
                                        as_user="supervisor")
    assert status == 409 and again["error"]["field"] == "id"
    status, still_open = await liandong.call("GET", "/api/supervision/alerts", as_user="supervisor")
    assert status == 200 and opened["id"] not in [a["id"] for a in still_open]

    status, figures = await liandong.call("GET", "/api/supervision/statistics", as_user="supervisor")
    (window,) = [row for row in figures if row["camera_id"] == camera_id]
    assert window["department"] == "不动产登记中心" and window["alerts"] == {"absent": 1}
    assert abs(window["absence_minutes"] - away_s / 60) < 0.05
    await wall.close()


async def _wall_until(wall: aiohttp.ClientWebSocketResponse, wanted: Any, seconds: float) -> dict[str, Any]:
    """Read the wall until a text message satisfies `wanted`; that message, with the tiles seen."""
    tiles: list[int] = []

    async def read() -> dict[str, Any]:
        while True:
            message = await wall.receive()
            if message.type is aiohttp.WSMsgType.BINARY:
                camera_id, _at = struct.unpack(">Id", message.data[:12])
                assert message.data[12:14] == b"\xff\xd8"
                tiles.append(camera_id)
            elif message.type is aiohttp.WSMsgType.TEXT:
                decoded: dict[str, Any] = json.loads(message.data)
                if wanted(decoded):
                    return {**decoded, "tiles": tiles}
            else:
                raise AssertionError(f"the wall socket ended: {message.type}")
    return await asyncio.wait_for(read(), seconds)


async def test_a_covered_lens_and_a_frozen_picture_raise_tampering_alerts(
        supervised: tuple[Liandong, Path], database_url: str) -> None:
    liandong, media = supervised
    scene(media / "covered-2.mp4", 40, dark="gte(t,5)")  # someone hangs a cloth over the lens at 5 s
    scene(media / "frozen-3.mp4", 40, still=True)  # the encoder repeats one picture
    covered = await window_camera(liandong, media, "covered-2", {"tamper_after_s": 3})
    frozen = await window_camera(liandong, media, "frozen-3", {"frozen_after_s": 4})
    dark = await wait_until(lambda: alert(database_url, covered, "covered"), 30)
    assert json.loads(dark["detail"])["mean"] < 30 and dark["snapshot"] is not None
    still = await wait_until(lambda: alert(database_url, frozen, "frozen"), 30)
    assert json.loads(still["detail"])["change"] < 0.3
    # Neither is taken for an absent clerk, nor the frozen one for a covered lens.
    assert await alert(database_url, covered, "absent") is None
    assert await alert(database_url, frozen, "covered") is None


async def test_bad_supervision_requests_name_the_field(supervised: tuple[Liandong, Path]) -> None:
    liandong, _ = supervised
    status, body = await liandong.call("POST", "/api/supervision/alerts/999999/acknowledge", as_user="supervisor")
    assert status == 404 and body["error"]["field"] == "id"
    status, body = await liandong.call("GET", "/api/supervision/statistics?since=2026-01-01&until=2025-01-01",
                                       as_user="supervisor")
    assert status == 400 and body["error"]["field"] == "since"
    status, body = await liandong.call("GET", "/api/supervision/statistics?since=yesterday", as_user="supervisor")
    assert status == 400 and body["error"]["field"] == "since"
    status, body = await liandong.call("POST", "/api/cameras/424242/empty-seat", as_user="supervisor")
    assert status == 404 and body["error"]["field"] == "id"
    status, body = await liandong.call("POST", "/api/supervision/alerts/1/close", as_user="fire-xiling")
    assert status == 403
    status, body = await liandong.call("POST", "/api/cameras", {
        "code": "slow", "name": "n", "department": "d", "window": "1", "location": HALL,
        "main_url": "rtsp://cam.local/stream", "thresholds": {"absence_limit_s": 1}}, as_user="supervisor")
    assert status == 422 and body["error"]["field"] == "thresholds.absence_limit_s"
    status, body = await liandong.call("GET", "/api/supervision/alerts?open=maybe", as_user="supervisor")
    assert (status, body["error"]["field"], body["error"]["message"]) == (400, "open", "open is true or false")
    status, _ = await liandong.call("GET", "/api/supervision/alerts", as_user="supervisor")
    assert status == 200
