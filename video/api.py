"""HTTP routes of the camera registry."""

from __future__ import annotations

from aiohttp import web

from command.accounts import Role
from command.api import body_of, path_id, reply, services_of, user_of
from command.errors import RequestError
from video.cameras import CameraProblem, CameraSpec, check
from video.registry import cameras, public, register

routes = web.RouteTableDef()


@routes.get("/api/cameras")
async def list_cameras(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    return reply([public(r) for r in await cameras(services_of(request).pool)])


@routes.get("/api/cameras/{id}")
async def get_camera(request: web.Request) -> web.Response:
    await user_of(request, Role.DISPATCHER, Role.SUPERVISOR)
    camera_id = path_id(request)
    row = await services_of(request).pool.fetchrow("SELECT * FROM cameras WHERE id = $1", camera_id)
    if row is None:
        raise RequestError(404, "not_found", f"camera {camera_id} does not exist", "id")
    return reply(public(row))


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
