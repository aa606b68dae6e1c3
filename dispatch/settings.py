"""Dispatch's sections of config.toml: the incident types (GB/T 35561), the departments and what they
handle, severity rules, and the reminder tones ([alert]); built into domain objects once, here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec

from base.settings import Positive, Section, problem
from dispatch.routing import SeverityRule
from dispatch.taxonomy import Department, IncidentType, Severity, Taxonomy

Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z_]{1,32}$")]
ToneName = Annotated[str, msgspec.Meta(pattern=r"^(siren|urgent|chime)$")]


class ToneConfig(Section, frozen=True, forbid_unknown_fields=True):
    tone_by_severity: dict[str, ToneName] = msgspec.field(
        default_factory=lambda: {"I": "siren", "II": "siren", "III": "urgent", "IV": "chime"}
    )
    repeat_s: Positive = 2.0


class SubtypeConfig(Section, frozen=True, forbid_unknown_fields=True):
    code: Code
    name: str
    name_en: str = ""


class CategoryConfig(Section, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[1-4]$")]
    name: str
    name_en: str = ""
    subtypes: list[SubtypeConfig] = msgspec.field(default_factory=list)


class DepartmentConfig(Section, frozen=True, forbid_unknown_fields=True):
    code: Code
    name: str
    name_en: str = ""
    handles: list[str] = msgspec.field(default_factory=list)


class SeverityRuleConfig(Section, frozen=True, forbid_unknown_fields=True):
    types: list[str]
    levels: list[str]
    departments: list[str]


@dataclass(frozen=True)
class Responsibilities:
    """Who handles what, built from the configuration."""

    taxonomy: Taxonomy
    departments: dict[str, Department]
    severity_rules: tuple[SeverityRule, ...]


def build(categories: list[CategoryConfig], departments_config: list[DepartmentConfig],
          severity_rules: list[SeverityRuleConfig], tones: ToneConfig, path: Path) -> Responsibilities:
    """Check and build; raises ConfigError naming the key."""
    types: list[IncidentType] = []
    for i, category in enumerate(categories):
        types.append(IncidentType(category.code, category.name, category.name_en, category.code))
        for j, sub in enumerate(category.subtypes):
            if not sub.code.startswith(category.code) or sub.code == category.code:
                raise problem(path, f"incident_types[{i}].subtypes[{j}].code",
                              f"{sub.code!r} must start with its category's code {category.code!r}")
            types.append(IncidentType(sub.code, sub.name, sub.name_en, category.code))
    codes = [t.code for t in types]
    if duplicate := next((c for c in codes if codes.count(c) > 1), None):
        raise problem(path, "incident_types", f"type code {duplicate!r} is defined twice")
    if not types:
        raise problem(path, "incident_types", "at least one incident category is required")
    taxonomy = Taxonomy(types)

    departments: dict[str, Department] = {}
    for i, dept in enumerate(departments_config):
        if dept.code in departments:
            raise problem(path, f"departments[{i}].code", f"department {dept.code!r} is defined twice")
        for code in dept.handles:
            if code not in taxonomy:
                raise problem(path, f"departments[{i}].handles", f"unknown incident type {code!r}")
        departments[dept.code] = Department(dept.code, dept.name, dept.name_en, frozenset(dept.handles))

    rules: list[SeverityRule] = []
    for i, rule in enumerate(severity_rules):
        for code in rule.types:
            if code not in taxonomy:
                raise problem(path, f"severity_rules[{i}].types", f"unknown incident type {code!r}")
        for level in rule.levels:
            if level not in Severity.__members__:
                raise problem(path, f"severity_rules[{i}].levels", f"unknown severity {level!r}; use I, II, III or IV")
        for code in rule.departments:
            if code not in departments:
                raise problem(path, f"severity_rules[{i}].departments", f"unknown department {code!r}")
        rules.append(SeverityRule(frozenset(rule.types), frozenset(Severity[lv] for lv in rule.levels),
                                  tuple(rule.departments)))

    for level in tones.tone_by_severity:
        if level not in Severity.__members__:
            raise problem(path, "alert.tone_by_severity", f"unknown severity {level!r}; use I, II, III or IV")
    return Responsibilities(taxonomy, departments, tuple(rules))
