"""Approval time limits in working days, as the State Council's holiday notice makes them, and the
stage rules every case event is checked against; the clocks here are named by the test."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest

from efficiency.calendar import Interval, WorkingCalendar
from efficiency.clock import clock
from efficiency.demo import catalogue
from efficiency.items import ApprovalItem, ItemProblem, Stage, check_item
from efficiency.rules import CaseEvent, anomalies

CST = timezone(timedelta(hours=8))
CALENDAR = WorkingCalendar(CST)
# Spring Festival 2026: 15–23 February off; Saturday 14 and Saturday 28 February are make-up working days.
ACCEPTED = datetime(2026, 2, 13, 10, 30, tzinfo=CST)  # the Friday before


def at(day: int, hour: int = 0, month: int = 2) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=CST)


def item(**changes: object) -> ApprovalItem:
    fields: dict[str, object] = {"department": "市场监管局", "code": "SC-001", "name": "食品经营许可", "legal_days": 5,
                                 "promised_days": 5, "fee_limit_yuan": 0.0, "required_documents": ["营业执照"]}
    return ApprovalItem(**{**fields, **changes})  # type: ignore[arg-type]


def event(n: int, kind: str = "stage", when: datetime = ACCEPTED, stage: Stage | None = None,
          actor: str = "", **more: object) -> CaseEvent:
    return CaseEvent(f"e{n}", kind, when, actor, stage, **more)  # type: ignore[arg-type]


def test_working_days_skip_the_spring_festival_and_count_its_make_up_saturdays() -> None:
    assert CALENDAR.is_working(date(2026, 2, 14))  # a Saturday, worked
    assert not CALENDAR.is_working(date(2026, 2, 16))  # a Monday, a holiday
    # From the day after acceptance: Sat 14, then Tue 24 … Fri 27 make five.
    assert CALENDAR.nth_working_day_after(date(2026, 2, 13), 5) == date(2026, 2, 27)
    assert CALENDAR.nth_working_day_after(date(2026, 2, 13), 6) == date(2026, 2, 28)  # the second make-up Saturday
    assert CALENDAR.elapsed(ACCEPTED, at(24, 12)) == pytest.approx(1.5)  # all of the 14th, half the 24th


def test_the_centre_adds_its_own_closures_and_working_days() -> None:
    typhoon = WorkingCalendar(CST, closures=frozenset({date(2026, 2, 24)}), extra_working=frozenset({date(2026, 3, 1)}))
    assert not typhoon.is_working(date(2026, 2, 24)) and typhoon.is_working(date(2026, 3, 1))
    assert typhoon.nth_working_day_after(date(2026, 2, 13), 5) == date(2026, 2, 28)


def test_a_year_without_the_notice_yet_is_counted_monday_to_friday_and_said_to_be_an_estimate() -> None:
    calendar = WorkingCalendar(CST)
    accepted = datetime(2026, 12, 30, 9, tzinfo=CST)
    case = clock(item(), [event(1, stage=Stage.ACCEPT, when=accepted, documents=("营业执照",))], calendar,
                 datetime(2027, 1, 2, tzinfo=CST))
    assert case.estimated
    assert case.red_at == datetime(2027, 1, 7, tzinfo=CST)  # Thu 31, Fri 1, Mon 4, Tue 5, Wed 6 (no notice for 2027)
    assert not clock(item(), [event(1, stage=Stage.ACCEPT, documents=("营业执照",))], WorkingCalendar(CST),
                     at(20)).estimated


def test_yellow_at_80_percent_of_the_promise_red_past_the_legal_limit() -> None:
    events = [event(1, stage=Stage.ACCEPT, documents=("营业执照",))]
    case = clock(item(promised_days=5, legal_days=5), events, CALENDAR, at(26, 12))
    assert case.yellow_at == at(27)  # four working days: the 14th and 24th–26th
    assert case.red_at == at(28)  # five: through Friday the 27th
    short = item(promised_days=5, legal_days=5)
    assert clock(short, events, CALENDAR, at(26, 23)).due == ()
    assert clock(short, events, CALENDAR, at(27, 9)).due == ("yellow",)
    assert clock(short, events, CALENDAR, at(28, 1)).due == ("yellow", "red")
    # The same history arriving late: completed on the 26th, within the promise, so no card is due at all.
    done = clock(short, [*events, event(2, stage=Stage.COMPLETE, when=at(26, 16))], CALENDAR, at(28, 1))
    assert done.due == () and done.used_days == pytest.approx(3 + 16 / 24)


def test_a_card_due_before_a_suspension_stays_due_while_the_clock_is_stopped() -> None:
    events = [event(1, stage=Stage.ACCEPT, documents=("营业执照",)), event(2, "suspend", at(27, 12))]
    case = clock(item(promised_days=5, legal_days=5), events, CALENDAR, at(28, 1))
    assert case.suspended and case.yellow_at is None  # stopped: no instant can be foretold
    assert case.due == ("yellow",)  # 4.5 working days used before the stop


def test_a_suspension_for_the_applicant_stops_the_clock() -> None:
    events = [event(1, stage=Stage.ACCEPT, documents=("营业执照",)),
              event(2, "suspend", at(24, 12)), event(3, "resume", at(26, 12))]
    case = clock(item(), events, CALENDAR, at(27))
    assert case.used_days == pytest.approx(2.0)  # the 14th, the morning of the 24th, the afternoon of the 26th
    # Two working days later than without the stop: Fri 27, Sat 28 (worked), Sunday off, Monday 2 March.
    assert case.red_at == at(3, month=3)
    running = clock(item(), events[:2], CALENDAR, at(27))
    assert running.suspended and running.red_at is None and running.used_days == pytest.approx(1.5)


def test_each_stage_rule_names_the_event_that_broke_it() -> None:
    strict = item(fee_limit_yuan=50.0, max_suspension_days=10)
    found = anomalies(strict, [
        event(1, stage=Stage.ACCEPT, actor="张敏"),  # without the business licence
        event(2, stage=Stage.REVIEW, when=at(24), actor="李强"),  # handling skipped
        event(3, stage=Stage.APPROVE, when=at(25), actor="李强"),  # approved by the reviewer
        event(4, "suspend", at(25, 12)), event(5, "resume", at(10, month=3)),  # 13 days
        event(6, stage=Stage.HANDLE, when=at(11, month=3)),  # after approval
        event(7, stage=Stage.COMPLETE, when=at(12, month=3), fee_yuan=80.0)], at(12, month=3))
    assert [(a.rule, a.event_id) for a in found] == [
        ("documents_missing", "e1"), ("stage_skipped", "e2"), ("same_person", "e3"),
        ("suspended_too_long", "e4"), ("out_of_order", "e6"), ("fee_above_standard", "e7")]
    assert found[1].detail == "review without handle"


def test_completion_without_acceptance_and_a_suspension_still_running_too_long() -> None:
    found = anomalies(item(max_suspension_days=5), [event(1, "suspend", at(2, month=3)),
                                                    event(2, stage=Stage.COMPLETE, when=at(3, month=3))],
                      at(10, month=3))
    assert [a.rule for a in found] == ["not_accepted", "stage_skipped", "suspended_too_long"]


def test_the_same_history_in_any_arrival_order_gives_the_same_anomalies() -> None:
    events = [event(1, stage=Stage.ACCEPT, actor="张敏"), event(2, stage=Stage.REVIEW, when=at(24), actor="李强"),
              event(3, stage=Stage.APPROVE, when=at(25), actor="李强"), event(4, stage=Stage.COMPLETE, when=at(26))]
    expected = anomalies(item(), events, at(27))
    shuffled = events[:]
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert anomalies(item(), shuffled, at(27)) == expected


def test_an_item_says_what_is_wrong_with_it() -> None:
    with pytest.raises(ItemProblem, match="exceed") as problem:
        check_item(item(promised_days=10, legal_days=5))
    assert problem.value.field == "promised_days"
    with pytest.raises(ItemProblem, match="order"):
        check_item(item(stages=[Stage.ACCEPT, Stage.REVIEW, Stage.HANDLE, Stage.COMPLETE]))
    with pytest.raises(ItemProblem, match="starts with accept"):
        check_item(item(stages=[Stage.HANDLE, Stage.COMPLETE]))
    check_item(item(stages=[Stage.ACCEPT, Stage.APPROVE, Stage.COMPLETE]))  # a short item is fine


def test_the_demo_halls_catalogue_is_sound() -> None:
    items = catalogue()
    for each in items:
        check_item(each)  # promises within the law, stages in order
    assert len(items) >= 30 and len({i.department for i in items}) >= 8
    assert len({i.code for i in items}) == len(items)


def test_elapsed_and_instant_agree() -> None:
    stopped = [Interval(at(24, 9), at(24, 17))]
    moment = CALENDAR.instant(ACCEPTED, 2.75, stopped)
    assert moment is not None
    assert CALENDAR.elapsed(ACCEPTED, moment, stopped) == pytest.approx(2.75)
