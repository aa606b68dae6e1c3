"""Two nodes on one database, one real RTSP camera: whichever node ingests it, a wall and a focused
viewer on the other node see it, relayed from the node that ingests it — and the camera still has
exactly one session; when the ingesting node dies, the wall goes on showing the camera. The nodes'
own routes answer only each other, and never through the balancer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import psutil

from base.accounts import Role, create_user
from base.database import open_pool
from bench.cluster import Node, cluster
from tests.helpers import PASSWORD, Liandong
from tests.test_ingest import Viewer, focus, rtsp_camera
from tests.test_recording import query, register, wait_until
from video.wall.walls import TILE_HEADER


async def add_supervisor(database_url: str) -> None:
    async with open_pool(database_url, 1, 1) as pool, pool.acquire() as connection:
        await create_user(connection, "supervisor", "值班主任", PASSWORD, Role.SUPERVISOR)


def runs_ffmpeg(node: Node) -> bool:
    assert node.process is not None
    return any("ffmpeg" in child.name() for child in psutil.Process(node.process.pid).children(recursive=True))


async def open_wall(liandong: Liandong, camera_id: int) -> aiohttp.ClientWebSocketResponse:
    wall = await liandong.http.ws_connect(liandong.base_url.replace("http", "ws") + "/ws/wall")
    await wall.send_json({"type": "hello", "token": await liandong.token("supervisor")})
    welcome = await wall.receive_json()
    assert welcome["type"] == "welcome", welcome
    assert [c["id"] for c in welcome["cameras"]] == [camera_id]
    await wall.send_json({"type": "show", "cameras": [camera_id]})
    return wall


async def next_tile(wall: aiohttp.ClientWebSocketResponse, camera_id: int, after: float = 0.0) -> bytes:
    """The next tile of the camera this wall receives whose picture arrived from the camera after `after`."""
    async for message in wall:
        if message.type is aiohttp.WSMsgType.BINARY:
            shown, at_ms = TILE_HEADER.unpack_from(message.data)
            assert shown == camera_id
            if at_ms / 1000 > after:
                return bytes(message.data[TILE_HEADER.size:])
    raise AssertionError("the wall closed before the tile came")


async def test_a_wall_and_a_focused_view_on_any_node_show_a_camera_another_node_ingests(
        database_url: str, tmp_path: Path) -> None:
    edits = {"segment_s = 10": "segment_s = 2", "analysis_workers = 2": "analysis_workers = 1"}
    async with cluster(database_url, tmp_path, 2, edits) as running:
        await add_supervisor(database_url)
        with rtsp_camera() as (camera, port):
            async with Liandong(running.nodes[0].base) as first:
                camera_id = await register(first, "relayed", f"rtsp://127.0.0.1:{port}/cam")
            rows = await wait_until(lambda: query(database_url, "SELECT node_url FROM camera_ingest"
                                                                " WHERE camera_id = $1", camera_id), 30)
            ingesting = next(n for n in running.nodes if n.base == rows[0]["node_url"])
            other = next(n for n in running.nodes if n is not ingesting)

            async with Liandong(other.base) as liandong:
                wall = await open_wall(liandong, camera_id)
                jpeg = await asyncio.wait_for(next_tile(wall, camera_id), 30)
                assert jpeg.startswith(b"\xff\xd8"), jpeg[:16]

                viewer: Viewer = await focus(liandong, camera_id)
                try:
                    await wait_until(lambda: _has_fragments(viewer), 30)
                    assert viewer.codecs[0].startswith("video/mp4"), viewer.codecs
                    assert not runs_ffmpeg(other)  # relayed: the other node opened nothing of its own
                finally:
                    await viewer.ws.close()

                # Without MSE, the keyframe pictures, relayed the same way.
                ws = await liandong.http.ws_connect(liandong.base_url.replace("http", "ws") + "/ws/focus")
                await ws.send_json({"type": "hello", "token": await liandong.token("supervisor"),
                                    "camera": camera_id, "mode": "jpeg"})
                pictures = Viewer(ws)
                try:
                    await wait_until(lambda: _has_picture(pictures), 30)
                    assert pictures.codecs == ["image/jpeg"]
                    assert not runs_ffmpeg(other)
                finally:
                    await ws.close()
                await asyncio.sleep(1.0)  # the RTSP server reports its session count as it changes
                assert camera.clients and max(camera.clients) == 1, camera.clients

                # The node ingesting the camera dies: the wall's node takes the camera over, and the
                # same wall goes on showing it, from its own ingest now.
                killed = time.time()
                ingesting.kill()
                await asyncio.wait_for(next_tile(wall, camera_id, after=killed), 30)
                assert runs_ffmpeg(other)
                await wall.close()

        async with aiohttp.ClientSession() as http:
            async with http.get(other.base + "/internal/relay/tiles") as response:
                assert response.status == 403  # no node's secret
            async with http.get(running.base + "/internal/relay/tiles") as response:
                assert response.status == 404  # the balancer keeps clients off the nodes' own routes


async def _has_fragments(viewer: Viewer) -> bool:
    return b"moof" in viewer.data


async def _has_picture(viewer: Viewer) -> bool:
    return viewer.data.startswith(b"\xff\xd8")
