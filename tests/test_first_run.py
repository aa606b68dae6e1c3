"""The first start says what it is waiting for: the demo clips are drawn once, announced with how long
it takes, and a clip interrupted half-way is drawn again rather than served broken."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from video import demo
from video.recording import ffmpeg


def test_drawing_the_demo_clips_is_announced_and_done_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(demo, "LOOP_S", 2)  # short clips: the same drawing, quicker
    (tmp_path / "demo-window-2.drawing.mp4").write_bytes(b"half a clip from an interrupted start")
    caplog.set_level(logging.INFO, logger="video.demo")
    specs = demo.cameras(tmp_path, ffmpeg.binary(), 2)
    assert [s.code for s in specs] == ["demo-window-1", "demo-window-2"]
    said = [r.getMessage() for r in caplog.records]
    assert said[0].startswith("first start: drawing 2 demo window-camera clips") and "once" in said[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-window-1.mp4", "demo-window-2.mp4"]

    caplog.clear()
    demo.cameras(tmp_path, ffmpeg.binary(), 2)
    assert not caplog.records  # nothing to draw, nothing to say
