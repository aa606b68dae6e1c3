"""The focused view as the supervisor sees it: the wall page in Chromium, one camera focused, and each
frame the page presents read back off the screen.

The source burns its frame number into the picture as bars (bench.video's clip). For every frame the
video element presents, a probe draws it to a canvas, reads the bars, and keeps (when it was presented,
frame number). A frame left the camera at the mount's start + number / fps, so the difference is the
whole path: RTSP, Liandong's ingest and fan-out, the socket, Media Source Extensions, decode and paint.
The browser and the RTSP server run on this machine, on one clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from bench.dispatch import percentile

CHROMIUM = "/usr/bin/chromium"  # Debian's: nothing is downloaded
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]

# Runs in the page: the probe on the focused video. Samples are [epoch ms presented, frame number].
PROBE = """([y, x0, step, width, bars]) => {
  const video = document.getElementById("focus-video");
  const canvas = document.createElement("canvas");
  canvas.width = 1920; canvas.height = 1080;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  window.liandongScreen = { samples: [], keeping: false };
  const seen = (now, frame) => {
    if (window.liandongScreen.keeping && video.videoWidth === 1920) {
      context.drawImage(video, 0, 0, 1920, 1080);
      const row = context.getImageData(0, y, 1920, 1).data;
      let n = 0;
      for (let i = 0; i < bars; i++) if (row[4 * (x0 + i * step + (width >> 1))] > 128) n += 1 << i;
      window.liandongScreen.samples.push([performance.timeOrigin + frame.presentationTime, n]);
    }
    video.requestVideoFrameCallback(seen);
  };
  video.requestVideoFrameCallback(seen);
}"""


@dataclass(frozen=True)
class Bars:
    """Where the source draws its frame number: bit i is a white bar at x = x0 + i * step."""

    y: int
    x0: int
    step: int
    width: int
    count: int
    fps: int


class FocusedScreen:
    """The wall page with one camera focused, and the frames it presented."""

    def __init__(self, page: Page, bars: Bars) -> None:
        self.page = page
        self.bars = bars

    async def start(self) -> None:
        """Keep the frames presented from now on."""
        await self.page.evaluate("() => { window.liandongScreen.samples = []; window.liandongScreen.keeping = true; }")

    async def samples(self) -> list[tuple[float, int]]:
        raw: list[list[float]] = await self.page.evaluate("() => window.liandongScreen.samples")
        return [(at / 1000, int(n)) for at, n in raw]

    def latencies_ms(self, samples: list[tuple[float, int]], started_at: float) -> list[tuple[float, float]]:
        """(seconds since the first sample, ms from the frame leaving the camera to the screen) for each
        frame presented. The 16-bit number wraps after 43 minutes at 25 fps: unwrapped as it goes."""
        out: list[tuple[float, float]] = []
        wraps, last = 0, -1
        period = 1 << self.bars.count
        for at, n in samples:
            if last >= 0 and n < last - period // 2:
                wraps += 1
            last = n
            left = started_at + (n + wraps * period) / self.bars.fps
            out.append((at - samples[0][0], (at - left) * 1000))
        return out


@contextlib.asynccontextmanager
async def focused_screen(base: str, username: str, password: str, camera_id: int, bars: Bars
                         ) -> AsyncIterator[FocusedScreen]:
    """Chromium on the wall page, logged in, `camera_id` focused and its picture playing."""
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            await page.goto(f"{base}/wall")
            await page.fill("#login-form input[name=username]", username)
            await page.fill("#login-form input[name=password]", password)
            await page.click("#login-form button")
            await page.wait_for_function(f"() => cameras.some((c) => c.id === {camera_id})", timeout=60_000)
            await page.evaluate(f"() => openFocus({camera_id})")
            await page.wait_for_function("() => document.querySelector('#focus-video').currentTime > 0.5",
                                         timeout=60_000)
            await page.evaluate(PROBE, [bars.y, bars.x0, bars.step, bars.width, bars.count])
            yield FocusedScreen(page, bars)
        finally:
            await browser.close()


def summary(latencies: list[tuple[float, float]]) -> dict[str, Any] | None:
    """p50 and p99 over the window, and the drift: the last minute's median minus the first minute's."""
    if not latencies:
        return None
    values = [ms for _, ms in latencies]
    end = latencies[-1][0]
    first = [ms for at, ms in latencies if at < 60]
    last = [ms for at, ms in latencies if at >= end - 60]
    return {"p50": round(percentile(values, 50)), "p99": round(percentile(values, 99)), "frames": len(values),
            "first_minute_p50": round(percentile(first, 50)), "last_minute_p50": round(percentile(last, 50)),
            "drift_ms": round(percentile(last, 50) - percentile(first, 50)), "window_s": round(end, 1)}
