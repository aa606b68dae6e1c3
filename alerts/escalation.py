"""Escalation rules: what happens when a ticket stage outlives its deadline.

    deliver      step 0: the terminal is shown offline to the dispatcher; the ticket goes to the
                         sub-centre's duty phone by the fallback channel (SMS)
    acknowledge  step 0: re-alert on the terminal, louder          (next: another limit later)
                 step 1: the sub-centre's leader is notified       (next: another limit later)
                 step 2: the command-centre supervisor is notified and the department's backup
                         sub-centre is dispatched
    feedback     step 0: a reminder on the terminal                (next: another limit later)
                 step 1: the supervisor is notified

A deadline whose stage is already done when it falls due is marked satisfied and does nothing.
Plain functions: the escalator (escalator.py) applies the decisions in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dispatch.deadlines import Stage, StageLimits
from dispatch.tickets import TicketState


class Measure(StrEnum):
    """What is done when a stage is late."""

    SHOW_OFFLINE = "show_offline"
    FALLBACK_TO_DUTY_PHONE = "fallback_to_duty_phone"
    REALERT = "realert"
    NOTIFY_LEADER = "notify_leader"
    NOTIFY_SUPERVISOR = "notify_supervisor"
    DISPATCH_BACKUP = "dispatch_backup"
    REMIND = "remind"


@dataclass(frozen=True)
class Escalation:
    measures: tuple[Measure, ...]
    next_step_after_s: int | None  # when the following step falls due, or None: the last step


_STEPS: dict[Stage, list[tuple[Measure, ...]]] = {
    Stage.DELIVER: [(Measure.SHOW_OFFLINE, Measure.FALLBACK_TO_DUTY_PHONE)],
    Stage.ACKNOWLEDGE: [(Measure.REALERT,), (Measure.NOTIFY_LEADER,),
                        (Measure.NOTIFY_SUPERVISOR, Measure.DISPATCH_BACKUP)],
    Stage.FEEDBACK: [(Measure.REMIND,), (Measure.NOTIFY_SUPERVISOR,)],
}

_PENDING_IN: dict[Stage, frozenset[TicketState]] = {
    Stage.DELIVER: frozenset({TicketState.CREATED}),
    Stage.ACKNOWLEDGE: frozenset({TicketState.CREATED, TicketState.DELIVERED}),
    Stage.FEEDBACK: frozenset({TicketState.ACKNOWLEDGED}),
}


def escalate(stage: Stage, step: int, state: TicketState, limits: StageLimits) -> Escalation:
    """What to do for a deadline of `stage`/`step` falling due while the ticket is in `state`."""
    if state not in _PENDING_IN[stage]:
        return Escalation((), None)  # satisfied: the stage was done in time after all
    steps = _STEPS[stage]
    last = step >= len(steps) - 1
    return Escalation(steps[min(step, len(steps) - 1)], None if last else limits.of(stage))
