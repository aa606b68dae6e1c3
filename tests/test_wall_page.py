"""The supervisors' monitoring wall in a real browser (Debian's Chromium through Playwright): tiles
move, a clerk leaving the window pops that camera onto the wall with its alert, a click plays it in
full motion, and the supervisor acknowledges and closes the alert. Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page

from tests.browser import DESKTOP, Watch, fits, log_in, screenshot
from tests.helpers import Liandong
from tests.test_recording import wait_until
from tests.test_supervision import first_tile, scene, window_camera


async def frames(page: Page, camera_id: int) -> int:
    return int(await page.get_attribute(f".tile[data-camera='{camera_id}']", "data-frames") or 0)


async def test_the_wall_shows_moving_tiles_and_pops_up_a_camera_when_its_clerk_leaves(
        supervised: tuple[Liandong, Path], browser: Browser) -> None:
    liandong, media = supervised
    # Two service halls. At the tax hall the clerk stays; at the registry the seat is empty for the
    # first 6 s (marked as the empty seat), the clerk works until 14 s and then leaves for good.
    scene(media / "tax-1.mp4", 60)
    scene(media / "registry-2.mp4", 60, clerk="between(t,6,14)", sound=True)
    tax = await window_camera(liandong, media, "tax-1", {"absence_limit_s": 600}, department="税务局")
    registry = await window_camera(liandong, media, "registry-2", {"absence_limit_s": 6})
    await wait_until(lambda: first_tile(liandong, registry), 20)
    status, _ = await liandong.call("POST", f"/api/cameras/{registry}/empty-seat", as_user="supervisor")
    assert status == 202

    watch = Watch(liandong.base_url)
    page = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await page.goto(f"{liandong.base_url}/wall")
    await log_in(page, "supervisor")
    await page.wait_for_selector("#conn.up")
    await page.click("#controls [data-layout='1']")
    await page.select_option("#group", "税务局")  # the wall shows only the tax hall
    await page.wait_for_selector(f".tile[data-camera='{tax}']:not(.stale)")
    before = await frames(page, tax)
    await page.wait_for_function(f"() => Number(document.querySelector(\".tile[data-camera='{tax}']\").dataset.frames)"
                                 f" >= {before + 2}", timeout=10_000)  # new pictures keep coming
    latency = int(await page.get_attribute(f".tile[data-camera='{tax}']", "data-latency-ms") or 0)
    assert latency < 1000
    assert await page.locator(f".tile[data-camera='{registry}']").count() == 0
    await screenshot(page, "wall-1920")

    # The registry clerk leaves: the alert pops the camera onto the one-tile wall, flashing.
    await page.wait_for_selector(f".tile.alerting[data-camera='{registry}']", timeout=40_000)
    assert await page.is_visible("#popup") and "离岗" in await page.inner_text("#popup")
    alert = page.locator(".alert").first
    await alert.locator("img[src^='blob:']").wait_for()  # the snapshot
    await page.wait_for_function(f"() => Number(document.querySelector(\".tile[data-camera='{registry}']\")"
                                 ".dataset.frames) >= 1")
    await screenshot(page, "wall-alert-1920")

    # Focus: full motion without transcoding, through Media Source Extensions, silent until the
    # supervisor turns the sound on; then the camera's tone is measured at the page's audio output.
    await page.click(f".tile[data-camera='{registry}']")
    await page.wait_for_function("() => document.querySelector('#focus-video').currentTime > 0.5", timeout=15_000)
    assert await page.inner_text("#focus-mode") == "H.264 · MSE"
    assert await page.evaluate("() => document.querySelector('#focus-video').muted")
    await page.wait_for_selector("#focus-sound:not(.hidden)")
    assert await page.evaluate("() => liandongFocusAudio.heard") == 0
    await page.click("#focus-sound")
    await page.wait_for_function("() => liandongFocusAudio.heard >= 3", timeout=10_000)
    assert await page.inner_text("#focus-sound") == "静音"
    # Played at the live edge: what is buffered but not yet shown stays under the page's 0.6 s bound.
    await page.wait_for_function("() => document.querySelector('#focus-video').dataset.behindMs !== undefined")
    assert int(await page.evaluate("() => document.querySelector('#focus-video').dataset.behindMs")) < 1000
    await screenshot(page, "wall-focus-1920")
    await page.click("#focus-sound")
    assert await page.evaluate("() => document.querySelector('#focus-video').muted")
    await page.keyboard.press("Escape")

    await alert.locator(".ack").click()
    await page.wait_for_selector(".alert .ack[disabled]")
    await alert.locator(".close").click()
    await page.wait_for_function("() => document.querySelectorAll('.alert').length === 0")

    await page.click("#lang")
    assert await page.inner_text("#tour") == "Tour"
    await page.set_viewport_size({"width": 1024, "height": 768})
    await page.click("#controls [data-layout='4']")
    await page.select_option("#group", "")
    await page.wait_for_selector(f".tile[data-camera='{tax}']")
    await fits(page)
    await screenshot(page, "wall-tablet")
    watch.assert_clean()


async def test_several_new_alerts_pop_up_the_newest_and_one_without_a_picture_shows_no_broken_image(
        supervised: tuple[Liandong, Path], browser: Browser) -> None:
    """Two cameras go offline (an offline camera sends no picture, so its alert has none) a second apart,
    and a covered lens after them: the pop-up names the covered lens, and no alert shows a broken image."""
    from datetime import UTC, datetime, timedelta

    from video.analysis.supervision import open_alert

    liandong, _media = supervised
    ids = []
    for code in ("hall-a", "hall-b", "hall-c"):
        status, body = await liandong.call("POST", "/api/cameras", {
            "code": code, "name": f"{code} 窗口", "department": "行政服务中心", "window": code[-1],
            "location": {"lon": 111.29, "lat": 30.70}, "main_url": "rtsp://127.0.0.1:9/none"}, as_user="supervisor")
        assert status == 201, body
        ids.append(body["id"])
    watch = Watch(liandong.base_url)
    page = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await page.goto(f"{liandong.base_url}/wall")
    await log_in(page, "supervisor")
    await page.wait_for_selector("#conn.up")
    now = datetime.now(UTC)
    pool = liandong.platform.pool
    async with pool.acquire() as connection, connection.transaction():  # announced together, on commit
        await open_alert(connection, "offline", ids[0], now - timedelta(seconds=12), now - timedelta(seconds=2), {})
        await open_alert(connection, "offline", ids[1], now - timedelta(seconds=11), now - timedelta(seconds=1), {})
        await open_alert(connection, "covered", ids[2], now - timedelta(seconds=10), now, {}, dark_picture())
    await page.wait_for_selector("#popup:not(.hidden)")
    assert "hall-c" in await page.inner_text("#popup")  # the newest, not the oldest
    await page.wait_for_selector(".alert .no-snapshot")
    broken = await page.eval_on_selector_all(
        ".alert img", "imgs => imgs.filter(i => !i.getAttribute('src') || (i.complete && i.naturalWidth === 0)).length")
    offline_without_picture = await page.locator(".alert .no-snapshot").count()
    assert offline_without_picture == 2
    first_pinned = await page.get_attribute("#grid .tile[data-camera]", "data-camera")
    assert int(first_pinned or 0) == ids[2]
    await screenshot(page, "wall-alerts-without-pictures-1920")
    assert broken == 0
    watch.assert_clean()


def dark_picture() -> bytes:
    import cv2
    import numpy as np

    return bytes(cv2.imencode(".jpg", np.full((54, 96, 3), 12, np.uint8))[1].tobytes())
