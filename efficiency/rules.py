"""Stage rules, checked on a case's whole history every time an event arrives.

Events reach the centre from the departments' own systems, sometimes late and out of order, so the
rules never look at "the event that just came": they read the history sorted by when things
happened, and give every anomaly in it. Storing that set makes a retried or reordered push change
nothing it should not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from efficiency.items import ApprovalItem, Stage


@dataclass(frozen=True)
class CaseEvent:
    event_id: str  # the department system's own id: a retry carries the same one
    kind: Literal["stage", "suspend", "resume"]
    at: datetime
    actor: str = ""  # the staff member
    stage: Stage | None = None  # for kind "stage"
    documents: tuple[str, ...] = ()  # what the applicant handed in (at acceptance)
    fee_yuan: float | None = None  # what was charged (at completion)


@dataclass(frozen=True)
class Anomaly:
    rule: str  # stage_skipped, out_of_order, not_accepted, same_person, fee_above_standard,
    #            documents_missing, suspended_too_long
    event_id: str  # the event that broke it
    detail: str


def history(events: Sequence[CaseEvent]) -> list[CaseEvent]:
    """In the order things happened; the event id breaks ties, so every reading agrees."""
    return sorted(events, key=lambda e: (e.at, e.event_id))


def anomalies(item: ApprovalItem, events: Sequence[CaseEvent], now: datetime) -> list[Anomaly]:
    found: list[Anomaly] = []
    done: list[Stage] = []
    skipped: set[Stage] = set()  # reported once, when first passed over
    actors: dict[Stage, str] = {}
    suspended: CaseEvent | None = None
    limit = timedelta(days=item.max_suspension_days)
    for event in history(events):
        if event.kind == "suspend":
            suspended = suspended or event
            continue
        if event.kind == "resume":
            if suspended is not None and event.at - suspended.at > limit:
                days = (event.at - suspended.at).days
                found.append(Anomaly("suspended_too_long", suspended.event_id,
                                     f"suspended {days} days, at most {item.max_suspension_days}"))
            suspended = None
            continue
        stage = event.stage
        assert stage is not None, "a stage event names its stage (checked at the boundary)"
        found.extend(_stage_rules(item, event, stage, done, skipped, actors))
        if stage not in done:
            done.append(stage)
        actors.setdefault(stage, event.actor)
    if suspended is not None and now - suspended.at > limit:
        days = (now - suspended.at).days
        found.append(Anomaly("suspended_too_long", suspended.event_id,
                             f"suspended for {days} days so far, at most {item.max_suspension_days}"))
    return found


def _stage_rules(item: ApprovalItem, event: CaseEvent, stage: Stage, done: list[Stage], skipped: set[Stage],
                 actors: dict[Stage, str]) -> list[Anomaly]:
    found = []
    if stage not in item.stages:
        found.append(Anomaly("stage_skipped", event.event_id, f"the item has no {stage} stage"))
    elif stage in done:
        pass  # a repeated stage (a correction re-done) is not an anomaly in itself
    elif done and item.stages.index(stage) < max(item.stages.index(s) for s in done if s in item.stages):
        found.append(Anomaly("out_of_order", event.event_id, f"{stage} after {done[-1]}"))
    else:
        expected = [s for s in item.stages[: item.stages.index(stage)] if s not in done and s not in skipped]
        skipped.update(expected)
        if stage is not Stage.ACCEPT and Stage.ACCEPT in expected:
            found.append(Anomaly("not_accepted", event.event_id, f"{stage} without acceptance"))
            expected.remove(Stage.ACCEPT)
        if expected:
            found.append(Anomaly("stage_skipped", event.event_id, f"{stage} without {', '.join(expected)}"))
    if stage is Stage.ACCEPT:
        missing = [d for d in item.required_documents if d not in event.documents]
        if missing:
            found.append(Anomaly("documents_missing", event.event_id, "accepted without " + ", ".join(missing)))
    if (stage is Stage.APPROVE and item.separate_review_and_approval and event.actor
            and actors.get(Stage.REVIEW) == event.actor):
        found.append(Anomaly("same_person", event.event_id, f"{event.actor} reviewed and approved"))
    if event.fee_yuan is not None and event.fee_yuan > item.fee_limit_yuan:
        found.append(Anomaly("fee_above_standard", event.event_id,
                             f"charged {event.fee_yuan:.2f} yuan, the standard is {item.fee_limit_yuan:.2f}"))
    return found
