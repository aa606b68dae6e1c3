"""A session that ends ends everywhere: logging out refuses the token at once and closes the sockets
opened with it; a session ended on another node (its row gone) closes this node's sockets within
seconds, with 4401 and a message the pages act on."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

from base.throttle import LoginThrottle, Window
from tests.helpers import PASSWORD, Liandong


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


async def test_guessing_a_password_is_throttled_per_account_and_logged_without_the_password(
        liandong: Liandong, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="base.routes")
    for guess in range(5):
        status, _ = await liandong.call("POST", "/api/login", {"username": "dispatcher", "password": f"guess-{guess}"})
        assert status == 401
    async with liandong.http.post(liandong.base_url + "/api/login",
                                  json={"username": "dispatcher", "password": PASSWORD}) as response:
        body = await response.json()
        assert response.status == 429 and body["error"]["code"] == "too_many_attempts"
        assert 1 <= int(response.headers["Retry-After"]) <= 60  # even the right password waits its turn
    status, _ = await liandong.call("POST", "/api/login", {"username": "supervisor", "password": PASSWORD})
    assert status == 200  # another account is not held up
    logged = [r.getMessage() for r in caplog.records if "failed log-in" in r.getMessage()]
    assert len(logged) == 5 and all("'dispatcher'" in m and "127.0.0.1" in m for m in logged)
    assert not [m for m in logged if "guess-" in m]


def test_a_throttle_window_frees_as_failures_age() -> None:
    throttle = LoginThrottle(per_account=Window(3, 60.0), per_address=Window(10, 60.0))
    for second in range(3):
        throttle.failed("Dispatcher", "10.0.0.7", now=float(second))
    assert throttle.wait_s("dispatcher", "10.0.0.8", now=3.0) == 57.0  # names compare without case
    assert throttle.wait_s("supervisor", "10.0.0.7", now=3.0) == 0.0
    assert throttle.wait_s("dispatcher", "10.0.0.8", now=60.5) == 0.0  # the first failure left the window
    for second in range(10):
        throttle.failed(f"user-{second}", "10.0.0.9", now=100.0)
    assert throttle.wait_s("anyone", "10.0.0.9", now=101.0) == 59.0  # one address guessing many names


async def test_a_socket_opened_while_the_sessions_are_being_checked_is_not_told_its_session_ended(
        liandong: Liandong, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dispatcher who logs in while the watcher's query is running keeps the console: the query never
    asked about the new session, so it cannot have found it ended."""
    sessions = liandong.platform.sessions
    checking, opened = asyncio.Event(), asyncio.Event()
    real_still_valid = sessions.still_valid

    async def slow_still_valid(token_hashes: list[bytes]) -> set[bytes]:
        if not opened.is_set():  # the first round waits, mid-query, for the new socket to open
            checking.set()
            await opened.wait()
        return await real_still_valid(token_hashes)

    monkeypatch.setattr(sessions, "still_valid", slow_still_valid)
    already = await socket_with(liandong, "/ws/console", await liandong.token("supervisor"))
    await asyncio.wait_for(checking.wait(), 10)
    fresh = await socket_with(liandong, "/ws/console", await liandong.token("dispatcher"))
    opened.set()
    with pytest.raises(TimeoutError):  # two more rounds of checks pass with nothing said to it
        message = await fresh.receive(timeout=5)
        pytest.fail(f"a fresh session's console was told {message.data!r}")
    assert not fresh.closed and not already.closed
    for ws in (fresh, already):
        await ws.close()
        await ws._liandong_http.close()  # type: ignore[attr-defined]
