"""HTTP routes for holds on recordings: a supervisor sees what is kept past retention, and why, and
releases what is no longer needed."""

from __future__ import annotations

from aiohttp import web

from base import audit
from base.accounts import Role
from base.context import PLATFORM
from base.errors import DomainError
from base.http import Api, actor_of, path_id, reply, user_of

api = Api()


@api.get("/api/recording-holds", "Recordings held against retention and not yet released: camera, span and what"
         " holds them (incident:<id>, efficiency-card:<id>, complaint:<id>)", roles=(Role.SUPERVISOR,))
async def list_holds(request: web.Request) -> web.Response:
    rows = await request.app[PLATFORM].pool.fetch(
        "SELECT h.id, h.camera_id, c.code AS camera_code, c.name AS camera_name, c.department, h.since, h.until,"
        " h.reference, h.placed_at FROM recording_holds h JOIN cameras c ON c.id = h.camera_id"
        " WHERE h.released_at IS NULL ORDER BY h.placed_at DESC, h.id DESC LIMIT 1000")
    user = user_of(request)
    return reply([dict(r.items()) for r in rows if user.sees_department(r["department"])])


@api.post("/api/recording-holds/{id}/release", "Release a hold: retention treats the recording as any other again",
          roles=(Role.SUPERVISOR,))
async def release_hold(request: web.Request) -> web.Response:
    hold_id = path_id(request)
    pool = request.app[PLATFORM].pool
    row = await pool.fetchrow("SELECT h.reference, h.released_at, c.department FROM recording_holds h"
                              " JOIN cameras c ON c.id = h.camera_id WHERE h.id = $1", hold_id)
    if row is None:
        raise DomainError(f"hold {hold_id} does not exist", "id", "not_found")
    if not user_of(request).sees_department(row["department"]):
        raise DomainError(f"hold {hold_id} is on another department's camera", "id", "forbidden")
    async with audit.recorded(pool, audit.Entry(actor_of(request), "video.hold_release", f"hold:{hold_id}",
                                                details={"reference": row["reference"]})) as connection:
        released = await connection.fetchrow(
            "UPDATE recording_holds SET released_at = now() WHERE id = $1 AND released_at IS NULL"
            " RETURNING id, reference, released_at", hold_id)
        if released is None:
            raise DomainError(f"hold {hold_id} was released already", "id", "closed")
    return reply(dict(released.items()))
