"""HTTP routes for an incident's video: the recordings held for it, and one signed export of them all."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from base import audit
from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError
from base.http import Api, actor_of, body_of, in_era, path_id, reply, user_of
from base.pg import Pool
from calls.context import SWITCHBOARD
from calls.store import calls_of_incident
from command.incident_video import held
from video.context import VIDEO
from video.recording import spans
from video.recording.evidence import Attachment, CameraPart, export_case

api = Api()
WATCHERS = (Role.DISPATCHER, Role.SUPERVISOR)
_LONGEST = timedelta(hours=24)  # an export is built in memory: a day of a camera at most


async def _incident(pool: Pool, incident_id: int) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT id, type_code, severity, lon, lat, address, created_at, closed_at"
                              " FROM incidents WHERE id = $1", incident_id)
    if row is None:
        raise DomainError(f"incident {incident_id} does not exist", "id", "not_found")
    return dict(row.items())


async def _held(request: web.Request, incident_id: int) -> list[dict[str, Any]]:
    user = user_of(request)
    return [h for h in await held(request.app[PLATFORM].pool, incident_id) if user.sees_department(h["department"])]


@api.get("/api/incidents/{id}/recordings", "The cameras near an incident whose recordings are held for it: span,"
         " segments and bytes kept, and whether the hold was released", roles=WATCHERS)
async def incident_recordings(request: web.Request) -> web.Response:
    pool = request.app[PLATFORM].pool
    incident = await _incident(pool, path_id(request))
    listed = []
    for hold in await _held(request, incident["id"]):
        totals = await pool.fetchrow(
            "SELECT count(*) AS segments, coalesce(sum(bytes), 0)::bigint AS bytes FROM segments WHERE camera_id = $1"
            " AND ended_at > $2 AND started_at < coalesce($3::timestamptz, 'infinity')",
            hold["camera_id"], hold["since"], hold["until"])
        assert totals is not None
        listed.append({**hold, "segments": totals["segments"], "bytes": totals["bytes"]})
    return reply({"incident": incident["id"], "holds": listed})


class CaseExport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The stretch to export; by default the whole held span (at most 24 hours of it)."""

    since: datetime | None = None
    until: datetime | None = None


async def _call_recordings(request: web.Request, incident_id: int) -> list[Attachment]:
    """The incident's stored call recordings (the sound and the caller's pictures), still on disk."""
    board = request.app[SWITCHBOARD]
    kept = []
    for call in await calls_of_incident(request.app[PLATFORM].pool, incident_id):
        if call["expired_at"] is not None:
            continue
        for described in call["recording"] or []:
            path = board.recording(described)
            if path.exists():
                kept.append(Attachment(path, f"calls/{path.name}", {
                    "call": call["id"], "kind": described["kind"], "opened_at": call["opened_at"].isoformat(),
                    "ended_at": call["ended_at"].isoformat() if call["ended_at"] else None,
                    "stored_sha256": described["sha256"]}))
    return kept


@api.post("/api/incidents/{id}/evidence", "One signed export of an incident's recordings (zip: each held camera's"
          " segments, the three-way calls' recordings, SHA-256 manifest with gaps, Ed25519 signature)",
          roles=(Role.SUPERVISOR,), body=CaseExport, produces="application/zip", deadline=False)
async def incident_evidence(request: web.Request) -> web.Response:
    pool = request.app[PLATFORM].pool
    incident = await _incident(pool, path_id(request))
    body = await body_of(request, CaseExport)
    for name, moment in (("since", body.since), ("until", body.until)):
        if moment is not None:
            if moment.tzinfo is None:
                raise DomainError("give the time zone, e.g. 2026-11-23T08:00:00+08:00", name)
            in_era(moment, name)
    holds = await _held(request, incident["id"])
    calls = await _call_recordings(request, incident["id"])
    if not holds and not calls:
        raise DomainError("no camera's recording is held for this incident, and no call was recorded", "id",
                          "not_found")
    since = body.since or min((h["since"] for h in holds), default=incident["created_at"])
    until = body.until or max(((h["until"] or datetime.now(UTC)) for h in holds),
                              default=min(datetime.now(UTC), since + _LONGEST))
    if until <= since:
        raise DomainError("until must be after since", "until")
    if until - since > _LONGEST:
        raise DomainError("at most 24 hours at a time: give since and until", "until")
    parts = []
    for hold in holds:
        recorded = await spans.pieces(pool, hold["camera_id"], since, until)
        gaps = await spans.unrecorded(pool, hold["camera_id"], recorded, since, until)
        camera = {"id": hold["camera_id"], "code": hold["code"], "name": hold["name"],
                  "department": hold["department"]}
        parts.append(CameraPart(camera, recorded, [g.json() for g in gaps]))
    if not any(part.pieces for part in parts) and not calls:
        raise DomainError("nothing was recorded near this incident in that time", "since", "not_found")
    case = {"incident": incident["id"], "type_code": incident["type_code"], "address": incident["address"],
            "since": since.isoformat(), "until": until.isoformat(), "exported_by": user_of(request).username}
    archive = await asyncio.to_thread(export_case, case, parts, request.app[VIDEO].evidence_key, datetime.now(UTC),
                                      calls)
    await audit.record(pool, audit.Entry(
        actor_of(request), "video.export", f"incident:{incident['id']}",
        details={"since": since.isoformat(), "until": until.isoformat(), "cameras": len(parts),
                 "segments": sum(len(p.pieces) for p in parts), "calls": len(calls),
                 "sha256": hashlib.sha256(archive).hexdigest()}))
    name = f"incident-{incident['id']}-{since.strftime('%Y%m%dT%H%M%S')}.zip"
    return web.Response(body=archive, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
