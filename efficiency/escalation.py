"""Escalation of a card nobody in the department answers, as tickets escalate:

    step 0  when it opens:        the department's contact is told
    step 1  a wait later:         the department's leader is told, unless the card was acknowledged
    step 2  another wait later:   the centre's supervisor is told, unless the card was acknowledged

A closed card stops escalating. Whoever a step calls for and the department has not named, the next
in line hears instead (a department without a contact: its leader; without a leader: the centre), so
a card is never unheard. Plain functions: card_escalation.py applies them in the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Role = Literal["contact", "leader", "centre"]
_LINE: tuple[Role, ...] = ("contact", "leader", "centre")


@dataclass(frozen=True)
class Recipient:
    name: str
    channel: str  # "sms" | "email" | "webhook"
    address: str


@dataclass(frozen=True)
class Step:
    role: Role  # who the step calls for
    next_after_s: int | None  # when the following step falls due, or None: the last step


def step(number: int, closed: bool, acknowledged: bool, wait_s: int) -> Step | None:
    """What step `number` of a card does; None: nothing, and the card stops escalating."""
    if closed or acknowledged or number >= len(_LINE):
        return None
    return Step(_LINE[number], wait_s if number + 1 < len(_LINE) else None)


def recipient(role: Role, named: Mapping[str, Recipient], centre: Recipient) -> tuple[Role, Recipient]:
    """Who hears a step calling for `role`: the department's own if named, else the next in line."""
    for candidate in _LINE[_LINE.index(role):]:
        if candidate == "centre":
            return candidate, centre
        if candidate in named:
            return candidate, named[candidate]
    raise AssertionError("the centre is always last in line")
