"""What the call routes share at run time, under typed application keys."""

from __future__ import annotations

from aiohttp import web

from base.throttle import Window
from calls.switchboard import Switchboard

SWITCHBOARD = web.AppKey("switchboard", Switchboard)
CALLER_LIMIT = web.AppKey("caller_limit", Window)  # failed caller tokens and sessions, per address
