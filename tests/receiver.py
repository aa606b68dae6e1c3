"""A real HTTP endpoint standing in for the SMS gateway and webhook recipients: it records what it is
sent, and can be told to fail or to hang."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


class Receiver:
    """An HTTP endpoint that records what it is sent, fails the next `fail_next` requests and never
    answers the next `hang_next` (`hung` is set when one arrives)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, str]] = []
        self.fail_next = 0
        self.hang_next = 0
        self.hung = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.read(), request.content_type))
        if self.hang_next:
            self.hang_next -= 1
            self.hung.set()
            await asyncio.Event().wait()  # until the client goes
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503, text="gateway busy")
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiving = Receiver()
    app = web.Application()
    app.router.add_post("/{path:.*}", receiving.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield receiving, str(server.make_url("")).rstrip("/")
    await server.close()


