"""What the efficiency routes share at run time, under one typed application key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from efficiency.calendar import WorkingCalendar


@dataclass(frozen=True)
class Efficiency:
    calendar: WorkingCalendar
    yellow_share: float


EFFICIENCY = web.AppKey("efficiency", Efficiency)
