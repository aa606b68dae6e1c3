"""What a busy analysis worker is handed next: the picture of a camera someone watches on a wall goes
first, and a camera whose waiting picture is replaced by a newer one keeps its turn (sent to the back,
a camera could miss its turn for ever on a saturated machine, and its absence alert with it)."""

from __future__ import annotations

from multiprocessing import Pipe

from video.analysis.workers import _Sender
from video.wall.tiles import TileBoard, Viewer


def test_a_watched_cameras_picture_goes_first_and_a_waiting_camera_keeps_its_turn() -> None:
    board = TileBoard()
    wall = Viewer()
    board.join(wall)
    board.show(wall, {3})  # a supervisor watches camera 3
    ours, theirs = Pipe()
    sender = _Sender(ours, board)
    with sender._ready:  # the worker is busy: everything below waits, then goes in the sender's order
        sender.send(("keyframe", 1, 1.0, b"", b"first of 1"))
        sender.send(("keyframe", 2, 1.1, b"", b"first of 2"))
        sender.send(("keyframe", 3, 1.2, b"", b"first of 3"))
        sender.send(("keyframe", 1, 2.0, b"", b"second of 1"))  # replaces the first; 1 is still ahead of 2
    handed = [theirs.recv() for _ in range(3)]
    assert [request[4] for request in handed] == [b"first of 3", b"second of 1", b"first of 2"]
    assert sender.dropped == 1  # the late picture of camera 1 was never sent
    ours.close()
    theirs.close()
