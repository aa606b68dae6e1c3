"""The three-way call as its people use it, in Debian's Chromium with a fake microphone per party,
each playing its own tone: the dispatcher opens the call on the console, the fire station's
terminal answers, the caller joins from the link on a phone. Each page measures the other two tones
at its own audio output. Then a call whose browsers may only use a TURN relay, through coturn."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Geolocation, Page, ViewportSize, async_playwright

from app.config import load
from app.server import build_app
from calls.client import tone_levels
from calls.context import SWITCHBOARD
from tests.browser import DESKTOP, Watch, log_in, screenshot
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, config_text_for_tests, free_port
from tests.helpers import Liandong

XILING = (111.29, 30.70)
PHONE = ViewportSize(width=390, height=844)
TONES = {"dispatcher": 500.0, "station": 1100.0, "caller": 1700.0}
CONTROL_HZ = 800.0  # no party's tone: the floor the tones are measured against
CALLER_AT = Geolocation(latitude=30.7012, longitude=111.2911, accuracy=15)


def tone_file(folder: Path, hz: float) -> Path:
    """A WAV file Chromium plays as the microphone, in a loop."""
    path = folder / f"tone-{int(hz)}.wav"
    t = np.arange(48_000 * 4) / 48_000
    samples = (9000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes(samples.tobytes())
    return path


@contextlib.asynccontextmanager
async def chromium_speaking(hz: float, folder: Path) -> AsyncIterator[Browser]:
    """A browser whose microphone says `hz` (and whose camera is Chromium's test pattern)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={tone_file(folder, hz)}"])
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def centre(database_url: str, folder: Path, edits: dict[str, str]) -> AsyncIterator[Liandong]:
    text = config_text_for_tests().replace('recordings_dir = "var/calls"', f'recordings_dir = "{folder / "calls"}"')
    for old, new in edits.items():
        text = text.replace(old, new)
    (folder / "config.toml").write_text(text, encoding="utf-8")
    server = TestServer(build_app(load(folder / "config.toml", environ={"LIANDONG_DATABASE_URL": database_url})),
                        host="127.0.0.1")
    await server.start_server()
    try:
        async with Liandong(str(server.make_url("/")), server.app) as client:
            yield client
    finally:
        await server.close()


async def hears(page: Page, seconds: float = 3.0) -> dict[float, float]:
    """For each party's tone, the share of moments it was heard at this page's output."""
    frequencies = [*TONES.values(), CONTROL_HZ]
    counts = dict.fromkeys(TONES.values(), 0)
    samples = int(seconds / 0.1)
    for _ in range(samples):
        levels = dict(zip(frequencies, await page.evaluate("(f) => liandongLine.levels(f)", frequencies),
                          strict=True))
        loudest = max(levels[hz] for hz in TONES.values())
        for hz in TONES.values():
            # Heard: well above the floor and within 30 dB of the loudest voice. The codec leaves a
            # trace of a subtracted voice some 50 dB down; that is not hearing it.
            if levels[hz] > levels[CONTROL_HZ] + 20 and levels[hz] > loudest - 30:
                counts[hz] += 1
        await asyncio.sleep(0.1)
    return {hz: count / samples for hz, count in counts.items()}


async def connected(page: Page) -> None:
    await page.wait_for_function("() => window.liandongLine && liandongLine.state === 'connected'", timeout=20_000)


async def open_call_on_console(console: Page, liandong: Liandong) -> tuple[dict[str, Any], str]:
    incident = await liandong.report("201", 2, *XILING, caller_name="王先生", caller_phone="13907170001")
    await console.click(f"#incidents tr[data-incident='{incident['id']}']")
    await console.click("#call-open")
    await console.wait_for_function("() => document.getElementById('call-link')?.innerText.includes('/call#')")
    link = await console.inner_text("#call-link")
    return incident, link


async def station_of(liandong: Liandong, incident: dict[str, Any]) -> str:
    listing = (await liandong.call("GET", "/api/subcentres", as_user="dispatcher"))[1]["features"]
    ticketed = incident["tickets"][0]["subcentre_id"]
    return str(next(f["properties"]["code"] for f in listing if f["id"] == ticketed))


async def test_dispatcher_station_and_caller_talk_in_their_browsers_and_the_call_is_kept(
        database_url: str, tmp_path: Path) -> None:
    async with centre(database_url, tmp_path, {}) as liandong, \
            chromium_speaking(TONES["dispatcher"], tmp_path) as dispatcher_browser, \
            chromium_speaking(TONES["station"], tmp_path) as station_browser, \
            chromium_speaking(TONES["caller"], tmp_path) as caller_browser:
        watch = Watch(liandong.base_url)
        console = watch.page(await (await dispatcher_browser.new_context(viewport=DESKTOP)).new_page())
        await console.goto(f"{liandong.base_url}/console")
        await log_in(console, "dispatcher")
        await console.wait_for_selector("#map .leaflet-interactive")
        incident, link = await open_call_on_console(console, liandong)
        await connected(console)

        terminal = watch.page(await (await station_browser.new_context(viewport=DESKTOP)).new_page())
        await terminal.goto(f"{liandong.base_url}/terminal")
        await log_in(terminal, await station_of(liandong, incident))
        await terminal.wait_for_selector(".call-ring button.answer")
        assert await terminal.evaluate("liandongAudio.callRinging") is True  # it rings until a person answers
        await terminal.click(".call-ring button.answer")
        await connected(terminal)

        phone = await caller_browser.new_context(viewport=PHONE, geolocation=CALLER_AT,
                                                 permissions=["geolocation", "microphone", "camera"])
        caller = watch.page(await phone.new_page())
        await caller.goto(link)
        assert "录音" in await caller.inner_text(".recorded")  # the page says the call is recorded
        assert "#" not in caller.url  # the token left the address bar
        await caller.check("#share-position")
        await caller.check("#share-camera")
        await caller.click("#join")
        await connected(caller)

        for page, own in ((console, "dispatcher"), (terminal, "station"), (caller, "caller")):
            heard = await hears(page)
            for who, hz in TONES.items():
                if who == own:
                    assert heard[hz] < 0.2, f"the {own}'s page hears its own voice back: {heard}"
                else:
                    assert heard[hz] > 0.6, f"the {own}'s page does not hear the {who}: {heard}"

        # The caller's phone said where it is: on the console's map, and one click moves the incident.
        await console.wait_for_selector("#call-position")
        assert "111.29110" in await console.inner_text("#call-position")
        assert await console.locator(".caller-position").count() == 1
        await console.click("#call-adopt")
        await console.wait_for_function(
            "() => document.querySelector('#detail-body dd')?.innerText.includes('111.29110')", timeout=10_000)
        # The caller's camera reaches the console.
        await console.wait_for_function("() => document.getElementById('call-video').videoWidth > 0", timeout=15_000)
        await screenshot(console, "console-three-way-call")
        await screenshot(caller, "caller-phone-in-call")

        await console.click("#call-hangup")
        await caller.wait_for_selector("#after:not(.hidden)", timeout=20_000)
        await terminal.wait_for_function("() => !document.querySelector('.call-ring')", timeout=10_000)
        await console.wait_for_selector("[data-play][data-file='0']", timeout=20_000)
        await console.click("[data-play][data-file='0']")
        await console.wait_for_function(
            "() => { const a = document.querySelector('.recordings audio'); return a && a.readyState >= 2 }",
            timeout=10_000)

        stored = (await liandong.call("GET", f"/api/incidents/{incident['id']}/calls", as_user="dispatcher"))[1]
        call = stored["calls"][0]
        assert [f["kind"] for f in call["recording"]][:2] == ["sound", "picture"]
        path = liandong.app[SWITCHBOARD].recording(call["recording"][0])  # type: ignore[index]
        with av.open(str(path)) as container:
            samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)]).astype(np.float64)
        levels = tone_levels(samples, [*TONES.values(), CONTROL_HZ])
        for who, hz in TONES.items():
            assert levels[hz] > 10 * levels[CONTROL_HZ], f"the recording lacks the {who}'s voice: {levels}"
        watch.assert_clean()


@contextlib.contextmanager
def coturn(folder: Path, secret: str) -> Any:
    """Debian's coturn on loopback, relaying to loopback peers (the server), with a shared secret."""
    port = free_port()
    log = folder / "turnserver.log"
    process = subprocess.Popen([
        shutil.which("turnserver") or "/usr/bin/turnserver", "-n", "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1", f"--listening-port={port}", "--min-port=49200", "--max-port=49400",
        "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=liandong.test", "--allow-loopback-peers",
        "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", f"--log-file={log}", "--simple-log", "-v"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port, log
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_call_whose_browsers_may_only_use_the_turn_relay_goes_through_coturn(
        database_url: str, tmp_path: Path) -> None:
    secret = "test-turn-secret-0717"
    with coturn(tmp_path, secret) as (port, log):
        edits = {"relay_only = false": "relay_only = true",
                 '# [[calls.ice_servers]]\n# urls = "turn:turn.centre.example:3478"\n# secret = "…"':
                 f'[[calls.ice_servers]]\nurls = "turn:127.0.0.1:{port}?transport=udp"\nsecret = "{secret}"'}
        async with centre(database_url, tmp_path, edits) as liandong, \
                chromium_speaking(TONES["dispatcher"], tmp_path) as dispatcher_browser, \
                chromium_speaking(TONES["caller"], tmp_path) as caller_browser:
            servers = (await liandong.call("GET", "/api/call-servers", as_user="dispatcher"))[1]
            assert servers["relay_only"] is True and servers["ice_servers"][0]["username"].endswith(":dispatcher")
            console = await (await dispatcher_browser.new_context(viewport=DESKTOP)).new_page()
            await console.goto(f"{liandong.base_url}/console")
            await log_in(console, "dispatcher")
            await console.wait_for_selector("#map .leaflet-interactive")
            _, link = await open_call_on_console(console, liandong)
            caller = await (await caller_browser.new_context(
                viewport=PHONE, permissions=["microphone"])).new_page()
            await caller.goto(link)
            await caller.click("#join")
            for page in (console, caller):
                await connected(page)
                assert await page.evaluate("liandongLine.route()") == "relay"
            heard = await hears(caller)
            assert heard[TONES["dispatcher"]] > 0.6, f"the caller does not hear the dispatcher through TURN: {heard}"
            assert "allocation" in log.read_text(errors="replace").lower()  # coturn's own record of the relay


pytestmark = pytest.mark.timeout(240)
