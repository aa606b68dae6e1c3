"""The [video] section of config.toml (the [[cameras]] are video.cameras.spec.CameraSpec)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from base.settings import Section


class VideoConfig(Section, frozen=True, forbid_unknown_fields=True):
    media_dir: str = "var/media"
    record: bool = True
    segment_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 10
    recordings_dir: str = "var/recordings"
    ffmpeg: str = ""
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    disk_quota_gb: Annotated[float, msgspec.Meta(gt=0)] = 50.0
    analysis: bool = True
    analysis_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    analysis_fps: Annotated[float, msgspec.Meta(gt=0, le=10)] = 2.0
    tile_width: Annotated[int, msgspec.Meta(ge=64, le=1920, multiple_of=2)] = 384
