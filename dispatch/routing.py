"""Routing: which sub-centres must act on an incident (按部门职责通知处警).

First the departments: those whose responsibilities cover the incident type, plus those the
severity rules add. Then, within each department, the sub-centre whose jurisdiction holds the
location (gis/ does the geometry). A point outside every jurisdiction still goes somewhere —
to the nearest — and is flagged so the dispatcher checks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dispatch.taxonomy import Department, Severity, Taxonomy
from gis.jurisdictions import Jurisdictions


@dataclass(frozen=True)
class SeverityRule:
    """An incident of one of `types` at one of `levels` also goes to `departments`."""

    types: frozenset[str]
    levels: frozenset[Severity]
    departments: tuple[str, ...]


@dataclass(frozen=True)
class Assignment:
    department: str
    subcentre_id: int
    outside_jurisdiction: bool  # the point lay in no jurisdiction of this department
    distance_m: float


@dataclass(frozen=True)
class RoutingDecision:
    assignments: tuple[Assignment, ...]
    departments_without_subcentre: tuple[str, ...]  # responsible, but nobody registered to send to

    @property
    def flagged(self) -> bool:
        return bool(self.departments_without_subcentre) or any(a.outside_jurisdiction for a in self.assignments)


class Router:
    def __init__(self, taxonomy: Taxonomy, departments: Mapping[str, Department],
                 rules: Sequence[SeverityRule]) -> None:
        self._taxonomy = taxonomy
        self._departments = departments
        self._rules = tuple(rules)

    def departments_for(self, type_code: str, severity: Severity) -> list[str]:
        """Responsible departments in configuration order, each once."""
        chosen = [code for code, dept in self._departments.items()
                  if any(self._taxonomy.falls_under(type_code, handled) for handled in dept.handles)]
        for rule in self._rules:
            if severity in rule.levels and any(self._taxonomy.falls_under(type_code, t) for t in rule.types):
                chosen.extend(d for d in rule.departments if d not in chosen)
        return chosen

    def route(self, jurisdictions: Jurisdictions, type_code: str, severity: Severity, lon: float, lat: float,
              departments: Sequence[str] | None = None) -> RoutingDecision:
        """`departments`, when given (a contingency plan's), replace the configured responsibilities."""
        assignments: list[Assignment] = []
        missing: list[str] = []
        chosen = self.departments_for(type_code, severity) if departments is None else departments
        for department in chosen:
            placement = jurisdictions.locate(department, lon, lat)
            if placement is None:
                missing.append(department)
                continue
            assignments.append(Assignment(department, placement.subcentre_id,
                                          outside_jurisdiction=not placement.inside,
                                          distance_m=placement.distance_m))
        return RoutingDecision(tuple(assignments), tuple(missing))
