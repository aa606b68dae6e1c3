"""The recording of a window with an open red card or complaint is kept past retention until the card
or complaint is closed. (The recording index and its files are written here: a real recorder would
take weeks to make recordings old enough to expire.)"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from efficiency.evidence import release_closed
from tests.hall import MARKET, days_ago, event, market_system, send
from tests.helpers import Liandong
from video.recording.retention import Policy, Retention

WINDOW = "3号窗口"


async def recorded(liandong: Liandong, folder: Path, code: str, window: str, starts: list[Any]) -> int:
    """A camera over one of the market regulator's windows with a ten-minute segment from each start."""
    pool = liandong.platform.pool
    camera: int = await pool.fetchval(
        "INSERT INTO cameras (code, name, department, window_label, lon, lat, main_url, roi, opening_hours,"
        " thresholds) VALUES ($1, $1, $2, $3, 111.29, 30.70, 'rtsp://camera.invalid/main', '{}', '{}', '{}')"
        " RETURNING id", code, MARKET, window)
    for start in starts:
        path = folder / code / f"{start:%Y%m%dT%H%M%S}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(2000))
        await pool.execute("INSERT INTO segments (camera_id, started_at, ended_at, bytes, path)"
                           " VALUES ($1, $2, $3, 2000, $4)", camera, start, start + timedelta(minutes=10), str(path))
    return camera


def on_disk(path: str) -> bool:
    return Path(path).exists()


async def kept(liandong: Liandong, camera: int) -> list[str]:
    rows = await liandong.platform.pool.fetch("SELECT path FROM segments WHERE camera_id = $1 ORDER BY started_at",
                                              camera)
    assert all(map(on_disk, (r["path"] for r in rows)))  # what the index keeps is on disk
    return [Path(r["path"]).name for r in rows]


async def holds(liandong: Liandong) -> list[tuple[str, bool]]:
    rows = await liandong.platform.pool.fetch("SELECT reference, released_at IS NULL AS active FROM recording_holds"
                                              " ORDER BY id")
    return [(r["reference"], r["active"]) for r in rows]


async def test_a_red_card_keeps_its_windows_recording_past_retention_until_its_correction_is_accepted(
        liandong: Liandong, tmp_path: Path) -> None:
    system = await market_system(liandong)
    accepted = days_ago(40)
    window = await recorded(liandong, tmp_path, "market-3", WINDOW, [accepted - timedelta(minutes=30), accepted,
                                                                      accepted + timedelta(hours=1)])
    other = await recorded(liandong, tmp_path, "market-4", "4号窗口", [accepted])
    story = ((1, "accept", "张敏"), (2, "handle", "王芳"), (3, "review", "李强"), (4, "approve", "赵刚"),
             (5, "complete", "张敏"))
    for n, stage, actor in story:  # done in time, but accepted without the licence: one red card
        status, sent = await send(liandong, system, event("E-1", n, "stage", accepted + timedelta(minutes=n - 1),
                                                          stage, actor=actor, window=WINDOW))
        assert status == 201, sent
    status, case = await liandong.call("GET", f"/api/efficiency/cases/{sent['case_id']}", as_user="supervisor")
    [card] = [c for c in case["cards"] if c["closed_at"] is None]
    assert (card["colour"], card["reason"]) == ("red", "documents_missing")
    for _ in range(50):  # the server holds the recording as it tells the department of the card
        if await holds(liandong):
            break
        await asyncio.sleep(0.1)
    assert await holds(liandong) == [(f"efficiency-card:{card['id']}", True)]

    retention = Retention(liandong.platform.pool, Policy(default_days=30, quota_bytes=2**40, root=tmp_path))
    outcome = await retention.enforce()
    assert outcome is not None and outcome.expired == 2  # before the case, and the other window's
    assert await kept(liandong, window) == [f"{accepted:%Y%m%dT%H%M%S}.mp4",
                                             f"{accepted + timedelta(hours=1):%Y%m%dT%H%M%S}.mp4"]
    assert await kept(liandong, other) == []

    status, notice = await liandong.call("POST", f"/api/efficiency/cases/{sent['case_id']}/corrections",
                                         {"body": "材料不全即受理，请补正并说明", "card_id": card["id"]},
                                         as_user="supervisor")
    assert status == 201, notice
    path = f"/api/efficiency/corrections/{notice['id']}"
    assert (await liandong.call("POST", f"{path}/answer", {"body": "已补收营业执照"}, as_user=system))[0] == 200
    assert (await liandong.call("POST", f"{path}/decision", {"verdict": "accepted", "body": "同意"},
                                as_user="supervisor"))[0] == 200
    assert await release_closed(liandong.platform.pool) == 1
    assert await holds(liandong) == [(f"efficiency-card:{card['id']}", False)]
    outcome = await retention.enforce()
    assert outcome is not None and outcome.expired == 2 and await kept(liandong, window) == []


async def test_a_complaint_holds_its_windows_recording_from_what_it_complains_of_and_links_to_it(
        liandong: Liandong, tmp_path: Path) -> None:
    await market_system(liandong)
    happened = days_ago(3)
    camera = await recorded(liandong, tmp_path, "market-3", WINDOW, [happened])
    status, received = await liandong.call("POST", "/api/public/complaints", {
        "department": MARKET, "window": WINDOW, "complainant": "刘女士", "contact": "13912345678",
        "body": "窗口工作人员长时间离开，等候四十分钟无人办理", "happened_at": happened.isoformat()})
    assert status == 201, received
    [row] = await liandong.platform.pool.fetch("SELECT camera_id, since, until FROM recording_holds")
    assert (row["camera_id"], row["since"], row["until"]) == (camera, happened - timedelta(minutes=2), None)
    status, complaint = await liandong.call("GET", f"/api/efficiency/complaints/{received['id']}",
                                            as_user="supervisor")
    assert complaint["recording"].startswith(f"/api/cameras/{camera}/playback?since="), complaint
    status, played = await liandong.call("GET", complaint["recording"], as_user="supervisor")
    assert status == 200, played
