"""The two pages in a real browser (Debian's Chromium through Playwright): a dispatcher records a
fire on the console; the station's terminal sounds its tone until a person acknowledges; the
station reports back; the console shows the incident closed. Screenshots go to test-artifacts/."""

from __future__ import annotations

from playwright.async_api import Browser, Page

from tests.conftest import ARTIFACTS, ROOT
from tests.helpers import Liandong


async def log_in(page: Page, username: str, button: str) -> None:
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", "liandong")
    await page.click(button)


async def audio(page: Page) -> dict[str, object]:
    state: dict[str, object] = await page.evaluate(
        "({armed: liandongAudio.armed, ringing: liandongAudio.ringing, tones: liandongAudio.tonesPlayed,"
        " context: liandongAudio.context && liandongAudio.context.state})")
    return state


async def test_a_fire_reported_on_the_console_rings_at_the_station_until_acknowledged(
        liandong: Liandong, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    terminal = await (await browser.new_context(viewport={"width": 1024, "height": 768})).new_page()
    await terminal.goto(f"{liandong.base_url}/terminal")
    await log_in(terminal, "fire-xiling", "#login-form button")  # the click also arms the sound
    await terminal.wait_for_selector("#conn.up")
    assert (await audio(terminal))["armed"] is True

    console = await (await browser.new_context(viewport={"width": 1920, "height": 1080})).new_page()
    await console.goto(f"{liandong.base_url}/console")
    await log_in(console, "dispatcher", "#login-form button")
    await console.wait_for_selector("#map path")  # the jurisdictions are drawn
    await console.fill("#lon", "111.29")
    await console.fill("#lat", "30.70")
    await console.select_option("#type", "201")
    await console.fill("textarea[name=description]", "居民楼三层起火")
    await console.click("#preview-button")
    await console.wait_for_selector("#preview li")
    assert "西陵消防站" in await console.inner_text("#preview")
    await console.click("#submit")

    await terminal.wait_for_selector(".ticket .ack:not(.hidden)")
    await terminal.wait_for_function("liandongAudio.tonesPlayed >= 2", timeout=10_000)  # it repeats
    ringing = await audio(terminal)
    assert ringing["ringing"] is True and ringing["context"] == "running"
    assert await terminal.is_visible("#banner")
    await terminal.screenshot(path=str(ARTIFACTS / "terminal-ringing.png"))

    await terminal.click(".ticket .ack")
    await terminal.wait_for_selector(".ticket form.feedback:not(.hidden)")
    silent = await audio(terminal)
    assert silent["ringing"] is False and not await terminal.is_visible("#banner")
    await terminal.wait_for_timeout(2500)  # a full repeat later: still silent
    assert (await audio(terminal))["tones"] == silent["tones"]

    await terminal.fill(".feedback input[name=outcome]", "明火已扑灭")
    await terminal.click(".feedback button")
    await console.wait_for_selector("#incidents .state.closed")
    await console.screenshot(path=str(ARTIFACTS / "console-closed.png"))
    assert "closed" in await console.inner_text("#incidents")


def test_the_pages_load_nothing_from_the_internet() -> None:
    for page in (ROOT / "command" / "web").iterdir():
        text = page.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, page.name
