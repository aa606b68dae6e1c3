"""Fetch the pages' browser libraries from the npm registry into base/web/vendor/.

Reads base/web/vendor.json (name, exact version, the registry's sha512 integrity, the files
wanted), downloads each package tarball once, refuses it unless the integrity matches, and copies
only the listed files. npm itself is not needed; a mirror is honoured through NPM_CONFIG_REGISTRY.
Runs with the standard library only, before the project is installed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

WEB = Path(__file__).resolve().parent.parent / "base" / "web"
VENDOR = WEB / "vendor"


def fetch(name: str, version: str, integrity: str) -> bytes:
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=60) as response:
        tarball: bytes = response.read()
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if actual != expected:
        sys.exit(f"{name}@{version}: integrity mismatch from {url}")
    return tarball


def install(package: dict[str, Any]) -> None:
    name, version = str(package["name"]), str(package["version"])
    target = VENDOR / name
    stamp = target / ".version"
    if stamp.is_file() and stamp.read_text() == version:
        return
    tarball = fetch(name, version, str(package["integrity"]))
    shutil.rmtree(target, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for wanted in package["files"]:
            member = archive.extractfile(f"package/{wanted}")
            if member is None:
                sys.exit(f"{name}@{version}: {wanted} is not in the package")
            destination = target / wanted
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(member.read())
    stamp.write_text(version)
    print(f"vendored {name}@{version} into {target.relative_to(WEB.parent.parent)}")


def main() -> None:
    manifest = json.loads((WEB / "vendor.json").read_text(encoding="utf-8"))
    for package in manifest["packages"]:
        install(package)


if __name__ == "__main__":
    main()
