"""Every WebSocket endpoint is one session (base.sockets): a bad hello, an unknown message type and a
slow client are handled the same way on the terminal, console, wall and focus sockets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from app.config import Config
from app.server import APIS, build_app
from base import sockets
from base.accounts import Role
from base.messages import Hello
from base.sockets import Endpoint, SocketSession
from tests.helpers import Liandong

# path, the extra hello fields it needs, a role it admits, one it refuses
ENDPOINTS = [("/ws/terminal", {}, "fire-xiling", "dispatcher"),
             ("/ws/console", {}, "dispatcher", "fire-xiling"),
             ("/ws/wall", {}, "supervisor", "fire-xiling"),
             ("/ws/focus", {"camera": 1}, "supervisor", "fire-xiling"),
             ("/ws/efficiency", {}, "supervisor", "dispatcher")]


def test_every_socket_route_is_served_by_the_one_session() -> None:
    handlers = [r.handler for api in APIS for r in api.routes if r.status == 101]
    assert len(handlers) == len(ENDPOINTS)
    assert all(isinstance(getattr(h, "__self__", None), Endpoint) for h in handlers)


async def refusal(liandong: Liandong, path: str, first: str) -> tuple[dict[str, Any], int | None]:
    """What a socket answers to `first` as its hello: the error message, and the close code."""
    async with aiohttp.ClientSession() as http, http.ws_connect(liandong.base_url.replace("http", "ws") + path) as ws:
        await ws.send_str(first)
        error = await ws.receive_json(timeout=10)
        closing = await ws.receive(timeout=10)
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        return error, ws.close_code


@pytest.mark.parametrize("path, extra, member, outsider", ENDPOINTS)
async def test_a_bad_hello_is_answered_naming_the_field_and_the_socket_closes(
        liandong: Liandong, path: str, extra: dict[str, Any], member: str, outsider: str) -> None:
    error, code = await refusal(liandong, path, "{not json")
    assert (error["type"], error["code"], code) == ("error", "malformed_json", 4400)

    error, code = await refusal(liandong, path, msgspec.json.encode({"type": "hello", **extra}).decode())
    assert (error["code"], error["field"], code) == ("invalid", "token", 4400)
    assert error["message"].startswith("expected hello:")

    error, code = await refusal(liandong, path, msgspec.json.encode({"type": "hello", "token": "forged",
                                                                     **extra}).decode())
    assert (error["code"], error["field"], code) == ("unauthenticated", "token", 4401)

    token = await liandong.token(outsider)
    error, code = await refusal(liandong, path, msgspec.json.encode({"type": "hello", "token": token,
                                                                     **extra}).decode())
    assert (error["code"], error["field"], code) == ("forbidden", "token", 4403)


@pytest.mark.parametrize("path, extra, member, outsider", ENDPOINTS[:3])
async def test_an_unknown_message_type_is_answered_with_its_id_and_the_connection_stays(
        liandong: Liandong, path: str, extra: dict[str, Any], member: str, outsider: str) -> None:
    url = liandong.base_url.replace("http", "ws") + path
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"type": "hello", "token": await liandong.token(member), **extra})
        welcome = await ws.receive_json(timeout=10)
        assert welcome["type"] == "welcome"
        await ws.send_json({"type": "launch_rockets", "id": 7})
        await ws.send_bytes(b"\x00")
        answers = [await ws.receive_json(timeout=10) for _ in range(2)]
        assert {"type": "error", "id": 7, "code": "unknown_type", "field": "type"}.items() <= answers[0].items()
        assert {"type": "error", "code": "invalid", "field": "type"}.items() <= answers[1].items()
        assert not ws.closed


async def test_a_client_that_says_nothing_is_told_and_closed(liandong: Liandong,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sockets, "HELLO_TIMEOUT_S", 0.5)
    async with aiohttp.ClientSession() as http, http.ws_connect(liandong.base_url.replace("http", "ws")
                                                                 + "/ws/console") as ws:
        error = await ws.receive_json(timeout=5)
        await ws.receive(timeout=5)
        assert (error["code"], error["field"], ws.close_code) == ("unauthenticated", "token", 4401)


class Flood(Endpoint[SocketSession]):
    """A socket that answers `flood` with more than its queue holds, as a burst of events would."""

    roles = (Role.DISPATCHER,)
    hello = Hello
    name = "flood"
    queue_limit = 10

    def __init__(self) -> None:
        super().__init__()
        self.on(Burst, self._burst)

    async def open(self, app: web.Application, session: SocketSession,
                   hello: Hello) -> tuple[SocketSession, Mapping[str, Any]]:
        return session, {"type": "welcome"}

    async def _burst(self, session: SocketSession, burst: Burst) -> None:
        for i in range(burst.messages):
            session.send({"type": "event", "n": i})


class Burst(msgspec.Struct, tag="flood", frozen=True):
    messages: int


async def test_a_client_that_cannot_keep_up_is_cut_off_and_told_to_come_back(config: Config) -> None:
    """The session's bounded queue, on the real server: a burst larger than it drops the backlog and
    closes with 1013 (try again later), so the client reconnects and catches up."""
    app = build_app(config)
    app.router.add_get("/ws/flood", Flood().serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with Liandong(str(server.make_url("/")), app) as liandong, aiohttp.ClientSession() as http, \
                http.ws_connect(str(server.make_url("/ws/flood"))) as ws:
            await ws.send_json({"type": "hello", "token": await liandong.token("dispatcher")})
            assert (await ws.receive_json(timeout=5))["type"] == "welcome"
            await ws.send_json({"type": "flood", "messages": 50})
            received = 0
            while (await ws.receive(timeout=5)).type is WSMsgType.TEXT:
                received += 1
            assert ws.close_code == 1013 and received < 50
    finally:
        await server.close()


FRAMES: dict[str, str | bytes] = {
    "not JSON": "{'hello': 1", "binary": b"\x00\xff" * 8, "nested": "[" * 7000 + "]" * 7000,
    "unknown type": '{"type": "\u0000", "id": 1}', "not an object": "[1, 2, 3]"}


@pytest.mark.parametrize("path, extra, member, outsider", ENDPOINTS)
async def test_garbage_as_a_hello_or_after_it_never_breaks_a_socket_or_the_server(
        liandong: Liandong, path: str, extra: dict[str, Any], member: str, outsider: str) -> None:
    """Each endpoint, each kind of garbage, as the first frame and (where the socket stays open) after the
    welcome: an error message or a clean close, never an internal error or a protocol failure."""
    url = liandong.base_url.replace("http", "ws") + path
    async with aiohttp.ClientSession() as http:
        for name, frame in {**FRAMES, "oversized": "x" * 100_000}.items():
            async with http.ws_connect(url, max_msg_size=0) as ws:
                await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
                answer = await ws.receive(timeout=10)
                if answer.type is WSMsgType.TEXT:
                    assert answer.json()["type"] == "error", name
                    await ws.receive(timeout=10)
                assert ws.close_code in (4400, 1009), (name, ws.close_code)  # invalid hello, or too big
        if path == "/ws/focus":
            return  # a focused view streams a camera; it takes nothing after its hello
        async with http.ws_connect(url, max_msg_size=0) as ws:
            await ws.send_json({"type": "hello", "token": await liandong.token(member), **extra})
            assert (await ws.receive_json(timeout=10))["type"] == "welcome"
            for name, frame in FRAMES.items():
                await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
                answer = await ws.receive_json(timeout=10)
                assert answer["type"] == "error" and answer["code"] != "internal", (name, answer)
            await ws.send_str("x" * 100_000)
            await ws.receive(timeout=10)
            assert ws.close_code == 1009  # MESSAGE_TOO_BIG: said by the protocol, not a crash
    status, health = await liandong.call("GET", "/healthz")
    assert status == 200, health
