"""What request handlers share, under one typed application key."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from alerts.cap_publisher import CapPublisher
from alerts.escalator import Escalator
from alerts.sender import Sender
from command.accounts import Sessions
from command.config import Config
from command.hub import Hub
from command.plan_store import LivePlans
from command.vitals import LoopLag
from dispatch.directory import Directory
from dispatch.ids import IdReserves
from dispatch.pg import Pool
from dispatch.routing import Router
from dispatch.views import Views
from gis.areas import Facilities
from video.analysis import Analysis
from video.tiles import TileBoard
from video.walls import Walls


@dataclass(frozen=True)
class Services:
    config: Config
    pool: Pool
    hub: Hub
    sessions: Sessions
    directory: Directory
    router: Router
    views: Views
    loop_lag: LoopLag
    ids: IdReserves
    plans: LivePlans
    escalator: Escalator
    sender: Sender
    cap: CapPublisher
    facilities: Facilities
    evidence_key: Ed25519PrivateKey  # signs video evidence exports
    tiles: TileBoard  # the latest picture of each camera analysed here
    walls: Walls
    analysis: Analysis | None  # None when config turns analysis off


SERVICES = web.AppKey("services", Services)


class OpenSockets(weakref.WeakSet[web.WebSocketResponse]):
    """Every open WebSocket, so shutdown can close them with GOING_AWAY instead of dropping them."""


SOCKETS = web.AppKey("sockets", OpenSockets)
