"""An incident's video case file: the recordings of the cameras near it are held against retention
from minutes before the report until it closes, and come out as one signed export; a supervisor
lists and releases the holds."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import server_with_media
from tests.helpers import Liandong
from tests.test_recording import make_clip, query, wait_until
from video.recording.evidence import verify
from video.recording.retention import Policy, Retention

XILING = (111.29, 30.70)  # the fire is here; the near window camera is 150 m away, the far one 6 km


@pytest.fixture
async def recording(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Liandong, Path]]:
    async with server_with_media(database_url, tmp_path, {"segment_s = 10": "segment_s = 2"}) as server:
        yield server


async def camera(liandong: Liandong, media: Path, code: str, lon: float, lat: float) -> int:
    status, body = await liandong.call("POST", "/api/cameras", {
        "code": code, "name": f"{code} 窗口", "department": "行政服务中心", "window": "1",
        "location": {"lon": lon, "lat": lat}, "main_url": f"file://{media / 'window.mp4'}"}, as_user="supervisor")
    assert status == 201, body
    camera_id: int = body["id"]
    return camera_id


async def test_an_incident_holds_the_nearby_recordings_until_released_and_exports_them_signed(
        recording: tuple[Liandong, Path], database_url: str, tmp_path: Path) -> None:
    liandong, media = recording
    make_clip(media / "window.mp4")
    near = await camera(liandong, media, "near", XILING[0] + 0.0015, XILING[1])
    far = await camera(liandong, media, "far", XILING[0] + 0.06, XILING[1])
    for camera_id in (near, far):
        await wait_until(lambda camera_id=camera_id: _segments(database_url, camera_id, 2), 60)

    incident = await liandong.report("201", 4, *XILING, address="西陵区 东山大道 1 号")
    reported = datetime.fromisoformat(incident["created_at"])
    holds = await wait_until(lambda: _holds(liandong, incident["id"]), 20)
    (hold,) = holds
    assert (hold["camera_id"], hold["until"]) == (near, None)  # open while the incident is
    assert datetime.fromisoformat(hold["since"]) == reported - timedelta(minutes=10)
    assert hold["segments"] >= 2

    # Over quota: retention takes the far camera's recording, never the held one.
    pool = liandong.platform.pool
    await Retention(pool, Policy(default_days=30, quota_bytes=1, root=tmp_path)).enforce()
    assert await _segments(database_url, far, 1) is None
    assert await _segments(database_url, near, hold["segments"]) is not None

    status, archive = await export(liandong, incident["id"], "supervisor")
    assert status == 200
    (tmp_path / "case.zip").write_bytes(archive)
    assert verify(tmp_path / "case.zip") == []
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
    assert manifest["case"]["incident"] == incident["id"]
    assert [c["code"] for c in manifest["cameras"]] == ["near"]
    assert {s["camera"] for s in manifest["segments"]} == {"near"}
    assert all(s["file"].startswith("segments/near/") for s in manifest["segments"])
    status, _ = await export(liandong, incident["id"], "dispatcher")
    assert status == 403

    station = await liandong.terminal("fire-xiling")
    try:
        ticket_id = incident["tickets"][0]["id"]
        await station.acknowledge(ticket_id)
        await station.report_back(ticket_id, "明火已扑灭")
    finally:
        await station.close()
    closed_at = datetime.fromisoformat((await liandong.incident(incident["id"]))["closed_at"])
    (ended,) = await wait_until(lambda: _holds(liandong, incident["id"], ended=True), 20)
    assert datetime.fromisoformat(ended["until"]) == closed_at  # held until it closed, and still held

    status, listed = await liandong.call("GET", "/api/recording-holds", as_user="supervisor")
    assert [h["reference"] for h in listed] == [f"incident:{incident['id']}"]
    status, released = await liandong.call("POST", f"/api/recording-holds/{hold['id']}/release",
                                           as_user="supervisor")
    assert status == 200 and released["released_at"]
    status, again = await liandong.call("POST", f"/api/recording-holds/{hold['id']}/release", as_user="supervisor")
    assert status == 409 and again["error"]["field"] == "id", (status, again)
    assert (await liandong.call("GET", "/api/recording-holds", as_user="supervisor"))[1] == []
    (entry,) = await query(database_url, "SELECT * FROM audit_log WHERE action = 'video.hold_release'")
    assert entry["target"] == f"hold:{hold['id']}"


async def test_an_incident_with_no_camera_near_it_has_nothing_to_export(recording: tuple[Liandong, Path],
                                                                       database_url: str) -> None:
    liandong, _ = recording
    incident = await liandong.report("201", 4, *XILING)
    await wait_until(lambda: _looked_at(database_url, incident["id"]), 20)
    status, body = await liandong.call("POST", f"/api/incidents/{incident['id']}/evidence", {}, as_user="supervisor")
    assert (status, body["error"]["field"]) == (404, "id")
    status, body = await liandong.call("POST", "/api/incidents/999999/evidence", {}, as_user="supervisor")
    assert status == 404
    status, body = await liandong.call("POST", f"/api/incidents/{incident['id']}/evidence",
                                       {"since": "2026-11-24T08:00:00"}, as_user="supervisor")
    assert (status, body["error"]["field"]) == (422, "since")


async def _segments(database_url: str, camera_id: int, at_least: int) -> list[asyncpg.Record] | None:
    rows = await query(database_url, "SELECT * FROM segments WHERE camera_id = $1", camera_id)
    return rows if len(rows) >= at_least else None


async def _holds(liandong: Liandong, incident_id: int, ended: bool = False) -> list[dict[str, object]] | None:
    status, body = await liandong.call("GET", f"/api/incidents/{incident_id}/recordings", as_user="supervisor")
    assert status == 200, body
    holds: list[dict[str, object]] = body["holds"]
    return holds if holds and (not ended or all(h["until"] for h in holds)) else None


async def _looked_at(database_url: str, incident_id: int) -> bool:
    return bool(await query(database_url, "SELECT 1 FROM incident_evidence WHERE incident_id = $1", incident_id))


async def export(liandong: Liandong, incident_id: int, as_user: str) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {await liandong.token(as_user)}"}
    async with liandong.http.post(f"{liandong.base_url}/api/incidents/{incident_id}/evidence", json={},
                                  headers=headers) as response:
        return response.status, await response.read()
