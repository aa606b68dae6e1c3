"""What the page tests share: logging in, reading a page's audio state, and a watch on every page
for script errors and for any request that would leave this server (the pages must work offline)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Page, Request, ViewportSize
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.conftest import ARTIFACTS
from tests.helpers import PASSWORD

TABLET = ViewportSize(width=768, height=1024)
DESKTOP = ViewportSize(width=1920, height=1080)


async def log_in(page: Page, username: str) -> None:
    await page.fill("#login-form input[name=username]", username)
    await page.fill("#login-form input[name=password]", PASSWORD)
    await page.click("#login-form button")  # the click also arms the page's sound


async def audio(page: Page) -> dict[str, Any]:
    """The page's Web Audio state; `heard` counts tones measured at the output by its analyser."""
    state: dict[str, Any] = await page.evaluate(
        "({armed: liandongAudio.armed, ringing: liandongAudio.ringing, played: liandongAudio.tonesPlayed,"
        " heard: liandongAudio.heard, peak: liandongAudio.peak,"
        " context: liandongAudio.context && liandongAudio.context.state})")
    return state


@dataclass
class Watch:
    """Script errors and requests to anywhere but `origin`, seen on the pages watched."""

    origin: str
    also: tuple[str, ...] = ()  # other servers the pages are configured to use (an on-premise tile service)
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def page(self, page: Page) -> Page:
        self.follow(page)
        return page

    def follow(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.on("request", self._request)

    def _request(self, request: Request) -> None:
        if not request.url.startswith((self.origin, *self.also, "data:", "blob:")):
            self.outside.append(request.url)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.outside == [], f"pages fetched from outside the server: {self.outside}"


async def fits(page: Page) -> None:
    """Nothing wider than the screen: no sideways scrolling at this size."""
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than a {page.viewport_size} screen"


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await asyncio.sleep(0.3)  # let the last paint (map, fonts) land
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def click_map(page: Page, lon: float, lat: float) -> None:
    """Click the console's map where (lon, lat) is drawn, as a dispatcher pointing at a place.

    Under load Leaflet can still be settling the view it was just given, or the page still laying
    out around the map, and a click can pass unseen; a dispatcher whose click left no mark clicks
    again, and so does the test: three times at most, finding the point afresh each time."""
    before = await page.input_value("#lon")
    for _ in range(3):
        x, y = await page.evaluate(
            "([lat, lon]) => { const p = liandongConsole.map.latLngToContainerPoint([lat, lon]);"
            " const r = document.getElementById('map').getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
            [lat, lon])
        await page.mouse.click(x, y)
        try:
            await page.wait_for_function("(before) => document.getElementById('lon').value !== before", arg=before,
                                         timeout=3000)
            return
        except PlaywrightTimeout:
            continue
    under = await page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y);"
                                " return [e ? e.tagName + '#' + e.id : 'nothing',"
                                " document.getElementById('desk').classList.contains('hidden'),"
                                " document.getElementById('login-error').textContent,"
                                " document.getElementById('conn').textContent]; }", [x, y])
    raise AssertionError(f"three clicks on the map at ({x:.0f}, {y:.0f}) left no mark; under the pointer, desk"
                         f" hidden, login error, connection: {under}")
