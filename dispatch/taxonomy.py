"""Incident types (GB/T 35561-2017 categories and subtypes), severity levels, and departments."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum


class Severity(IntEnum):
    """GB/T 35561 severity: I is the gravest. The API carries the number (1-4)."""

    I = 1  # 特别重大 particularly serious  # noqa: E741 - the standard's own name
    II = 2  # 重大 serious
    III = 3  # 较大 relatively serious
    IV = 4  # 一般 ordinary

    @property
    def label(self) -> str:
        return _SEVERITY_LABELS[self]


_SEVERITY_LABELS = {
    Severity.I: "特别重大",
    Severity.II: "重大",
    Severity.III: "较大",
    Severity.IV: "一般",
}


@dataclass(frozen=True)
class IncidentType:
    code: str
    name: str
    name_en: str
    category: str  # the category code ("1".."4"); a category's own category is itself


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    name_en: str
    handles: frozenset[str]  # incident type or category codes


class Taxonomy:
    """The incident-type tree: look up a code and tell whether it falls under another."""

    def __init__(self, types: Iterable[IncidentType]) -> None:
        self._types = {t.code: t for t in types}

    def __contains__(self, code: object) -> bool:
        return code in self._types

    def __getitem__(self, code: str) -> IncidentType:
        return self._types[code]

    def get(self, code: str) -> IncidentType | None:
        return self._types.get(code)

    def __iter__(self) -> Iterator[IncidentType]:
        return iter(self._types.values())

    def falls_under(self, code: str, ancestor: str) -> bool:
        """A subtype falls under itself and its category."""
        return code == ancestor or self._types[code].category == ancestor
