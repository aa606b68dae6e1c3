"""Accounts are an administrator's: created with a password that is hard to guess, disabled (and
logged out everywhere), never leaving the centre without an administrator; sessions are listed and
ended by an administrator, and a role's idle limit ends a session nobody uses — never a watch post."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from app.config import load
from app.server import build_app
from tests.conftest import config_text_for_tests
from tests.helpers import STRONG, Liandong
from tests.test_sessions import closed_within, socket_with

ROOT = Path(__file__).resolve().parent.parent
GOOD = STRONG


async def create(liandong: Liandong, **fields: Any) -> tuple[int, Any]:
    account = {"username": "water-night", "display_name": "水务夜班", "password": GOOD, "role": "operator",
               "subcentre_id": await liandong.subcentre_id("water"), **fields}
    return await liandong.call("POST", "/api/accounts", account, as_user="admin")


async def test_an_administrator_creates_an_account_that_can_log_in(liandong: Liandong) -> None:
    status, created = await create(liandong)
    assert status == 201, created
    assert (created["username"], created["role"], created["disabled_at"]) == ("water-night", "operator", None)
    status, body = await liandong.call("POST", "/api/login", {"username": "water-night", "password": GOOD})
    assert status == 200 and body["user"]["subcentre_id"] == created["subcentre_id"]
    status, again = await create(liandong)
    assert (status, again["error"]["code"], again["error"]["field"]) == (409, "name_taken", "username")


@pytest.mark.parametrize(("password", "reason"), [
    ("short-1", "at least 10 characters"),
    ("password123", "too easy to guess"),
    ("water-night!!", "too easy to guess"),  # the account's own name
])
async def test_a_guessable_password_is_refused_naming_the_field(liandong: Liandong, password: str,
                                                                reason: str) -> None:
    status, body = await create(liandong, password=password)
    assert (status, body["error"]["code"], body["error"]["field"]) == (422, "weak_password", "password")
    assert reason in body["error"]["message"]
    status, accounts = await liandong.call("GET", "/api/accounts", as_user="admin")
    assert "water-night" not in {a["username"] for a in accounts}


async def test_an_operator_without_a_subcentre_and_a_dispatcher_with_departments_are_refused(
        liandong: Liandong) -> None:
    status, body = await create(liandong, subcentre_id=None)
    assert (status, body["error"]["field"]) == (422, "subcentre_id")
    status, body = await create(liandong, role="dispatcher", subcentre_id=None, departments=["税务局"])
    assert (status, body["error"]["field"]) == (422, "departments")


async def test_only_an_administrator_manages_accounts(liandong: Liandong) -> None:
    for user in ("dispatcher", "supervisor", "fire-xiling"):
        for method, path in (("GET", "/api/accounts"), ("GET", "/api/sessions")):
            status, _ = await liandong.call(method, path, as_user=user)
            assert status == 403, (user, path)


async def test_disabling_an_account_ends_its_sessions_and_refuses_its_log_in(liandong: Liandong) -> None:
    token = await liandong.token("fire-xiling")
    terminal = await socket_with(liandong, "/ws/terminal", token)
    status, accounts = await liandong.call("GET", "/api/accounts", as_user="admin")
    xiling = next(a for a in accounts if a["username"] == "fire-xiling")
    status, changed = await liandong.call("PATCH", f"/api/accounts/{xiling['id']}", {"disabled": True},
                                          as_user="admin")
    assert status == 200 and changed["disabled_at"] is not None
    _told, took = await closed_within(terminal, 10)
    assert terminal.close_code == 4401 and took < 5
    status, _ = await liandong.call("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 401
    liandong.tokens.pop("fire-xiling")
    status, _body = await liandong.call("POST", "/api/login", {"username": "fire-xiling", "password": "liandong-demo"})
    assert status == 401  # told apart from a wrong password only in the audit log
    status, log = await liandong.call("GET", "/api/audit?target=user:fire-xiling", as_user="admin")
    assert [(e["action"], e["outcome"], e["details"]) for e in log[:2]] == [
        ("session.login", "refused", {"reason": "disabled"}), ("account.change", "ok", {"disabled": True})]


async def test_the_last_administrator_cannot_be_disabled_or_demoted(liandong: Liandong) -> None:
    status, accounts = await liandong.call("GET", "/api/accounts", as_user="admin")
    admin = next(a for a in accounts if a["username"] == "admin")
    for change in ({"disabled": True}, {"role": "supervisor"}):
        status, body = await liandong.call("PATCH", f"/api/accounts/{admin['id']}", change, as_user="admin")
        assert (status, body["error"]["code"]) == (409, "last_administrator"), change
    status, _ = await create(liandong, username="second-admin", display_name="值班管理员", role="administrator",
                             subcentre_id=None)
    assert status == 201
    status, body = await liandong.call("PATCH", f"/api/accounts/{admin['id']}", {"role": "supervisor"},
                                       as_user="admin")
    assert (status, body["role"]) == (200, "supervisor")


async def test_a_reset_password_logs_the_account_out_and_the_new_one_works(liandong: Liandong) -> None:
    token = await liandong.token("dispatcher")
    status, accounts = await liandong.call("GET", "/api/accounts", as_user="admin")
    dispatcher = next(a for a in accounts if a["username"] == "dispatcher")
    status, _ = await liandong.call("POST", f"/api/accounts/{dispatcher['id']}/password", {"password": GOOD},
                                    as_user="admin")
    assert status == 200
    status, _ = await liandong.call("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 401
    status, _ = await liandong.call("POST", "/api/login", {"username": "dispatcher", "password": GOOD})
    assert status == 200


async def test_an_administrator_sees_live_sessions_and_ends_one(liandong: Liandong) -> None:
    token = await liandong.token("supervisor")
    status, sessions = await liandong.call("GET", "/api/sessions", as_user="admin")
    assert status == 200
    mine = next(s for s in sessions if s["username"] == "supervisor")
    assert mine["address"] == "127.0.0.1" and "token" not in mine and "token_hash" not in mine
    status, _ = await liandong.call("DELETE", f"/api/sessions/{mine['id']}", as_user="admin")
    assert status == 200
    status, _ = await liandong.call("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 401
    status, _ = await liandong.call("DELETE", f"/api/sessions/{mine['id']}", as_user="admin")
    assert status == 404


@pytest.fixture
async def idle_limited(database_url: str, tmp_path: Path) -> AsyncIterator[Liandong]:
    """A server where a dispatcher's session lasts 4 s unused."""
    path = tmp_path / "liandong.toml"
    path.write_text(config_text_for_tests().replace("dispatcher = 0\n", "dispatcher = 0.0667\n", 1), encoding="utf-8")
    config = load(path, environ={"LIANDONG_DATABASE_URL": database_url})
    assert config.auth.idle_minutes.dispatcher == 0.0667
    server = TestServer(build_app(config), host="127.0.0.1")
    await server.start_server()
    async with Liandong(str(server.make_url("/")), server.app) as client:
        yield client
    await server.close()


async def test_an_idle_session_ends_but_one_with_an_open_console_does_not(idle_limited: Liandong) -> None:
    liandong = idle_limited
    idle = await liandong.token("dispatcher")
    status, watching = await liandong.call("POST", "/api/login", {"username": "dispatcher",
                                                                  "password": "liandong-demo"})
    console = await socket_with(liandong, "/ws/console", watching["token"])
    await asyncio.sleep(11)  # beyond the limit and the 5 s token cache
    status, _ = await liandong.call("GET", "/api/me", headers={"Authorization": f"Bearer {idle}"})
    assert status == 401
    assert not console.closed
    status, _ = await liandong.call("GET", "/api/me", headers={"Authorization": f"Bearer {watching['token']}"})
    assert status == 200
    await console.close()


def test_the_first_administrator_comes_from_the_command_line(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "liandong.toml"
    path.write_text(config_text_for_tests().replace("seed = true", "seed = false"), encoding="utf-8")
    command = [sys.executable, "-m", "app.cli", "--config", str(path), "account", "create", "chief",
               "--role", "administrator", "--display-name", "信息科"]
    environment = {"LIANDONG_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    weak = subprocess.run(command, cwd=ROOT, env=environment, input="chief12345\n", capture_output=True, text=True,
                          timeout=120)
    assert weak.returncode == 2 and "password:" in weak.stderr, weak
    made = subprocess.run(command, cwd=ROOT, env=environment, input=f"{GOOD}\n", capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0 and "'chief' (administrator) created" in made.stdout, made
