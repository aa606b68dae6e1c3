"""Bad input gets a clear error naming the field, stores nothing, and the server keeps serving."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from dispatch.client import TerminalError
from tests.helpers import Liandong

GOOD: dict[str, Any] = {"type_code": "201", "severity": 3, "location": {"lon": 111.29, "lat": 30.70}}


async def incident_count(liandong: Liandong) -> int:
    status, body = await liandong.call("GET", "/api/incidents", as_user="dispatcher")
    assert status == 200
    return len(body)


@pytest.mark.parametrize("change, status, code, field", [
    ({"location": {"lon": 200.0, "lat": 30.7}}, 422, "invalid", "location.lon"),
    ({"location": {"lon": 111.29, "lat": -91}}, 422, "invalid", "location.lat"),
    ({"location": {"lon": "111.29", "lat": 30.7}}, 422, "invalid", "location.lon"),
    ({"location": {"lon": True, "lat": 30.7}}, 422, "invalid", "location.lon"),
    ({"location": {"lon": 111.29}}, 422, "invalid", "location.lat"),
    ({"type_code": "999"}, 422, "unknown_type", "type_code"),
    ({"severity": 0}, 422, "invalid", "severity"),
    ({"severity": 5}, 422, "invalid", "severity"),
    ({"severity": "II"}, 422, "invalid", "severity"),
    ({"caller_phone": "call me; DROP TABLE"}, 422, "invalid", "caller_phone"),
    ({"colour": "red"}, 422, "invalid", "colour"),
])
async def test_a_bad_incident_report_is_refused_naming_the_field(
        liandong: Liandong, change: dict[str, Any], status: int, code: str, field: str) -> None:
    got_status, body = await liandong.call("POST", "/api/incidents", {**GOOD, **change}, as_user="dispatcher")
    assert (got_status, body["error"]["code"], body["error"]["field"]) == (status, code, field), body
    assert body["error"]["message"]
    assert await incident_count(liandong) == 0
    assert (await liandong.call("POST", "/api/incidents", GOOD, as_user="dispatcher"))[0] == 201


async def test_malformed_json_oversized_bodies_and_wrong_media_types_are_refused(liandong: Liandong) -> None:
    status, body = await liandong.call("POST", "/api/incidents", data=b'{"type_code": "201",', as_user="dispatcher")
    assert (status, body["error"]["code"]) == (400, "malformed_json")
    huge = b'{"type_code": "201", "description": "' + b"x" * 70_000 + b'"}'
    status, body = await liandong.call("POST", "/api/incidents", data=huge, as_user="dispatcher")
    assert (status, body["error"]["code"], body["error"]["field"]) == (413, "too_large", "body")
    status, body = await liandong.call("POST", "/api/incidents", data=b"type_code=201", as_user="dispatcher",
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body["error"]["field"]) == (415, "Content-Type")
    assert await incident_count(liandong) == 0


async def test_only_a_logged_in_dispatcher_may_report_incidents(liandong: Liandong) -> None:
    status, body = await liandong.call("POST", "/api/incidents", GOOD)
    assert (status, body["error"]["field"]) == (401, "Authorization")
    status, body = await liandong.call("POST", "/api/incidents", GOOD, headers={"Authorization": "Bearer forged"})
    assert status == 401
    status, body = await liandong.call("POST", "/api/incidents", GOOD, as_user="fire-xiling")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await liandong.call("POST", "/api/login", {"username": "dispatcher", "password": "guess"})
    assert (status, body["error"]["code"]) == (401, "bad_credentials")
    assert await incident_count(liandong) == 0


async def test_bad_query_parameters_and_ids_name_the_parameter(liandong: Liandong) -> None:
    for query, field in (("state=burning", "state"), ("limit=0", "limit"), ("since=yesterday", "since"),
                         ("since=2026-11-23T08:00:00", "since")):
        status, body = await liandong.call("GET", f"/api/incidents?{query}", as_user="dispatcher")
        assert (status, body["error"]["field"]) == (400, field), query
    status, body = await liandong.call("GET", "/api/incidents/abc", as_user="dispatcher")
    assert (status, body["error"]["field"]) == (404, "id")
    status, body = await liandong.call("GET", "/api/incidents/12345", as_user="dispatcher")
    assert status == 404


async def test_bad_terminal_frames_get_errors_and_the_connection_stays_usable(liandong: Liandong) -> None:
    station = await liandong.terminal("fire-xiling")
    try:
        incident = await liandong.report("201", 4, 111.29, 30.70)
        ticket = await station.next_ticket()
        answers = [
            await station.send_raw("this is not json"),
            await station.send_raw('{"type": "launch", "id": 7}', 7),
            await station.send_raw('{"type": "ack", "id": 8}', 8),
            await station.send_raw('{"type": "ack", "id": 9, "ticket_id": "one"}', 9),
            await station.send_raw('{"type": "feedback", "id": 10, "ticket_id": 1, "outcome": ""}', 10),
        ]
        assert all(a["type"] == "error" and a["message"] for a in answers)
        assert [(a["code"], a.get("field")) for a in answers] == [
            ("malformed_json", None), ("unknown_type", "type"), ("invalid", "ticket_id"),
            ("invalid", "ticket_id"), ("invalid", "outcome")]
        await station.acknowledge(ticket["id"])  # still connected and working
        with pytest.raises(TerminalError) as missing:
            await station.acknowledge(99_999)
        assert (missing.value.payload["code"], missing.value.payload["field"]) == ("not_found", "ticket_id")
    finally:
        await station.close()
    assert (await liandong.incident(incident["id"]))["tickets"][0]["state"] == "acknowledged"


async def test_a_terminal_with_a_bad_token_is_refused(liandong: Liandong) -> None:
    from dispatch.client import TerminalClient

    with pytest.raises(TerminalError) as refused:
        await TerminalClient(liandong.terminal_url, "forged-token").connect()
    assert (refused.value.payload["code"], refused.value.payload["field"]) == ("unauthenticated", "token")
    dispatcher = TerminalClient(liandong.terminal_url, await liandong.token("dispatcher"))
    with pytest.raises(TerminalError):
        await dispatcher.connect()


async def test_a_failure_half_way_through_recording_an_incident_stores_none_of_it(
        liandong: Liandong, database_url: str) -> None:
    """Make PostgreSQL refuse the event rows (the last write of the transaction) and check that the
    incident and its tickets, written before them, are gone too."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("ALTER TABLE events ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
        status, body = await liandong.call("POST", "/api/incidents", GOOD, as_user="dispatcher")
        assert (status, body["error"]["code"]) == (500, "internal")
        assert await connection.fetchval("SELECT count(*) FROM incidents") == 0
        assert await connection.fetchval("SELECT count(*) FROM tickets") == 0
        await connection.execute("ALTER TABLE events DROP CONSTRAINT refuse_all")
    finally:
        await connection.close()
    assert (await liandong.call("POST", "/api/incidents", GOOD, as_user="dispatcher"))[0] == 201


async def test_a_jurisdiction_that_overlaps_another_stations_or_is_not_a_polygon_is_refused(
        liandong: Liandong) -> None:
    inside_xiling = [[111.285, 30.695], [111.295, 30.695], [111.295, 30.705], [111.285, 30.705], [111.285, 30.695]]
    base = {"code": "fire-new", "name": "新站", "department": "fire", "site": {"lon": 111.29, "lat": 30.70}}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"jurisdiction": {"type": "Polygon", "coordinates": [inside_xiling]}}, 409, "jurisdiction"),
        ({"jurisdiction": {"type": "Point", "coordinates": [111.29, 30.70]}}, 422, "jurisdiction.type"),
        ({"jurisdiction": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 1], [1, 0], [0, 0]]]}}, 422,
         "jurisdiction"),
        ({"jurisdiction": {"type": "Polygon", "coordinates": [[[0, 0], [400, 0], [400, 1], [0, 0]]]}}, 422,
         "jurisdiction"),
        ({"department": "police", "jurisdiction": {"type": "Polygon", "coordinates": [inside_xiling]}}, 422,
         "department"),
    ]
    for change, status, field in cases:
        got, body = await liandong.call("POST", "/api/subcentres", {**base, **change}, as_user="dispatcher")
        assert (got, body["error"]["field"]) == (status, field), (change, body)
    status, features = await liandong.call("GET", "/api/subcentres", as_user="dispatcher")
    assert all(f["properties"]["code"] != "fire-new" for f in features["features"])
