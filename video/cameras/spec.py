"""Window cameras (办事窗口监控): what a camera is, and the checks that keep its source safe.

A camera's source URL is handed to ffmpeg, so it must be a plain stream address and nothing
ffmpeg could read as an option or as one of its own protocols (concat:, subfile:, pipe:, data: ...
which read local files or memory): only rtsp(s), http(s) and files under the media folder pass.
Credentials in a URL stay on the server: `redact` is what browsers and logs see.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlsplit, urlunsplit

import msgspec

from base.errors import DomainError
from base.messages import PLAIN
from gis.coords import Location
from video.analysis.detectors import Thresholds

_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f|\\]")
_NETWORK = {"rtsp", "rtsps", "http", "https"}
_PERIOD = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class RegionOfInterest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The staff seat, as fractions of the frame (0,0 top left), so it survives a resolution change."""

    x: Fraction
    y: Fraction
    width: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]
    height: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]


class OpeningHours(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    days: list[Annotated[int, msgspec.Meta(ge=1, le=7)]] = msgspec.field(
        default_factory=lambda: [1, 2, 3, 4, 5])  # ISO weekdays, 1 = Monday
    periods: list[Annotated[str, msgspec.Meta(max_length=11)]] = msgspec.field(
        default_factory=lambda: ["08:30-12:00", "14:00-17:30"])


class CameraSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A window camera as registered through config.toml or the API."""

    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]
    department: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]  # whose service hall
    window: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=20)]  # 窗口号
    location: Location
    main_url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]  # recorded
    sub_url: Annotated[str, msgspec.Meta(max_length=2000)] = ""  # analysed and shown in tiles, if any
    roi: RegionOfInterest = RegionOfInterest(0.25, 0.25, 0.5, 0.5)
    opening_hours: OpeningHours = OpeningHours()
    thresholds: Thresholds = Thresholds()
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None  # None: video.retention_days


class CameraProblem(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field)


def check_source(url: str, media_dir: Path, field: str) -> None:
    """Refuse anything but a plain rtsp(s)/http(s) address or a file under `media_dir`."""
    if _UNSAFE.search(url) or url.startswith("-"):
        raise CameraProblem(field, "the URL holds spaces, control characters, '|' or '\\', or starts with '-'")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in _NETWORK:
        if not parts.hostname:
            raise CameraProblem(field, "a stream URL needs a host")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError:
            raise CameraProblem(field, "the port is not a number from 0 to 65535") from None
        return
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise CameraProblem(field, "a file URL names a local file: file:///path")
        root = media_dir.resolve()
        target = Path(parts.path).resolve()
        if not target.is_relative_to(root):
            raise CameraProblem(field, f"files are read only from the media folder {root}")
        return
    raise CameraProblem(field, f"use rtsp://, rtsps://, http(s):// or file:// (not {scheme or 'a bare path'}:)")


def check(spec: CameraSpec, media_dir: Path) -> None:
    check_source(spec.main_url, media_dir, "main_url")
    if spec.sub_url:
        check_source(spec.sub_url, media_dir, "sub_url")
    roi = spec.roi
    if roi.x + roi.width > 1.0 or roi.y + roi.height > 1.0:
        raise CameraProblem("roi", "the region of interest reaches outside the frame (x + width and"
                                   " y + height must not exceed 1)")
    for i, period in enumerate(spec.opening_hours.periods):
        if not _PERIOD.match(period) or period[:5] >= period[6:]:
            raise CameraProblem(f"opening_hours.periods[{i}]", "write a period as HH:MM-HH:MM, start before end")


# A name=value pair whose name says it is a credential, wherever in the URL it sits: the query
# (?user=admin&pwd=…, Dahua, Hikvision), or the path (/user=admin_password=…_channel=1, XMeye).
# A value ends at the URL's separators, or at "_" only where another name= follows.
_SECRET_PAIR = re.compile(r"(?i)([a-z_]*(?:user|usr|pwd|pass|token|key|auth|secret|sig|login|cred|session)[a-z_]*)"
                          r"=((?:(?!_[a-z]+=)[^&;/?#])*)")


def redact(url: str) -> str:
    """The URL without its user name, password or any credential-like parameter: what may leave the
    server. The host stays as written (an IPv6 host keeps its brackets)."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    rest = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    rest = _SECRET_PAIR.sub(lambda m: f"{m[1]}=***" if m[2] else m[0], rest)
    return (f"{parts.scheme}://" if parts.scheme else "") + netloc + rest


def secrets(url: str) -> list[str]:
    """The credential values in a URL, longest first (raw and percent-decoded)."""
    parts = urlsplit(url)
    found = {parts.username or "", parts.password or ""}
    found |= {m[2] for m in _SECRET_PAIR.finditer(urlunsplit(("", "", parts.path, parts.query, parts.fragment)))}
    found |= {unquote(value) for value in found}
    return sorted((value for value in found if value), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` (a program's complaint, a log line) with the URL redacted and each of its credentials
    taken out wherever else it appears."""
    text = text.replace(url, redact(url))
    for value in secrets(url):
        text = text.replace(value, "***")
    return text
