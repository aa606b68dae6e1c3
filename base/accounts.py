"""Accounts and sessions: dispatchers, sub-centre operators, supervisors; bearer tokens."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from base.pg import Connection, Pool

# Interactive-login parameters (RFC 9106's second recommendation scaled down to ~20 ms here):
# a login is rare, a token check is a hash lookup.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# One thread for hashing: off the event loop, and each hash takes 19 MiB, so running several at once
# would only multiply memory; a login storm of a hundred terminals still clears in about two seconds.
_HASHING = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
# Token checks are cached briefly so a burst of requests does not cost a query each.
_CACHE_SECONDS = 5.0


class Role(StrEnum):
    DISPATCHER = "dispatcher"
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    subcentre_id: int | None  # set for operators only

    def public(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "role": self.role.value, "subcentre_id": self.subcentre_id}


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_user(connection: Connection | Pool, username: str, display_name: str, password: str,
                      role: Role, subcentre_id: int | None = None) -> int:
    user_id: int = await connection.fetchval(
        "INSERT INTO users (username, display_name, password_hash, role, subcentre_id)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        username, display_name, hash_password(password), role.value, subcentre_id)
    return user_id


def _user(r: asyncpg.Record) -> User:
    return User(r["id"], r["username"], r["display_name"], Role(r["role"]), r["subcentre_id"])


class Sessions:
    def __init__(self, pool: Pool, lifetime: timedelta) -> None:
        self._pool = pool
        self._lifetime = lifetime
        self._cache: dict[bytes, tuple[float, User]] = {}

    async def log_in(self, username: str, password: str) -> tuple[str, User] | None:
        row = await self._pool.fetchrow(
            "SELECT id, username, display_name, role, subcentre_id, password_hash FROM users WHERE username = $1",
            username)
        # Hashing takes ~20 ms of CPU: off the event loop (argon2-cffi releases the GIL), or a burst
        # of terminals logging in after an outage would hold up every ticket in flight.
        loop = asyncio.get_running_loop()
        if row is None:
            await loop.run_in_executor(_HASHING, _HASHER.hash, password)  # as slow as a wrong password
            return None
        try:
            await loop.run_in_executor(_HASHING, _HASHER.verify, row["password_hash"], password)
        except VerificationError:
            return None
        token = secrets.token_urlsafe(32)
        await self._pool.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, now() + $3)",
            token_hash(token), row["id"], self._lifetime)
        return token, _user(row)

    async def log_out(self, token: str) -> bool:
        """End the session now: the token is refused at once here, within seconds on every other process,
        and sockets opened with it are closed (base.sockets.SessionWatch)."""
        key = token_hash(token)
        self._cache.pop(key, None)
        deleted = await self._pool.fetchval("DELETE FROM sessions WHERE token_hash = $1 RETURNING true", key)
        return bool(deleted)

    async def still_valid(self, token_hashes: list[bytes]) -> set[bytes]:
        """Which of these sessions still exist and have not expired (one query for any number)."""
        rows = await self._pool.fetch(
            "SELECT token_hash FROM sessions WHERE token_hash = ANY($1::bytea[]) AND expires_at > now()", token_hashes)
        valid = {bytes(r["token_hash"]) for r in rows}
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
            "SELECT u.id, u.username, u.display_name, u.role, u.subcentre_id FROM sessions s"
            " JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > now()", key)
        if row is None:
            self._cache.pop(key, None)
            return None
        user = _user(row)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + _CACHE_SECONDS, user)
        return user
