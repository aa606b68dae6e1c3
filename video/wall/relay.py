"""Walls and focused viewers on one node, cameras ingested on another: the nodes relay.

Each camera is ingested by exactly one node (video.claims), which notes in camera_ingest where the
other nodes reach it. A node whose walls show cameras it does not ingest keeps one WebSocket to each
node that ingests some of them, names the cameras it wants, and publishes the tiles it gets into its
own TileBoard as if they were its own, so its walls need nothing new. A focused view of another
node's camera is that node's live stream, passed through as it comes; the camera keeps its one
connection. Nodes prove themselves with a secret they share through the database; the balancer
refuses /internal/ from clients (app/balancer.py).

/internal/relay/tiles: the peer sends {"cameras": [ids]} whenever its wish changes; tiles come back
as the wall's binary tile messages (video.wall.walls.tile_message).
/internal/relay/live/{camera}?mode=mse|jpeg: what /ws/focus sends after hello, for a camera this
node ingests; closed with 4404 if it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Sequence
from collections.abc import Set as AbstractSet
from typing import Annotated, Any, TypeVar

import aiohttp
import asyncpg
import msgspec
from aiohttp import WSMsgType, web

from base.context import SOCKETS
from base.pg import Pool
from base.sockets import Source
from video.live.feed import LiveFeeds
from video.wall.tiles import TileBoard, TilePicture, Viewer
from video.wall.walls import TILE_HEADER, tile_message

log = logging.getLogger(__name__)
T = TypeVar("T")

SECRET_HEADER = "X-Liandong-Node"
NOT_HERE = 4404  # close code: this node does not ingest the camera (any more)
_RETRY_S = 1.0
_LOOK_EVERY_S = 2.0  # how often a node looks again at who ingests what it shows (a camera moves on failover)


class Wanted(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cameras: Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]], msgspec.Meta(max_length=4096)]


async def node_secret(pool: Pool) -> str:
    """The secret every node of this installation shares (made by the first node to start)."""
    await pool.execute("INSERT INTO relay_secret (secret) VALUES ($1) ON CONFLICT DO NOTHING", secrets.token_hex(32))
    secret: str = await pool.fetchval("SELECT secret FROM relay_secret")
    return secret


async def note_ingest(pool: Pool, camera_id: int, node_url: str) -> None:
    await pool.execute("INSERT INTO camera_ingest (camera_id, node_url) VALUES ($1, $2) ON CONFLICT (camera_id)"
                       " DO UPDATE SET node_url = $2, since = now()", camera_id, node_url)


async def forget_ingest(pool: Pool, camera_id: int, node_url: str) -> None:
    await pool.execute("DELETE FROM camera_ingest WHERE camera_id = $1 AND node_url = $2", camera_id, node_url)


async def holders(pool: Pool, cameras: AbstractSet[int]) -> dict[int, str]:
    """Where the node ingesting each of these cameras is reached (cameras nobody ingests left out)."""
    rows = await pool.fetch("SELECT camera_id, node_url FROM camera_ingest WHERE camera_id = ANY($1::int[])",
                            sorted(cameras))
    return {r["camera_id"]: r["node_url"] for r in rows}


class Relay:
    """This node's side of the relay: its address, the shared secret, and the HTTP client it uses."""

    def __init__(self, pool: Pool, node_url: str, secret: str) -> None:
        self.pool = pool
        self.node_url = node_url
        self.secret = secret
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5))

    def trusted(self, request: web.Request) -> bool:
        return hmac.compare_digest(request.headers.get(SECRET_HEADER, ""), self.secret)

    async def open_live(self, node_url: str, camera_id: int, mode: str) -> aiohttp.ClientWebSocketResponse:
        return await self.http.ws_connect(f"{node_url}/internal/relay/live/{camera_id}", params={"mode": mode},
                                          headers={SECRET_HEADER: self.secret}, heartbeat=15.0,
                                          max_msg_size=16 * 2**20)

    async def close(self) -> None:
        await self.http.close()


class TileRelay:
    """Keeps this node's TileBoard supplied with the tiles of cameras other nodes ingest."""

    def __init__(self, relay: Relay, board: TileBoard, feeds: LiveFeeds) -> None:
        self._relay = relay
        self._board = board
        self._feeds = feeds
        self._peers: dict[str, _Peer] = {}

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._look()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:  # a database restart
                    log.warning("tile relay: cannot look up who ingests what (%s); trying again", error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._board.shown_changed.wait(), _LOOK_EVERY_S)
                self._board.shown_changed.clear()
        finally:
            for peer in self._peers.values():
                peer.task.cancel()

    async def _look(self) -> None:
        elsewhere = self._board.shown - self._feeds.ingested()
        by_node: dict[str, set[int]] = {}
        if elsewhere:
            for camera_id, node_url in (await holders(self._relay.pool, elsewhere)).items():
                if node_url != self._relay.node_url:
                    by_node.setdefault(node_url, set()).add(camera_id)
        for node_url, peer in list(self._peers.items()):
            if node_url not in by_node:
                peer.task.cancel()
                del self._peers[node_url]
        for node_url, cameras in by_node.items():
            if node_url not in self._peers:
                self._peers[node_url] = _Peer(self._relay, self._board, node_url)
            self._peers[node_url].want(cameras)


class _Peer:
    """One WebSocket to a node that ingests cameras this node's walls show; reconnects until dropped."""

    def __init__(self, relay: Relay, board: TileBoard, node_url: str) -> None:
        self._relay = relay
        self._board = board
        self._url = node_url
        self._wanted: set[int] = set()
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"tile-relay {node_url}")

    def want(self, cameras: set[int]) -> None:
        if cameras != self._wanted:
            self._wanted = cameras
            self._changed.set()

    async def _run(self) -> None:
        while True:
            try:
                async with self._relay.http.ws_connect(f"{self._url}/internal/relay/tiles", heartbeat=15.0,
                                                       headers={SECRET_HEADER: self._relay.secret}) as socket:
                    sender = asyncio.create_task(self._send_wishes(socket))
                    try:
                        await self._receive(socket)
                    finally:
                        await _stop(sender)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                log.info("tile relay from %s: %s; again in %.0f s", self._url, error, _RETRY_S)
            await asyncio.sleep(_RETRY_S)

    async def _send_wishes(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            self._changed.clear()
            await socket.send_str(msgspec.json.encode(Wanted(sorted(self._wanted))).decode())
            await self._changed.wait()

    async def _receive(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            if message.type == WSMsgType.BINARY and len(message.data) > TILE_HEADER.size:
                camera_id, at_ms = TILE_HEADER.unpack_from(message.data)
                self._board.publish(TilePicture(camera_id, at_ms / 1000.0, message.data[TILE_HEADER.size:]))


async def serve_tiles(request: web.Request, relay: Relay, board: TileBoard, feeds: LiveFeeds) -> web.StreamResponse:
    """A peer's relay: the tiles of the cameras it names that this node ingests, newest only."""
    trusted_or_refused(request, relay)
    socket = web.WebSocketResponse(heartbeat=15.0, max_msg_size=64 * 1024)
    await socket.prepare(request)
    request.app[SOCKETS].add(socket)  # closed with GOING_AWAY at shutdown, as clients' sockets are
    viewer = Viewer(for_peer=True)
    board.join(viewer)
    sender = asyncio.create_task(_send_tiles(socket, viewer))
    try:
        async for message in socket:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                try:
                    wanted = msgspec.json.decode(message.data, type=Wanted)
                except msgspec.ValidationError as error:
                    await socket.close(code=aiohttp.WSCloseCode.UNSUPPORTED_DATA, message=str(error)[:120].encode())
                    break
                board.show(viewer, set(wanted.cameras) & feeds.ingested())
    finally:
        await _stop(sender)
        board.leave(viewer)
    return socket


async def _send_tiles(socket: web.WebSocketResponse, viewer: Viewer) -> None:
    with contextlib.suppress(ConnectionError):
        while not socket.closed:
            for tile in await viewer.next():
                await socket.send_bytes(tile_message(tile))


def trusted_or_refused(request: web.Request, relay: Relay) -> None:
    if not relay.trusted(request):
        raise web.HTTPForbidden(text="not a node of this installation")


async def pass_on(request: web.Request, messages: Source | None, first: str | None = None) -> web.StreamResponse:
    """A peer's focused viewer: `first`, then `messages` (what /ws/focus sends after hello) as they come,
    until the peer goes; None: this node does not ingest the camera, closed with NOT_HERE."""
    socket = web.WebSocketResponse(heartbeat=15.0)
    await socket.prepare(request)
    request.app[SOCKETS].add(socket)  # closed with GOING_AWAY at shutdown, as clients' sockets are
    if messages is None:
        await socket.close(code=NOT_HERE, message=b"this node does not ingest the camera")
        return socket
    reader = asyncio.create_task(socket.receive())  # ends when the peer goes
    try:
        if first is not None:
            await socket.send_str(first)
        while not reader.done():
            for message in await _either(messages(), reader):
                await (socket.send_str(message) if isinstance(message, str) else socket.send_bytes(message))
    except ConnectionError:
        pass
    finally:
        reader.cancel()
    if not socket.closed:
        await socket.close()
    return socket


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel a helper task and collect its end, whatever it was (the socket it wrote to may be gone)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError, aiohttp.ClientError):
        await task


async def _either(work: Awaitable[Sequence[T]], stop: asyncio.Task[Any]) -> Sequence[T]:
    """`work`'s result, or nothing once `stop` is done (the peer has gone)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    return []
