"""Evidence export: recordings of one camera over a time range (or of several, for one incident),
with a manifest holding the SHA-256 of every segment, signed with the centre's Ed25519 key. Anyone
holding the public key (GET /api/video/signing-key) can tell whether an exported clip was altered:
`liandong video verify`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from base.signing import public_pem

MANIFEST, SIGNATURE, PUBLIC_KEY = "manifest.json", "manifest.sig", "signing-key.pem"


@dataclass(frozen=True)
class Piece:
    path: Path
    started_at: datetime
    ended_at: datetime


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def export(pieces: Sequence[Piece], camera: dict[str, Any], since: datetime, until: datetime,
           key: Ed25519PrivateKey, exported_at: datetime, gaps: Sequence[dict[str, Any]] = ()) -> bytes:
    """A zip: the segments as recorded, the manifest (with the `gaps` between them: what was not
    recorded, and why), its signature and the public key."""
    manifest: dict[str, Any] = {
        "format": "liandong-evidence/1", "camera": camera, "since": since.isoformat(), "until": until.isoformat(),
        "exported_at": exported_at.isoformat(), "gaps": list(gaps),
        "segments": [_entry(p, f"segments/{p.path.name}") for p in pieces]}
    return _signed_zip(manifest, list(pieces), key)


@dataclass(frozen=True)
class CameraPart:
    """One camera's share of a case: its description, its segments and its gaps."""

    camera: dict[str, Any]
    pieces: Sequence[Piece]
    gaps: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Attachment:
    """Another recording kept with a case (a call's sound), listed and hashed like a segment."""

    path: Path
    file: str  # its name in the export, e.g. calls/call-3.webm
    details: dict[str, Any]


def export_case(case: dict[str, Any], parts: Sequence[CameraPart], key: Ed25519PrivateKey,
                exported_at: datetime, attachments: Sequence[Attachment] = ()) -> bytes:
    """Several cameras' recordings for one case (an incident) in one signed zip: each camera's
    segments under segments/<camera code>/, and in the manifest each segment names its camera;
    the case's other recordings (`attachments`) under their own names, each with its SHA-256."""
    segments, pieces = [], []
    for part in parts:
        for piece in part.pieces:
            segments.append({**_entry(piece, f"segments/{part.camera['code']}/{piece.path.name}"),
                             "camera": part.camera["code"]})
            pieces.append(piece)
    manifest: dict[str, Any] = {
        "format": "liandong-evidence/1", "case": case, "exported_at": exported_at.isoformat(),
        "cameras": [{**part.camera, "gaps": list(part.gaps)} for part in parts], "segments": segments,
        "attachments": [{**a.details, "file": a.file, "sha256": _sha256(a.path), "bytes": a.path.stat().st_size}
                        for a in attachments]}
    return _signed_zip(manifest, pieces, key, attachments)


def _entry(piece: Piece, file: str) -> dict[str, Any]:
    return {"file": file, "sha256": _sha256(piece.path), "bytes": piece.path.stat().st_size,
            "started_at": piece.started_at.isoformat(), "ended_at": piece.ended_at.isoformat()}


def _signed_zip(manifest: dict[str, Any], pieces: Sequence[Piece], key: Ed25519PrivateKey,
                attachments: Sequence[Attachment] = ()) -> bytes:
    body = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:  # video does not compress
        archive.writestr(MANIFEST, body)
        archive.writestr(SIGNATURE, base64.b64encode(key.sign(body)))
        archive.writestr(PUBLIC_KEY, public_pem(key))
        for piece, entry in zip(pieces, manifest["segments"], strict=True):
            archive.write(piece.path, entry["file"])
        for attachment in attachments:
            archive.write(attachment.path, attachment.file)
    return out.getvalue()


def verify(archive_path: Path, public_key_pem: bytes | None = None) -> list[str]:
    """What is wrong with an export ([] when it is intact). Without a key, the one inside the export is
    used, which proves the files match the manifest but not who signed it. A damaged, truncated or
    foreign file is a verdict too, never an exception."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            return _problems(archive, public_key_pem)
    except (zipfile.BadZipFile, EOFError) as error:
        return [f"the export is damaged or not a zip archive ({error})"]
    except OSError as error:
        return [f"the export cannot be read ({error.strerror or error})"]


def _problems(archive: zipfile.ZipFile, public_key_pem: bytes | None) -> list[str]:
    names = set(archive.namelist())
    for required in (MANIFEST, SIGNATURE):
        if required not in names:
            return [f"{required} is missing"]
    try:
        body = archive.read(MANIFEST)
        signature = base64.b64decode(archive.read(SIGNATURE), validate=True)
    except (zipfile.BadZipFile, ValueError) as error:
        return [f"the manifest or its signature is damaged ({error})"]
    try:
        key = serialization.load_pem_public_key(public_key_pem or archive.read(PUBLIC_KEY))
    except (KeyError, ValueError, TypeError, zipfile.BadZipFile, UnsupportedAlgorithm):
        return ["the public key cannot be read (pass the centre's key with --key)"]
    if not isinstance(key, Ed25519PublicKey):
        return ["the public key is not an Ed25519 key"]
    problems: list[str] = []
    try:
        key.verify(signature, body)
    except InvalidSignature:
        problems.append("the manifest's signature does not match: the manifest was altered or signed by"
                        " another key")
    try:
        segments = _listed(json.loads(body))
    except (ValueError, TypeError, KeyError):
        return [*problems, "the manifest is not an evidence manifest"]
    for file, sha256 in segments:
        if file not in names:
            problems.append(f"{file} is missing")
            continue
        try:
            data = archive.read(file)
        except zipfile.BadZipFile as error:
            problems.append(f"{file} is damaged ({error})")
            continue
        if hashlib.sha256(data).hexdigest() != sha256:
            problems.append(f"{file} was altered (SHA-256 differs)")
    listed = {file for file, _ in segments}
    problems += [f"{name} is not in the manifest"
                 for name in sorted(names - listed - {MANIFEST, SIGNATURE, PUBLIC_KEY})]
    return problems


def _listed(manifest: Any) -> list[tuple[str, str]]:
    """(file, sha256) of each segment and attachment the manifest lists; KeyError/TypeError if it is
    not one."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("segments"), list):
        raise TypeError("no list of segments")
    listed = [*manifest["segments"], *manifest.get("attachments", [])]
    return [(str(s["file"]), str(s["sha256"])) for s in listed]
