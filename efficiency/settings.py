"""[efficiency] in config.toml: the yellow card's share of the promise, the centre's own calendar."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec

from base.settings import Section


class EfficiencyConfig(Section, frozen=True, forbid_unknown_fields=True):
    yellow_share: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8  # of the promised limit, for the yellow card
    closures: list[date] = msgspec.field(default_factory=list)  # the centre's own rest days (a typhoon day)
    extra_working_days: list[date] = msgspec.field(default_factory=list)
    card_sweep_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0  # how often due time cards are opened
