"""Escalation and notification sections of config.toml: [escalation], [notifications], [channels.*], [cap]."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import msgspec

from base.settings import Port, Section, problem
from dispatch.deadlines import Seconds, StageLimits


class RecipientConfig(Section, frozen=True, forbid_unknown_fields=True):
    name: str
    channel: Annotated[str, msgspec.Meta(pattern=r"^(sms|email|webhook)$")]
    address: Annotated[str, msgspec.Meta(min_length=1)]


class EscalationConfig(Section, frozen=True, forbid_unknown_fields=True):
    deliver_s: Seconds = 30
    acknowledge_s: Seconds = 60
    feedback_s: Seconds = 14400
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
    supervisor: RecipientConfig = RecipientConfig("指挥中心值班长", "sms", "13800000000")

    @property
    def limits(self) -> StageLimits:
        """The stage limits of an incident no plan covers."""
        return StageLimits(self.deliver_s, self.acknowledge_s, self.feedback_s)


class NotificationsConfig(Section, frozen=True, forbid_unknown_fields=True):
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=50)] = 6
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0


Timeout = Annotated[float, msgspec.Meta(gt=0, le=120)]


class WebhookConfig(Section, frozen=True, forbid_unknown_fields=True):
    timeout_s: Timeout = 5.0


class EmailConfig(Section, frozen=True, forbid_unknown_fields=True):
    host: str = ""
    port: Port = 25
    sender: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$")] = "liandong@localhost"
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_s: Timeout = 10.0


class SmsConfig(Section, frozen=True, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(pattern=r"^(https?://\S+)?$")] = ""
    body_template: str = '{"to": "{to}", "text": "{text}"}'
    content_type: str = "application/json"
    timeout_s: Timeout = 5.0


class ChannelsConfig(Section, frozen=True, forbid_unknown_fields=True):
    webhook: WebhookConfig = WebhookConfig()
    email: EmailConfig = EmailConfig()
    sms: SmsConfig = SmsConfig()

    def enabled(self) -> frozenset[str]:
        return frozenset({"webhook"} | ({"email"} if self.email.host else set()) | ({"sms"} if self.sms.url else set()))


class CapConfig(Section, frozen=True, forbid_unknown_fields=True):
    sender: Annotated[str, msgspec.Meta(pattern=r"^[^\s,<&]+$")] = "warning@liandong.example"
    sender_name: str = "Liandong"
    radius_km: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 3.0
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0


def check(channels: ChannelsConfig, path: Path) -> None:
    """What the types cannot say; raises ConfigError naming the key."""
    sms = channels.sms
    if sms.url and not ("{to}" in sms.body_template and "{text}" in sms.body_template):
        raise problem(path, "channels.sms.body_template", "must contain both {to} and {text}")
    if sms.url and "json" in sms.content_type:
        try:
            json.loads(sms.body_template.replace("{to}", "x").replace("{text}", "x"))
        except ValueError as error:
            raise problem(path, "channels.sms.body_template", f"is not JSON once filled in: {error}") from None
