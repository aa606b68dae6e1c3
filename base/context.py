"""What the platform gives every package at run time, under one typed application key."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network

from aiohttp import web

from base.hub import Hub
from base.pg import Pool
from base.sessions import Sessions
from base.vitals import LoopLag


class OpenSockets(weakref.WeakSet[web.WebSocketResponse]):
    """Every open WebSocket, so shutdown can close them with GOING_AWAY instead of dropping them."""


@dataclass(frozen=True)
class Platform:
    pool: Pool
    url: str  # the database's, for connections of their own (LISTEN, camera claims)
    hub: Hub
    sessions: Sessions
    loop_lag: LoopLag
    max_body_bytes: int
    utc_offset: timedelta  # local time for "today", days in statistics, opening hours
    request_deadline_s: float = 10.0  # a request not answered by then gets 503 (base.http)
    public_url: str = "http://127.0.0.1:8080"  # absolute links (feeds) start here, never at the Host header
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()  # whose X-Forwarded-For is believed


PLATFORM = web.AppKey("platform", Platform)
SOCKETS = web.AppKey("sockets", OpenSockets)
