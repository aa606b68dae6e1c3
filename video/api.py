"""HTTP routes of the camera registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
from aiohttp import web

from command.accounts import Role
from command.api import body_of, path_id, reply, services_of, timestamp_param, user_of
from command.errors import RequestError
from video import ffmpeg
from video.cameras import CameraProblem, CameraSpec, check
from video.evidence import Piece, export, public_pem
from video.playback import stream
from video.registry import cameras, public, register

routes = web.RouteTableDef()


@routes.get("/api/cameras")
async def list_cameras(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    return reply([public(r) for r in await cameras(services_of(request).pool)])


@routes.get("/api/cameras/{id}")
async def get_camera(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    return reply(public(await camera_row(request)))


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


async def _pieces(request: web.Request, camera_id: int, since: datetime, until: datetime) -> list[Piece]:
    rows = await services_of(request).pool.fetch(
        "SELECT path, started_at, ended_at FROM segments WHERE camera_id = $1 AND ended_at > $2 AND started_at < $3"
        " ORDER BY started_at", camera_id, since, until)
    # Retention deletes a segment's row before its file, so every indexed segment is on disk.
    pieces = [Piece(Path(r["path"]), r["started_at"], r["ended_at"]) for r in rows]
    if not pieces:
        raise RequestError(404, "not_found", "nothing was recorded by this camera in that time", "since")
    return pieces


async def camera_row(request: web.Request) -> asyncpg.Record:
    camera_id = path_id(request)
    row = await services_of(request).pool.fetchrow("SELECT * FROM cameras WHERE id = $1", camera_id)
    if row is None:
        raise RequestError(404, "not_found", f"camera {camera_id} does not exist", "id")
    return row


@routes.get("/api/cameras/{id}/playback")
async def playback(request: web.Request) -> web.StreamResponse:
    """The recording between since and until as one MP4, joined without re-encoding."""
    await user_of(request, Role.SUPERVISOR, Role.DISPATCHER)
    camera = await camera_row(request)
    since, until = _range(request, timestamp_param(request, "since"), timestamp_param(request, "until"))
    pieces = await _pieces(request, camera["id"], since, until)
    response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
    await response.prepare(request)
    async for chunk in stream(ffmpeg.binary(services_of(request).config.video.ffmpeg), pieces):
        await response.write(chunk)
    await response.write_eof()
    return response


class ExportRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    since: datetime
    until: datetime


@routes.post("/api/cameras/{id}/exports")
async def export_evidence(request: web.Request) -> web.Response:
    """A signed evidence export (zip): the segments as recorded, a SHA-256 manifest, its signature."""
    user = await user_of(request, Role.SUPERVISOR)
    camera = await camera_row(request)
    body = await body_of(request, ExportRequest)
    for name, moment in (("since", body.since), ("until", body.until)):
        if moment.tzinfo is None:
            raise RequestError(422, "invalid", "give the time zone, e.g. 2026-11-23T08:00:00+08:00", name)
    since, until = _range(request, body.since, body.until)
    pieces = await _pieces(request, camera["id"], since, until)
    services = services_of(request)
    described = {k: v for k, v in public(camera).items() if k not in ("main_url", "sub_url")}
    archive = await asyncio.to_thread(export, pieces, {**described, "exported_by": user.username}, since, until,
                                      services.evidence_key, datetime.now(UTC))
    name = f"{camera['code']}-{since.strftime('%Y%m%dT%H%M%S')}.zip"
    return web.Response(body=archive, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@routes.get("/api/video/signing-key")
async def signing_key_pem(request: web.Request) -> web.Response:
    """The public key evidence exports are signed with (to verify them anywhere)."""
    return web.Response(body=public_pem(services_of(request).evidence_key), content_type="application/x-pem-file")


@routes.post("/api/cameras")
async def add_camera(request: web.Request) -> web.Response:
    """Register (or re-register, by code) a window camera."""
    await user_of(request, Role.SUPERVISOR, Role.DISPATCHER)
    spec = await body_of(request, CameraSpec)
    services = services_of(request)
    try:
        check(spec, services.config.media_dir)
    except CameraProblem as problem:
        raise RequestError(422, "invalid", str(problem), problem.field) from None
    camera_id = await register(services.pool, spec)
    row = await services.pool.fetchrow("SELECT * FROM cameras WHERE id = $1", camera_id)
    assert row is not None
    return reply(public(row), status=201)
