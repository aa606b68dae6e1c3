"""The wall's recording timeline in a real browser: the focused camera's last hour as stored, with
the stretch before it was recorded drawn as a gap, and a click playing the recording from that
moment with the gap inside it named on screen, then back to the live view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.browser import DESKTOP, Watch, fits, log_in, screenshot
from tests.conftest import server_with_media
from tests.helpers import Liandong
from tests.test_recording import SEGMENT_S, _segments, make_clip, register, wait_until


@pytest.fixture
async def recorded(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Liandong, Path]]:
    async with server_with_media(database_url, tmp_path, {"segment_s = 10": f"segment_s = {SEGMENT_S}"}) as server:
        yield server


async def test_the_focused_camera_shows_its_recording_timeline_and_plays_from_a_click_naming_the_gap(
        recorded: tuple[Liandong, Path], database_url: str, browser: Browser) -> None:
    liandong, media = recorded
    make_clip(media / "timeline-1.mp4", 20)
    camera = await register(liandong, "timeline-1", f"file://{media / 'timeline-1.mp4'}")
    segments = await wait_until(lambda: _segments(database_url, camera, 3), 40)
    first_recorded: datetime = segments[0]["started_at"]

    watch = Watch(liandong.base_url)
    page = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await page.goto(f"{liandong.base_url}/wall")
    await log_in(page, "supervisor")
    await page.wait_for_selector(f".tile[data-camera='{camera}']")
    await page.click(f".tile[data-camera='{camera}']")

    # The last hour: recorded since the camera was registered; before that, a gap with its reason.
    await page.wait_for_selector("#track .recorded")
    gap = page.locator("#track .gap").first
    assert datetime.fromisoformat(await gap.get_attribute("data-end") or "") == first_recorded
    assert await gap.get_attribute("data-reason") == "not recorded"
    assert "未录制" in (await gap.get_attribute("title") or "")
    assert "处未录制" in await page.inner_text("#timeline-summary")

    # A click ten seconds before the first segment plays from there: the file starts where the recording
    # does, and the page says what is missing inside the two minutes asked for.
    box = await page.locator("#track").bounding_box()
    assert box is not None
    since_ms, until_ms = await page.evaluate("() => [timeline.since.getTime(), timeline.until.getTime()]")
    moment_ms = (first_recorded - timedelta(seconds=10)).timestamp() * 1000
    x = box["x"] + box["width"] * (moment_ms - since_ms) / (until_ms - since_ms)
    await page.mouse.click(x, box["y"] + box["height"] / 2)
    await page.wait_for_function("() => document.querySelector('#playback-video').currentTime > 0.5", timeout=15_000)
    assert await page.is_hidden("#focus-video")
    told = (await page.get_attribute("#playback-video", "data-gaps") or "").split(",")
    assert any(datetime.fromisoformat(interval.split("/")[1]) == first_recorded for interval in told), told
    assert "其中未录制" in await page.inner_text("#playback-info")
    await fits(page)
    await screenshot(page, "wall-timeline-1920")

    await page.click("#back-to-live")
    await page.wait_for_function("() => document.querySelector('#focus-video').currentTime > 0.5", timeout=15_000)
    assert await page.is_hidden("#playback-video") and await page.is_hidden("#playback-info")
    watch.assert_clean()
