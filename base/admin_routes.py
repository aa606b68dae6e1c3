"""What administrators do: accounts, sessions; and the audit log, which supervisors may read as well."""

from __future__ import annotations

import csv
import io
from typing import Annotated

import msgspec
from aiohttp import web

from base import accounts, audit
from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError, RequestError
from base.http import Api, actor_of, body_of, limit_param, path_id, reply, text_param, timestamp_param, user_of
from base.messages import INT4_MAX, PLAIN

api = Api()
ADMINISTRATOR = (Role.ADMINISTRATOR,)
AUDITORS = (Role.ADMINISTRATOR, Role.SUPERVISOR)

# Letters, digits and _.@- only, so no control character either.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
DisplayName = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]
Password = Annotated[str, PLAIN, msgspec.Meta(max_length=256)]
Department = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=100)]
SubcentreId = Annotated[int, msgspec.Meta(ge=1, le=INT4_MAX)]


class NewAccount(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    username: Name
    display_name: DisplayName
    password: Password
    role: Role
    subcentre_id: SubcentreId | None = None  # operators only
    departments: Annotated[list[Department], msgspec.Meta(max_length=50)] = []  # supervisors only; [] = all


class AccountChange(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    display_name: DisplayName | None = None
    role: Role | None = None
    subcentre_id: SubcentreId | None = None
    departments: Annotated[list[Department], msgspec.Meta(max_length=50)] | None = None
    disabled: bool | None = None


class NewPassword(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    password: Password


@api.get("/api/accounts", "Every account, with its last use and live sessions", roles=ADMINISTRATOR)
async def list_accounts(request: web.Request) -> web.Response:
    return reply(await accounts.accounts(request.app[PLATFORM].pool))


@api.post("/api/accounts", "Create an account (passwords: 10 characters or more, not guessable)",
          roles=ADMINISTRATOR, body=NewAccount, status=201, conflicts=True)
async def create_account(request: web.Request) -> web.Response:
    new = await body_of(request, NewAccount)
    pool = request.app[PLATFORM].pool
    account_id = await accounts.create_user(pool, new.username, new.display_name, new.password, new.role,
                                            new.subcentre_id, new.departments, actor_of(request))
    return reply(await accounts.account(pool, account_id), status=201)


@api.route("PATCH", "/api/accounts/{id}", "Change an account's name, role, sub-centre, departments, or disable it"
           " (its sessions end); the last administrator stays", roles=ADMINISTRATOR, body=AccountChange,
           conflicts=True)
async def change_account(request: web.Request) -> web.Response:
    account_id = path_id(request, highest=INT4_MAX)
    change = await body_of(request, AccountChange)
    platform = request.app[PLATFORM]
    changed = await accounts.change_account(platform.pool, account_id, actor_of(request),
                                            display_name=change.display_name, role=change.role,
                                            subcentre_id=change.subcentre_id, departments=change.departments,
                                            disabled=change.disabled)
    platform.sessions.forget(account_id)
    return reply(changed)


@api.post("/api/accounts/{id}/password", "Set a new password; the account's sessions end", roles=ADMINISTRATOR,
          body=NewPassword)
async def reset_password(request: web.Request) -> web.Response:
    account_id = path_id(request, highest=INT4_MAX)
    new = await body_of(request, NewPassword)
    platform = request.app[PLATFORM]
    await accounts.reset_password(platform.pool, account_id, new.password, actor_of(request))
    platform.sessions.forget(account_id)
    return reply({"id": account_id, "password_changed": True})


@api.get("/api/sessions", "Every live session: whose, from where, since when, last used", roles=ADMINISTRATOR)
async def list_sessions(request: web.Request) -> web.Response:
    return reply(await request.app[PLATFORM].sessions.listing())


@api.delete("/api/sessions/{id}", "End a session: its token stops working and its sockets close within seconds",
            roles=ADMINISTRATOR)
async def revoke_session(request: web.Request) -> web.Response:
    session_id = path_id(request)
    if not await request.app[PLATFORM].sessions.revoke(session_id, actor_of(request)):
        raise DomainError(f"there is no live session {session_id}", "id", "not_found")
    return reply({"id": session_id, "revoked": True})


# The audit log --------------------------------------------------------------------------------------

_FILTERS = ("actor", "target", "action", "since", "until", "before", "limit")


def _query(request: web.Request, limit: int) -> audit.Query:
    if user_of(request).departments:  # a department's supervisor sees its windows, not the centre's log
        raise DomainError("a supervisor limited to departments may not read the audit log", code="forbidden")
    text = {name: text_param(request, name, 200) for name in ("actor", "target", "action")}
    before = request.query.get("before")
    if before is not None and (not before.isascii() or not before.isdigit() or len(before) > 18):
        raise RequestError(400, "invalid", "before is an entry's seq", "before")
    return audit.Query(actor=text["actor"], target=text["target"], action=text["action"],
                       since=timestamp_param(request, "since"), until=timestamp_param(request, "until"),
                       before_seq=int(before) if before is not None else None, limit=limit)


@api.get("/api/audit", "Search the audit log, newest first (target 'camera:' matches every camera, action"
         " 'video.' every video action; page with before=<seq>)", roles=AUDITORS, query=_FILTERS)
async def search_audit(request: web.Request) -> web.Response:
    return reply(await audit.search(request.app[PLATFORM].pool, _query(request, limit_param(request, 100))))


CSV_HEADER = ("seq", "at", "actor_id", "actor", "address", "action", "target", "outcome", "details")


@api.get("/api/audit.csv", "The audit log as CSV, oldest first, with the same filters (no limit)",
         roles=AUDITORS, query=_FILTERS[:-1], produces="text/csv", deadline=False)
async def export_audit(request: web.Request) -> web.StreamResponse:
    query = _query(request, 1)
    pool = request.app[PLATFORM].pool
    await audit.record(pool, audit.Entry(actor_of(request), "audit.export", "audit",
                                         details={k: v for k, v in request.query.items() if k in _FILTERS}))
    response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                           "Content-Disposition": 'attachment; filename="liandong-audit.csv"'})
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    async for entry in audit.stream(pool, query):
        writer.writerow([_cell(entry[c]) for c in CSV_HEADER])
        if buffer.tell() > 64 * 1024:
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response


def _cell(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    # A cell a spreadsheet would run as a formula is quoted with an apostrophe (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
