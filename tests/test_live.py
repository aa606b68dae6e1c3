"""The live fan-out's parts on their own: ffmpeg's fragmented MP4 read box by box, each fragment told
to open with a keyframe exactly when the decoder says so, and viewers that fall behind skipping to the
live edge without ever holding up the feed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from video.analysis.watcher import keyframe_picture
from video.live.feed import BEHIND_FRAGMENTS, Codec, LiveFeed, LiveFeeds, LiveViewer
from video.live.fmp4 import Init, Malformed, boxes, first_video_sample, opens_with_keyframe, read_init
from video.recording import ffmpeg


def live_stream(seconds: int = 4, gop: int = 25, preset: str = "ultrafast") -> bytes:
    """What an ingest writes to its live pipe: 25 fps H.264 with AAC, cut every 200 ms and at keyframes."""
    return subprocess.run(
        [ffmpeg.binary(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:v", "libx264", "-preset", preset,
         "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac",
         "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "200000",
         "pipe:1"], check=True, capture_output=True, timeout=60).stdout


def split(stream: bytes) -> tuple[Init, list[bytes]]:
    """The init segment and the fragments (moof + mdat), as the ingest's reader cuts them."""
    parts = [(kind, stream[body - 8:end]) for kind, body, end in boxes(stream)]
    moov_at = next(i for i, (kind, _) in enumerate(parts) if kind == b"moov")
    init = read_init(b"".join(data for _, data in parts[:moov_at + 1]))
    fragments = [parts[i][1] + parts[i + 1][1] for i in range(moov_at + 1, len(parts) - 1)
                 if parts[i][0] == b"moof" and parts[i + 1][0] == b"mdat"]
    return init, fragments


def first_video_frame_is_key(data: bytes, tmp_path: Path) -> bool:
    path = tmp_path / "piece.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        packet = next(p for p in container.demux(container.streams.video[0]) if p.size)
        return bool(packet.is_keyframe)


def test_the_init_segment_names_the_video_and_audio_codecs_for_mse() -> None:
    init, fragments = split(live_stream(seconds=2))
    assert init.mime.startswith('video/mp4; codecs="avc1.') and init.mime.endswith(', mp4a.40.2"')
    assert init.has_audio and init.video_track is not None
    assert len(fragments) >= 8  # 2 s cut every 200 ms


def test_a_fragment_opens_with_a_keyframe_exactly_when_its_first_video_frame_is_one(tmp_path: Path) -> None:
    init, fragments = split(live_stream(seconds=4, gop=25))
    told = [opens_with_keyframe(f, init) for f in fragments]
    assert sum(told) == 4  # one keyframe a second, and frag_keyframe starts a fragment at each
    for fragment, keyframe in zip(fragments, told, strict=True):
        if keyframe:  # a viewer may start here: the decoder agrees
            assert first_video_frame_is_key(init.data + fragment, tmp_path)
    starts = [i for i, k in enumerate(told) if k]
    assert not first_video_frame_is_key(init.data + fragments[starts[1] + 1], tmp_path)


def test_each_keyframe_is_decoded_from_its_fragment_at_once_even_with_b_frames() -> None:
    """The analysis gets a picture for every keyframe fragment as it comes, not several keyframes later
    (a stream with B-frames makes a decoder left to itself hold pictures for reordering)."""
    init, fragments = split(live_stream(seconds=4, preset="veryfast"))  # veryfast uses B-frames
    keyframes = [f for f in fragments if opens_with_keyframe(f, init)]
    pictures = [keyframe_picture(init.data, fragment, 160) for fragment in keyframes]
    assert len(keyframes) == 4 and all(p is not None and p.shape == (90, 160, 3) for p in pictures)
    assert first_video_sample(fragments[1], init) is not None
    assert keyframe_picture(init.data, b"\x00\x00\x00\x08moof", 160) is None  # no video sample in it


def test_a_box_that_does_not_fit_is_refused_not_read_past_its_end() -> None:
    with pytest.raises(Malformed):
        list(boxes(b"\x00\x00\x10\x00moof" + b"\x00" * 16))
    with pytest.raises(Malformed):
        read_init(b"\x00\x00\x00\x08ftyp")


def test_a_new_viewer_starts_at_the_latest_keyframe_with_the_codec_and_init_first() -> None:
    init, fragments = split(live_stream(seconds=2))
    feed = LiveFeed()
    feed.begin(init)
    told = [opens_with_keyframe(f, init) for f in fragments]
    for fragment, keyframe in zip(fragments, told, strict=True):
        feed.fragment(fragment, keyframe)
    viewer = LiveViewer()
    feed.join(viewer)
    queued = viewer._items
    last_key = max(i for i, k in enumerate(told) if k)
    assert queued[0] == Codec(init.mime) and queued[1] == init.data
    assert queued[2:] == fragments[last_key:]


def test_a_viewer_that_falls_behind_loses_its_backlog_and_resumes_at_the_next_keyframe() -> None:
    init, fragments = split(live_stream(seconds=4))
    told = [opens_with_keyframe(f, init) for f in fragments]
    feed, stalled, reading = LiveFeed(), LiveViewer(), LiveViewer()
    feed.begin(init)
    feed.join(stalled)
    feed.join(reading)
    sent_to_reader: list[bytes | Codec] = []
    for fragment, keyframe in zip(fragments, told, strict=True):
        feed.fragment(fragment, keyframe)  # never waits, whoever is behind
        sent_to_reader += reading._items
        reading._items, reading._head = [], 0
    assert sent_to_reader[2:] == fragments  # the viewer that keeps up gets every fragment
    assert stalled.skipped >= 1
    waiting = stalled._items
    assert waiting[:2] == [Codec(init.mime), init.data]  # never sent: still goes first
    assert len(waiting) - 2 <= BEHIND_FRAGMENTS
    resumed = waiting[2]
    assert isinstance(resumed, bytes)
    first = fragments.index(resumed)
    assert told[first]  # what it gets next opens with a keyframe


def test_a_restarted_stream_gives_every_viewer_the_new_codec_and_init() -> None:
    init, fragments = split(live_stream(seconds=1))
    feed, viewer = LiveFeed(), LiveViewer()
    feed.join(viewer)
    assert viewer._items == []  # nothing to show before the ingest's first init
    feed.begin(init)
    feed.fragment(fragments[0], True)
    feed.ended()
    feed.fragment(fragments[1], False)  # between runs: dropped
    feed.begin(init)
    assert viewer._items == [Codec(init.mime), init.data]


def test_a_camera_started_again_keeps_its_viewers_and_a_released_one_is_not_offered() -> None:
    init, fragments = split(live_stream(seconds=1))
    feeds, viewer = LiveFeeds(), LiveViewer()
    feeds.open(7).join(viewer)
    feeds.close(7)  # its registration changed: stopped ...
    assert feeds.get(7) is None  # ... and not offered to new viewers while nobody ingests it
    feed = feeds.open(7)  # ... and started again
    feed.begin(init)
    feed.fragment(fragments[0], True)
    assert viewer._items == [Codec(init.mime), init.data, fragments[0]]  # the viewer kept watching
    feed.leave(viewer)
    feeds.close(7)
    assert feeds.get(7) is None and feeds._feeds == {}
