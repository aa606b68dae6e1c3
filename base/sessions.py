"""Sessions: bearer tokens that end by log-out, by an administrator, by their absolute lifetime, or
after a role's idle time without a request or an open socket."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from argon2.exceptions import VerificationError

from base import audit
from base.accounts import HASHER, HASHING, USER_COLUMNS, Role, User, token_hash, user_from
from base.pg import Pool

# Token checks are cached briefly so a burst of requests does not cost a query each.
_CACHE_SECONDS = 5.0
# A session's last use is written at most this often (or a quarter of the shortest idle limit): idle
# limits are minutes, and a write per request would be waste.
TOUCH_EVERY = timedelta(seconds=60)


class Sessions:
    def __init__(self, pool: Pool, lifetime: timedelta, idle: Mapping[Role, timedelta] | None = None) -> None:
        """`idle`: how long each role's session lasts unused (a role not named has no idle limit)."""
        self._pool = pool
        self._lifetime = lifetime
        # As a JSON object (role → seconds) the queries can look each session's limit up by its role.
        self._idle_s = {role.value: limit.total_seconds() for role, limit in (idle or {}).items()
                        if limit > timedelta(0)}
        self._touch_every = min([TOUCH_EVERY, *(limit / 4 for limit in (idle or {}).values() if limit > timedelta(0))])
        self._cache: dict[bytes, tuple[float, User]] = {}

    @staticmethod
    def _alive(idle: str) -> str:
        """SQL: the session `s` of account `u` has not ended; `idle` is the parameter holding the idle limits."""
        return ("s.expires_at > now() AND u.disabled_at IS NULL"
                f" AND s.last_seen_at > now()"
                f" - coalesce(({idle}::jsonb ->> u.role)::float8, 1e9) * interval '1 second'")

    async def log_in(self, username: str, password: str, address: str) -> tuple[str, User] | None:
        """A token for the account, or None for a wrong name or password (both audited)."""
        row = await self._pool.fetchrow(
            f"SELECT {USER_COLUMNS}, u.password_hash, u.disabled_at FROM users u WHERE u.username = $1", username)
        loop = asyncio.get_running_loop()
        try:
            if row is None:
                await loop.run_in_executor(HASHING, HASHER.hash, password)  # as slow as a wrong password
                raise VerificationError
            await loop.run_in_executor(HASHING, HASHER.verify, row["password_hash"], password)
            if row["disabled_at"] is not None:
                raise VerificationError  # told apart from a wrong password only in the audit log
        except VerificationError:
            reason = "unknown user" if row is None else "disabled" if row["disabled_at"] else "wrong password"
            await audit.record(self._pool, audit.Entry(
                audit.Actor(row["id"] if row else None, username, address), "session.login", f"user:{username}",
                "refused", {"reason": reason}))
            return None
        token = secrets.token_urlsafe(32)
        await self._pool.execute(
            f"WITH started AS (INSERT INTO sessions (token_hash, user_id, expires_at, address)"
            f" VALUES ($1, $2, now() + $3, $4)) {audit.insert(5)}",
            token_hash(token), row["id"], self._lifetime, address,
            *audit.Entry(audit.Actor(row["id"], username, address), "session.login", f"user:{username}").columns())
        return token, user_from(row)

    async def log_out(self, token: str, address: str) -> bool:
        """End the session now: the token is refused at once here, within seconds on every other process,
        and sockets opened with it are closed (base.sockets.SessionWatch)."""
        key = token_hash(token)
        self._cache.pop(key, None)
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "WITH ended AS (DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id)"
                " SELECT u.id, u.username FROM ended JOIN users u ON u.id = ended.user_id", key)
            if row is None:
                return False
            await audit.record(connection, audit.Entry(audit.Actor(row["id"], row["username"], address),
                                                       "session.logout", f"user:{row['username']}"))
        return True

    async def still_valid(self, token_hashes: list[bytes]) -> set[bytes]:
        """Which of these sessions (each with an open socket) have not ended; an open socket is use, so
        their last use moves on (once a minute at most)."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                f"SELECT s.token_hash FROM sessions s JOIN users u ON u.id = s.user_id"
                f" WHERE s.token_hash = ANY($1::bytea[]) AND {self._alive('$2')}", token_hashes, self._idle_s)
            valid = {bytes(r["token_hash"]) for r in rows}
            # SKIP LOCKED: a row an administrator is deleting is not waited for (nor deadlocked on);
            # a row skipped now is touched at the next round.
            await connection.execute(
                "UPDATE sessions SET last_seen_at = now() WHERE token_hash IN (SELECT token_hash FROM sessions"
                " WHERE token_hash = ANY($1::bytea[]) AND last_seen_at < now() - $2::interval"
                " FOR UPDATE SKIP LOCKED)", list(valid), self._touch_every)
        for gone in set(token_hashes) - valid:
            self._cache.pop(gone, None)
        return valid

    async def user_for(self, token: str) -> User | None:
        key = token_hash(token)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        row = await self._pool.fetchrow(
            f"SELECT {USER_COLUMNS}, s.last_seen_at < now() - $3::interval AS stale FROM sessions s"
            f" JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND {self._alive('$2')}",
            key, self._idle_s, self._touch_every)
        if row is None:
            self._cache.pop(key, None)
            return None
        if row["stale"]:
            await self._pool.execute("UPDATE sessions SET last_seen_at = now() WHERE token_hash = $1", key)
        user = user_from(row)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + _CACHE_SECONDS, user)
        return user

    def forget(self, user_id: int) -> None:
        """Drop cached tokens of an account whose sessions were just ended here."""
        for key in [k for k, (_, user) in self._cache.items() if user.id == user_id]:
            del self._cache[key]

    # What an administrator sees and does -------------------------------------------------------------

    async def listing(self) -> list[dict[str, Any]]:
        """Every live session: whose, from where, since when, last used; never the token."""
        rows = await self._pool.fetch(
            f"SELECT s.id, u.id AS user_id, u.username, u.role, s.address, s.created_at, s.last_seen_at,"
            f" s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE {self._alive('$1')}"
            " ORDER BY s.created_at DESC", self._idle_s)
        return [dict(r.items()) for r in rows]

    async def revoke(self, session_id: int, actor: audit.Actor) -> bool:
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "WITH ended AS (DELETE FROM sessions WHERE id = $1 RETURNING user_id, token_hash)"
                " SELECT u.id, u.username, ended.token_hash FROM ended JOIN users u ON u.id = ended.user_id",
                session_id)
            if row is None:
                return False
            await audit.record(connection, audit.Entry(actor, "session.revoke", f"user:{row['username']}",
                                                       details={"session": session_id}))
        self._cache.pop(bytes(row["token_hash"]), None)
        return True
