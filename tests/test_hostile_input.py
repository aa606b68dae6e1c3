"""Hostile or absurd input is refused at the boundary with the field and the reason, and nothing
downstream breaks: no 500, no invalid document, no HTTP error written into an upgraded socket."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest
from lxml import etree

from tests.helpers import Liandong

GOOD: dict[str, Any] = {"type_code": "201", "severity": 3, "location": {"lon": 111.29, "lat": 30.70}}


@pytest.mark.parametrize("field", ["description", "address", "caller_name"])
@pytest.mark.parametrize("character", ["\u0000", "\u0001", "\u000b", "\u001f", "\r"])
async def test_text_with_a_control_character_is_refused_naming_the_field(
        liandong: Liandong, field: str, character: str) -> None:
    status, body = await liandong.call("POST", "/api/incidents", {**GOOD, field: f"东山大道{character}12号"},
                                       as_user="dispatcher")
    assert (status, body["error"]["code"], body["error"]["field"]) == (422, "invalid", field)
    assert "control characters" in body["error"]["message"]


async def test_tabs_and_newlines_are_text_and_every_output_stays_a_valid_document(liandong: Liandong) -> None:
    """A flood (its plan issues a public warning) described over several lines: the CAP message, the
    Atom feed and the CSV all come out well formed."""
    incident = await liandong.report("101", 1, 111.29, 30.70, description="堤坝\t渗水\n下游\t转移")
    assert incident["description"] == "堤坝\t渗水\n下游\t转移"
    assert liandong.app is not None
    await liandong.alerts.cap.publish_due()
    async with aiohttp.ClientSession() as http:
        async with http.get(liandong.base_url + "/api/cap/feed") as feed:
            assert feed.status == 200
            etree.fromstring(await feed.read())  # raises on anything not well formed
        _, timeline = await liandong.call("GET", f"/api/incidents/{incident['id']}", as_user="dispatcher")
        identifier = next(e["detail"]["identifier"] for e in timeline["timeline"] if e["kind"] == "cap.alert")
        async with http.get(f"{liandong.base_url}/api/cap/{identifier}") as cap:
            etree.fromstring(await cap.read())


async def test_a_nul_in_the_user_name_is_a_bad_request_not_a_crash(liandong: Liandong) -> None:
    status, body = await liandong.call("POST", "/api/login", {"username": "dispatch\u0000er", "password": "x"})
    assert (status, body["error"]["field"]) == (422, "username")


@pytest.mark.parametrize("path", ["/api/cameras/2147483648", "/api/cameras/2147483648/tile",
                                  "/api/cameras/99999999999999999999/playback", "/api/incidents/9223372036854775808",
                                  "/api/supervision/alerts/٣/snapshot"])
async def test_an_id_beyond_its_column_is_not_found(liandong: Liandong, path: str) -> None:
    status, body = await liandong.call("GET", path, as_user="supervisor")
    assert (status, body["error"]["code"], body["error"]["field"]) == (404, "not_found", "id")


@pytest.mark.parametrize("query", ["since=0001-01-01T00:00:00%2B08:00", "until=9999-12-31T23:59:59%2B08:00"])
async def test_a_time_outside_any_record_is_a_bad_request(liandong: Liandong, query: str) -> None:
    status, body = await liandong.call("GET", f"/api/statistics?{query}", as_user="dispatcher")
    assert (status, body["error"]["field"]) == (400, query.split("=")[0])


async def test_json_nested_too_deeply_is_refused(liandong: Liandong) -> None:
    """A jurisdiction's coordinates are free-form JSON until checked as a polygon: nest them 20,000 deep."""
    body = (b'{"code": "deep", "name": "deep", "department": "fire", "site": {"lon": 111.3, "lat": 30.7},'
            b' "jurisdiction": {"type": "Polygon", "coordinates": ' + b"[" * 20000 + b"]" * 20000 + b"}}")
    status, answer = await liandong.call("POST", "/api/subcentres", data=body, as_user="dispatcher")
    assert (status, answer["error"]["code"]) == (400, "malformed_json")


async def socket_answer(liandong: Liandong, path: str, hello: dict[str, Any], *frames: str | bytes) -> list[Any]:
    async with aiohttp.ClientSession() as http, http.ws_connect(liandong.base_url.replace("http", "ws") + path) as ws:
        await ws.send_str(msgspec.json.encode(hello).decode())
        answers = [await ws.receive(timeout=10)]
        for frame in frames:
            await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
            answers.append(await ws.receive(timeout=10))
        return [a.json() if a.type is aiohttp.WSMsgType.TEXT else (a.type, a.data) for a in answers]


async def test_a_terminal_frame_with_an_absurd_id_or_nesting_gets_a_clear_error(liandong: Liandong) -> None:
    token = await liandong.token("fire-xiling")
    welcome, huge, nested = await socket_answer(
        liandong, "/ws/terminal", {"type": "hello", "token": token},
        msgspec.json.encode({"type": "ack", "id": 1, "ticket_id": 2**70}).decode(),
        '{"type": "ack", "id": 2, "x": ' + "[" * 20000 + "]" * 20000 + "}")
    assert welcome["type"] == "welcome"
    assert (huge["code"], huge["field"], huge["id"]) == ("invalid", "ticket_id", 1)
    assert nested["code"] == "malformed_json"


async def test_a_focus_hello_for_an_impossible_camera_is_an_error_message_not_a_broken_socket(
        liandong: Liandong) -> None:
    token = await liandong.token("supervisor")
    (error,) = await socket_answer(liandong, "/ws/focus", {"type": "hello", "token": token, "camera": 2**40})
    assert (error["type"], error["code"], error["field"]) == ("error", "invalid", "camera")


async def test_the_feed_links_to_the_configured_address_whatever_host_a_request_names(liandong: Liandong) -> None:
    await liandong.report("101", 1, 111.29, 30.70, description="堤坝渗水")  # its plan warns the public
    await liandong.alerts.cap.publish_due()
    async with liandong.http.get(liandong.base_url + "/api/cap/feed", headers={"Host": "evil.example"}) as feed:
        document = etree.fromstring(await feed.read())
    links = document.xpath("//*[local-name()='link']/@href")
    assert links and not [link for link in links if "evil.example" in link]
    assert all(link.startswith("http://127.0.0.1:8080/") for link in links)


@pytest.mark.parametrize("lon, lat, far", [(0.0, 0.0, "11,"), (114.30, 30.59, "1"), (116.40, 39.90, "")])
async def test_a_report_far_outside_the_service_area_is_refused_unless_confirmed(
        liandong: Liandong, lon: float, lat: float, far: str) -> None:
    """(0, 0), Wuhan and Beijing: each is refused naming the location and how far it is; confirmed, it is
    recorded (and flagged: no jurisdiction holds it)."""
    report = {**GOOD, "location": {"lon": lon, "lat": lat}}
    status, body = await liandong.call("POST", "/api/incidents", report, as_user="dispatcher")
    assert (status, body["error"]["code"], body["error"]["field"]) == (422, "outside_service_area", "location")
    assert " km from the nearest jurisdiction" in body["error"]["message"] and far in body["error"]["message"]
    status, body = await liandong.call("POST", "/api/routing/preview", report, as_user="dispatcher")
    assert (status, body["error"]["code"]) == (422, "outside_service_area")
    status, body = await liandong.call("POST", "/api/incidents", {**report, "confirm_outside_area": True},
                                       as_user="dispatcher")
    assert status == 201 and body["flagged"] is True


async def test_swapped_coordinates_are_refused_with_a_hint(liandong: Liandong) -> None:
    status, body = await liandong.call("POST", "/api/incidents", {**GOOD, "location": {"lon": 30.70, "lat": 111.29}},
                                       as_user="dispatcher")
    assert (status, body["error"]["field"]) == (422, "location.lat")  # lat 111 is no latitude at all
    assert "look swapped" in body["error"]["message"]
    status, body = await liandong.call("POST", "/api/incidents", {**GOOD, "location": {"lon": 30.70, "lat": 80.0}},
                                       as_user="dispatcher")
    assert body["error"]["code"] == "outside_service_area" and "swapped" not in body["error"]["message"]
