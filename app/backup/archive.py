"""The archive: what a backup holds and how it is named, its manifest, and the error both sides raise."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import msgspec

from app.config import Config
from base.settings import BackupConfig

Say = Callable[[str], None]
FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
ARCHIVE_NAME = re.compile(r"^liandong-backup-(\d{8}T\d{6}Z)\.tar$")
STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message names the file, folder or database at fault."""


class SegmentEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One row of the recording index, with the SHA-256 of its file as it was on disk."""

    id: int
    camera_id: int
    started_at: datetime
    ended_at: datetime
    bytes: int
    path: str  # relative to the recordings folder when under it (`relative`), else as indexed
    relative: bool
    sha256: str | None  # None: the file was missing
    file: str | None = None  # its name in the archive, when recordings were included


class RecordingIndex(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    root: str  # the recordings folder the backed-up server used
    included: bool
    segments: list[SegmentEntry]


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: int
    created_at: datetime
    liandong_version: str | None
    server_version: str  # PostgreSQL's
    database: str  # the dump's name in the archive
    database_sha256: str
    config: str  # the configuration file's name in the archive
    config_source: str  # where it was read from
    keys: list[str]
    files: dict[str, str]  # every file in the archive but the manifest, with its SHA-256
    recordings: RecordingIndex


def folder_of(config: Config, section: BackupConfig | None = None) -> Path:
    return (config.path.parent / (section or config.backup).folder).resolve()
