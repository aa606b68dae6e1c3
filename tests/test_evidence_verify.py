"""An evidence export that is damaged, truncated or not a zip at all gets a verdict, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from base.signing import public_pem
from tests.conftest import ROOT
from video.recording.evidence import Piece, export, verify

_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _export(folder: Path) -> tuple[Path, Path]:
    """A signed export of two small 'segments', and the public key that signed it."""
    key = Ed25519PrivateKey.generate()
    pieces = []
    for n in range(2):
        path = folder / f"segment-{n}.mp4"
        path.write_bytes(bytes(range(256)) * 400 * (n + 1))
        pieces.append(Piece(path, _AT + timedelta(seconds=10 * n), _AT + timedelta(seconds=10 * (n + 1))))
    archive = folder / "export.zip"
    archive.write_bytes(export(pieces, {"code": "w1"}, _AT, _AT + timedelta(seconds=20), key, _AT))
    (folder / "key.pem").write_bytes(public_pem(key))
    return archive, folder / "key.pem"


def _cli(archive: Path, key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "video", "verify", str(archive), "--key", str(key)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_an_intact_export_verifies_and_damaged_ones_each_get_a_verdict(tmp_path: Path) -> None:
    archive, key = _export(tmp_path)
    pem = key.read_bytes()
    assert verify(archive, pem) == []

    data = archive.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    assert verify(truncated, pem) == [verify(truncated, pem)[0]]
    assert "damaged or not a zip" in verify(truncated, pem)[0]

    with zipfile.ZipFile(archive) as original:
        stored = original.getinfo("segments/segment-1.mp4")
    offset = stored.header_offset + 30 + len(stored.filename) + 1000  # inside the segment's stored bytes
    bad_crc = tmp_path / "bad-crc.zip"
    bad_crc.write_bytes(data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1:])
    assert verify(bad_crc, pem) == ["segments/segment-1.mp4 is damaged (Bad CRC-32 for file"
                                    " 'segments/segment-1.mp4')"]

    not_a_zip = tmp_path / "notes.zip"
    not_a_zip.write_text("meeting notes", encoding="utf-8")
    assert verify(not_a_zip, pem) == ["the export is damaged or not a zip archive (File is not a zip file)"]
    assert verify(tmp_path / "absent.zip", pem) == ["the export cannot be read (No such file or directory)"]


def test_a_manifest_that_is_not_one_is_named(tmp_path: Path) -> None:
    archive, key = _export(tmp_path)
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(archive) as original, zipfile.ZipFile(forged, "w") as out:
        for name in original.namelist():
            out.writestr(name, b'{"segments": 7}' if name == "manifest.json" else original.read(name))
    assert verify(forged, key.read_bytes()) == [
        "the manifest's signature does not match: the manifest was altered or signed by another key",
        "the manifest is not an evidence manifest"]


def test_the_command_says_what_is_wrong_and_exits_1_without_a_traceback(tmp_path: Path) -> None:
    archive, key = _export(tmp_path)
    data = archive.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) - 200])
    result = _cli(truncated, key)
    assert result.returncode == 1, result
    assert result.stdout.startswith("ALTERED: the export is damaged or not a zip archive")
    assert "Traceback" not in result.stderr

    missing_key = _cli(archive, tmp_path / "no-such-key.pem")
    assert missing_key.returncode == 2 and "cannot read the key" in missing_key.stdout
    assert "Traceback" not in missing_key.stderr
    assert _cli(archive, key).returncode == 0
