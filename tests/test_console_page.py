"""The dispatcher's console in Chromium, beyond the first dispatch: a sub-centre that never answers
sets off the escalation alarm (seen, heard, acknowledged by key); a second call about the same burst
main is merged; the decision support shows what lies around the incident and one key opens the
cameras near it on the wall; the console works in English and at tablet size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from tests.browser import DESKTOP, TABLET, Watch, audio, fits, log_in, screenshot
from tests.conftest import server_with_media
from tests.helpers import Liandong

MAIN = (111.29, 30.70)  # 西陵区: a school and a hospital within 1.5 km
QUICK = {"deliver_s = 30": "deliver_s = 3", "acknowledge_s = 60": "acknowledge_s = 600",
         "record = true": "record = false"}


@pytest.fixture
async def quick(database_url: str, tmp_path: Path) -> AsyncIterator[Liandong]:
    """The server with a 3 s delivery limit for incidents no plan covers, and a camera by the main."""
    async with server_with_media(database_url, tmp_path, QUICK) as (liandong, _media):
        status, body = await liandong.call("POST", "/api/cameras", {
            "code": "xl-hall-1", "name": "西陵政务大厅 1号窗口", "department": "西陵区政务服务中心", "window": "1",
            "location": {"lon": MAIN[0] + 0.002, "lat": MAIN[1]}, "main_url": "rtsp://127.0.0.1:9/none"},
            as_user="supervisor")
        assert status == 201, body
        yield liandong


async def type_report(console: Page, lon: float, lat: float, description: str) -> None:
    await console.fill("#lon", f"{lon:.6f}")
    await console.fill("#lat", f"{lat:.6f}")
    await console.select_option("#type", "204")  # 供水管网事故: no plan, so the configured limits apply
    await console.select_option("#severity", "3")
    await console.fill("textarea[name=description]", description)


async def test_an_unanswered_ticket_alarms_the_console_and_a_repeated_call_is_merged(
        quick: Liandong, browser: Browser) -> None:
    watch = Watch(quick.base_url)
    context = await browser.new_context(viewport=DESKTOP)
    context.on("page", watch.follow)
    console = watch.page(await context.new_page())
    await console.goto(f"{quick.base_url}/console")
    await log_in(console, "dispatcher")
    await console.wait_for_selector("#map .leaflet-interactive")

    await type_report(console, *MAIN, "东山大道供水主管爆裂")
    await console.wait_for_selector("#preview li[data-subcentre]")
    assert "宜昌市水务局" in await console.inner_text("#preview")
    await console.press("textarea[name=description]", "Control+Enter")
    first = console.locator("#incidents tr[data-state=open]")
    await first.wait_for()
    incident_id = int(await first.get_attribute("data-incident") or 0)

    # Nobody is at the water bureau's terminal: 3 s later the escalation alarm flashes and sounds.
    await console.wait_for_selector("#alarm:not(.hidden)", timeout=10_000)
    (ticket,) = (await quick.incident(incident_id))["tickets"]
    assert f"#{ticket['id']}" in await console.inner_text("#alarm-list")
    await console.wait_for_selector(f".ticket-line[data-ticket='{ticket['id']}'] .timer.escalated")
    # SMS is not configured here: the alarm says the duty phone's message failed and why, as stored,
    # never that the duty phone was told.
    await console.wait_for_function("() => document.querySelector('#alarm-list').innerText.includes('失败')",
                                    timeout=10_000)
    alarm_text = await console.inner_text("#alarm-list")
    assert "the sms channel is not configured" in alarm_text and "已短信通知" not in alarm_text
    (ticket,) = (await quick.incident(incident_id))["tickets"]
    assert [(n["reason"], n["status"]) for n in ticket["notifications"]] == [("undelivered", "failed")]
    await console.wait_for_function("() => liandongAudio.heard >= 1", timeout=10_000)
    assert (await audio(console))["ringing"] is True
    assert (await console.title()).startswith("【1】")  # the escalation, its failed message said on its line
    await screenshot(console, "console-escalation-1920")
    await console.keyboard.press("Escape")  # out of the form: the letter keys are shortcuts again
    await console.keyboard.press("a")
    await console.wait_for_selector("#alarm", state="hidden")
    heard = (await audio(console))["heard"]
    await console.wait_for_timeout(3500)  # a full repeat later: silent
    assert (await audio(console))["heard"] == heard and (await audio(console))["ringing"] is False

    # A second caller reports the same main 120 m away: the console offers the duplicate; merge it.
    await type_report(console, MAIN[0] + 0.0012, MAIN[1], "路面大量积水")
    await console.fill("input[name=caller_name]", "李女士")
    await console.click(f"#duplicates [data-merge-into='{incident_id}']")
    merged_row = console.locator(f"#incidents tr[data-state=closed]:has-text('→ #{incident_id}')")
    await merged_row.wait_for()
    report_id = int(await merged_row.get_attribute("data-incident") or 0)
    assert (await quick.incident(report_id))["merged_into"] == incident_id
    assert len((await quick.incident(incident_id))["tickets"]) == 1  # no second ticket for the same main

    # Decision support for the burst main, then its cameras on the wall with one key.
    await console.click(f"#incidents tr[data-incident='{incident_id}']")
    text = await console.locator(f"#detail-body[data-incident='{incident_id}']").inner_text()
    assert "宜昌市水务局" in text and "西陵示例小学" in text and "西陵政务大厅 1号窗口" in text
    async with context.expect_page() as opened:
        await console.keyboard.press("c")
    wall = await opened.value
    await wall.wait_for_selector(".tile[data-camera]")
    camera_ids = await wall.eval_on_selector_all(".tile[data-camera]", "tiles => tiles.map(t => t.dataset.camera)")
    assert len(camera_ids) == 1 and await wall.is_visible("#show-all")
    await screenshot(wall, "wall-cameras-near-incident-1920")

    # The keyboard walks the board; the English switch changes every word on it.
    await console.keyboard.press("ArrowDown")
    await console.wait_for_selector(f"#incidents tr.selected[data-incident='{report_id}']")
    await console.keyboard.press("l")
    await console.wait_for_selector("h1 >> text=Liandong command console")
    board = await console.inner_text("#board")
    assert "open" in board and "处置中" not in board
    await console.keyboard.press("?")
    assert "Keyboard shortcuts" in await console.inner_text("#help")
    await screenshot(console, "console-english-1920")
    await console.keyboard.press("Escape")
    watch.assert_clean()


async def test_a_storm_of_alarms_stays_on_one_bounded_bar_newest_first_and_the_console_stays_usable(
        quick: Liandong, browser: Browser) -> None:
    """25 incidents nobody's terminal receives: one line per incident for the newest few, a count of the
    rest, the bar's height bounded, and map, board and intake still on a 1920×1080 screen."""
    watch = Watch(quick.base_url)
    console = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await console.goto(f"{quick.base_url}/console")
    form = await console.locator("#login-form").bounding_box()
    assert form is not None and form["width"] <= 450  # a log-in form, not a banner across 1920 px
    await log_in(console, "dispatcher")
    await console.wait_for_selector("#map .leaflet-interactive")
    names = await console.eval_on_selector_all(".district-label", "labels => labels.map(l => l.textContent)")
    assert len(names) == 13 and "西陵区" in names  # every district named on the map
    legend = await console.inner_text(".map-legend")
    assert "区县界" in legend and "辖区" in legend  # solid and dashed lines explained
    reported = [await quick.report("204", 3, MAIN[0] + 0.001 * i, MAIN[1]) for i in range(25)]
    newest = max(r["id"] for r in reported)
    await console.wait_for_function(  # every incident alarming: 4 listed, 21 counted
        "() => document.querySelectorAll('#alarm-list [data-alarm-incident]').length === 4"
        " && document.querySelector('#alarm-list .alarm-more')?.innerText.includes('其他 21 起')", timeout=30_000)
    first = await console.get_attribute("#alarm-list [data-alarm-incident]", "data-alarm-incident")
    assert int(first or 0) == newest  # newest first
    bar = await console.locator("#alarm").bounding_box()
    assert bar is not None and bar["height"] <= 200
    for part in ("#map", "#board", "#submit"):
        box = await console.locator(part).bounding_box()
        assert box is not None and box["y"] < 1080 and box["height"] > 0, part
    await screenshot(console, "console-alarm-storm-1920")
    await console.click("#logout")  # the session ends on the server, and the page shows the log-in again
    await console.wait_for_selector("#login:not(.hidden)")
    assert await console.evaluate("sessionStorage.getItem('liandong.console.token')") is None
    watch.assert_clean()


async def test_the_console_asks_before_recording_a_call_from_far_outside_the_service_area(
        quick: Liandong, browser: Browser) -> None:
    watch = Watch(quick.base_url)
    console = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await console.goto(f"{quick.base_url}/console")
    await log_in(console, "dispatcher")
    await console.wait_for_selector("#map .leaflet-interactive")
    await type_report(console, 116.40, 39.90, "北京来电")  # Beijing: a thousand km from any station
    await console.wait_for_function("() => document.querySelector('#incident-error').innerText.includes('km')")
    asked: list[str] = []

    async def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()
    console.on("dialog", answer)
    await console.press("textarea[name=description]", "Control+Enter")
    await console.locator("#incidents tr[data-state=open]").wait_for()
    assert len(asked) == 1 and "km" in asked[0]
    watch.assert_clean()


async def test_the_console_fits_a_tablet(quick: Liandong, browser: Browser) -> None:
    watch = Watch(quick.base_url)
    console = watch.page(await (await browser.new_context(viewport=TABLET)).new_page())
    await console.goto(f"{quick.base_url}/console")
    await log_in(console, "dispatcher")
    await console.wait_for_selector("#map .leaflet-interactive")
    await type_report(console, *MAIN, "供水主管爆裂")
    await console.wait_for_selector("#preview li[data-subcentre]")
    await fits(console)
    assert await console.is_visible("#map") and await console.is_visible("#submit")
    await screenshot(console, "console-tablet")
    watch.assert_clean()


async def test_an_on_premise_tile_service_lies_under_the_boundaries(
        database_url: str, tmp_path: Path, browser: Browser) -> None:
    """A tile server as a deployment would run one (plain HTTP, z/x/y PNG), on its own port."""
    requested: list[str] = []
    tile = cv2.imencode(".png", np.full((256, 256, 3), (90, 140, 90), np.uint8))[1].tobytes()

    async def serve_tile(request: web.Request) -> web.Response:
        requested.append(request.path)
        return web.Response(body=tile, content_type="image/png")

    tiles = web.Application()
    tiles.router.add_get("/{z}/{x}/{y}.png", serve_tile)
    server = TestServer(tiles, host="127.0.0.1")
    await server.start_server()
    tile_origin = str(server.make_url("")).rstrip("/")
    try:
        edits = {'tile_url = ""': f'tile_url = "{tile_origin}/{{z}}/{{x}}/{{y}}.png"',
                 'attribution = ""': 'attribution = "宜昌市测绘院"'}
        async with server_with_media(database_url, tmp_path, edits) as (liandong, _media):
            watch = Watch(liandong.base_url, also=(tile_origin,))
            console = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
            await console.goto(f"{liandong.base_url}/console")
            await log_in(console, "dispatcher")
            await console.wait_for_selector("#map img.leaflet-tile-loaded")
            assert "宜昌市测绘院" in await console.inner_text(".leaflet-control-attribution")
            await screenshot(console, "console-with-tiles-1920")
            watch.assert_clean()
    finally:
        await server.close()
    assert requested and all(path.endswith(".png") and path.count("/") == 3 for path in requested)
