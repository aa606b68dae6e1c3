"""A wall is sent a camera's latest picture when it starts showing it, but only a current one: the last
picture of a camera that went offline is not news, and sent as new a wall would show it as live."""

from __future__ import annotations

import asyncio

from video.wall.tiles import FRESH_S, TileBoard, TilePicture, Viewer


async def test_a_wall_that_starts_showing_cameras_gets_current_pictures_only() -> None:
    board, viewer = TileBoard(), Viewer()
    board.join(viewer)
    board.publish(TilePicture(1, 1000.0, b"live"))
    board.publish(TilePicture(2, 1000.0 - FRESH_S - 1, b"from before the camera went offline"))
    board.show(viewer, {1, 2}, now=1000.5)
    sent = await asyncio.wait_for(viewer.next(), 1)
    assert [(t.camera_id, t.jpeg) for t in sent] == [(1, b"live")]
