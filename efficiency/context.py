"""What the efficiency routes share at run time, under one typed application key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from efficiency.appraisal import Weights
from efficiency.bulletin import Fonts
from efficiency.calendar import WorkingCalendar
from efficiency.live import CardBoard


@dataclass(frozen=True)
class Efficiency:
    calendar: WorkingCalendar
    yellow_share: float
    complaint_days: int
    weights: Weights
    fonts: Fonts
    board: CardBoard


EFFICIENCY = web.AppKey("efficiency", Efficiency)
