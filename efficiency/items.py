"""Approval items (审批事项): what a department approves, in which stages, within which limits."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from base.messages import PLAIN

Text = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=200)]


class Stage(StrEnum):
    """The five stages online approval runs through (受理、承办、审核、审批、办结), in order."""

    ACCEPT = "accept"
    HANDLE = "handle"
    REVIEW = "review"
    APPROVE = "approve"
    COMPLETE = "complete"


ORDER = tuple(Stage)
WorkingDays = Annotated[int, msgspec.Meta(ge=1, le=365)]


class ApprovalItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    department: Text
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    name: Text
    legal_days: WorkingDays  # 法定时限: past it, a red card
    promised_days: WorkingDays  # 承诺时限: the share of it used gives the yellow card
    stages: list[Stage] = msgspec.field(default_factory=lambda: list(ORDER))
    fee_limit_yuan: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # the fee standard; 0: free
    required_documents: list[Text] = msgspec.field(default_factory=list)
    separate_review_and_approval: bool = True  # the person who reviewed may not approve
    max_suspension_days: Annotated[int, msgspec.Meta(ge=0, le=365)] = 30  # calendar days per suspension


class ItemProblem(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_item(item: ApprovalItem) -> None:
    """What the schema cannot say: stages in order, from acceptance to completion; a promise within the law."""
    if item.promised_days > item.legal_days:
        raise ItemProblem("promised_days", "the promised limit cannot exceed the legal one")
    if len(set(item.stages)) != len(item.stages) or sorted(item.stages, key=ORDER.index) != item.stages:
        raise ItemProblem("stages", "stages are listed once each, in the order " + ", ".join(ORDER))
    if item.stages[:1] != [Stage.ACCEPT] or item.stages[-1:] != [Stage.COMPLETE]:
        raise ItemProblem("stages", "an item starts with accept and ends with complete")
