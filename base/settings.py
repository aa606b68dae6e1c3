"""Configuration building blocks: the section type every package's settings derive from, the error
that names the key at fault, and the platform's own sections ([server], [database], [auth])."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import msgspec

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[float, msgspec.Meta(gt=0)]


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A table of config.toml: typed, frozen, and no key it does not know."""


class ConfigError(Exception):
    """A configuration problem; the message names the key and what is wrong with it."""


def problem(path: Path, key: str, what: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {what}")


class ServerConfig(Section, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 8080
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 65536
    data_dir: str = "var"
    utc_offset: Annotated[str, msgspec.Meta(pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$")] = "+08:00"
    request_deadline_s: Annotated[float, msgspec.Meta(ge=0.5, le=120)] = 10.0
    public_url: Annotated[str, msgspec.Meta(pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$")] = ""
    # Where the other nodes of a several-node installation reach this one; empty: http(s)://host:port.
    node_url: Annotated[str, msgspec.Meta(pattern=r"^(https?://[^\s/?#]+)?$")] = ""
    # HTTPS from a certificate and key (PEM files, relative to this file's folder); both empty: plain HTTP.
    tls_certificate: str = ""
    tls_key: str = ""
    # Proxies whose X-Forwarded-For is believed (addresses or networks); from anyone else it is ignored.
    trusted_proxies: list[Annotated[str, msgspec.Meta(max_length=64)]] = msgspec.field(default_factory=list)

    @property
    def base_url(self) -> str:
        """Where clients reach this server, for absolute links (never the request's Host header)."""
        scheme = "https" if self.tls_certificate else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")

    @property
    def node_address(self) -> str:
        """Where the other nodes reach this one (they relay its cameras' tiles and live streams)."""
        scheme = "https" if self.tls_certificate else "http"
        host = socket.gethostname() if self.host in ("", "0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return self.node_url or f"{scheme}://{host}:{self.port}"

    @property
    def offset(self) -> timedelta:
        sign = -1 if self.utc_offset.startswith("-") else 1
        hours, minutes = self.utc_offset[1:].split(":")
        return sign * timedelta(hours=int(hours), minutes=int(minutes))


class DatabaseConfig(Section, frozen=True, forbid_unknown_fields=True):
    url: str = ""
    pool_min: Annotated[int, msgspec.Meta(ge=1)] = 2
    pool_max: Annotated[int, msgspec.Meta(ge=1)] = 10
    listen_retry_s: Positive = 1.0


Minutes = Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 60)]


class IdleMinutes(Section, frozen=True, forbid_unknown_fields=True):
    """How long each role's session lasts without a request or an open socket; 0: no idle limit. A
    terminal or console left open counts as in use: a watch post must never be logged out under it."""

    administrator: Minutes = 15
    supervisor: Minutes = 60
    dispatcher: Minutes = 0
    operator: Minutes = 0


class AuthConfig(Section, frozen=True, forbid_unknown_fields=True):
    session_hours: Positive = 12.0  # the absolute lifetime of a session, however busy
    idle_minutes: IdleMinutes = IdleMinutes()


class AuditConfig(Section, frozen=True, forbid_unknown_fields=True):
    # How often the chain's head is signed (in the database and in <data_dir>/audit/anchors.jsonl).
    anchor_minutes: Annotated[float, msgspec.Meta(gt=0, le=24 * 60)] = 10.0


class BackupConfig(Section, frozen=True, forbid_unknown_fields=True):
    """[backup]: scheduled backups, written by the server itself."""

    every_hours: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # 0: none
    folder: str = "var/backups"  # relative to the configuration file's folder
    keep: Annotated[int, msgspec.Meta(ge=1)] = 7
    include_recordings: bool = False
