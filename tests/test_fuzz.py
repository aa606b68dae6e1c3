"""Property-based fuzzing of the HTTP API against its own OpenAPI document (schemathesis), once per
role: no request a client can send gets a 5xx, and every response's status, content type and headers
are ones the document states. The sockets are fuzzed in tests/test_sockets.py and test_hostile_input.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.helpers import Liandong

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance"
SECONDS_PER_ROLE = 30  # the budget: a few minutes for the whole suite on two cores


@pytest.mark.parametrize("role", ["dispatcher", "supervisor", "fire-xiling", None])
async def test_no_request_gets_a_server_error_or_an_undocumented_answer(liandong: Liandong, role: str | None) -> None:
    headers = ["-H", f"Authorization: Bearer {await liandong.token(role)}"] if role else []
    process = await asyncio.create_subprocess_exec(
        SCHEMATHESIS, "run", f"{liandong.base_url}/api/openapi.json", *headers, "--checks", CHECKS,
        "--max-time", str(SECONDS_PER_ROLE), "--exclude-path-regex", "^/ws/", "--workers", "1",
        "--warnings", "off", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), SECONDS_PER_ROLE + 120)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "generated" in report  # it did run test cases
