"""Contingency plans (预案): who acts, with what checklist and time limits, for a type and severity.

A plan names incident types (subtype or whole category) and severity levels. For an incident the
most specific matching plan wins: a subtype beats its category, and fewer levels beat more (an
exact level beats a range). Two plans that would tie for some type and level are ambiguous and
refused when saved. Plans are versioned: an incident keeps the version it ran under.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

import msgspec

from base.errors import DomainError
from base.messages import PLAIN
from dispatch.deadlines import StageLimits
from dispatch.taxonomy import Severity, Taxonomy

Level = Annotated[int, msgspec.Meta(ge=1, le=4)]


class DepartmentOrder(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=32)]
    tasks: list[Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=300)]] = []


class Recipient(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]
    channel: Literal["sms", "email", "webhook"]
    address: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=500)]


class PlanBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A plan as dispatchers write it (the API body and the stored version)."""

    name: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=200)]
    types: Annotated[list[Annotated[str, PLAIN, msgspec.Meta(max_length=16)]], msgspec.Meta(min_length=1)]
    levels: Annotated[list[Level], msgspec.Meta(min_length=1)]
    departments: Annotated[list[DepartmentOrder], msgspec.Meta(min_length=1)]
    limits: StageLimits = StageLimits()
    notify: list[Recipient] = []
    public_warning: bool = False
    # Open the incident's three-way call as its tickets go out (the reference system's 同时启用三方通话):
    # the ticketed sub-centres ring for it and the caller's link goes out with the tickets.
    three_way_call: bool = False


class Plan(msgspec.Struct, frozen=True):
    key: str
    version: int
    body: PlanBody

    @property
    def department_codes(self) -> list[str]:
        return [d.code for d in self.body.departments]


class PlanProblem(DomainError):
    """A plan that cannot be saved; `field` names the part of the body at fault."""

    code = "invalid_plan"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field)


class AmbiguousPlan(PlanProblem):
    """Saving the plan would leave two plans equally specific for some type and level."""

    code = "ambiguous_plan"


def _specificity(plan: PlanBody, type_code: str) -> tuple[int, int]:
    """Higher is more specific: (names the subtype itself, -number of levels)."""
    return (1 if type_code in plan.types else 0, -len(set(plan.levels)))


def _matches(plan: PlanBody, taxonomy: Taxonomy, type_code: str, severity: Severity) -> bool:
    return severity.value in plan.levels and any(taxonomy.falls_under(type_code, t) for t in plan.types)


def check(body: PlanBody, taxonomy: Taxonomy, departments: Iterable[str]) -> None:
    """Refuse unknown types, levels repeated, unknown or repeated departments."""
    known = set(departments)
    for i, code in enumerate(body.types):
        if code not in taxonomy:
            raise PlanProblem(f"types[{i}]", f"unknown incident type {code!r}")
    if len(set(body.levels)) != len(body.levels):
        raise PlanProblem("levels", "a level is listed twice")
    seen: set[str] = set()
    for i, order in enumerate(body.departments):
        if order.code not in known:
            raise PlanProblem(f"departments[{i}].code", f"unknown department {order.code!r}")
        if order.code in seen:
            raise PlanProblem(f"departments[{i}].code", f"department {order.code!r} is listed twice")
        seen.add(order.code)


class PlanBook:
    """The current version of every plan, and the choice among them."""

    def __init__(self, taxonomy: Taxonomy, plans: Iterable[Plan] = ()) -> None:
        self._taxonomy = taxonomy
        self.plans: dict[str, Plan] = {p.key: p for p in plans}

    def select(self, type_code: str, severity: Severity) -> Plan | None:
        candidates = [p for p in self.plans.values() if _matches(p.body, self._taxonomy, type_code, severity)]
        if not candidates:
            return None
        return max(candidates, key=lambda p: (_specificity(p.body, type_code), p.key))

    def ambiguity(self, key: str, body: PlanBody) -> str | None:
        """If saving `body` under `key` would tie with another plan somewhere, say where."""
        others: Mapping[str, Plan] = {k: p for k, p in self.plans.items() if k != key}
        subtypes = [t.code for t in self._taxonomy if t.code != t.category]
        for type_code in subtypes:
            for severity in Severity:
                if not _matches(body, self._taxonomy, type_code, severity):
                    continue
                mine = _specificity(body, type_code)
                for other in others.values():
                    if _matches(other.body, self._taxonomy, type_code, severity) and \
                            _specificity(other.body, type_code) == mine:
                        return (f"for type {type_code} at level {severity.name} it ties with plan {other.key!r};"
                                " make one more specific (a subtype, or fewer levels)")
        return None
