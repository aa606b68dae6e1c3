"""Every response the server gives — page, static file, API answer, error, socket upgrade — carries a
strict Content-Security-Policy (no inline script or style) and the other protective headers, and the
Server header names no versions. The page tests (Chromium) fail on any CSP violation the pages cause."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from app.server import APIS
from tests.helpers import Liandong, example_path

EXPECTED = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "Server": "Liandong"}
PAGES_AND_FILES = ["/", "/console", "/terminal", "/wall", "/static/i18n.js", "/static/common.css",
                   "/static/console/console.js", "/static/terminal/terminal.css", "/static/wall/wall.js",
                   "/static/vendor/leaflet/dist/leaflet.js", "/static/nothing-here.js", "/nowhere"]


def check(path: str, headers: Mapping[str, str]) -> None:
    got = {str(k): v for k, v in headers.items()}
    for name, value in EXPECTED.items():
        assert got.get(name) == value, (path, name, got.get(name))
    policy = got["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path


@pytest.mark.parametrize("path", PAGES_AND_FILES)
async def test_pages_static_files_and_misses_carry_the_headers(liandong: Liandong, path: str) -> None:
    async with liandong.http.get(liandong.base_url + path, allow_redirects=False) as response:
        check(path, response.headers)


async def test_every_api_route_and_socket_upgrade_carries_the_headers(liandong: Liandong) -> None:
    token = await liandong.token("dispatcher")
    for route in (r for api in APIS for r in api.routes):
        path = example_path(route.path)
        if route.status == 101:
            async with liandong.http.ws_connect(liandong.base_url.replace("http", "ws") + path) as ws:
                check(path, ws._response.headers)
            continue
        async with liandong.http.request(route.method, liandong.base_url + path,
                                         headers={"Authorization": f"Bearer {token}"}) as response:
            check(f"{route.method} {path}", response.headers)
