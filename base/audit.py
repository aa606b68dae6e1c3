"""The audit log: every security-relevant action, who did it, from where, to what, and how it ended.

An entry is written in the transaction of the action it records (`insert` is a fragment for a
statement's CTE, `record` a statement of its own), so it exists exactly when the action committed.
PostgreSQL chains the entries (base/migrations/0003_audit.sql): each hash covers the previous hash
and the entry's fields, and UPDATE, DELETE and TRUNCATE are refused. `verify` recomputes the chain
here, independently of the database's functions, and names the first entry altered, removed or
inserted; signed anchors of the head make cutting entries off the end detectable as well.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from base.pg import Connection, Pool

GENESIS = bytes(32)  # the hash before the first entry
_SEPARATOR = "\x1f"  # the unit separator: the fields are joined with it, as audit_text() does


@dataclass(frozen=True)
class Actor:
    """Who acts: an account, the public (no account) or the system itself, and from which address."""

    user_id: int | None
    name: str
    address: str = ""


SYSTEM = Actor(None, "system")


@dataclass(frozen=True)
class Entry:
    actor: Actor
    action: str  # "<area>.<verb>": session.login, video.playback, account.create, incident.report …
    target: str = ""  # what it was done to, "<kind>:<id>", e.g. "camera:3"
    outcome: str = "ok"  # "ok" | "refused" | "failed"
    details: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> list[object]:
        return [self.actor.user_id, self.actor.name, self.actor.address, self.action, self.target, self.outcome,
                self.details]


def insert(first: int) -> str:
    """SQL inserting one entry from seven parameters starting at $first (see `Entry.columns`)."""
    n = [f"${first + i}" for i in range(7)]
    return ("INSERT INTO audit_log (actor_id, actor, address, action, target, outcome, details)"
            f" VALUES ({n[0]}::int, {n[1]}::text, {n[2]}::text, {n[3]}::text, {n[4]}::text, {n[5]}::text,"
            f" {n[6]}::jsonb)")


async def record(connection: Connection | Pool, entry: Entry) -> None:
    """Write one entry: inside the caller's transaction when given a connection in one."""
    await connection.execute(insert(1), *entry.columns())


@contextlib.asynccontextmanager
async def recorded(pool: Pool, entry: Entry) -> AsyncIterator[Connection]:
    """A transaction for an action, ending with its audit entry: both commit, or neither. The entry goes
    last, so the chain's head is locked only for the commit."""
    async with pool.acquire() as connection, connection.transaction():
        yield connection
        await record(connection, entry)


# Searching ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    actor: str | None = None
    target: str | None = None  # exact ("incident:12") or a kind ("incident:")
    action: str | None = None  # exact or a prefix ending in "." ("video.")
    since: datetime | None = None
    until: datetime | None = None
    before_seq: int | None = None  # paging: entries older than this one
    limit: int = 100


_COLUMNS = "seq, at, actor_id, actor, address, action, target, outcome, details"


def _where(query: Query) -> tuple[str, list[object]]:
    clauses, args = [], []

    def add(sql: str, value: object) -> None:
        args.append(value)
        clauses.append(sql.replace("?", f"${len(args)}"))

    if query.actor is not None:
        add("actor = ?", query.actor)
    if query.target is not None:
        add("target LIKE ? || '%'" if query.target.endswith(":") else "target = ?", query.target)
    if query.action is not None:
        add("action LIKE ? || '%'" if query.action.endswith(".") else "action = ?", query.action)
    if query.since is not None:
        add("at >= ?", query.since)
    if query.until is not None:
        add("at < ?", query.until)
    if query.before_seq is not None:
        add("seq < ?", query.before_seq)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


async def search(pool: Pool, query: Query) -> list[dict[str, Any]]:
    """Newest first."""
    where, args = _where(query)
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM audit_log{where} ORDER BY seq DESC LIMIT {int(query.limit)}",
                            *args)
    return [dict(r.items()) for r in rows]


async def stream(pool: Pool, query: Query) -> AsyncIterator[dict[str, Any]]:
    """Every matching entry, oldest first, read with a cursor (an export may be the whole log)."""
    where, args = _where(query)
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        async for row in connection.cursor(f"SELECT {_COLUMNS} FROM audit_log{where} ORDER BY seq", *args):
            yield dict(row.items())


# Verifying ------------------------------------------------------------------------------------------

def entry_text(seq: int, at_us: int, actor_id: int | None, actor: str, address: str, action: str, target: str,
               outcome: str, details_text: str) -> str:
    """What an entry's hash covers: the same text the database's audit_text() builds."""
    return _SEPARATOR.join((str(seq), str(at_us), "" if actor_id is None else str(actor_id), actor, address,
                            action, target, outcome, details_text))


def entry_hash(prev_hash: bytes, text: str) -> bytes:
    return hashlib.sha256(prev_hash + text.encode()).digest()


def anchor_message(seq: int, hash_: bytes, anchored_at: datetime) -> bytes:
    """What an anchor's signature covers."""
    return f"liandong-audit-anchor|{seq}|{hash_.hex()}|{anchored_at.isoformat()}".encode()


@dataclass
class Verdict:
    entries: int = 0
    anchors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


_MAX_PROBLEMS = 20  # past the first few, more of them tells nobody anything


async def verify(connection: Connection, public_key: Ed25519PublicKey | None,
                 extra_anchors: Sequence[dict[str, Any]] = ()) -> Verdict:
    """Walk the chain from the first entry: each seq follows the last, each prev_hash is the last hash,
    each hash is recomputed here; then the head, and every anchor (the table's, and `extra_anchors`
    kept outside the database) must name an entry that exists with that hash, signed by the key."""
    verdict = Verdict()

    def problem(text: str) -> None:
        if len(verdict.problems) < _MAX_PROBLEMS:
            verdict.problems.append(text)

    hashes: dict[int, bytes] = {}  # only the anchored seqs are looked up again: keep those
    anchors = [dict(r.items()) for r in await connection.fetch(
        "SELECT seq, hash, anchored_at, signature FROM audit_anchors ORDER BY seq")]
    seen = {(a["seq"], bytes(a["hash"])) for a in anchors}
    anchors += [a for a in extra_anchors if (a["seq"], bytes(a["hash"])) not in seen]
    wanted = {a["seq"] for a in anchors}
    last_seq, last_hash = 0, GENESIS
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        head = await connection.fetchrow("SELECT seq, hash FROM audit_head")
        async for row in connection.cursor(
                "SELECT seq, (extract(epoch FROM at) * 1000000)::bigint AS at_us, actor_id, actor, address, action,"
                " target, outcome, details::text AS details, prev_hash, hash FROM audit_log ORDER BY seq"):
            seq, stored = row["seq"], bytes(row["hash"])
            verdict.entries += 1
            if seq != last_seq + 1:
                problem(f"entry {seq}: entries {last_seq + 1}–{seq - 1} were removed" if seq > last_seq + 1
                        else f"entry {seq}: out of order after {last_seq}")
            elif bytes(row["prev_hash"]) != last_hash:
                problem(f"entry {seq}: does not follow entry {last_seq} (inserted, or entry {last_seq} was replaced)")
            text = entry_text(seq, row["at_us"], row["actor_id"], row["actor"], row["address"], row["action"],
                              row["target"], row["outcome"], row["details"])
            if entry_hash(bytes(row["prev_hash"]), text) != stored:
                problem(f"entry {seq}: altered (its contents no longer match its hash)")
            if seq in wanted:
                hashes[seq] = stored
            last_seq, last_hash = seq, stored
    if head is None:
        problem("the chain's head is missing")
    elif (head["seq"], bytes(head["hash"])) != (last_seq, last_hash):
        problem(f"the head says the chain ends at entry {head['seq']} but it ends at entry {last_seq}:"
                f" {'entries after it were removed' if head['seq'] > last_seq else 'the head was altered'}")
    for anchor in anchors:
        verdict.anchors += 1
        seq, anchored_hash = anchor["seq"], bytes(anchor["hash"])
        if public_key is not None:
            try:
                public_key.verify(bytes(anchor["signature"]), anchor_message(seq, anchored_hash, anchor["anchored_at"]))
            except InvalidSignature:
                problem(f"anchor at entry {seq}: its signature is not the centre's")
                continue
        if seq > last_seq:
            problem(f"anchor at entry {seq}: the chain ends at entry {last_seq}; entries after it were removed")
        elif hashes.get(seq) != anchored_hash:
            problem(f"anchor at entry {seq}: entry {seq} is not the entry that was anchored")
    return verdict


# Anchoring ------------------------------------------------------------------------------------------

async def anchor(pool: Pool, key: Ed25519PrivateKey, copy_to: Path | None = None) -> dict[str, Any] | None:
    """Sign the chain's head, unless it is already anchored; the anchor is stored in the database and,
    when `copy_to` is given, appended to that file, out of reach of anyone who can only edit the database."""
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "SELECT h.seq, h.hash, now() AS now FROM audit_head h"
            " WHERE h.seq > 0 AND NOT EXISTS (SELECT 1 FROM audit_anchors a WHERE a.seq = h.seq)")
        if row is None:
            return None
        signature = key.sign(anchor_message(row["seq"], bytes(row["hash"]), row["now"]))
        inserted = await connection.fetchval(
            "INSERT INTO audit_anchors (seq, hash, anchored_at, signature) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (seq) DO NOTHING RETURNING true", row["seq"], row["hash"], row["now"], signature)
        if not inserted:
            return None  # another process anchored the same head
    result = {"seq": row["seq"], "hash": bytes(row["hash"]), "anchored_at": row["now"], "signature": signature}
    if copy_to is not None:
        copy_to.parent.mkdir(parents=True, exist_ok=True)
        with copy_to.open("a") as out:
            out.write(json.dumps({"seq": result["seq"], "hash": row["hash"].hex(),
                                  "anchored_at": row["now"].isoformat(), "signature": signature.hex()}) + "\n")
    return result


class DamagedAnchors(Exception):
    """A line of the anchors file that is not an anchor (cut short by a crash, or edited)."""


def anchors_from_file(path: Path) -> list[dict[str, Any]]:
    """The anchors a server appended to its file (see `anchor`); none when there is no file."""
    if not path.exists():
        return []
    anchors = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if line.strip():
            try:
                raw = json.loads(line)
                anchors.append({"seq": int(raw["seq"]), "hash": bytes.fromhex(raw["hash"]),
                                "anchored_at": datetime.fromisoformat(raw["anchored_at"]),
                                "signature": bytes.fromhex(raw["signature"])})
            except (ValueError, KeyError, TypeError) as error:
                raise DamagedAnchors(f"{path}, line {number}: not an anchor ({error})") from None
    return anchors


def anchors_file(data_dir: Path) -> Path:
    return data_dir / "audit" / "anchors.jsonl"

