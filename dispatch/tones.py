"""The reminder tone (提醒音) a ticket carries to its terminal: which tone, how often, until when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dispatch.taxonomy import Severity


@dataclass(frozen=True)
class Tone:
    sound: str  # "siren" | "urgent" | "chime"; the terminal page synthesises each
    repeat_s: float
    until: str = "acknowledged"  # the tone repeats until a person acknowledges the ticket
    escalated: bool = False

    def payload(self) -> dict[str, object]:
        return {"tone": self.sound, "repeat_s": self.repeat_s, "until": self.until, "escalated": self.escalated}

    def louder(self) -> Tone:
        """The re-alert for a ticket nobody acknowledged in time: the siren, twice as often."""
        return Tone("siren", max(0.5, self.repeat_s / 2), self.until, escalated=True)


class TonePolicy:
    def __init__(self, tone_by_severity: Mapping[str, str], repeat_s: float) -> None:
        self._tones = {Severity[level]: tone for level, tone in tone_by_severity.items()}
        self._repeat_s = repeat_s

    def for_severity(self, severity: Severity) -> Tone:
        """The tone a ticket of this severity carries to its terminal."""
        return Tone(self._tones.get(severity, "urgent"), self._repeat_s)
