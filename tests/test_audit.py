"""The audit log: who did what, from where, to what, and how it ended; written with the action, never
changed afterwards, and any change made behind the database's back is named by `liandong audit verify`."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.config import Config
from base import audit
from base.signing import key_path, signing_key
from tests.helpers import PASSWORD, Liandong
from tests.test_cameras import camera

ROOT = Path(__file__).resolve().parent.parent


async def entries(liandong: Liandong, **query: str) -> list[dict[str, Any]]:
    path = "/api/audit?" + "&".join(f"{k}={v}" for k, v in query.items())
    status, body = await liandong.call("GET", path, as_user="supervisor")
    assert status == 200, body
    result: list[dict[str, Any]] = body
    return result


async def test_logins_incidents_registrations_and_refusals_are_recorded_with_who_and_where(
        liandong: Liandong) -> None:
    status, _ = await liandong.call("POST", "/api/login", {"username": "dispatcher", "password": "not it at all"})
    assert status == 401
    incident = await liandong.report("201", 4, 111.29, 30.70)
    status, _ = await liandong.call("POST", "/api/cameras", camera(), as_user="supervisor")
    assert status == 201
    status, _ = await liandong.call("GET", "/api/accounts", as_user="dispatcher")  # an administrator's page
    assert status == 403
    status, _ = await liandong.call("POST", "/api/accounts/%00/password", as_user="fire-xiling")
    assert status == 403  # a NUL in the path is refused and recorded as sent, not a 500

    logins = await entries(liandong, actor="dispatcher", action="session.login")
    assert [(e["outcome"], e["details"]) for e in logins] == [("ok", {}), ("refused", {"reason": "wrong password"})]
    assert all(e["address"] == "127.0.0.1" for e in logins)
    [reported] = await entries(liandong, target=f"incident:{incident['id']}")
    assert (reported["actor"], reported["action"], reported["outcome"]) == ("dispatcher", "incident.report", "ok")
    assert reported["details"] == {"type_code": "201", "severity": 4, "state": "open",
                                   "tickets": len(incident["tickets"])}
    [registered] = await entries(liandong, action="camera.register")
    assert (registered["actor"], registered["target"]) == ("supervisor", "camera:hall-w1")
    refused, odd = await entries(liandong, action="access.forbidden")
    assert (odd["actor"], odd["target"], odd["outcome"]) == ("dispatcher", "route:GET /api/accounts", "refused")
    assert (refused["actor"], refused["target"]) == ("fire-xiling", "route:POST /api/accounts/%00/password")
    every = await entries(liandong)
    assert [e["seq"] for e in every] == sorted((e["seq"] for e in every), reverse=True)  # newest first


async def test_the_log_exports_as_csv_with_the_same_filters(liandong: Liandong) -> None:
    await liandong.report("201", 4, 111.29, 30.70)
    token = await liandong.token("supervisor")
    async with liandong.http.get(liandong.base_url + "/api/audit.csv?action=incident.",
                                 headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200 and response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["actor"], r["action"]) for r in rows] == [("dispatcher", "incident.report")]
    [exported] = await entries(liandong, action="audit.export")  # reading the log out is itself recorded
    assert exported["actor"] == "supervisor"


async def test_an_action_that_fails_leaves_no_entry_and_an_entry_never_outlives_its_action(
        liandong: Liandong) -> None:
    before = await entries(liandong, action="plan.")
    status, _ = await liandong.call("DELETE", "/api/plans/no-such-plan", as_user="dispatcher")
    assert status == 404
    status, _ = await liandong.call("DELETE", "/api/plans/fire", as_user="dispatcher")
    assert status == 200
    after = await entries(liandong, action="plan.")
    assert [(e["action"], e["target"]) for e in after[: len(after) - len(before)]] == [("plan.retire", "plan:fire")]


async def test_update_delete_and_truncate_are_refused(liandong: Liandong, database_url: str) -> None:
    await liandong.token("dispatcher")
    connection = await asyncpg.connect(database_url)
    try:
        for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log",
                          "TRUNCATE audit_log", "UPDATE audit_head SET seq = 0", "DELETE FROM audit_anchors"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await connection.execute(statement)
        assert await connection.fetchval("SELECT count(*) FROM audit_log") >= 1
    finally:
        await connection.close()


async def tamper(database_url: str, *statements: str) -> None:
    """What someone with the database's superuser could do: switch the guards off, change rows, switch
    them on again."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")  # no triggers fire
            for statement in statements:
                await connection.execute(statement)
    finally:
        await connection.close()


async def verdict(database_url: str, config: Config) -> audit.Verdict:
    connection = await asyncpg.connect(database_url)
    try:
        public = signing_key(key_path(config.data_dir)).public_key()
        return await audit.verify(connection, public, audit.anchors_from_file(audit.anchors_file(config.data_dir)))
    finally:
        await connection.close()


async def six_entries(liandong: Liandong, database_url: str) -> int:
    """Three log-ins and three refusals; the seq of the entry before them (the demo's accounts come first)."""
    connection = await asyncpg.connect(database_url)
    try:
        before: int = await connection.fetchval("SELECT seq FROM audit_head")
    finally:
        await connection.close()
    for _ in range(3):
        status, _ = await liandong.call("POST", "/api/login", {"username": "supervisor", "password": PASSWORD})
        assert status == 200
        status, _ = await liandong.call("POST", "/api/login", {"username": "supervisor", "password": "wrong one!"})
        assert status == 401
    return before


async def test_verify_says_intact_then_names_the_altered_entry(liandong: Liandong, database_url: str,
                                                               config: Config) -> None:
    n = await six_entries(liandong, database_url)
    command = [sys.executable, "-m", "app.cli", "--config", str(config.path), "audit", "verify"]
    environment = {"LIANDONG_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    intact = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert intact.returncode == 0 and intact.stdout.startswith(f"{n + 6} entries") and "intact" in intact.stdout, intact

    await tamper(database_url, f"UPDATE audit_log SET outcome = 'ok', details = '{{}}' WHERE seq = {n + 4}")
    altered = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert altered.returncode == 1, altered
    assert altered.stdout.splitlines()[0] == f"ALTERED: entry {n + 4}: altered (its contents no longer match its hash)"


async def test_verify_names_a_removed_entry(liandong: Liandong, database_url: str, config: Config) -> None:
    n = await six_entries(liandong, database_url)
    await tamper(database_url, f"DELETE FROM audit_log WHERE seq = {n + 3}")
    assert (await verdict(database_url, config)).problems[0] == f"entry {n + 4}: entries {n + 3}–{n + 3} were removed"


async def test_verify_names_an_inserted_entry(liandong: Liandong, database_url: str, config: Config) -> None:
    n = await six_entries(liandong, database_url)
    # Make room after the third and slip a forged entry in, linked to the third as a real one would be.
    at = n + 4
    await tamper(database_url,
                 f"UPDATE audit_log SET seq = -seq WHERE seq >= {at}",
                 "UPDATE audit_log SET seq = 1 - seq WHERE seq < 0",
                 f"INSERT INTO audit_log SELECT {at}, at, actor_id, 'dispatcher', address, 'video.export', 'camera:1',"
                 f" 'ok', '{{}}', hash, sha256(hash) FROM audit_log WHERE seq = {at - 1}")
    problems = (await verdict(database_url, config)).problems
    assert problems[0] == f"entry {at}: altered (its contents no longer match its hash)"
    assert problems[1] == f"entry {at + 1}: does not follow entry {at} (inserted, or entry {at} was replaced)"


async def test_an_anchor_catches_entries_cut_off_the_end(liandong: Liandong, database_url: str,
                                                         config: Config) -> None:
    n = await six_entries(liandong, database_url)
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:  # as the server does, every 10 min
        anchored = await audit.anchor(pool, signing_key(key_path(config.data_dir)), audit.anchors_file(config.data_dir))
    assert anchored is not None and anchored["seq"] == n + 6
    last = anchored["seq"]
    # Cut the last two entries and move the head back, so the chain itself is consistent again.
    await tamper(database_url, f"DELETE FROM audit_log WHERE seq > {last - 2}",
                 f"UPDATE audit_head SET seq = {last - 2}, hash = (SELECT hash FROM audit_log WHERE seq = {last - 2})",
                 "DELETE FROM audit_anchors")  # and the anchors in the database too: the file still has it
    problems = (await verdict(database_url, config)).problems
    assert problems == [f"anchor at entry {last}: the chain ends at entry {last - 2}; entries after it were removed"]
