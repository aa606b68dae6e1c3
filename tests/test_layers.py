"""The house's layering holds: each package imports only those below it (app, command, alerts | video,
dispatch, gis, base), and domain modules import no transport and no database driver. The contracts
live in pyproject.toml; import-linter reads the real import graph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINT_IMPORTS, "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_every_import_points_down_and_domain_modules_stay_free_of_transport() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_would_be_caught(tmp_path: Path) -> None:
    """The same tool, told the platform sat above the assembly, finds app importing base: the check can fail."""
    upside_down = tmp_path / "upside-down.toml"
    upside_down.write_text('[tool.importlinter]\nroot_packages = ["app", "base"]\n\n'
                           '[[tool.importlinter.contracts]]\nname = "upside down"\ntype = "layers"\n'
                           'layers = ["base", "app"]\n', encoding="utf-8")
    result = lint_imports("--config", str(upside_down))
    assert result.returncode != 0
    assert "app.server -> base." in result.stdout
