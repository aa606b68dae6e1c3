"""What the command centre's routes share at run time, under one typed application key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from command.intake import Intake
from command.plan_store import LivePlans
from command.settings import DecisionConfig, MapConfig, SurgeConfig
from gis.areas import Facilities


@dataclass(frozen=True)
class Command:
    intake: Intake
    plans: LivePlans
    facilities: Facilities
    surge: SurgeConfig
    decision: DecisionConfig
    map: MapConfig


COMMAND = web.AppKey("command", Command)
