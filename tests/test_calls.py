"""Three-way calls through the server, with aiortc parties that speak tones: who hears whom, what is
recorded, and every way in that must be refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import numpy as np
import pytest

from calls.client import Party, Speech, tone_levels
from calls.context import SWITCHBOARD
from calls.mixing import RATE
from tests.helpers import Liandong
from video.recording.evidence import verify

XILING = (111.29, 30.70)
DISPATCHER_HZ, STATION_HZ, CALLER_HZ = 500.0, 1100.0, 1700.0
TONES = [DISPATCHER_HZ, STATION_HZ, CALLER_HZ]


def speaker(hz: float) -> Party:
    return Party(Speech(hz, burst_s=0.2, period_s=0.6), [f for f in TONES if f != hz] + [hz])


async def fire_call(liandong: Liandong) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """A fire reported by phone and its call opened: the incident, the call, the ticketed station's
    operator, the caller's token."""
    incident = await liandong.report("201", 2, *XILING, caller_name="王先生", caller_phone="13907170001")
    status, body = await liandong.call("POST", f"/api/incidents/{incident['id']}/calls", {}, as_user="dispatcher")
    assert status == 201, body
    token = urlsplit(body["caller_link"]).fragment
    return incident, body["call"], await code_of(liandong, incident["tickets"][0]["subcentre_id"]), token


async def code_of(liandong: Liandong, subcentre_id: int) -> str:
    """A sub-centre's code, which is also its demo operator's user name."""
    listing = (await liandong.call("GET", "/api/subcentres", as_user="dispatcher"))[1]["features"]
    return str(next(f["properties"]["code"] for f in listing if f["id"] == subcentre_id))


def signal(liandong: Liandong, path: str, as_user: str | None, **fields: Any) -> Any:
    async def send(sdp: str) -> str:
        status, body = await liandong.call("POST", path, {"sdp": sdp, **fields}, as_user=as_user)
        assert status == 200, body
        send.answer = body  # type: ignore[attr-defined]
        return str(body["sdp"])
    return send


@pytest.fixture
async def parties() -> AsyncIterator[list[Party]]:
    made: list[Party] = []
    yield made
    for party in made:
        await party.close()


async def heard_long_enough(parties: list[Party], seconds: float) -> None:
    await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in parties)), 15)
    await asyncio.sleep(seconds)


async def test_three_parties_each_hear_the_other_two_and_the_recording_holds_all_three(
        liandong: Liandong, parties: list[Party]) -> None:
    incident, call, station, token = await fire_call(liandong)
    dispatcher, fire_station, caller = speaker(DISPATCHER_HZ), speaker(STATION_HZ), speaker(CALLER_HZ)
    parties += [dispatcher, fire_station, caller]
    await dispatcher.join(signal(liandong, f"/api/calls/{call['id']}/join", "dispatcher"))
    await fire_station.join(signal(liandong, f"/api/calls/{call['id']}/join", station))
    caller_signal = signal(liandong, "/api/caller/join", None, token=token)
    await caller.join(caller_signal)
    await heard_long_enough(parties, 4.0)

    for party, others in ((dispatcher, (STATION_HZ, CALLER_HZ)), (fire_station, (DISPATCHER_HZ, CALLER_HZ)),
                          (caller, (DISPATCHER_HZ, STATION_HZ))):
        for hz in others:
            assert len(party.ear.onsets.get(hz, [])) >= 4, f"{party.speech.hz} Hz party heard {hz} Hz too little"
        assert party.speech.hz not in party.ear.onsets, "a party hears its own voice back"
    delays = [d for listener in parties for talker in parties if talker is not listener
              for d in listener.delays_from(talker.speech)]
    assert max(delays) < 0.5, f"mouth to ear up to {max(delays):.3f} s on loopback"

    shown = (await liandong.call("GET", f"/api/calls/{call['id']}", as_user="dispatcher"))[1]
    states = {(p["kind"], p["subcentre_id"]): p["state"] for p in shown["parties"]}
    joined = {("dispatcher", None), ("caller", None), ("subcentre", incident["tickets"][0]["subcentre_id"])}
    assert {k: v for k, v in states.items() if k in joined} == dict.fromkeys(joined, "connected")
    assert {v for k, v in states.items() if k not in joined} == {"invited"}  # the other ticketed sub-centres

    session = caller_signal.answer["session"]
    status, _ = await liandong.call("POST", "/api/caller/position",
                                    {"session": session, "lon": 111.2911, "lat": 30.7012, "accuracy_m": 12.0})
    assert status == 200
    status, moved = await liandong.call("POST", f"/api/calls/{call['id']}/adopt-position", as_user="dispatcher")
    assert status == 200 and moved["to"] == {"lon": 111.2911, "lat": 30.7012}
    relocated = await liandong.incident(incident["id"])
    assert (relocated["location"]["lon"], relocated["location"]["lat"]) == (111.2911, 30.7012)

    status, ended = await liandong.call("POST", f"/api/calls/{call['id']}/hangup", as_user="dispatcher")
    assert status == 200, ended
    assert ended["ended_at"] and ended["recorded_s"] >= 4.0
    sound = ended["recording"][0]
    assert sound["kind"] == "sound" and len(sound["sha256"]) == 64

    data = await liandong.raw("GET", f"/api/calls/{call['id']}/recording", "dispatcher")
    path = liandong.app[SWITCHBOARD].recording(sound)  # type: ignore[index]
    assert data == path.read_bytes()
    with av.open(str(path)) as container:
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert abs(len(samples) / RATE - ended["recorded_s"]) < 0.1
    levels = tone_levels(samples.astype(np.float64) / np.abs(samples).max() * 32767, [*TONES, 800.0])
    for hz in TONES:
        assert levels[hz] > 20 * levels[800.0], f"the recording lacks the {hz} Hz voice: {levels}"

    timeline = [e["kind"] for e in (await liandong.incident(incident["id"]))["timeline"]]
    for kind in ("call.opened", "call.invited", "call.party", "call.caller_position", "incident.relocated",
                 "call.ended", "call.recorded"):
        assert kind in timeline, f"{kind} is not on the incident's timeline"
    status, _ = await liandong.call("GET", f"/api/calls/{call['id']}/recording", as_user=station)
    assert status == 403
    audited = await liandong.platform.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'call.playback' AND target = $1", f"call:{call['id']}")
    assert audited == 1


async def test_the_ticketed_terminal_rings_for_the_call_and_is_told_when_it_ends(liandong: Liandong) -> None:
    incident = await liandong.report("201", 2, *XILING)
    station = await code_of(liandong, incident["tickets"][0]["subcentre_id"])
    async with await liandong.terminal(station) as terminal:
        status, body = await liandong.call("POST", f"/api/incidents/{incident['id']}/calls", {}, as_user="dispatcher")
        assert status == 201
        invited = await asyncio.wait_for(terminal.notices.get(), 5)
        assert invited["kind"] == "call.invited"
        assert invited["data"]["call"]["id"] == body["call"]["id"]
        assert invited["data"]["call"]["incident_id"] == incident["id"]
        status, listed = await liandong.call("GET", "/api/calls", as_user=station)
        assert [c["id"] for c in listed["calls"]] == [body["call"]["id"]]
        await liandong.call("POST", f"/api/calls/{body['call']['id']}/hangup", as_user="dispatcher")
        ended = await asyncio.wait_for(terminal.notices.get(), 5)
        assert ended["kind"] == "call.ended", (invited, ended)
        assert ended["data"]["call_id"] == body["call"]["id"]


async def test_the_link_is_good_once_and_only_for_its_own_call(liandong: Liandong, parties: list[Party]) -> None:
    _, call, _, token = await fire_call(liandong)
    caller = speaker(CALLER_HZ)
    parties.append(caller)
    first = signal(liandong, "/api/caller/join", None, token=token)
    await caller.join(first)
    offer = caller.pc.localDescription.sdp

    status, body = await liandong.call("POST", "/api/caller/join", {"token": token, "sdp": offer})
    assert status == 403 and body["error"]["field"] == "token" and "used" in body["error"]["message"]
    status, body = await liandong.call("POST", "/api/caller/join", {"token": "A" * 32, "sdp": offer})
    assert status == 403 and body["error"]["field"] == "token"

    # A reload rejoins with the session the page kept, not with the link.
    again = speaker(CALLER_HZ)
    parties.append(again)
    await again.join(signal(liandong, "/api/caller/rejoin", None, session=first.answer["session"]))
    await asyncio.wait_for(again.connected.wait(), 15)

    # The session reaches only its own call: another incident's call is not in reach.
    _, other, _, _ = await fire_call_elsewhere(liandong)
    status, body = await liandong.call("GET", f"/api/calls/{other['id']}", as_user="dispatcher")
    assert status == 200
    status, _ = await liandong.call("POST", "/api/caller/position",
                                    {"session": first.answer["session"], "lon": 111.3, "lat": 30.7, "accuracy_m": 5})
    positions = (await liandong.call("GET", f"/api/calls/{call['id']}", as_user="dispatcher"))[1]["positions"]
    assert status == 200 and len(positions) == 1
    assert (await liandong.call("GET", f"/api/calls/{other['id']}", as_user="dispatcher"))[1]["positions"] == []


async def fire_call_elsewhere(liandong: Liandong) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    incident = await liandong.report("201", 3, 111.36, 30.65)
    status, body = await liandong.call("POST", f"/api/incidents/{incident['id']}/calls", {}, as_user="dispatcher")
    assert status == 201, body
    return incident, body["call"], "", urlsplit(body["caller_link"]).fragment


async def test_an_expired_link_is_refused(liandong: Liandong) -> None:
    _, call, _, token = await fire_call(liandong)
    await liandong.platform.pool.execute("UPDATE caller_links SET expires_at = now() - interval '1 second'"
                                         " WHERE call_id = $1", call["id"])
    status, body = await liandong.call("POST", "/api/caller/join", {"token": token, "sdp": OFFER})
    assert status == 403 and "expired" in body["error"]["message"]


# A well-formed offer in every respect the server checks before the media stack sees it.
OFFER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
         "a=fingerprint:sha-256 00\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n")


@pytest.mark.parametrize(("sdp", "reason"), [
    ("hello", "v=0"),
    (OFFER.replace("m=audio", "m=video"), "no audio"),
    (OFFER.replace("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", ""), "no ICE candidates"),
    (OFFER.replace("a=fingerprint:sha-256 00\r\n", ""), "fingerprint"),
])
async def test_a_bad_offer_is_refused_naming_the_field(liandong: Liandong, sdp: str, reason: str) -> None:
    _, call, _, _ = await fire_call(liandong)
    status, body = await liandong.call("POST", f"/api/calls/{call['id']}/join", {"sdp": sdp}, as_user="dispatcher")
    assert status == 422, body
    assert body["error"]["field"] == "sdp" and reason in body["error"]["message"]
    shown = (await liandong.call("GET", f"/api/calls/{call['id']}", as_user="dispatcher"))[1]
    assert {p["kind"]: p["state"] for p in shown["parties"]}["dispatcher"] == "invited"


async def test_only_the_calls_own_parties_may_join(liandong: Liandong) -> None:
    incident, call, _station, _ = await fire_call(liandong)
    ticketed = {t["subcentre_id"] for t in incident["tickets"]}
    listing = (await liandong.call("GET", "/api/subcentres", as_user="dispatcher"))[1]["features"]
    outsider = next(f["properties"]["code"] for f in listing if f["id"] not in ticketed)
    status, body = await liandong.call("POST", f"/api/calls/{call['id']}/join", {"sdp": OFFER}, as_user=outsider)
    assert status == 403 and "not in this call" in body["error"]["message"]
    status, body = await liandong.call("POST", f"/api/calls/{call['id']}/parties",
                                       {"subcentre_id": next(f["id"] for f in listing if f["id"] not in ticketed)},
                                       as_user="dispatcher")
    assert status == 403 and body["error"]["field"] == "subcentre_id"
    await liandong.make_account("dispatcher2", "第二调度员", "dispatcher")
    status, body = await liandong.call("POST", f"/api/calls/{call['id']}/join", {"sdp": OFFER}, as_user="dispatcher2")
    assert status == 403 and "another dispatcher" in body["error"]["message"]
    status, body = await liandong.call("POST", f"/api/incidents/{incident['id']}/calls", {}, as_user="dispatcher")
    assert status == 409 and "already has a call" in body["error"]["message"]
    # Transferred, the call is the second dispatcher's to join, and no longer the first's.
    status, _ = await liandong.call("POST", f"/api/calls/{call['id']}/transfer", {"username": "dispatcher2"},
                                    as_user="dispatcher")
    assert status == 200
    status, body = await liandong.call("POST", f"/api/calls/{call['id']}/join", {"sdp": OFFER}, as_user="dispatcher")
    assert status == 403


async def test_the_sms_carries_the_callers_link(liandong: Liandong) -> None:
    incident, _call, _, token = await fire_call(liandong)
    rows = await liandong.platform.pool.fetch(
        "SELECT channel, address, body FROM notifications WHERE incident_id = $1 AND reason = 'call_link'",
        incident["id"])
    assert [(r["channel"], r["address"]) for r in rows] == [("sms", "13907170001")]
    assert f"/call#{token}" in rows[0]["body"] and "录音" in rows[0]["body"]


async def test_a_dropped_sub_centre_is_shown_as_dropped_and_its_terminal_told(
        liandong: Liandong, parties: list[Party]) -> None:
    _, call, station, _ = await fire_call(liandong)
    fire_station = speaker(STATION_HZ)
    parties.append(fire_station)
    await fire_station.join(signal(liandong, f"/api/calls/{call['id']}/join", station))
    await asyncio.wait_for(fire_station.connected.wait(), 15)
    party = next(p for p in call["parties"] if p["kind"] == "subcentre")
    started = time.monotonic()
    status, _ = await liandong.call("DELETE", f"/api/calls/{call['id']}/parties/{party['id']}", as_user="dispatcher")
    assert status == 200
    shown = (await liandong.call("GET", f"/api/calls/{call['id']}", as_user="dispatcher"))[1]
    assert next(p for p in shown["parties"] if p["id"] == party["id"])["state"] == "dropped"
    status, _body = await liandong.call("POST", f"/api/calls/{call['id']}/join", {"sdp": OFFER}, as_user=station)
    assert status == 403 and time.monotonic() - started < 5


async def test_the_incidents_evidence_export_carries_its_call_recording_with_its_hash(
        liandong: Liandong, parties: list[Party], tmp_path: Path) -> None:
    incident, call, _, _ = await fire_call(liandong)
    dispatcher = speaker(DISPATCHER_HZ)
    parties.append(dispatcher)
    await dispatcher.join(signal(liandong, f"/api/calls/{call['id']}/join", "dispatcher"))
    await heard_long_enough([dispatcher], 1.0)
    ended = (await liandong.call("POST", f"/api/calls/{call['id']}/hangup", as_user="dispatcher"))[1]
    sound = ended["recording"][0]

    headers = {"Authorization": f"Bearer {await liandong.token('supervisor')}"}
    async with liandong.http.post(f"{liandong.base_url}/api/incidents/{incident['id']}/evidence", json={},
                                  headers=headers) as response:
        assert response.status == 200, await response.text()
        archive = await response.read()
    (tmp_path / "case.zip").write_bytes(archive)
    with zipfile.ZipFile(tmp_path / "case.zip") as opened:
        manifest = json.loads(opened.read("manifest.json"))
        listed = manifest["attachments"]
        assert [(a["file"], a["call"], a["kind"]) for a in listed] == [
            (f"calls/call-{call['id']}.webm", call["id"], "sound")]
        assert listed[0]["sha256"] == sound["sha256"] == hashlib.sha256(opened.read(listed[0]["file"])).hexdigest()
    assert verify(tmp_path / "case.zip") == []


async def test_a_plan_that_says_so_opens_the_call_as_its_tickets_go_out(liandong: Liandong) -> None:
    status, saved = await liandong.call("PUT", "/api/plans/fire-with-call", {
        "name": "火灾三方通话预案", "types": ["201"], "levels": [1], "departments": [{"code": "fire"}],
        "three_way_call": True}, as_user="dispatcher")
    assert status == 201, saved
    quiet = await liandong.report("201", 2, *XILING)  # another level: the plan does not cover it
    assert "call" not in quiet
    station_id = quiet["tickets"][0]["subcentre_id"]
    async with await liandong.terminal(await code_of(liandong, station_id)) as terminal:
        incident = await liandong.report("201", 1, *XILING, caller_phone="13800000000")
        assert incident["routing"]["plan"]["key"] == "fire-with-call"
        call = incident["call"]
        assert call["incident_id"] == incident["id"] and urlsplit(incident["caller_link"]).fragment
        invited = await asyncio.wait_for(terminal.notices.get(), 5)
        assert invited["kind"] == "call.invited" and invited["data"]["call"]["id"] == call["id"]
    status, calls = await liandong.call("GET", f"/api/incidents/{incident['id']}/calls", as_user="dispatcher")
    assert [c["id"] for c in calls["calls"]] == [call["id"]]
    assert {p["kind"] for p in calls["calls"][0]["parties"]} >= {"dispatcher", "subcentre", "caller"}
    status, quiet_calls = await liandong.call("GET", f"/api/incidents/{quiet['id']}/calls", as_user="dispatcher")
    assert quiet_calls["calls"] == []


async def station_state(liandong: Liandong, incident: dict[str, Any]) -> str:
    """The stored state of the ticketed fire station's place in the incident's call."""
    status, body = await liandong.call("GET", f"/api/incidents/{incident['id']}/calls", as_user="dispatcher")
    assert status == 200, body
    station_id = incident["tickets"][0]["subcentre_id"]
    return str(next(p["state"] for p in body["calls"][0]["parties"] if p["subcentre_id"] == station_id))


async def test_a_party_whose_page_closes_is_shown_as_gone_and_can_come_back(
        liandong: Liandong, parties: list[Party]) -> None:
    incident, call, station, _ = await fire_call(liandong)
    station_party = speaker(STATION_HZ)
    await station_party.join(signal(liandong, f"/api/calls/{call['id']}/join", station))
    await until(lambda: station_state(liandong, incident), "connected")
    started = time.monotonic()
    await station_party.close()  # the terminal's tab closes
    await until(lambda: station_state(liandong, incident), "gone")
    assert time.monotonic() - started < 5
    again = speaker(STATION_HZ)  # the operator opens the terminal again and rejoins
    parties.append(again)
    await again.join(signal(liandong, f"/api/calls/{call['id']}/join", station))
    await until(lambda: station_state(liandong, incident), "connected")


async def until(read: Callable[[], Awaitable[str]], wanted: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while (value := await read()) != wanted:
        assert time.monotonic() < deadline, f"still {value}, waiting for {wanted}"
        await asyncio.sleep(0.1)


async def test_the_tickets_out_show_the_callers_place_once_the_dispatcher_adopts_it(
        liandong: Liandong, parties: list[Party]) -> None:
    incident, call, station, token = await fire_call(liandong)
    ticket_id = incident["tickets"][0]["id"]
    async with await liandong.terminal(station) as terminal:
        caller = speaker(CALLER_HZ)
        parties.append(caller)
        caller_signal = signal(liandong, "/api/caller/join", None, token=token)
        await caller.join(caller_signal)
        status, _ = await liandong.call("POST", "/api/caller/position", {
            "session": caller_signal.answer["session"], "lon": 111.2911, "lat": 30.7012, "accuracy_m": 12.0})
        assert status == 200
        assert terminal.tickets[ticket_id]["incident"]["location"] == incident["location"]
        status, _ = await liandong.call("POST", f"/api/calls/{call['id']}/adopt-position", as_user="dispatcher")
        assert status == 200
        deadline = time.monotonic() + 5
        while ("updated", ticket_id) not in terminal.heard:
            assert time.monotonic() < deadline, terminal.heard
            await asyncio.sleep(0.05)
        assert terminal.tickets[ticket_id]["incident"]["location"] == {"lon": 111.2911, "lat": 30.7012}
