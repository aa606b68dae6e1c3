"""Calls in PostgreSQL. Each change is one transaction with its events on the incident's timeline;
an event about a sub-centre's place in a call carries that sub-centre, so it reaches its terminals
in their gap-free stream (the invitation rings like a ticket, and stops when the call ends)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from base import outbox
from base.accounts import Role, User
from base.errors import DomainError
from base.pg import Connection, Pool
from calls.rules import Limits, PartyKind, check_link, check_room, secret_hash
from dispatch.store import NewEvent, record_events, tickets_told
from dispatch.views import Views

JSON = dict[str, Any]

_PARTIES = ("(SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'kind', p.kind, 'user_id', p.user_id,"
            " 'subcentre_id', p.subcentre_id, 'name', coalesce(s.name, u.display_name, '报警人'),"
            " 'state', p.state, 'muted', p.muted, 'invited_at', p.invited_at, 'joined_at', p.joined_at,"
            " 'left_at', p.left_at) ORDER BY p.id), '[]') FROM call_parties p"
            " LEFT JOIN subcentres s ON s.id = p.subcentre_id LEFT JOIN users u ON u.id = p.user_id"
            " WHERE p.call_id = c.id)")
_POSITIONS = ("(SELECT coalesce(jsonb_agg(jsonb_build_object('lon', q.lon, 'lat', q.lat, 'accuracy_m', q.accuracy_m,"
              " 'at', q.at) ORDER BY q.id), '[]') FROM caller_positions q WHERE q.call_id = c.id)")
_CALL = (f"SELECT c.id, c.incident_id, c.dispatcher_id, c.node, c.opened_at, c.ended_at, c.end_reason,"
         f" c.recording, c.recorded_s, c.expired_at, {_PARTIES} AS parties, {_POSITIONS} AS positions FROM calls c")


@dataclass(frozen=True)
class Party:
    id: int
    call_id: int
    incident_id: int
    kind: PartyKind
    subcentre_id: int | None
    node: str


def call_json(row: asyncpg.Record) -> JSON:
    return dict(row.items())


async def call(pool: Pool | Connection, call_id: int) -> JSON:
    row = await pool.fetchrow(_CALL + " WHERE c.id = $1", call_id)
    if row is None:
        raise DomainError(f"call {call_id} does not exist", "id", "not_found")
    return call_json(row)


async def calls_of_incident(pool: Pool, incident_id: int) -> list[JSON]:
    return [call_json(r) for r in await pool.fetch(_CALL + " WHERE c.incident_id = $1 ORDER BY c.id", incident_id)]


async def open_calls(pool: Pool, subcentre_id: int | None) -> list[JSON]:
    """The calls going on now; for an operator, those its sub-centre is (still) in."""
    rows = await pool.fetch(
        _CALL + " WHERE c.ended_at IS NULL AND ($1::int IS NULL OR EXISTS (SELECT 1 FROM call_parties p"
        " WHERE p.call_id = c.id AND p.subcentre_id = $1 AND p.state <> 'dropped')) ORDER BY c.id", subcentre_id)
    return [call_json(r) for r in rows]


async def _ticketed(connection: Connection, incident_id: int) -> dict[int, str]:
    """The sub-centres with a live ticket for the incident: the only ones a call may invite."""
    rows = await connection.fetch(
        "SELECT t.subcentre_id, s.name FROM tickets t JOIN subcentres s ON s.id = t.subcentre_id"
        " WHERE t.incident_id = $1 AND t.state NOT IN ('rejected', 'cancelled') ORDER BY t.id", incident_id)
    return {r["subcentre_id"]: r["name"] for r in rows}


def _invitation(call_id: int, incident: asyncpg.Record, party_id: int, at: datetime) -> JSON:
    """What a terminal is told: enough to ring and show what the call is about."""
    return {"call": {"id": call_id, "party_id": party_id, "incident_id": incident["id"],
                     "type_code": incident["type_code"], "severity": incident["severity"],
                     "address": incident["address"], "invited_at": at.isoformat()}}


@dataclass(frozen=True)
class Opened:
    call: JSON
    caller_token: str | None


async def open_call(pool: Pool, incident_id: int, dispatcher: User, node: str, subcentre_ids: Sequence[int] | None,
                    caller_phone: str, link: tuple[str, bytes], limits: Limits, sms_body: str | None) -> Opened:
    """Open the incident's call: the dispatcher, the sub-centres (all ticketed ones unless named)
    and the caller's place with its link, in one transaction."""
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        incident = await connection.fetchrow("SELECT id, type_code, severity, address, state FROM incidents"
                                             " WHERE id = $1 FOR UPDATE", incident_id)
        if incident is None:
            raise DomainError(f"incident {incident_id} does not exist", "id", "not_found")
        if incident["state"] != "open":
            raise DomainError("the incident is closed", "id", "closed")
        if await connection.fetchval("SELECT 1 FROM calls WHERE incident_id = $1 AND ended_at IS NULL", incident_id):
            raise DomainError("this incident already has a call going on: join it", "id", "duplicate")
        ticketed = await _ticketed(connection, incident_id)
        chosen = list(ticketed) if subcentre_ids is None else list(dict.fromkeys(subcentre_ids))
        for subcentre_id in chosen:
            if subcentre_id not in ticketed:
                raise DomainError(f"sub-centre {subcentre_id} has no ticket for this incident", "subcentre_ids",
                                  "forbidden")
        check_room(len(chosen) + 1, limits)  # +1: the dispatcher; the caller's place is always kept
        call_id = await connection.fetchval(
            "INSERT INTO calls (incident_id, dispatcher_id, node, opened_at) VALUES ($1, $2, $3, $4) RETURNING id",
            incident_id, dispatcher.id, node, now)
        await connection.execute(
            "INSERT INTO call_parties (call_id, kind, user_id, invited_at) VALUES ($1, $2, $3, $4)",
            call_id, PartyKind.DISPATCHER, dispatcher.id, now)
        await connection.execute("INSERT INTO call_parties (call_id, kind, invited_at) VALUES ($1, $2, $3)",
                                 call_id, PartyKind.CALLER, now)
        token, token_hash = link
        await connection.execute(
            "INSERT INTO caller_links (call_id, token_hash, phone, expires_at) VALUES ($1, $2, $3, $4)",
            call_id, token_hash, caller_phone, now + limits.caller_link)
        events = [NewEvent(incident_id, "call.opened", now, {"call_id": call_id, "subcentres": chosen},
                           actor_id=dispatcher.id)]
        for subcentre_id in chosen:
            party_id = await connection.fetchval(
                "INSERT INTO call_parties (call_id, kind, subcentre_id, invited_at) VALUES ($1, $2, $3, $4)"
                " RETURNING id", call_id, PartyKind.SUBCENTRE, subcentre_id, now)
            events.append(NewEvent(incident_id, "call.invited", now, _invitation(call_id, incident, party_id, now),
                                   subcentre_id=subcentre_id, actor_id=dispatcher.id))
        await record_events(connection, events)
        if caller_phone and sms_body is not None:
            await outbox.queue(connection, [outbox.Message(incident_id, None, "call_link", "sms", "caller",
                                                           caller_phone, "三方通话", sms_body)])
        return Opened(await call(connection, call_id), token)


async def _going_on(db: Pool | Connection, call_id: int, columns: str, lock: str = "") -> asyncpg.Record:
    """A call's row (the columns asked for), refused if there is no such call or it has ended."""
    row = await db.fetchrow(f"SELECT {columns}, ended_at FROM calls WHERE id = $1{lock}", call_id)
    if row is None:
        raise DomainError(f"call {call_id} does not exist", "id", "not_found")
    if row["ended_at"] is not None:
        raise DomainError("the call has ended", "id", "closed")
    return row


async def party_of_user(pool: Pool, call_id: int, user: User) -> Party:
    """The place in the call this account may take: its own as the call's dispatcher, or its sub-centre's."""
    call_row = await _going_on(pool, call_id, "incident_id, dispatcher_id, node")
    if user.role is Role.DISPATCHER:
        if call_row["dispatcher_id"] != user.id:
            raise DomainError("another dispatcher holds this call", "id", "forbidden")
        row = await pool.fetchrow("SELECT id FROM call_parties WHERE call_id = $1 AND kind = 'dispatcher'", call_id)
    else:
        row = await pool.fetchrow("SELECT id FROM call_parties WHERE call_id = $1 AND subcentre_id = $2"
                                  " AND state <> 'dropped'", call_id, user.subcentre_id)
        if row is None:
            raise DomainError("your sub-centre is not in this call", "id", "forbidden")
    assert row is not None
    kind = PartyKind.DISPATCHER if user.role is Role.DISPATCHER else PartyKind.SUBCENTRE
    return Party(row["id"], call_id, call_row["incident_id"], kind, user.subcentre_id, call_row["node"])


_CALLER = ("SELECT l.expires_at, l.used_at, p.id, c.id AS call_id, c.incident_id, c.node, c.ended_at"
           " FROM caller_links l JOIN calls c ON c.id = l.call_id"
           " JOIN call_parties p ON p.call_id = c.id AND p.kind = 'caller'")


async def _caller(db: Pool | Connection, column: str, secret: str, field: str, lock: str = "") -> asyncpg.Record:
    """The caller's place in the call its link token or session (`column`) names, if the call goes on."""
    row = await db.fetchrow(f"{_CALLER} WHERE l.{column} = $1{lock}", secret_hash(secret))
    if row is None:
        raise DomainError(f"this call {'session' if field == 'session' else 'link'} is not known", field, "forbidden")
    if row["ended_at"] is not None:
        raise DomainError("the call has ended", field, "closed")
    return row


def _caller_party(row: asyncpg.Record) -> Party:
    return Party(row["id"], row["call_id"], row["incident_id"], PartyKind.CALLER, None, row["node"])


async def party_of_caller(pool: Pool, session: str) -> Party:
    return _caller_party(await _caller(pool, "session_hash", session, "session"))


async def link_call(pool: Pool, token: str) -> Party:
    """The call a caller's link is for, if it could still be used (it is not spent here)."""
    row = await _caller(pool, "token_hash", token, "token")
    check_link(row["expires_at"], row["used_at"], datetime.now(UTC))
    return _caller_party(row)


async def redeem_link(pool: Pool, token: str, session_hash: bytes) -> Party:
    """Spend a caller's link (once, before it expires) for a session the page keeps."""
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        row = await _caller(connection, "token_hash", token, "token", " FOR UPDATE OF l")
        check_link(row["expires_at"], row["used_at"], now)
        await connection.execute("UPDATE caller_links SET used_at = $2, session_hash = $3 WHERE call_id = $1",
                                 row["call_id"], now, session_hash)
        return _caller_party(row)


async def new_link(pool: Pool, call_id: int, link: tuple[str, bytes], limits: Limits) -> None:
    """A fresh link for the caller (the first expired, or was opened on another phone)."""
    await pool.execute("UPDATE caller_links SET token_hash = $2, session_hash = NULL, used_at = NULL,"
                       " expires_at = $3 WHERE call_id = $1", call_id, link[1], datetime.now(UTC) + limits.caller_link)


async def set_state(pool: Pool, party_id: int, state: str, actor: User | None = None) -> None:
    """A party joined, connected, left or was dropped; told to the timeline (and its terminals)."""
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "UPDATE call_parties p SET state = $2,"
            " joined_at = CASE WHEN $2 = 'connected' THEN coalesce(p.joined_at, $3) ELSE p.joined_at END,"
            " left_at = CASE WHEN $2 IN ('gone', 'dropped') THEN $3 ELSE NULL END,"
            " answered_by = coalesce($4, p.answered_by)"
            " FROM calls c WHERE p.id = $1 AND c.id = p.call_id AND c.ended_at IS NULL AND p.state <> $2"
            " AND (p.state <> 'dropped' OR $2 = 'invited')"
            " RETURNING p.call_id, p.kind, p.subcentre_id, c.incident_id", party_id, state, now,
            actor.id if actor and actor.role is Role.OPERATOR and state == "joining" else None)
        if row is None:
            return  # unchanged, or the call has ended
        await record_events(connection, [NewEvent(
            row["incident_id"], "call.party", now,
            {"call_id": row["call_id"], "party_id": party_id, "kind": row["kind"], "state": state},
            subcentre_id=row["subcentre_id"], actor_id=actor.id if actor else None)])


async def set_muted(pool: Pool, party_id: int, muted: bool) -> None:
    await pool.execute("UPDATE call_parties SET muted = $2 WHERE id = $1", party_id, muted)


async def add_subcentre(pool: Pool, call_id: int, subcentre_id: int, actor: User, limits: Limits) -> int:
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        call_row = await _going_on(connection, call_id, "incident_id", lock=" FOR UPDATE")
        if subcentre_id not in await _ticketed(connection, call_row["incident_id"]):
            raise DomainError(f"sub-centre {subcentre_id} has no ticket for this incident", "subcentre_id", "forbidden")
        present = await connection.fetchval(
            "SELECT count(*) FROM call_parties WHERE call_id = $1 AND state <> 'dropped' AND kind <> 'caller'", call_id)
        check_room(present, limits)
        existing = await connection.fetchrow(
            "SELECT id, state FROM call_parties WHERE call_id = $1 AND subcentre_id = $2", call_id, subcentre_id)
        if existing is not None and existing["state"] != "dropped":
            raise DomainError("this sub-centre is already in the call", "subcentre_id", "duplicate")
        if existing is not None:
            party_id: int = existing["id"]
            await connection.execute("UPDATE call_parties SET state = 'invited', invited_at = $2, left_at = NULL"
                                     " WHERE id = $1", party_id, now)
        else:
            party_id = await connection.fetchval(
                "INSERT INTO call_parties (call_id, kind, subcentre_id, invited_at) VALUES ($1, 'subcentre', $2, $3)"
                " RETURNING id", call_id, subcentre_id, now)
        incident = await connection.fetchrow("SELECT id, type_code, severity, address FROM incidents WHERE id = $1",
                                              call_row["incident_id"])
        assert incident is not None  # the call's foreign key
        await record_events(connection, [NewEvent(call_row["incident_id"], "call.invited", now,
                                                  _invitation(call_id, incident, party_id, now),
                                                  subcentre_id=subcentre_id, actor_id=actor.id)])
        return party_id


async def party_row(pool: Pool, call_id: int, party_id: int) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT id, kind, subcentre_id, state FROM call_parties WHERE id = $1 AND call_id = $2",
                              party_id, call_id)
    if row is None:
        raise DomainError(f"call {call_id} has no party {party_id}", "party", "not_found")
    return row


async def transfer(pool: Pool, call_id: int, actor: User, to: User) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow("UPDATE calls SET dispatcher_id = $3 WHERE id = $1 AND dispatcher_id = $2"
                                        " AND ended_at IS NULL RETURNING incident_id", call_id, actor.id, to.id)
        if row is None:
            raise DomainError("only the dispatcher holding an open call can transfer it", "id", "forbidden")
        await connection.execute("UPDATE call_parties SET user_id = $2, state = 'invited', joined_at = NULL,"
                                 " left_at = NULL WHERE call_id = $1 AND kind = 'dispatcher'", call_id, to.id)
        await record_events(connection, [NewEvent(row["incident_id"], "call.transferred", now,
                                                  {"call_id": call_id, "from": actor.id, "to": to.id,
                                                   "to_name": to.display_name}, actor_id=actor.id)])


async def end_call(pool: Pool, call_id: int, reason: str, actor: User | None) -> bool:
    """End the call for everyone; False when it had already ended."""
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow("UPDATE calls SET ended_at = $2, end_reason = $3 WHERE id = $1"
                                        " AND ended_at IS NULL RETURNING incident_id", call_id, now, reason)
        if row is None:
            return False
        parties = await connection.fetch(
            "UPDATE call_parties SET state = CASE WHEN state = 'dropped' THEN state ELSE 'gone' END,"
            " left_at = coalesce(left_at, $2) WHERE call_id = $1 RETURNING subcentre_id", call_id, now)
        ended = {"call_id": call_id, "reason": reason}
        events = [NewEvent(row["incident_id"], "call.ended", now, ended, actor_id=actor.id if actor else None)]
        events += [NewEvent(row["incident_id"], "call.ended", now, ended, subcentre_id=p["subcentre_id"],
                            actor_id=actor.id if actor else None) for p in parties if p["subcentre_id"] is not None]
        await record_events(connection, events)
        return True


async def store_recording(pool: Pool, call_id: int, files: list[JSON], recorded_s: float) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        incident_id = await connection.fetchval(
            "UPDATE calls SET recording = $2, recorded_s = $3 WHERE id = $1 RETURNING incident_id",
            call_id, files, recorded_s)
        await record_events(connection, [NewEvent(incident_id, "call.recorded", now,
                                                  {"call_id": call_id, "recorded_s": round(recorded_s, 2),
                                                   "files": files})])


async def add_position(pool: Pool, party: Party, lon: float, lat: float, accuracy_m: float) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("INSERT INTO caller_positions (call_id, at, lon, lat, accuracy_m)"
                                 " VALUES ($1, $2, $3, $4, $5)", party.call_id, now, lon, lat, accuracy_m)
        await record_events(connection, [NewEvent(party.incident_id, "call.caller_position", now,
                                                  {"call_id": party.call_id, "lon": lon, "lat": lat,
                                                   "accuracy_m": accuracy_m})])


async def adopt_position(pool: Pool, views: Views, call_id: int, actor: User) -> JSON:
    """Move the incident to where the caller's phone last said it is."""
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        found = await connection.fetchrow(
            "SELECT c.incident_id, i.lon AS old_lon, i.lat AS old_lat, q.lon, q.lat, q.accuracy_m FROM calls c"
            " JOIN incidents i ON i.id = c.incident_id LEFT JOIN LATERAL (SELECT lon, lat, accuracy_m"
            " FROM caller_positions WHERE call_id = c.id ORDER BY id DESC LIMIT 1) q ON true WHERE c.id = $1"
            " FOR UPDATE OF i", call_id)
        if found is None:
            raise DomainError(f"call {call_id} does not exist", "id", "not_found")
        if found["lon"] is None:
            raise DomainError("the caller has not shared a position", "id", "not_found")
        await connection.execute("UPDATE incidents SET lon = $2, lat = $3 WHERE id = $1",
                                 found["incident_id"], found["lon"], found["lat"])
        moved = {"call_id": call_id, "from": {"lon": found["old_lon"], "lat": found["old_lat"]},
                 "to": {"lon": found["lon"], "lat": found["lat"]}, "accuracy_m": found["accuracy_m"],
                 "source": "caller"}
        # The tickets still out show the new place on their terminals, as the console does.
        await record_events(connection, [NewEvent(found["incident_id"], "incident.relocated", now, moved,
                                                  actor_id=actor.id),
                                         *await tickets_told(connection, views, found["incident_id"], now, actor.id)])
        return moved


async def calls_of_node(pool: Pool, node: str) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT id, opened_at, node FROM calls WHERE ended_at IS NULL AND node LIKE $1",
                                 node))


async def expired(pool: Pool, before: datetime) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT id, recording FROM calls WHERE ended_at < $1 AND expired_at IS NULL"
                                 " AND recording IS NOT NULL ORDER BY id LIMIT 100", before))


async def mark_expired(pool: Pool, call_id: int) -> None:
    await pool.execute("UPDATE calls SET expired_at = now() WHERE id = $1", call_id)
