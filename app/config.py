"""Configuration: config.toml read once into typed, frozen objects, checked before anything starts.

Each package declares its own sections (base.settings, dispatch.settings, alerts.settings,
command.settings, video.settings); this is the one place they are read, so every error has the
same shape: the file, the key, what is wrong.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec

from alerts import settings as alerts_settings
from alerts.settings import CapConfig, ChannelsConfig, EscalationConfig, NotificationsConfig
from base.errors import field_of
from base.settings import (
    AuditConfig,
    AuthConfig,
    BackupConfig,
    ConfigError,
    DatabaseConfig,
    Section,
    ServerConfig,
    problem,
)
from calls.settings import CallsConfig
from command import settings as command_settings
from command.settings import DecisionConfig, MapConfig, ServiceAreaConfig, SurgeConfig
from dispatch import settings as dispatch_settings
from dispatch.routing import SeverityRule
from dispatch.settings import CategoryConfig, DepartmentConfig, SeverityRuleConfig, ToneConfig
from dispatch.taxonomy import Department, Taxonomy
from efficiency.settings import EfficiencyConfig
from video.cameras.spec import CameraProblem, CameraSpec
from video.cameras.spec import check as check_camera
from video.settings import VideoConfig

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config.toml"

__all__ = ["DEFAULT_PATH", "Config", "ConfigError", "load"]


class DemoConfig(Section, frozen=True, forbid_unknown_fields=True):
    seed: bool = True
    cameras: Annotated[int, msgspec.Meta(ge=0, le=64)] = 4
    hall_every_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 15.0  # the demo hall's case pushes; 0: none


class _RawConfig(Section, frozen=True, forbid_unknown_fields=True):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    auth: AuthConfig = AuthConfig()
    audit: AuditConfig = AuditConfig()
    demo: DemoConfig = DemoConfig()
    alert: ToneConfig = ToneConfig()
    escalation: EscalationConfig = EscalationConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    surge: SurgeConfig = SurgeConfig()
    service_area: ServiceAreaConfig = ServiceAreaConfig()
    cap: CapConfig = CapConfig()
    decision: DecisionConfig = DecisionConfig()
    map: MapConfig = MapConfig()
    video: VideoConfig = VideoConfig()
    calls: CallsConfig = CallsConfig()
    backup: BackupConfig = BackupConfig()
    efficiency: EfficiencyConfig = EfficiencyConfig()
    cameras: list[CameraSpec] = msgspec.field(default_factory=list)
    channels: ChannelsConfig = ChannelsConfig()
    incident_types: list[CategoryConfig] = msgspec.field(default_factory=list)
    departments: list[DepartmentConfig] = msgspec.field(default_factory=list)
    severity_rules: list[SeverityRuleConfig] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class Config:
    """Everything the server needs to know, checked; the domain objects are built here once."""

    path: Path
    server: ServerConfig
    database: DatabaseConfig
    auth: AuthConfig
    audit: AuditConfig
    demo: DemoConfig
    alert: ToneConfig
    escalation: EscalationConfig
    notifications: NotificationsConfig
    surge: SurgeConfig
    service_area: ServiceAreaConfig
    cap: CapConfig
    decision: DecisionConfig
    map: MapConfig
    video: VideoConfig
    calls: CallsConfig
    cameras: tuple[CameraSpec, ...]
    channels: ChannelsConfig
    backup: BackupConfig
    efficiency: EfficiencyConfig
    taxonomy: Taxonomy
    departments: dict[str, Department]
    severity_rules: tuple[SeverityRule, ...]

    def _here(self, relative: str) -> Path:
        return (self.path.parent / relative).resolve()

    @property
    def data_dir(self) -> Path:
        return self._here(self.server.data_dir)

    @property
    def media_dir(self) -> Path:
        return self._here(self.video.media_dir)

    @property
    def recordings_dir(self) -> Path:
        return self._here(self.video.recordings_dir)

    @property
    def calls_dir(self) -> Path:
        return self._here(self.calls.recordings_dir)

    @property
    def facilities_path(self) -> Path | None:
        return self._here(self.decision.facilities) if self.decision.facilities else None


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
    raw = _apply_environment(raw, env)
    return _build(raw, path)


def _apply_environment(raw: _RawConfig, env: os._Environ[str] | dict[str, str]) -> _RawConfig:
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
    _check_server(raw.server, path)
    command_settings.check_map(raw.map, path)
    alerts_settings.check(raw.channels, path)
    if raw.database.pool_min > raw.database.pool_max:
        raise problem(path, "database.pool_min", "must not exceed database.pool_max")
    who = dispatch_settings.build(raw.incident_types, raw.departments, raw.severity_rules, raw.alert, path)
    command_settings.check_decision(raw.decision, path)
    media_dir = (path.parent / raw.video.media_dir).resolve()
    for i, camera in enumerate(raw.cameras):
        try:
            check_camera(camera, media_dir)
        except CameraProblem as error:
            raise problem(path, f"cameras[{i}].{error.field}", error.message) from None
    if len({c.code for c in raw.cameras}) != len(raw.cameras):
        raise problem(path, "cameras", "two cameras share a code")
    return Config(path=path, server=raw.server, database=raw.database, auth=raw.auth, audit=raw.audit, demo=raw.demo,
                  alert=raw.alert, escalation=raw.escalation, notifications=raw.notifications, surge=raw.surge,
                  service_area=raw.service_area,
                  cap=raw.cap, decision=raw.decision, map=raw.map, video=raw.video, calls=raw.calls,
                  cameras=tuple(raw.cameras),
                  channels=raw.channels, backup=raw.backup, efficiency=raw.efficiency, taxonomy=who.taxonomy,
                  departments=who.departments,
                  severity_rules=who.severity_rules)


def _check_server(server: ServerConfig, path: Path) -> None:
    if bool(server.tls_certificate) != bool(server.tls_key):
        raise problem(path, "server.tls_key", "give both tls_certificate and tls_key, or neither")
    for key in ("tls_certificate", "tls_key"):
        if (name := getattr(server, key)) and not (path.parent / name).is_file():
            raise problem(path, f"server.{key}", f"no such file: {(path.parent / name).resolve()}")
    for i, proxy in enumerate(server.trusted_proxies):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise problem(path, f"server.trusted_proxies[{i}]", f"{proxy!r} is not an address or network") from None
