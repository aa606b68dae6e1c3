"""Two nodes on one database, one real RTSP camera: whichever node ingests it, a wall and a focused
viewer on the other node see it, relayed from the node that ingests it — and the camera still has
exactly one session. The nodes' own routes answer only each other, and never through the balancer."""

from __future__ import annotations

import asyncio
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


async def first_tile(liandong: Liandong, camera_id: int) -> bytes:
    """The first tile of the camera that a wall on this node receives."""
    async with liandong.http.ws_connect(liandong.base_url.replace("http", "ws") + "/ws/wall") as wall:
        await wall.send_json({"type": "hello", "token": await liandong.token("supervisor")})
        welcome = await wall.receive_json()
        assert welcome["type"] == "welcome", welcome
        assert [c["id"] for c in welcome["cameras"]] == [camera_id]
        await wall.send_json({"type": "show", "cameras": [camera_id]})
        async for message in wall:
            if message.type is aiohttp.WSMsgType.BINARY:
                shown, _at = TILE_HEADER.unpack_from(message.data)
                assert shown == camera_id
                return bytes(message.data[TILE_HEADER.size:])
    raise AssertionError("the wall closed before any tile came")


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
                jpeg = await asyncio.wait_for(first_tile(liandong, camera_id), 30)
                assert jpeg.startswith(b"\xff\xd8"), jpeg[:16]

                viewer: Viewer = await focus(liandong, camera_id)
                try:
                    await wait_until(lambda: _has_fragments(viewer), 30)
                    assert viewer.codecs[0].startswith("video/mp4"), viewer.codecs
                    assert not runs_ffmpeg(other)  # relayed: the other node opened nothing of its own
                finally:
                    await viewer.ws.close()
            await asyncio.sleep(1.0)  # the RTSP server reports its session count as it changes
            assert camera.clients and max(camera.clients) == 1, camera.clients

        async with aiohttp.ClientSession() as http:
            async with http.get(other.base + "/internal/relay/tiles") as response:
                assert response.status == 403  # no node's secret
            async with http.get(running.base + "/internal/relay/tiles") as response:
                assert response.status == 404  # the balancer keeps clients off the nodes' own routes


async def _has_fragments(viewer: Viewer) -> bool:
    return b"moof" in viewer.data
