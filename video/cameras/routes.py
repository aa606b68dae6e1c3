"""HTTP routes of the camera registry."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
from aiohttp import web

from base import audit
from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError, RequestError
from base.http import ANYONE, Api, actor_of, body_of, in_era, path_id, reply, timestamp_param, user_of
from base.messages import INT4_MAX
from base.signing import public_pem
from video.cameras.registry import camera_json, cameras, register
from video.cameras.spec import CameraSpec, check
from video.context import VIDEO
from video.recording import spans
from video.recording.evidence import Piece, export
from video.recording.gaps import TOLERANCE, Hole
from video.recording.playback import stream

api = Api()
WATCHERS = (Role.SUPERVISOR, Role.DISPATCHER)


@api.get("/api/cameras", "Window cameras (stream credentials removed); a supervisor limited to departments sees"
         " theirs", roles=WATCHERS)
async def list_cameras(request: web.Request) -> web.Response:
    user = user_of(request)
    return reply([camera_json(r) for r in await cameras(request.app[PLATFORM].pool)
                  if user.sees_department(r["department"])])


def check_department(request: web.Request, department: str, what: str) -> None:
    """A supervisor limited to departments touches only their windows' cameras and alerts."""
    if not user_of(request).sees_department(department):
        raise DomainError(f"{what} belongs to another department", "id", "forbidden")


@api.get("/api/cameras/{id}", "One camera", roles=WATCHERS)
async def get_camera(request: web.Request) -> web.Response:
    return reply(camera_json(await camera_row(request)))


_LONGEST = timedelta(hours=24)


def _range(request: web.Request, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    if since is None or until is None:
        raise RequestError(400, "invalid", "give since and until (ISO 8601 with a time zone)",
                           "since" if since is None else "until")
    if until <= since:
        raise RequestError(400, "invalid", "until must be after since", "until")
    if until - since > _LONGEST:
        raise RequestError(400, "invalid", "at most 24 hours at a time", "until")
    return since, until


async def _pieces(request: web.Request, camera_id: int, since: datetime, until: datetime,
                  required: bool = True) -> list[Piece]:
    found = await spans.pieces(request.app[PLATFORM].pool, camera_id, since, until)
    if not found and required:
        raise DomainError("nothing was recorded by this camera in that time", "since", "not_found")
    return found


async def _holes(request: web.Request, camera_id: int, pieces: list[Piece], since: datetime,
                 until: datetime) -> list[Hole]:
    return await spans.unrecorded(request.app[PLATFORM].pool, camera_id, pieces, since, until)


@api.get("/api/cameras/{id}/recordings", "What was recorded between since and until (at most 24 h): the recorded"
         " spans and the gaps, each with the reason the recorder stored (what a playback timeline draws)",
         roles=WATCHERS, query=("since!", "until!"))
async def recordings(request: web.Request) -> web.Response:
    camera = await camera_row(request)
    since, until = _range(request, timestamp_param(request, "since"), timestamp_param(request, "until"))
    pieces = await _pieces(request, camera["id"], since, until, required=False)
    gaps = await _holes(request, camera["id"], pieces, since, until)
    runs: list[list[datetime]] = []
    for piece in pieces:  # segments that meet are one span
        if runs and piece.started_at - runs[-1][1] <= TOLERANCE:
            runs[-1][1] = max(runs[-1][1], piece.ended_at)
        else:
            runs.append([piece.started_at, piece.ended_at])
    return reply({"camera": camera["id"], "since": since.isoformat(), "until": until.isoformat(),
                  "segments": len(pieces),
                  "recorded": [{"started_at": a.isoformat(), "ended_at": b.isoformat()} for a, b in runs],
                  "gaps": [hole.json() for hole in gaps]})


async def camera_row(request: web.Request) -> asyncpg.Record:
    camera_id = path_id(request, highest=INT4_MAX)
    row = await request.app[PLATFORM].pool.fetchrow("SELECT * FROM cameras WHERE id = $1", camera_id)
    if row is None:
        raise DomainError(f"camera {camera_id} does not exist", "id", "not_found")
    check_department(request, row["department"], f"camera {camera_id}")
    return row


GAPS_HEADER = "Recording-Gaps"


def _header(gaps: list[Hole]) -> str:
    """The gaps as ISO 8601 intervals (start/end), comma-separated; "none" if there are none."""
    return ",".join(hole.interval() for hole in gaps) or "none"


@api.get("/api/cameras/{id}/playback", "A camera's recording between since and until (at most 24 h), one MP4 joined"
         " without re-encoding; what was not recorded is listed in the Recording-Gaps header (ISO 8601"
         " intervals, or none) and by GET /api/cameras/{id}/recordings", roles=WATCHERS, produces="video/mp4",
         query=("since!", "until!"), deadline=False)
async def playback(request: web.Request) -> web.StreamResponse:
    camera = await camera_row(request)
    since, until = _range(request, timestamp_param(request, "since"), timestamp_param(request, "until"))
    pieces = await _pieces(request, camera["id"], since, until)
    gaps = await _holes(request, camera["id"], pieces, since, until)
    await audit.record(request.app[PLATFORM].pool, audit.Entry(
        actor_of(request), "video.playback", f"camera:{camera['id']}",
        details={"since": since.isoformat(), "until": until.isoformat()}))
    # The file joins the segments end to end: the gaps go with it, or the picture's clock just jumps.
    response = web.StreamResponse(headers={"Content-Type": "video/mp4", GAPS_HEADER: _header(gaps)})
    await response.prepare(request)
    async for chunk in stream(request.app[VIDEO].ffmpeg, pieces):
        await response.write(chunk)
    await response.write_eof()
    return response


class ExportRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    since: datetime
    until: datetime


@api.post("/api/cameras/{id}/exports", "A signed evidence export (zip: segments, SHA-256 manifest, Ed25519 signature)",
          roles=(Role.SUPERVISOR,), body=ExportRequest, produces="application/zip", deadline=False)
async def export_evidence(request: web.Request) -> web.Response:
    user = user_of(request)
    camera = await camera_row(request)
    body = await body_of(request, ExportRequest)
    for name, moment in (("since", body.since), ("until", body.until)):
        if moment.tzinfo is None:
            raise DomainError("give the time zone, e.g. 2026-11-23T08:00:00+08:00", name)
        in_era(moment, name)
    since, until = _range(request, body.since, body.until)
    pieces = await _pieces(request, camera["id"], since, until)
    gaps = await _holes(request, camera["id"], pieces, since, until)
    described = {k: v for k, v in camera_json(camera).items() if k not in ("main_url", "sub_url")}
    archive = await asyncio.to_thread(export, pieces, {**described, "exported_by": user.username}, since, until,
                                      request.app[VIDEO].evidence_key, datetime.now(UTC), [g.json() for g in gaps])
    # Recorded before the file leaves: an export nobody can account for does not happen.
    await audit.record(request.app[PLATFORM].pool, audit.Entry(
        actor_of(request), "video.export", f"camera:{camera['id']}",
        details={"since": since.isoformat(), "until": until.isoformat(), "segments": len(pieces),
                 "sha256": hashlib.sha256(archive).hexdigest()}))
    name = f"{camera['code']}-{since.strftime('%Y%m%dT%H%M%S')}.zip"
    return web.Response(body=archive, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@api.get("/api/video/signing-key", "The public key evidence exports are signed with", roles=ANYONE,
         produces="application/x-pem-file")
async def signing_key_pem(request: web.Request) -> web.Response:
    return web.Response(body=public_pem(request.app[VIDEO].evidence_key), content_type="application/x-pem-file")


@api.post("/api/cameras", "Register, or re-register by code, a window camera", roles=WATCHERS, body=CameraSpec,
          status=201)
async def add_camera(request: web.Request) -> web.Response:
    spec = await body_of(request, CameraSpec)
    check_department(request, spec.department, f"department {spec.department!r}")
    check(spec, request.app[VIDEO].media_dir)
    pool = request.app[PLATFORM].pool
    async with audit.recorded(pool, audit.Entry(actor_of(request), "camera.register", f"camera:{spec.code}",
                                                details={"department": spec.department})) as connection:
        # Re-registering a code rewrites that camera: its present department must be the user's too.
        present = await connection.fetchval("SELECT department FROM cameras WHERE code = $1 FOR UPDATE", spec.code)
        if present is not None:
            check_department(request, present, f"camera {spec.code!r}")
        camera_id = await register(connection, spec)
    row = await pool.fetchrow("SELECT * FROM cameras WHERE id = $1", camera_id)
    assert row is not None
    return reply(camera_json(row), status=201)
