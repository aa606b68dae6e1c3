"""Working days as Chinese approval time limits count them (行政许可 时限 按工作日计算).

Which days are worked comes from the State Council's yearly holiday notice, as the maintained
`chinesecalendar` package carries it: public holidays are rest days even on a weekday, and the
make-up working days (调休) are worked even on a Saturday or Sunday. The centre adds its own
closures (a typhoon day) and extra working days. For a year the package has no notice for yet
(the next year's notice comes out in November or December), Monday to Friday is assumed and the
answer says it is an estimate.

A time limit of N working days starts the day after the case is accepted (次日起算) and ends when
the Nth working day after that ends. Time is measured continuously: each working day is one unit,
rest days and suspensions (暂停, 补正: the clock stops while the applicant is asked for something)
count nothing, so "80 % of a 5-day limit" is a precise instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

import chinese_calendar

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Interval:
    """A stretch of time, [start, end); end None: still running."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class WorkingCalendar:
    zone: tzinfo  # the centre's local time: days begin at its midnight
    closures: frozenset[date] = frozenset()  # the centre's own rest days
    extra_working: frozenset[date] = frozenset()  # the centre's own working days
    _estimated: set[int] = field(default_factory=set, compare=False, repr=False)
    # Every clock walks the days of its case: asking the package costs ~10 µs a day (it validates each
    # date), three quarters of the ingestion's CPU before the answers were kept. A decade is 3,660 entries.
    _known: dict[date, bool] = field(default_factory=dict, compare=False, repr=False)

    def is_working(self, day: date) -> bool:
        known = self._known.get(day)
        if known is None:
            known = self._known[day] = self._look_up(day)
        return known

    def _look_up(self, day: date) -> bool:
        if day in self.closures:
            return False
        if day in self.extra_working:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:  # no holiday notice for that year (yet)
            self._estimated.add(day.year)
            return day.weekday() < 5

    def estimated(self, years: Iterable[int]) -> bool:
        """Whether any of these years was judged without the State Council's notice."""
        return any(year in self._estimated for year in years)

    def nth_working_day_after(self, day: date, n: int) -> date:
        """The Nth working day after `day` (n ≥ 1); `day` itself never counts."""
        if n < 1:
            raise ValueError("n counts from 1")
        while n:
            day += DAY
            n -= self.is_working(day)
        return day

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time.min, self.zone)

    def clock_start(self, accepted_at: datetime) -> datetime:
        """When a case's limit starts to run: midnight after the day it was accepted."""
        return self.midnight(accepted_at.astimezone(self.zone).date() + DAY)

    def elapsed(self, accepted_at: datetime, now: datetime, stopped: Sequence[Interval] = ()) -> float:
        """Working days used between the clock's start and `now`, less the `stopped` stretches."""
        start = self.clock_start(accepted_at)
        used = timedelta()
        for day_start, day_end in self._working_spans(start, now):
            used += _minus(day_start, day_end, stopped, now)
        return used / DAY

    def instant(self, accepted_at: datetime, days: float, stopped: Sequence[Interval] = (),
                horizon: int = 3660) -> datetime | None:
        """When `days` working days will have been used, if no further stop comes; None if a stop
        is still open (the clock is not running) or the horizon (in calendar days) passes first."""
        if any(s.end is None for s in stopped):
            return None
        left = timedelta(days=days)
        day = self.clock_start(accepted_at).astimezone(self.zone).date()
        for _ in range(horizon):
            if self.is_working(day):
                begin, end = self.midnight(day), self.midnight(day + DAY)
                for piece_start, piece_end in _pieces(begin, end, stopped):
                    if piece_end - piece_start >= left:
                        return piece_start + left
                    left -= piece_end - piece_start
            day += DAY
        return None

    def _working_spans(self, start: datetime, end: datetime) -> Iterable[tuple[datetime, datetime]]:
        if end <= start:
            return
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            if self.is_working(day):
                yield max(start, self.midnight(day)), min(end, self.midnight(day + DAY))
            day += DAY


def _pieces(begin: datetime, end: datetime, stopped: Sequence[Interval]) -> list[tuple[datetime, datetime]]:
    """[begin, end) with the stopped stretches cut out, in order."""
    pieces = [(begin, end)]
    for stop in sorted(stopped, key=lambda s: s.start):
        stop_end = stop.end or datetime.max.replace(tzinfo=begin.tzinfo)
        cut: list[tuple[datetime, datetime]] = []
        for a, b in pieces:
            if stop_end <= a or stop.start >= b:
                cut.append((a, b))
                continue
            if stop.start > a:
                cut.append((a, stop.start))
            if stop_end < b:
                cut.append((stop_end, b))
        pieces = cut
    return pieces


def _minus(begin: datetime, end: datetime, stopped: Sequence[Interval], now: datetime) -> timedelta:
    running = [Interval(s.start, s.end or now) for s in stopped]
    return sum((b - a for a, b in _pieces(begin, end, running)), timedelta())
