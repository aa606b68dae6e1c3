"""The centre's Ed25519 signing key: it signs evidence exports and the audit log's anchors."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def key_path(data_dir: Path) -> Path:
    return data_dir / "keys" / "evidence-signing.pem"


def signing_key(path: Path) -> Ed25519PrivateKey:
    """The centre's signing key, created on first use; the private half never leaves this file.

    Several servers may start together on one data folder: the key is written to a private
    temporary file and published with link(), which is atomic and refuses to overwrite, so every
    server ends up reading the same complete key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # created 0600
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(fresh)
            with contextlib.suppress(FileExistsError):  # another server published first: use theirs
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
