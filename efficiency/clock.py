"""A case's clock: how much of its limits it has used, and when its yellow and red cards fall due.

Yellow (黄牌): a configurable share of the promised limit used (80 % by default). Red (红牌): the
legal limit used up. The clock runs from the day after acceptance, in working days, and stops while
the case is suspended for the applicant; a completed case's clock stops for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from efficiency.calendar import Interval, WorkingCalendar
from efficiency.items import ApprovalItem, Stage
from efficiency.rules import CaseEvent, history

_EPSILON_DAYS = 1e-9  # the sweep opens a card at its instant exactly: the days used then equal the limit


@dataclass(frozen=True)
class CaseClock:
    accepted_at: datetime | None
    completed_at: datetime | None
    used_days: float  # working days used so far
    yellow_at: datetime | None  # when the yellow card falls due (None: not accepted, suspended, or too far)
    red_at: datetime | None
    suspended: bool
    estimated: bool  # a year without the State Council's holiday notice was involved
    due: tuple[str, ...] = ()  # the time cards the days used call for: "yellow", "red"

    def since(self, card: str, now: datetime) -> datetime:
        """When a due card's condition arose (now, if the clock cannot say)."""
        at = self.yellow_at if card == "yellow" else self.red_at
        return min(at, now) if at is not None else now


def stops(events: Sequence[CaseEvent]) -> list[Interval]:
    """The suspensions, as stretches of time (the last one open while it lasts)."""
    found: list[Interval] = []
    started: datetime | None = None
    for event in history(events):
        if event.kind == "suspend" and started is None:
            started = event.at
        elif event.kind == "resume" and started is not None:
            found.append(Interval(started, event.at))
            started = None
    if started is not None:
        found.append(Interval(started))
    return found


def clock(item: ApprovalItem, events: Sequence[CaseEvent], calendar: WorkingCalendar, now: datetime,
          yellow_share: float = 0.8) -> CaseClock:
    ordered = history(events)
    accepted = next((e.at for e in ordered if e.kind == "stage" and e.stage is Stage.ACCEPT), None)
    completed = next((e.at for e in ordered if e.kind == "stage" and e.stage is Stage.COMPLETE), None)
    stopped = stops(ordered)
    if accepted is None:
        return CaseClock(None, completed, 0.0, None, None, bool(stopped and stopped[-1].end is None), False)
    until = min(now, completed) if completed else now
    used = calendar.elapsed(accepted, until, stopped)
    yellow = calendar.instant(accepted, yellow_share * item.promised_days, stopped)
    red = calendar.instant(accepted, item.legal_days, stopped)
    years = {accepted.year, until.year, *(at.year for at in (yellow, red) if at)}
    # From the days used, not from the instants: a card due before a suspension stays due during it, and
    # one a late-arriving history only seemed to call for (the case completed in time) is not due.
    due = tuple(card for card, limit in (("yellow", yellow_share * item.promised_days), ("red", item.legal_days))
                if used >= limit - _EPSILON_DAYS)
    return CaseClock(accepted, completed, used, yellow, red, bool(stopped and stopped[-1].end is None),
                     calendar.estimated(years), due)
