"""A report sent again after its answer was lost (the node that had it died and the balancer answered
502) must not become a second incident: the console sends each report with a key of its own, and the
same key from the same account returns the incident stored the first time."""

from __future__ import annotations

import asyncio
from typing import Any

from base.accounts import Role, create_user
from tests.helpers import PASSWORD, Liandong

XILING = {"lon": 111.29, "lat": 30.70}
REPORT = {"type_code": "201", "severity": 3, "location": XILING, "description": "居民楼起火"}


async def count_reports(liandong: Liandong, key: str) -> int:
    found: int = await liandong.platform.pool.fetchval("SELECT count(*) FROM incidents WHERE report_key = $1", key)
    return found


async def post(liandong: Liandong, body: dict[str, Any], as_user: str = "dispatcher") -> dict[str, Any]:
    status, answer = await liandong.call("POST", "/api/incidents", body, as_user=as_user)
    assert status == 201, answer
    result: dict[str, Any] = answer
    return result


async def test_the_same_report_sent_again_is_the_incident_stored_the_first_time(liandong: Liandong) -> None:
    first = await post(liandong, {**REPORT, "report_key": "3f0c9a1e5b7d4c2a8e6f1b0d9c8a7e6f"})
    again = await post(liandong, {**REPORT, "report_key": "3f0c9a1e5b7d4c2a8e6f1b0d9c8a7e6f"})
    assert again["id"] == first["id"]
    assert [t["id"] for t in again["tickets"]] == [t["id"] for t in first["tickets"]] != []
    assert again["routing"] == first["routing"]
    assert await count_reports(liandong, "3f0c9a1e5b7d4c2a8e6f1b0d9c8a7e6f") == 1
    tickets = await liandong.platform.pool.fetchval("SELECT count(*) FROM tickets WHERE incident_id = $1", first["id"])
    assert tickets == len(first["tickets"])

    other = await post(liandong, {**REPORT, "report_key": "another-report"})  # a new report, a new incident
    assert other["id"] != first["id"]


async def test_the_same_report_sent_twice_at_once_is_stored_once(liandong: Liandong) -> None:
    answers = await asyncio.gather(*(post(liandong, {**REPORT, "report_key": "twice-at-once"}) for _ in range(4)))
    assert len({a["id"] for a in answers}) == 1
    assert await count_reports(liandong, "twice-at-once") == 1


async def test_a_key_is_one_accounts_own(liandong: Liandong) -> None:
    """Another dispatcher's report under the same key is that dispatcher's own report."""
    async with liandong.platform.pool.acquire() as connection:
        await create_user(connection, "dispatcher-2", "二号席", PASSWORD, Role.DISPATCHER)
    mine = await post(liandong, {**REPORT, "report_key": "shared-key"})
    theirs = await post(liandong, {**REPORT, "report_key": "shared-key"}, as_user="dispatcher-2")
    assert theirs["id"] != mine["id"]
    assert await count_reports(liandong, "shared-key") == 2


async def test_a_malformed_key_is_refused_naming_the_field(liandong: Liandong) -> None:
    status, body = await liandong.call("POST", "/api/incidents", {**REPORT, "report_key": "no spaces; please"},
                                       as_user="dispatcher")
    assert status == 422, body
    assert "report_key" in body["error"]["field"]
    status, body = await liandong.call("POST", "/api/incidents", {**REPORT, "report_key": "k" * 65},
                                       as_user="dispatcher")
    assert status == 422 and "report_key" in body["error"]["field"], body
