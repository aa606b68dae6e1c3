"""What video's routes and sockets share at run time, under one typed application key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from video.analysis.workers import Analysis
from video.live.feed import LiveFeeds
from video.settings import VideoConfig
from video.wall.relay import Relay
from video.wall.tiles import TileBoard
from video.wall.walls import Walls


@dataclass(frozen=True)
class Video:
    settings: VideoConfig
    media_dir: Path  # file:// cameras are read from here only
    ffmpeg: str  # the binary
    evidence_key: Ed25519PrivateKey  # signs evidence exports
    tiles: TileBoard  # the latest picture of each camera ingested in this process
    walls: Walls
    analysis: Analysis | None  # None when config turns analysis off
    live: LiveFeeds  # the live streams of the cameras this process ingests, for the focused viewers
    relay: Relay  # other nodes' cameras, for this node's walls and focused viewers


VIDEO = web.AppKey("video", Video)
