"""What alerts' routes share at run time (and tests drive: they fire deadlines by naming the time)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from alerts.cap_publisher import CapPublisher
from alerts.escalator import Escalator
from alerts.sender import NotificationSender


@dataclass(frozen=True)
class Alerts:
    escalator: Escalator
    sender: NotificationSender
    cap: CapPublisher


ALERTS = web.AppKey("alerts", Alerts)
