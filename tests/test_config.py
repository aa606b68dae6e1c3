"""Configuration: every mistake stops start-up with the key and the problem named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import DEFAULT_PATH, ConfigError, load

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, base: bool = True) -> Path:
    path = tmp_path / "config.toml"
    path.write_text((DEFAULT_PATH.read_text(encoding="utf-8") if base else "") + "\n" + text, encoding="utf-8")
    return path


def test_the_shipped_configuration_loads() -> None:
    config = load(environ={})
    assert config.server.port == 8080
    assert set(config.departments) == {"fire", "water", "civil_defence", "earthquake", "civil_affairs", "health"}
    assert {t.code for t in config.taxonomy if t.code == t.category} == {"1", "2", "3", "4"}


# Tables the shipped file already has cannot be declared twice in TOML: those cases stand alone.
@pytest.mark.parametrize("text, on_shipped, names", [
    ('[server]\nport = "eighty"', False, "server.port"),
    ('[server]\nport = 70000', False, "server.port"),
    ('[server]\ncolour = "red"', False, "server.colour"),
    ('[database]\npool_min = 20\npool_max = 2', False, "database.pool_min"),
    ('[alert]\ntone_by_severity = { I = "trumpet" }', False, "alert.tone_by_severity"),
    ('[map]\ntile_url = "http://tiles.internal/{z}/{x}.png"', False, "map.tile_url"),
    ('[map]\ntile_url = "ftp://tiles.internal/{z}/{x}/{y}.png"', False, "map.tile_url"),
    ('[[departments]]\ncode = "police"\nname = "公安"\nhandles = ["999"]', True, "departments[6].handles"),
    ('[[severity_rules]]\ntypes = ["201"]\nlevels = ["V"]\ndepartments = ["fire"]', True, "severity_rules[3].levels"),
    ('[[severity_rules]]\ntypes = ["201"]\nlevels = ["I"]\ndepartments = ["army"]', True,
     "severity_rules[3].departments"),
])
def test_a_bad_setting_is_refused_naming_the_key(tmp_path: Path, text: str, on_shipped: bool, names: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(write(tmp_path, text, base=on_shipped), environ={})
    assert names in str(refused.value)


def test_a_missing_facilities_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(DEFAULT_PATH.read_text(encoding="utf-8"), encoding="utf-8")  # data files left behind
    with pytest.raises(ConfigError, match=r"decision\.facilities: no such file"):
        load(path, environ={})


def test_a_subtype_must_sit_under_its_category(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[incident_types]]\ncode = "2"\nname = "事故灾难"\nsubtypes = [{ code = "301", name = "x" }]\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"incident_types\[0\]\.subtypes\[0\]\.code"):
        load(path, environ={})


def test_environment_overrides_the_database_url_and_listen_address() -> None:
    config = load(environ={"LIANDONG_DATABASE_URL": "postgresql://db.internal/liandong",
                           "LIANDONG_LISTEN": "0.0.0.0:9000"})
    assert config.database.url == "postgresql://db.internal/liandong"
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9000)
    with pytest.raises(ConfigError, match="LIANDONG_LISTEN"):
        load(environ={"LIANDONG_LISTEN": "nine-thousand"})


def test_the_server_refuses_to_start_on_a_bad_configuration(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = "eighty"', base=False)
    result = subprocess.run([sys.executable, "-m", "app.cli", "--config", str(path), "serve"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    assert "server.port" in result.stderr and "Expected `int`" in result.stderr
