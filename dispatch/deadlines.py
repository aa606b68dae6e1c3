"""A ticket's stages and how long each may take: the deadlines a ticket carries from the moment it is
created (delivery, acknowledgement) and from its acknowledgement (feedback). What happens when one
passes is escalation's business (alerts/escalation.py)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

Seconds = Annotated[int, msgspec.Meta(ge=1, le=7 * 24 * 3600)]


class Stage(StrEnum):
    DELIVER = "deliver"
    ACKNOWLEDGE = "acknowledge"
    FEEDBACK = "feedback"


class StageLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How long each ticket stage may take before escalation starts (a plan's, or the configured default)."""

    deliver_s: Seconds = 30
    acknowledge_s: Seconds = 60
    feedback_s: Seconds = 4 * 3600

    def of(self, stage: Stage) -> int:
        return {Stage.DELIVER: self.deliver_s, Stage.ACKNOWLEDGE: self.acknowledge_s,
                Stage.FEEDBACK: self.feedback_s}[stage]


def first_deadlines(limits: StageLimits) -> list[tuple[Stage, int]]:
    """The deadlines a new ticket starts with: (stage, seconds after creation)."""
    return [(Stage.DELIVER, limits.deliver_s), (Stage.ACKNOWLEDGE, limits.acknowledge_s)]
