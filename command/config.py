"""Configuration: config.toml read once into typed, frozen objects, checked before anything starts."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import msgspec

from command.errors import field_of
from dispatch.routing import SeverityRule
from dispatch.taxonomy import Department, IncidentType, Severity, Taxonomy
from video.cameras import CameraProblem, CameraSpec
from video.cameras import check as check_camera

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config.toml"

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z_]{1,32}$")]
Tone = Annotated[str, msgspec.Meta(pattern=r"^(siren|urgent|chime)$")]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class ServerConfig(_Section, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 8080
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 65536
    data_dir: str = "var"
    utc_offset: Annotated[str, msgspec.Meta(pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$")] = "+08:00"

    @property
    def offset(self) -> timedelta:
        sign = -1 if self.utc_offset.startswith("-") else 1
        hours, minutes = self.utc_offset[1:].split(":")
        return sign * timedelta(hours=int(hours), minutes=int(minutes))


class DatabaseConfig(_Section, frozen=True, forbid_unknown_fields=True):
    url: str = ""
    pool_min: Annotated[int, msgspec.Meta(ge=1)] = 2
    pool_max: Annotated[int, msgspec.Meta(ge=1)] = 10
    listen_retry_s: Positive = 1.0


class AuthConfig(_Section, frozen=True, forbid_unknown_fields=True):
    session_hours: Positive = 12.0


class DemoConfig(_Section, frozen=True, forbid_unknown_fields=True):
    seed: bool = True
    cameras: Annotated[int, msgspec.Meta(ge=0, le=64)] = 4


class AlertConfig(_Section, frozen=True, forbid_unknown_fields=True):
    tone_by_severity: dict[str, Tone] = msgspec.field(
        default_factory=lambda: {"I": "siren", "II": "siren", "III": "urgent", "IV": "chime"}
    )
    repeat_s: Positive = 2.0


class RecipientConfig(_Section, frozen=True, forbid_unknown_fields=True):
    name: str
    channel: Annotated[str, msgspec.Meta(pattern=r"^(sms|email|webhook)$")]
    address: Annotated[str, msgspec.Meta(min_length=1)]


Limit = Annotated[int, msgspec.Meta(ge=1, le=7 * 24 * 3600)]


class EscalationConfig(_Section, frozen=True, forbid_unknown_fields=True):
    deliver_s: Limit = 30
    acknowledge_s: Limit = 60
    feedback_s: Limit = 14400
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
    supervisor: RecipientConfig = RecipientConfig("指挥中心值班长", "sms", "13800000000")


class SurgeConfig(_Section, frozen=True, forbid_unknown_fields=True):
    duplicate_radius_m: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 500.0
    duplicate_window_min: Annotated[float, msgspec.Meta(gt=0, le=7 * 24 * 60)] = 120.0


class CapConfig(_Section, frozen=True, forbid_unknown_fields=True):
    sender: Annotated[str, msgspec.Meta(pattern=r"^[^\s,<&]+$")] = "warning@liandong.example"
    sender_name: str = "Liandong"
    radius_km: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 3.0
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0


class DecisionConfig(_Section, frozen=True, forbid_unknown_fields=True):
    facilities: str = ""
    affected_radius_m: dict[str, Annotated[float, msgspec.Meta(gt=0, le=200_000)]] = msgspec.field(
        default_factory=lambda: {"I": 5000.0, "II": 3000.0, "III": 1500.0, "IV": 500.0})
    similar_radius_m: Annotated[float, msgspec.Meta(gt=0, le=200_000)] = 2000.0
    camera_radius_m: Annotated[float, msgspec.Meta(gt=0, le=200_000)] = 1000.0
    similar_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30


class MapConfig(_Section, frozen=True, forbid_unknown_fields=True):
    tile_url: Annotated[str, msgspec.Meta(max_length=500)] = ""
    attribution: Annotated[str, msgspec.Meta(max_length=200)] = ""
    max_zoom: Annotated[int, msgspec.Meta(ge=1, le=22)] = 18
    boundary_tolerance_m: Annotated[float, msgspec.Meta(ge=0, le=1000)] = 30.0


class VideoConfig(_Section, frozen=True, forbid_unknown_fields=True):
    media_dir: str = "var/media"
    record: bool = True
    segment_s: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 10
    recordings_dir: str = "var/recordings"
    ffmpeg: str = ""
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    disk_quota_gb: Annotated[float, msgspec.Meta(gt=0)] = 50.0
    analysis: bool = True
    analysis_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    analysis_fps: Annotated[float, msgspec.Meta(gt=0, le=10)] = 2.0
    tile_width: Annotated[int, msgspec.Meta(ge=64, le=1920, multiple_of=2)] = 384


class NotificationsConfig(_Section, frozen=True, forbid_unknown_fields=True):
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=50)] = 6
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0


Timeout = Annotated[float, msgspec.Meta(gt=0, le=120)]


class WebhookConfig(_Section, frozen=True, forbid_unknown_fields=True):
    timeout_s: Timeout = 5.0


class EmailConfig(_Section, frozen=True, forbid_unknown_fields=True):
    host: str = ""
    port: Port = 25
    sender: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$")] = "liandong@localhost"
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_s: Timeout = 10.0


class SmsConfig(_Section, frozen=True, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(pattern=r"^(https?://\S+)?$")] = ""
    body_template: str = '{"to": "{to}", "text": "{text}"}'
    content_type: str = "application/json"
    timeout_s: Timeout = 5.0


class ChannelsConfig(_Section, frozen=True, forbid_unknown_fields=True):
    webhook: WebhookConfig = WebhookConfig()
    email: EmailConfig = EmailConfig()
    sms: SmsConfig = SmsConfig()

    def enabled(self) -> frozenset[str]:
        return frozenset({"webhook"} | ({"email"} if self.email.host else set()) | ({"sms"} if self.sms.url else set()))


class SubtypeConfig(_Section, frozen=True, forbid_unknown_fields=True):
    code: Code
    name: str
    name_en: str = ""


class CategoryConfig(_Section, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[1-4]$")]
    name: str
    name_en: str = ""
    subtypes: list[SubtypeConfig] = []


class DepartmentConfig(_Section, frozen=True, forbid_unknown_fields=True):
    code: Code
    name: str
    name_en: str = ""
    handles: list[str] = []


class SeverityRuleConfig(_Section, frozen=True, forbid_unknown_fields=True):
    types: list[str]
    levels: list[str]
    departments: list[str]


class _RawConfig(_Section, frozen=True, forbid_unknown_fields=True):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    auth: AuthConfig = AuthConfig()
    demo: DemoConfig = DemoConfig()
    alert: AlertConfig = AlertConfig()
    escalation: EscalationConfig = EscalationConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    surge: SurgeConfig = SurgeConfig()
    cap: CapConfig = CapConfig()
    decision: DecisionConfig = DecisionConfig()
    map: MapConfig = MapConfig()
    video: VideoConfig = VideoConfig()
    cameras: list[CameraSpec] = []
    channels: ChannelsConfig = ChannelsConfig()
    incident_types: list[CategoryConfig] = []
    departments: list[DepartmentConfig] = []
    severity_rules: list[SeverityRuleConfig] = []


@dataclass(frozen=True)
class Config:
    """Everything the server needs to know, checked; the domain objects are built here once."""

    path: Path
    server: ServerConfig
    database: DatabaseConfig
    auth: AuthConfig
    demo: DemoConfig
    alert: AlertConfig
    escalation: EscalationConfig
    notifications: NotificationsConfig
    surge: SurgeConfig
    cap: CapConfig
    decision: DecisionConfig
    map: MapConfig
    video: VideoConfig
    cameras: tuple[CameraSpec, ...]
    channels: ChannelsConfig

    @property
    def media_dir(self) -> Path:
        return (self.path.parent / self.video.media_dir).resolve()

    @property
    def recordings_dir(self) -> Path:
        return (self.path.parent / self.video.recordings_dir).resolve()

    @property
    def facilities_path(self) -> Path | None:
        return (self.path.parent / self.decision.facilities).resolve() if self.decision.facilities else None
    taxonomy: Taxonomy
    departments: dict[str, Department]
    severity_rules: tuple[SeverityRule, ...]

    @property
    def data_dir(self) -> Path:
        return (self.path.parent / self.server.data_dir).resolve()


class ConfigError(Exception):
    """A configuration problem; the message names the key and what is wrong with it."""


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read, check and freeze the configuration; environment variables override as documented."""
    env = os.environ if environ is None else environ
    path = Path(env.get("LIANDONG_CONFIG", "")) if path is None and env.get("LIANDONG_CONFIG") else path
    path = (path or DEFAULT_PATH).resolve()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    try:
        raw = msgspec.convert(document, type=_RawConfig)
    except msgspec.ValidationError as error:
        message = str(error).split(" - at ")[0]
        raise ConfigError(f"{path}: {field_of(error) or 'top level'}: {message}") from None
    raw = _apply_environment(raw, env, path)
    return _build(raw, path)


def _apply_environment(raw: _RawConfig, env: os._Environ[str] | dict[str, str], path: Path) -> _RawConfig:
    database, server = raw.database, raw.server
    if "LIANDONG_DATABASE_URL" in env:
        database = msgspec.structs.replace(database, url=env["LIANDONG_DATABASE_URL"])
    if listen := env.get("LIANDONG_LISTEN"):
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"LIANDONG_LISTEN: expected host:port, got {listen!r}")
        server = msgspec.structs.replace(server, host=host.strip("[]"), port=int(port))
    return msgspec.structs.replace(raw, database=database, server=server)


def _build(raw: _RawConfig, path: Path) -> Config:
    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {problem}")

    tile_url = raw.map.tile_url
    placeholders = all(k in tile_url for k in ("{z}", "{x}", "{y}"))
    if tile_url and (not re.match(r"^(https?://|/)", tile_url) or not placeholders):
        raise fail("map.tile_url", "an http(s):// or /path URL template with {z}, {x} and {y}, or \"\" for none")
    sms = raw.channels.sms
    if sms.url and not ("{to}" in sms.body_template and "{text}" in sms.body_template):
        raise fail("channels.sms.body_template", "must contain both {to} and {text}")
    if sms.url and "json" in sms.content_type:
        try:
            json.loads(sms.body_template.replace("{to}", "x").replace("{text}", "x"))
        except ValueError as error:
            raise fail("channels.sms.body_template", f"is not JSON once filled in: {error}") from None

    if raw.database.pool_min > raw.database.pool_max:
        raise fail("database.pool_min", "must not exceed database.pool_max")
    types: list[IncidentType] = []
    for i, category in enumerate(raw.incident_types):
        types.append(IncidentType(category.code, category.name, category.name_en, category.code))
        for j, sub in enumerate(category.subtypes):
            if not sub.code.startswith(category.code) or sub.code == category.code:
                raise fail(f"incident_types[{i}].subtypes[{j}].code",
                           f"{sub.code!r} must start with its category's code {category.code!r}")
            types.append(IncidentType(sub.code, sub.name, sub.name_en, category.code))
    codes = [t.code for t in types]
    if duplicate := next((c for c in codes if codes.count(c) > 1), None):
        raise fail("incident_types", f"type code {duplicate!r} is defined twice")
    if not types:
        raise fail("incident_types", "at least one incident category is required")
    taxonomy = Taxonomy(types)

    departments: dict[str, Department] = {}
    for i, dept in enumerate(raw.departments):
        if dept.code in departments:
            raise fail(f"departments[{i}].code", f"department {dept.code!r} is defined twice")
        for code in dept.handles:
            if code not in taxonomy:
                raise fail(f"departments[{i}].handles", f"unknown incident type {code!r}")
        departments[dept.code] = Department(dept.code, dept.name, dept.name_en, frozenset(dept.handles))

    rules: list[SeverityRule] = []
    for i, rule in enumerate(raw.severity_rules):
        for code in rule.types:
            if code not in taxonomy:
                raise fail(f"severity_rules[{i}].types", f"unknown incident type {code!r}")
        for level in rule.levels:
            if level not in Severity.__members__:
                raise fail(f"severity_rules[{i}].levels", f"unknown severity {level!r}; use I, II, III or IV")
        for code in rule.departments:
            if code not in departments:
                raise fail(f"severity_rules[{i}].departments", f"unknown department {code!r}")
        rules.append(SeverityRule(frozenset(rule.types), frozenset(Severity[lv] for lv in rule.levels),
                                  tuple(rule.departments)))

    if raw.decision.facilities and not (path.parent / raw.decision.facilities).is_file():
        raise fail("decision.facilities", f"no such file: {(path.parent / raw.decision.facilities).resolve()}")
    for i, camera in enumerate(raw.cameras):
        try:
            check_camera(camera, (path.parent / raw.video.media_dir).resolve())
        except CameraProblem as problem:
            raise fail(f"cameras[{i}].{problem.field}", str(problem)) from None
    if len({c.code for c in raw.cameras}) != len(raw.cameras):
        raise fail("cameras", "two cameras share a code")
    if set(raw.decision.affected_radius_m) != set(Severity.__members__):
        raise fail("decision.affected_radius_m", "give a radius for each of I, II, III and IV")

    for level in raw.alert.tone_by_severity:
        if level not in Severity.__members__:
            raise fail("alert.tone_by_severity", f"unknown severity {level!r}; use I, II, III or IV")

    return Config(path=path, server=raw.server, database=raw.database, auth=raw.auth, demo=raw.demo,
                  alert=raw.alert, escalation=raw.escalation, notifications=raw.notifications, surge=raw.surge,
                  cap=raw.cap, decision=raw.decision, map=raw.map, video=raw.video, cameras=tuple(raw.cameras),
                  channels=raw.channels, taxonomy=taxonomy, departments=departments,
                  severity_rules=tuple(rules))
