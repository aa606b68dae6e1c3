"""The dispatcher's console and the sub-centre's terminal in a real browser (Debian's Chromium
through Playwright): a fire pointed at on the map rings at the station until a person acknowledges,
the station reports back and the console shows it closed; a terminal whose line drops during a
dispatch shows it, reconnects and gets the ticket once. Screenshots go to test-artifacts/."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Browser

from tests.browser import DESKTOP, TABLET, Watch, audio, click_map, fits, log_in, screenshot
from tests.helpers import Liandong
from tests.link import Link

XILING = (111.29, 30.70)  # inside 西陵消防站's jurisdiction


async def test_a_fire_pointed_at_on_the_map_rings_at_the_station_until_acknowledged(
        liandong: Liandong, browser: Browser) -> None:
    watch = Watch(liandong.base_url)
    terminal = watch.page(await (await browser.new_context(viewport=TABLET)).new_page())
    await terminal.goto(f"{liandong.base_url}/terminal")
    await log_in(terminal, "fire-xiling")
    await terminal.wait_for_selector("#conn.up")
    assert (await audio(terminal))["armed"] is True
    assert await terminal.is_visible("#idle")

    console = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await console.goto(f"{liandong.base_url}/console")
    await log_in(console, "dispatcher")
    await console.wait_for_selector("#map .leaflet-interactive")  # districts and jurisdictions drawn
    await console.evaluate("([lat, lon]) => liandongConsole.map.setView([lat, lon], 14, {animate: false})",
                           [XILING[1], XILING[0]])
    await click_map(console, *XILING)
    lon, lat = float(await console.input_value("#lon")), float(await console.input_value("#lat"))
    assert abs(lon - XILING[0]) < 0.001 and abs(lat - XILING[1]) < 0.001
    await console.select_option("#type", "201")
    await console.fill("textarea[name=description]", "居民楼三层起火")
    # Before anything is sent, the console shows who will get a ticket.
    await console.wait_for_selector("#preview li[data-subcentre]")
    assert "西陵消防站" in await console.inner_text("#preview")
    await console.press("textarea[name=description]", "Control+Enter")

    await terminal.wait_for_selector(".ticket .ack:not(.hidden)")
    # The tone really sounded: its signal was measured at the page's audio output, twice (it repeats).
    await terminal.wait_for_function("() => liandongAudio.heard >= 2", timeout=10_000)
    ringing = await audio(terminal)
    assert ringing["ringing"] is True and ringing["context"] == "running" and ringing["peak"] > 0.05
    assert await terminal.is_visible("#banner")
    await terminal.wait_for_selector(".ticket .minimap .leaflet-interactive")  # the small map marks the place
    await fits(terminal)
    await screenshot(terminal, "terminal-ringing-tablet")

    await terminal.click(".ticket .ack")
    await terminal.wait_for_selector(".ticket form.feedback:not(.hidden)")
    silent = await audio(terminal)
    assert silent["ringing"] is False and not await terminal.is_visible("#banner")
    await terminal.wait_for_timeout(2500)  # a full repeat later: still silent
    assert (await audio(terminal))["played"] == silent["played"]

    await terminal.fill(".feedback input[name=outcome]", "明火已扑灭")
    await terminal.fill(".feedback input[name=people_affected]", "3")
    await terminal.click(".feedback button")
    await console.wait_for_selector("#incidents tr[data-state=closed] .ticket-line[data-state=closed]")
    await screenshot(console, "console-closed-1920")
    stored = (await liandong.call("GET", "/api/incidents?limit=1", as_user="dispatcher"))[1][0]
    assert stored["state"] == "closed" and stored["tickets"][0]["state"] == "closed"
    watch.assert_clean()


async def test_a_terminal_whose_line_drops_during_a_dispatch_shows_it_and_gets_the_ticket_once(
        liandong: Liandong, browser: Browser) -> None:
    link = Link(urlsplit(liandong.base_url).port or 80)
    await link.restore()
    origin = f"http://127.0.0.1:{link.port}"
    watch = Watch(origin)
    terminal = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await terminal.goto(f"{origin}/terminal")
    await log_in(terminal, "fire-xiling")
    await terminal.wait_for_selector("#conn.up")
    assert not await terminal.is_visible("#offline")

    await link.cut()
    await terminal.wait_for_selector("#offline", state="visible")
    assert "down" in (await terminal.get_attribute("#conn", "class") or "")
    incident = await liandong.report("201", 4, *XILING, description="仓库起火")  # dispatched while it is away
    (ticket,) = incident["tickets"]
    await terminal.wait_for_timeout(1000)
    assert await terminal.locator(".ticket").count() == 0
    await screenshot(terminal, "terminal-offline-1920")

    await link.restore()
    await terminal.wait_for_selector(f".ticket[data-ticket='{ticket['id']}']", timeout=15_000)
    await terminal.wait_for_selector("#offline", state="hidden")
    await terminal.wait_for_function("() => liandongAudio.heard >= 1", timeout=10_000)
    await fits(terminal)
    await screenshot(terminal, "terminal-replayed-1920")
    # Down and up once more: the replay does not bring the same ticket a second time.
    await link.cut()
    await terminal.wait_for_selector("#offline", state="visible")
    await link.restore()
    await terminal.wait_for_function("() => liandongTerminal.connects >= 3", timeout=15_000)
    assert await terminal.locator(".ticket").count() == 1
    assert await terminal.evaluate("liandongTerminal.arrivals") == [ticket["id"]]
    await terminal.click("#lang")  # the operator reads English: every word on the card follows
    await terminal.wait_for_selector("h1 >> text=Liandong terminal")
    card = await terminal.inner_text(".ticket")
    assert f"Building fire · ticket #{ticket['id']}" in card and "Acknowledge" in card and "确认" not in card
    stored = await liandong.incident(incident["id"])
    assert stored["tickets"][0]["state"] == "delivered"  # the terminal confirmed receipt after the replay
    await link.cut()
    watch.assert_clean()
