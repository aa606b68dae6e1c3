"""[efficiency] in config.toml: the yellow card's share of the promise, the centre's own calendar."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec

from base.settings import Section
from efficiency.appraisal import Weights


class EfficiencyConfig(Section, frozen=True, forbid_unknown_fields=True):
    yellow_share: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8  # of the promised limit, for the yellow card
    closures: list[date] = msgspec.field(default_factory=list)  # the centre's own rest days (a typhoon day)
    extra_working_days: list[date] = msgspec.field(default_factory=list)
    # How often due time cards are opened and cards escalated: a pass costs the cards due, not the open cases.
    card_sweep_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.25
    # Seconds a card waits for the department's acknowledgement before its leader is told, and again
    # before the centre's supervisor ([escalation].supervisor) is.
    card_escalate_s: Annotated[int, msgspec.Meta(ge=10, le=30 * 86400)] = 14400
    complaint_days: Annotated[int, msgspec.Meta(ge=1, le=60)] = 5  # working days to answer a complaint
    # The bulletin's PDF fonts: figures and Latin text, and Chinese (Debian: fonts-dejavu-core, fonts-droid-fallback).
    latin_font: str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    cjk_font: str = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"
    appraisal: Weights = Weights()  # the appraisal's weights: see efficiency/appraisal.py
