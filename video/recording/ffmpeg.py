"""ffmpeg: which binary, and the argument lists (kept as data) for each kind of source.

Arguments always go to ffmpeg as a list, never through a shell, and sources have been checked by
video.cameras.spec.check_source, so a URL cannot become an option.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class Outputs:
    """What one camera's ingest ffmpeg writes besides (or instead of) its segments."""

    record: bool = True  # segments into the working directory
    live: bool = False  # fragmented MP4, video copied and audio as MSE plays it, to stdout


def ingest_args(url: str, segment_s: int, run: str, outputs: Outputs, audio: str = "copy",
                opened: datetime | None = None) -> list[str]:
    """One connection to the camera, every consumer served from it: ffmpeg demuxes once and writes
    each output from the same packets. Video is copied, never decoded, to segments and to the live
    stream (whose keyframe fragments also feed the analysis, video.ingest); audio MP4 cannot hold is
    encoded to AAC once per output that carries it."""
    sound = ["-c:a", "aac", "-b:a", "64k"] if audio == "aac" else []
    args = ["-hide_banner", "-loglevel", "warning", "-nostdin", "-y", *input_args(url)]
    if outputs.record:
        args += _segment_output(segment_s, run, sound, opened or datetime.now(UTC))
    if outputs.live:
        # Short fragments keep the viewer near the live edge; frag_keyframe starts one at each keyframe.
        args += ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", *sound, "-f", "mp4",
                 "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "200000",
                 "-flush_packets", "1", "pipe:1"]
    return args


def pictures_args(url: str, fps: float, tile_width: int) -> list[str]:
    """A sub-stream for analysis: all of it decoded (it is small), `fps` pictures a second to stdout."""
    return ["-hide_banner", "-loglevel", "warning", "-nostdin", *input_args(url), "-map", "0:v:0",
            "-vf", f"fps={fps:g},scale={tile_width}:-2", "-c:v", "mjpeg", "-q:v", "5", "-f", "mpjpeg",
            "-flush_packets", "1", "pipe:1"]  # each picture at once, not when a 32 KiB buffer fills


def segment_names(run: str, opened: datetime) -> str:
    """A run's segment file pattern: the UTC second the run opened, the segment's number, the run.
    Numbered, not named by the clock: a run catching up (the seconds buffered while ffmpeg probes the
    stream) finishes several segments within one second, and they must not overwrite each other."""
    return f"{opened.astimezone(UTC):%Y%m%dT%H%M%S}-%06d-{run}.mp4"


def _segment_output(segment_s: int, run: str, sound: list[str], opened: datetime) -> list[str]:
    return ["-map", "0:v", "-map", "0:a?", "-c", "copy", *sound,
            "-f", "segment", "-segment_time", str(segment_s), "-segment_format", "mp4",
            "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
            "-reset_timestamps", "1", "-segment_list", segment_listing(run), "-segment_list_type", "csv",
            segment_names(run, opened)]


def record_args(url: str, segment_s: int, run: str, audio: str = "copy") -> list[str]:
    """Copy the main stream (video, and audio when present) into fixed-length segments, without
    re-encoding. Fragmented MP4, so a killed ffmpeg leaves every finished segment playable; the
    segment list (CSV: name, start, end in stream seconds) tells the recorder what is finished.
    Names carry the run (`run`) and a number (segment_names). Audio MP4 cannot hold (G.711 PCMA/PCMU,
    common on Chinese cameras) is recorded as AAC (`audio="aac"`); the video is always copied. Run in
    the directory that receives the segments."""
    return ingest_args(url, segment_s, run, Outputs(), audio)


def audio_unfit_for_mp4(stderr: str) -> bool:
    """ffmpeg refused to start because a stream's codec has no place in MP4 (G.711 audio)."""
    return "Could not find tag for codec" in stderr or "codec not currently supported in container" in stderr


def segment_listing(run: str) -> str:
    """The file in which a run's ffmpeg lists the segments it has finished."""
    return f"segments-{run}.csv"


def segment_dir(root: Path, camera_code: str) -> Path:
    return root / camera_code


def focus_args(url: str, mode: str) -> list[str]:
    """A focused view's own connection, for a camera another server process ingests, written to
    stdout. "mse": the main stream's H.264 remuxed, not transcoded, with its audio as AAC, into
    fragmented MP4 for Media Source Extensions, cut every 200 ms so the browser need not wait a whole
    GOP; "jpeg": the fallback, small JPEGs at 5 frames/s as multipart (mpjpeg), without MSE."""
    head = ["-hide_banner", "-loglevel", "error", "-nostdin", "-fflags", "nobuffer", *input_args(url)]
    if mode == "mse":
        return [*head, "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-f", "mp4",
                "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "200000", "pipe:1"]
    return [*head, "-map", "0:v:0", "-vf", "fps=5,scale=640:-2", "-c:v", "mjpeg", "-q:v", "6", "-f", "mpjpeg",
            "pipe:1"]
