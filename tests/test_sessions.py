"""A session that ends ends everywhere: logging out refuses the token at once and closes the sockets
opened with it; a session ended on another node (its row gone) closes this node's sockets within
seconds, with 4401 and a message the pages act on."""

from __future__ import annotations

import time

import aiohttp

from tests.helpers import Liandong


async def socket_with(liandong: Liandong, path: str, token: str) -> aiohttp.ClientWebSocketResponse:
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(liandong.base_url.replace("http", "ws") + path)
    ws._liandong_http = http  # type: ignore[attr-defined]  # closed with the socket below
    await ws.send_json({"type": "hello", "token": token})
    assert (await ws.receive_json(timeout=10))["type"] == "welcome"
    return ws


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    told: dict[str, object] = {}
    while True:
        message = await ws.receive(timeout=seconds)
        if message.type is aiohttp.WSMsgType.TEXT and message.json().get("type") == "error":
            told = message.json()
        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            await ws._liandong_http.close()  # type: ignore[attr-defined]
            return told, time.monotonic() - started


async def test_logging_out_refuses_the_token_and_closes_its_sockets(liandong: Liandong) -> None:
    token = await liandong.token("dispatcher")
    console = await socket_with(liandong, "/ws/console", token)
    other = await socket_with(liandong, "/ws/console", await liandong.token("supervisor"))
    status, body = await liandong.call("POST", "/api/logout", as_user="dispatcher")
    assert (status, body) == (200, {"logged_out": True})
    status, _ = await liandong.call("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 401  # at once, not after a cache expires
    told, took = await closed_within(console, 10)
    assert console.close_code == 4401 and told["code"] == "unauthenticated" and took < 5
    assert not other.closed  # another account's socket stays
    await other.close()


async def test_a_session_ended_on_another_node_closes_this_nodes_terminal(
        two_servers: tuple[Liandong, Liandong]) -> None:
    a, b = two_servers
    token = await a.token("fire-xiling")
    terminal = await socket_with(b, "/ws/terminal", token)  # the terminal is on node B
    status, _ = await a.call("POST", "/api/logout", headers={"Authorization": f"Bearer {token}"})
    assert status == 200  # the log-out happened on node A
    told, took = await closed_within(terminal, 10)
    assert terminal.close_code == 4401 and told["code"] == "unauthenticated" and took < 5
