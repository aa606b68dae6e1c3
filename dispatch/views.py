"""How incidents look to terminals and consoles (JSON-ready dicts), in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from dispatch.taxonomy import Severity, Taxonomy
from dispatch.tones import TonePolicy

JSON = dict[str, Any]


class Views:
    def __init__(self, taxonomy: Taxonomy, tones: TonePolicy) -> None:
        self._taxonomy = taxonomy
        self._tones = tones

    def incident(self, row: Mapping[str, Any] | asyncpg.Record) -> JSON:
        kind = self._taxonomy.get(row["type_code"])
        severity = Severity(row["severity"])
        return {
            "id": row["id"], "type_code": row["type_code"], "type_name": kind.name if kind else "",
            "type_name_en": kind.name_en if kind else "", "category": kind.category if kind else "",
            "severity": severity.value, "severity_label": severity.label, "severity_level": severity.name,
            "location": {"lon": row["lon"], "lat": row["lat"]}, "address": row["address"],
            "caller_name": row["caller_name"], "caller_phone": row["caller_phone"],
            "description": row["description"], "state": row["state"], "flagged": row["flagged"],
            "created_at": row["created_at"], "closed_at": row["closed_at"],
            "plan": {"key": row["plan_key"], "version": row["plan_version"]} if row["plan_key"] else None,
            "merged_into": row.get("merged_into"),
        }

    def tone(self, incident: Mapping[str, Any], escalated: bool = False) -> JSON:
        """The reminder tone a ticket of this incident carries (the `alert` of the terminal protocol)."""
        tone = self._tones.for_severity(Severity(incident["severity"]))
        return (tone.louder() if escalated else tone).payload()
