"""Accounts: dispatchers, sub-centre operators, supervisors and administrators; their passwords, and
what an administrator does to them. Every change is written with its audit entry in one transaction."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg
from argon2 import PasswordHasher

from base import audit
from base.errors import DomainError, NotFound
from base.pg import Connection, Pool

# Interactive-login parameters (RFC 9106's second recommendation scaled down to ~20 ms here):
# a login is rare, a token check is a hash lookup.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# One thread for hashing: off the event loop, and each hash takes 19 MiB, so running several at once
# would only multiply memory; a login storm of a hundred terminals still clears in about two seconds.
HASHING = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")

MIN_PASSWORD_LENGTH = 10
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0–4: 3 is "safely unguessable: moderate protection from offline attack"


class Role(StrEnum):
    DISPATCHER = "dispatcher"
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMINISTRATOR = "administrator"
    SYSTEM = "system"  # a department's own approval system, pushing its case events


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    subcentre_id: int | None  # set for operators only
    departments: tuple[str, ...] = ()  # a supervisor's (or a system's) departments; () = all

    def public(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "role": self.role.value, "subcentre_id": self.subcentre_id, "departments": list(self.departments)}

    def sees_department(self, department: str) -> bool:
        return not self.departments or department in self.departments


def user_from(row: asyncpg.Record | dict[str, Any]) -> User:
    return User(row["id"], row["username"], row["display_name"], Role(row["role"]), row["subcentre_id"],
                tuple(row["departments"] or ()))


USER_COLUMNS = "u.id, u.username, u.display_name, u.role, u.subcentre_id, u.departments"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class WeakPassword(DomainError):
    code = "weak_password"

    def __init__(self, message: str) -> None:
        super().__init__(message, "password")


def check_password(password: str, *about: str) -> None:
    """Refuse a password shorter than 10 characters, or one zxcvbn judges guessable (it knows common
    passwords, words, keyboard patterns and dates, and is told the account's own names)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    from zxcvbn import zxcvbn  # its word lists take ~13 MB: loaded when a password is first set, not at start

    verdict = zxcvbn(password[:100], user_inputs=[a for a in about if a])  # its cost grows with length
    if verdict["score"] < MIN_PASSWORD_SCORE:
        hint = verdict["feedback"]["warning"] or " ".join(verdict["feedback"]["suggestions"])
        raise WeakPassword("the password is too easy to guess" + (f": {hint}" if hint else ""))


async def hash_password(password: str) -> str:
    """~20 ms of CPU, on the hashing thread (argon2-cffi releases the GIL), never on the event loop."""
    return await asyncio.get_running_loop().run_in_executor(HASHING, HASHER.hash, password)


# Changes an administrator makes ---------------------------------------------------------------------

class AccountNotFound(NotFound):

    def __init__(self, account_id: int) -> None:
        super().__init__(f"there is no account {account_id}", "id")


class LastAdministrator(DomainError):
    code = "last_administrator"

    def __init__(self) -> None:
        super().__init__("this is the last administrator: make another one first", "role")


class NameTaken(DomainError):
    code = "name_taken"

    def __init__(self, username: str) -> None:
        super().__init__(f"the user name {username!r} is taken", "username")


def _check_shape(role: Role, subcentre_id: int | None, departments: Sequence[str]) -> None:
    if (role is Role.OPERATOR) != (subcentre_id is not None):
        raise DomainError("an operator belongs to a sub-centre, and only an operator does", "subcentre_id")
    if departments and role not in (Role.SUPERVISOR, Role.SYSTEM):
        raise DomainError("only a supervisor or a department's system is limited to departments", "departments")
    if role is Role.SYSTEM and not departments:
        raise DomainError("a department's system names its department", "departments")


async def create_user(connection: Connection | Pool, username: str, display_name: str, password: str,
                      role: Role, subcentre_id: int | None = None, departments: Sequence[str] = (),
                      actor: audit.Actor = audit.SYSTEM) -> int:
    """Create an account (the API, the CLI, the demo and the benchmarks all come here)."""
    _check_shape(role, subcentre_id, departments)
    check_password(password, username, display_name)
    password_hash = await hash_password(password)
    try:
        user_id: int = await connection.fetchval(
            "WITH created AS (INSERT INTO users (username, display_name, password_hash, role, subcentre_id,"
            " departments) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id),"
            f" logged AS ({audit.insert(7)})"
            " SELECT id FROM created",
            username, display_name, password_hash, role.value, subcentre_id, list(departments),
            *audit.Entry(actor, "account.create", f"user:{username}",
                         details={"role": role.value, "subcentre_id": subcentre_id,
                                  "departments": list(departments)}).columns())
    except asyncpg.UniqueViolationError:
        raise NameTaken(username) from None
    except asyncpg.ForeignKeyViolationError:
        raise DomainError(f"there is no sub-centre {subcentre_id}", "subcentre_id") from None
    return user_id


_ACCOUNT = ("SELECT u.id, u.username, u.display_name, u.role, u.subcentre_id, u.departments, u.disabled_at,"
            " u.created_at, (SELECT max(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id) AS last_seen_at,"
            " (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > now()) AS sessions"
            " FROM users u")


async def accounts(pool: Pool) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in await pool.fetch(_ACCOUNT + " ORDER BY u.id")]


async def account(pool: Pool | Connection, account_id: int) -> dict[str, Any]:
    row = await pool.fetchrow(_ACCOUNT + " WHERE u.id = $1", account_id)
    if row is None:
        raise AccountNotFound(account_id)
    return dict(row.items())


async def change_account(pool: Pool, account_id: int, actor: audit.Actor, *, display_name: str | None = None,
                         role: Role | None = None, subcentre_id: int | None = None,
                         departments: Sequence[str] | None = None, disabled: bool | None = None) -> dict[str, Any]:
    """Change what is given (None: unchanged; an operator's sub-centre goes with its role). Disabling an
    account ends its sessions. The last enabled administrator cannot be disabled or demoted."""
    async with pool.acquire() as connection, connection.transaction():
        # One change to accounts at a time, so two administrators cannot demote each other at once.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('liandong.accounts'))")
        before = await account(connection, account_id)
        new_role = role or Role(before["role"])
        role_changes = new_role.value != before["role"]
        # What the role keeps: an operator's sub-centre and a supervisor's departments go with a new role,
        # unless given; what is given must fit the role (as when creating).
        new_subcentre = subcentre_id if subcentre_id is not None else (
            None if role_changes else before["subcentre_id"])
        new_departments = list(departments) if departments is not None else (
            [] if role_changes else list(before["departments"]))
        _check_shape(new_role, new_subcentre, new_departments)
        now_disabled = before["disabled_at"] is not None if disabled is None else disabled
        was_admin = before["role"] == Role.ADMINISTRATOR and before["disabled_at"] is None
        if was_admin and (new_role is not Role.ADMINISTRATOR or now_disabled):
            others = await connection.fetchval(
                "SELECT count(*) FROM users WHERE role = 'administrator' AND disabled_at IS NULL AND id <> $1",
                account_id)
            if not others:
                raise LastAdministrator()
        try:
            await connection.execute(
                "UPDATE users SET display_name = $2, role = $3, subcentre_id = $4, departments = $5,"
                " disabled_at = CASE WHEN $6 THEN coalesce(disabled_at, now()) END WHERE id = $1",
                account_id, display_name or before["display_name"], new_role.value, new_subcentre, new_departments,
                now_disabled)
        except asyncpg.ForeignKeyViolationError:
            raise DomainError(f"there is no sub-centre {subcentre_id}", "subcentre_id") from None
        changes = {k: v for k, v in {"display_name": display_name, "role": role and role.value,
                                     "subcentre_id": subcentre_id, "departments": departments,
                                     "disabled": disabled}.items() if v is not None}
        if now_disabled or role_changes or new_departments != list(before["departments"]):
            # A disabled, re-roled or re-scoped account starts again from a log-in: its sockets (a wall
            # showing what it may no longer see) close within seconds.
            await connection.execute("DELETE FROM sessions WHERE user_id = $1", account_id)
        await audit.record(connection, audit.Entry(actor, "account.change", f"user:{before['username']}",
                                                   details={k: list(v) if isinstance(v, tuple) else v
                                                            for k, v in changes.items()}))
        return await account(connection, account_id)


async def reset_password(pool: Pool, account_id: int, password: str, actor: audit.Actor) -> None:
    """Set a new password and end the account's sessions (whoever knew the old one is logged out)."""
    row = await pool.fetchrow("SELECT username, display_name FROM users WHERE id = $1", account_id)
    if row is None:
        raise AccountNotFound(account_id)
    check_password(password, row["username"], row["display_name"])
    password_hash = await hash_password(password)
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("UPDATE users SET password_hash = $2 WHERE id = $1", account_id, password_hash)
        await connection.execute("DELETE FROM sessions WHERE user_id = $1", account_id)
        await audit.record(connection, audit.Entry(actor, "account.password", f"user:{row['username']}"))
