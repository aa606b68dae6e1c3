"""The calls this server carries: the store says who is in a call, the rooms here carry its media.

A call's media lives in the process that opened it (its `node`), from the moment it opens, so the
recording starts with the call. A party reaching another process is told so; relaying calls between
nodes is province-scale work (several nodes behind a balancer), not done here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from base.accounts import User
from base.errors import DomainError
from base.pg import Pool
from calls import store
from calls.media import Beat, IceServer, Room
from calls.recorder import Recorder
from calls.rules import Limits, PartyKind, check_offer, new_secret, overdue, turn_credential
from calls.store import Opened, Party

log = logging.getLogger(__name__)

JSON = dict[str, Any]
_SWEEP_S = 5.0


@dataclass(frozen=True)
class Setup:
    folder: Path
    limits: Limits
    ice_servers: tuple[IceServer, ...]
    jitter_frames: int
    retention: timedelta
    public_url: str  # where callers reach the server; "" = the address the dispatcher's console uses
    sms_link: bool
    relay_only: bool = False  # browsers use TURN relays only


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Switchboard:
    def __init__(self, pool: Pool, setup: Setup) -> None:
        self.pool = pool
        self.setup = setup
        self.node = node_name()
        self._rooms: dict[int, Room] = {}
        self._beat = Beat()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- opening and ending -------------------------------------------------------------------
    async def open(self, incident_id: int, dispatcher: User, subcentre_ids: list[int] | None, caller_phone: str,
                   base_url: str) -> tuple[JSON, str]:
        token, token_hash = new_secret()
        link = self.link(base_url, token)
        sms = (f"指挥中心邀请您加入三方通话（通话将录音），请在手机浏览器打开：{link}"
               if self.setup.sms_link else None)
        opened: Opened = await store.open_call(self.pool, incident_id, dispatcher, self.node, subcentre_ids,
                                               caller_phone, (token, token_hash), self.setup.limits, sms)
        call_id = opened.call["id"]
        recorder = Recorder(self.setup.folder / str(incident_id), f"call-{call_id}")
        recorder.start()
        self._rooms[call_id] = Room(self._beat, recorder, self.setup.ice_servers, self.setup.jitter_frames,
                                    lambda party_id, state: self._changed(party_id, state))
        return opened.call, link

    def ice_servers(self, who: str) -> list[JSON]:
        """The STUN and TURN servers a party's browser may use, with credentials of its own."""
        until = datetime.now(UTC) + self.setup.limits.max_duration
        listed = []
        for server in self.setup.ice_servers:
            entry: JSON = {"urls": server.urls}
            if server.secret:
                entry["username"], entry["credential"] = turn_credential(server.secret, who, until)
            elif server.username:
                entry["username"], entry["credential"] = server.username, server.credential
            listed.append(entry)
        return listed

    def link(self, base_url: str, token: str) -> str:
        return f"{(self.setup.public_url or base_url).rstrip('/')}/call#{token}"

    async def new_link(self, call_id: int, base_url: str) -> str:
        token, token_hash = new_secret()
        await store.new_link(self.pool, call_id, (token, token_hash), self.setup.limits)
        return self.link(base_url, token)

    async def hang_up(self, call_id: int, reason: str, actor: User | None) -> None:
        if not await store.end_call(self.pool, call_id, reason, actor):
            raise DomainError("the call has already ended", "id", "closed")
        await self._finish(call_id)

    async def _finish(self, call_id: int) -> None:
        """Close the room and store what was recorded, with each file's SHA-256."""
        room = self._rooms.pop(call_id, None)
        if room is None:
            return
        await room.close()
        recorded = await asyncio.to_thread(room.recorder.finish)
        files = await asyncio.to_thread(self._describe, recorded.files)
        await store.store_recording(self.pool, call_id, files, recorded.seconds)
        if recorded.lost_frames:
            log.warning("call %d: the recording lost %d frames (disk too slow)", call_id, recorded.lost_frames)

    def _describe(self, files: tuple[Path, ...]) -> list[JSON]:
        described = []
        for path in files:
            if not path.exists():
                continue
            data = path.read_bytes()
            described.append({"file": str(path.relative_to(self.setup.folder)), "bytes": len(data),
                              "sha256": hashlib.sha256(data).hexdigest(),
                              "kind": "picture" if "-picture-" in path.name else "sound"})
        return described

    # --- taking part --------------------------------------------------------------------------
    async def join(self, party: Party, sdp: str, actor: User | None) -> str:
        check_offer(sdp)
        room = self._room(party)
        if party.kind is PartyKind.SUBCENTRE or party.kind is PartyKind.DISPATCHER:
            others = len(room.parties - {party.id})
            if others + 1 > self.setup.limits.max_parties:
                raise DomainError(f"a call has at most {self.setup.limits.max_parties} parties", "id", "conflict")
        await store.set_state(self.pool, party.id, "joining", actor)
        try:
            return await room.connect(party.id, sdp, sends_video=party.kind is PartyKind.CALLER,
                                      sees_video=party.kind is not PartyKind.CALLER)
        except ValueError as error:  # aiortc's own SDP parser refused it
            raise DomainError(f"the offer cannot be used: {error}", "sdp") from None

    async def leave(self, party: Party, state: str = "gone", actor: User | None = None) -> None:
        room = self._rooms.get(party.call_id)
        if room is not None:
            await room.unseat(party.id)
        await store.set_state(self.pool, party.id, state, actor)

    def mute(self, party: Party, muted: bool) -> None:
        self._room(party).mute(party.id, muted)

    def _room(self, party: Party) -> Room:
        room = self._rooms.get(party.call_id)
        if room is None:
            if party.node != self.node:
                raise DomainError("this call is carried by another server of the centre; connect to that one",
                                  "id", "conflict")
            raise DomainError("the call has ended", "id", "closed")
        return room

    def _changed(self, party_id: int, state: str) -> None:
        task = asyncio.create_task(store.set_state(self.pool, party_id, state), name="call party state")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- upkeep -------------------------------------------------------------------------------
    async def run(self) -> None:
        """End the calls a dead process of this host left open, then keep calls within their length
        and recordings within their retention."""
        host = self.node.rsplit(":", 1)[0]
        for row in await store.calls_of_node(self.pool, f"{host}:%"):
            pid = int(row["node"].rsplit(":", 1)[1])
            if row["node"] != self.node and not _alive(pid):
                await store.end_call(self.pool, row["id"], "server restarted", None)
                log.warning("call %d was carried by a server process that is gone: ended", row["id"])
        while True:
            await asyncio.sleep(_SWEEP_S)
            now = datetime.now(UTC)
            for row in await store.calls_of_node(self.pool, self.node):
                if overdue(row["opened_at"], now, self.setup.limits):
                    with contextlib.suppress(DomainError):
                        await self.hang_up(row["id"], "time limit", None)
            for row in await store.expired(self.pool, now - self.setup.retention):
                await asyncio.to_thread(self._remove, row["recording"])
                await store.mark_expired(self.pool, row["id"])

    def _remove(self, files: list[JSON]) -> None:
        for described in files:
            (self.setup.folder / described["file"]).unlink(missing_ok=True)

    async def close(self) -> None:
        """The server is stopping: end its calls and keep their recordings."""
        for call_id in list(self._rooms):
            await store.end_call(self.pool, call_id, "server stopped", None)
            await self._finish(call_id)
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task

    def recording(self, described: JSON) -> Path:
        return self.setup.folder / str(described["file"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
