"""A real HTTP endpoint standing in for the SMS gateway and webhook recipients: it records what it is
sent, and can be told to fail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


class Receiver:
    """An HTTP endpoint that records what it is sent and fails the next `fail_next` requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, str]] = []
        self.fail_next = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, await request.read(), request.content_type))
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


