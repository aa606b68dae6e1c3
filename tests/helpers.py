"""A small client for the tests: the HTTP API and terminals, as users drive them."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from alerts.context import ALERTS, Alerts
from base.context import PLATFORM, Platform
from dispatch.client import TerminalClient

PASSWORD = "liandong-demo"  # the demo accounts' password
STRONG = "Qinghe-Bridge-0717"  # a password the strength rule accepts, for accounts a test makes
EXAMPLE_PATH = {"{id}": "1", "{party}": "1", "{key}": "fire", "{identifier}": "nothing.here", "{month}": "2026-10"}


def example_path(path: str) -> str:
    """A declared route's path with a plausible value in each placeholder."""
    for placeholder, value in EXAMPLE_PATH.items():
        path = path.replace(placeholder, value)
    return path


class Liandong:
    def __init__(self, base_url: str, app: web.Application | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app  # set when the server runs in the test's own process
        self.http = aiohttp.ClientSession()
        self.tokens: dict[str, str] = {}

    async def __aenter__(self) -> Liandong:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.http.close()

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            status, body = await self.call("POST", "/api/login", {"username": username, "password": PASSWORD})
            assert status == 200, body
            self.tokens[username] = body["token"]
        return self.tokens[username]

    async def call(self, method: str, path: str, json: Any = None, as_user: str | None = None,
                   data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        sent = dict(headers or {})
        if as_user is not None:
            sent["Authorization"] = f"Bearer {await self.token(as_user)}"
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.base_url + path, json=json, data=data, headers=sent) as response:
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, body

    async def raw(self, method: str, path: str, as_user: str) -> bytes:
        """A non-JSON answer's bytes (a PDF, a page), which must be a 200."""
        headers = {"Authorization": f"Bearer {await self.token(as_user)}"}
        async with self.http.request(method, self.base_url + path, headers=headers) as response:
            assert response.status == 200, await response.text()
            return await response.read()

    async def make_account(self, username: str, display_name: str, role: str, **fields: Any) -> str:
        """The demo administrator makes an account, which logs in; its user name, for `as_user`."""
        status, body = await self.call("POST", "/api/accounts", {
            "username": username, "display_name": display_name, "password": STRONG, "role": role, **fields},
            as_user="admin")
        assert status == 201, body
        status, body = await self.call("POST", "/api/login", {"username": username, "password": STRONG})
        assert status == 200, body
        self.tokens[username] = body["token"]
        return username

    async def report(self, type_code: str, severity: int, lon: float, lat: float, **details: Any) -> dict[str, Any]:
        """A dispatcher records an incident; returns the stored incident with its tickets."""
        status, body = await self.call("POST", "/api/incidents", {
            "type_code": type_code, "severity": severity, "location": {"lon": lon, "lat": lat}, **details},
            as_user="dispatcher")
        assert status == 201, body
        result: dict[str, Any] = body
        return result

    async def incident(self, incident_id: int, as_user: str = "dispatcher") -> dict[str, Any]:
        status, body = await self.call("GET", f"/api/incidents/{incident_id}", as_user=as_user)
        assert status == 200, body
        result: dict[str, Any] = body
        return result

    async def subcentre_id(self, code: str) -> int:
        status, body = await self.call("GET", "/api/subcentres", as_user="dispatcher")
        assert status == 200
        return next(int(f["id"]) for f in body["features"] if f["properties"]["code"] == code)

    @property
    def alerts(self) -> Alerts:
        """The in-process server's escalator, sender and CAP publisher: tests fire them by naming the time."""
        assert self.app is not None, "the server runs in another process"
        return self.app[ALERTS]

    @property
    def platform(self) -> Platform:
        assert self.app is not None, "the server runs in another process"
        return self.app[PLATFORM]

    @property
    def terminal_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws/terminal"

    async def terminal(self, username: str, **options: Any) -> TerminalClient:
        """A connected terminal logged in as a sub-centre's operator (the demo username is its code)."""
        client = TerminalClient(self.terminal_url, await self.token(username), **options)
        await client.connect()
        return client
