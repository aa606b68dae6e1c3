"""ffmpeg: which binary, and the argument lists (kept as data) for each kind of source.

Arguments always go to ffmpeg as a list, never through a shell, and sources have been checked by
video.cameras.spec.check_source, so a URL cannot become an option.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


def binary(configured: str = "") -> str:
    """The configured ffmpeg, or the one the imageio-ffmpeg wheel ships (no system install needed)."""
    if configured:
        return configured
    import imageio_ffmpeg

    path: str = imageio_ffmpeg.get_ffmpeg_exe()
    return path


def input_args(url: str) -> list[str]:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        # TCP interleaving survives lossy links and NAT; the timeout (µs) ends a dead connection.
        return ["-rtsp_transport", "tcp", "-timeout", "5000000", "-i", url]
    if scheme in ("http", "https"):  # MJPEG over HTTP
        return ["-rw_timeout", "5000000", "-i", url]
    # A file plays as a live camera would: at its own pace, round and round (tests, replays, demo).
    return ["-re", "-stream_loop", "-1", "-i", urlsplit(url).path]


def record_args(url: str, segment_s: int, run: str, audio: str = "copy") -> list[str]:
    """Copy the main stream (video, and audio when present) into fixed-length segments, without
    re-encoding. Fragmented MP4, so a killed ffmpeg leaves every finished segment playable; the
    segment list (CSV: name, start, end in stream seconds) tells the recorder what is finished.
    Names carry the run (`run`): two runs in one second never write the same file. Audio MP4 cannot
    hold (G.711 PCMA/PCMU, common on Chinese cameras) is recorded as AAC (`audio="aac"`); the video
    is always copied. Run with TZ=UTC in the directory that receives the segments."""
    sound = ["-c:a", "aac", "-b:a", "64k"] if audio == "aac" else []
    return ["-hide_banner", "-loglevel", "warning", "-nostdin", "-y", *input_args(url),
            "-map", "0:v", "-map", "0:a?", "-c", "copy", *sound,
            "-f", "segment", "-segment_time", str(segment_s), "-segment_format", "mp4",
            "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
            "-reset_timestamps", "1", "-strftime", "1",
            "-segment_list", segment_listing(run), "-segment_list_type", "csv", f"%Y%m%dT%H%M%S-{run}.mp4"]


def audio_unfit_for_mp4(stderr: str) -> bool:
    """ffmpeg refused to start because a stream's codec has no place in MP4 (G.711 audio)."""
    return "Could not find tag for codec" in stderr or "codec not currently supported in container" in stderr


def segment_listing(run: str) -> str:
    """The file in which a run's ffmpeg lists the segments it has finished."""
    return f"segments-{run}.csv"


def segment_dir(root: Path, camera_code: str) -> Path:
    return root / camera_code


def focus_args(url: str, mode: str) -> list[str]:
    """Full motion for one focused wall tile, written to stdout. "mse": the main stream's H.264
    remuxed, not transcoded, into fragmented MP4 for Media Source Extensions, cut every half second
    so the browser need not wait a whole GOP; "jpeg": the fallback, small JPEGs at 5 frames/s as
    multipart (mpjpeg), where the browser has no MSE."""
    head = ["-hide_banner", "-loglevel", "error", "-nostdin", "-fflags", "nobuffer", *input_args(url)]
    if mode == "mse":
        return [*head, "-map", "0:v:0", "-c:v", "copy", "-an", "-f", "mp4",
                "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000", "pipe:1"]
    return [*head, "-map", "0:v:0", "-vf", "fps=5,scale=640:-2", "-c:v", "mjpeg", "-q:v", "6", "-f", "mpjpeg",
            "pipe:1"]
