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

from dispatch.tickets import TicketState


class Stage(StrEnum):
    DELIVER = "deliver"
    ACKNOWLEDGE = "acknowledge"
    FEEDBACK = "feedback"


class Action(StrEnum):
    SHOW_OFFLINE = "show_offline"
    FALLBACK_TO_DUTY_PHONE = "fallback_to_duty_phone"
    REALERT = "realert"
    NOTIFY_LEADER = "notify_leader"
    NOTIFY_SUPERVISOR = "notify_supervisor"
    DISPATCH_BACKUP = "dispatch_backup"
    REMIND = "remind"


@dataclass(frozen=True)
class Limits:
    deliver_s: int
    acknowledge_s: int
    feedback_s: int

    def of(self, stage: Stage) -> int:
        return {Stage.DELIVER: self.deliver_s, Stage.ACKNOWLEDGE: self.acknowledge_s,
                Stage.FEEDBACK: self.feedback_s}[stage]


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    next_step_after_s: int | None  # when the following step falls due, or None: the last step


_STEPS: dict[Stage, list[tuple[Action, ...]]] = {
    Stage.DELIVER: [(Action.SHOW_OFFLINE, Action.FALLBACK_TO_DUTY_PHONE)],
    Stage.ACKNOWLEDGE: [(Action.REALERT,), (Action.NOTIFY_LEADER,),
                        (Action.NOTIFY_SUPERVISOR, Action.DISPATCH_BACKUP)],
    Stage.FEEDBACK: [(Action.REMIND,), (Action.NOTIFY_SUPERVISOR,)],
}

_PENDING_IN: dict[Stage, frozenset[TicketState]] = {
    Stage.DELIVER: frozenset({TicketState.CREATED}),
    Stage.ACKNOWLEDGE: frozenset({TicketState.CREATED, TicketState.DELIVERED}),
    Stage.FEEDBACK: frozenset({TicketState.ACKNOWLEDGED}),
}


def decide(stage: Stage, step: int, state: TicketState, limits: Limits) -> Decision:
    """What to do for a deadline of `stage`/`step` falling due while the ticket is in `state`."""
    if state not in _PENDING_IN[stage]:
        return Decision((), None)  # satisfied: the stage was done in time after all
    steps = _STEPS[stage]
    last = step >= len(steps) - 1
    return Decision(steps[min(step, len(steps) - 1)], None if last else limits.of(stage))


def first_deadlines(limits: Limits) -> list[tuple[Stage, int]]:
    """The deadlines a new ticket starts with: (stage, seconds after creation)."""
    return [(Stage.DELIVER, limits.deliver_s), (Stage.ACKNOWLEDGE, limits.acknowledge_s)]
