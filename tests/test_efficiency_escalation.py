"""A card is told to its department's contact as it opens and climbs to the leader and then the
centre while nobody acknowledges it, as tickets do; the department's acknowledgement stops it. The
messages go through the notification outbox to a real HTTP endpoint; the test names the clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from app.config import load
from app.server import build_app
from efficiency.card_escalation import CardEscalator
from efficiency.escalation import Recipient
from tests.conftest import config_text_for_tests
from tests.hall import MARKET, days_ago, event, market_system, send
from tests.helpers import Liandong
from tests.receiver import Receiver

WAIT = timedelta(hours=4)  # [efficiency] card_escalate_s as shipped


@pytest.fixture
async def hall(database_url: str, tmp_path: Path) -> AsyncIterator[Liandong]:
    """The server with its own passes slowed down, so the test alone moves cards and messages on."""
    shipped = config_text_for_tests()
    text = shipped.replace("card_sweep_s = 0.25", "card_sweep_s = 60")
    assert text != shipped
    text = text.replace("max_attempts = 6\n# How often each server looks for notifications to send, in seconds.\n"
                        "poll_s = 1.0", "max_attempts = 3\npoll_s = 60")
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    server = TestServer(build_app(load(path, environ={"LIANDONG_DATABASE_URL": database_url})), host="127.0.0.1")
    await server.start_server()
    async with Liandong(str(server.make_url("/")), server.app) as client:
        yield client
    await server.close()


async def notices(liandong: Liandong, card_id: int) -> list[tuple[str, str, str]]:
    status, found = await liandong.call("GET", f"/api/efficiency/cards/{card_id}/notices", as_user="supervisor")
    assert status == 200, found
    return [(n["role"], n["recipient"], n["status"]) for n in found["notices"]]


async def red_card(liandong: Liandong, system: str, case: str) -> int:
    """A case accepted without the licence: a red card at once."""
    status, sent = await send(liandong, system, event(case, 1, "stage", days_ago(0.1), "accept"))
    assert status == 201, sent
    status, found = await liandong.call("GET", f"/api/efficiency/cases/{sent['case_id']}", as_user="supervisor")
    [card] = [c for c in found["cards"] if c["reason"] == "documents_missing"]
    card_id: int = card["id"]
    return card_id


async def test_an_unacknowledged_card_climbs_to_the_leader_and_the_centre_and_an_acknowledged_one_stops(
        hall: Liandong, receiver: tuple[Receiver, str]) -> None:
    endpoint, base = receiver
    system = await market_system(hall)
    status, contacts = await hall.call("PUT", "/api/efficiency/contacts", {
        "department": MARKET, "contact": {"name": "窗口科 王科长", "channel": "webhook", "address": f"{base}/contact"},
        "leader": {"name": "分管局长", "channel": "webhook", "address": f"{base}/leader"}}, as_user="supervisor")
    assert status == 200 and [c["role"] for c in contacts] == ["contact", "leader"], contacts
    ignored, heeded = await red_card(hall, system, "ignored"), await red_card(hall, system, "heeded")
    pool = hall.platform.pool
    escalator = CardEscalator(pool, Recipient("中心值班长", "webhook", f"{base}/centre"), int(WAIT.total_seconds()))
    now: datetime = await pool.fetchval("SELECT now()")

    async def at(moment: datetime) -> list[tuple[str, dict[str, Any]]]:
        """Escalate and deliver what is due at `moment`; what the endpoint received."""
        endpoint.requests.clear()
        await escalator.tick(moment)
        while await hall.alerts.sender.deliver_due():  # messages are queued on the real clock
            pass
        return [(path, json.loads(body)) for path, body, _ in endpoint.requests]

    opened = await at(now)
    assert sorted(path for path, _ in opened) == ["/contact", "/contact"]
    assert all("红牌" in message["subject"] and MARKET in message["subject"] for _, message in opened), opened
    assert await notices(hall, ignored) == [("contact", "窗口科 王科长", "sent")]

    status, _ = await hall.call("POST", f"/api/efficiency/cards/{heeded}/acknowledgement", as_user="supervisor")
    assert status == 403  # the centre does not acknowledge for the department
    status, seen = await hall.call("POST", f"/api/efficiency/cards/{heeded}/acknowledgement", as_user=system)
    assert status == 200 and seen["acknowledged_by"] and seen["escalate_at"] is None, seen
    status, again = await hall.call("POST", f"/api/efficiency/cards/{heeded}/acknowledgement", as_user=system)
    assert (status, again["error"]["code"]) == (409, "illegal_transition")

    assert await at(now + WAIT / 2) == []  # nothing is due yet
    assert [path for path, _ in await at(now + WAIT)] == ["/leader"]
    assert [path for path, _ in await at(now + 2 * WAIT)] == ["/centre"]
    assert await at(now + 10 * WAIT) == []  # the centre was the last step
    assert [role for role, _, _ in await notices(hall, ignored)] == ["contact", "leader", "centre"]
    assert [role for role, _, _ in await notices(hall, heeded)] == ["contact"]


async def test_a_department_without_contacts_is_never_unheard_the_centre_hears_at_once(
        hall: Liandong, receiver: tuple[Receiver, str]) -> None:
    endpoint, base = receiver
    system = await market_system(hall)
    status, named = await hall.call("PUT", "/api/efficiency/contacts", {"department": MARKET}, as_user="supervisor")
    assert (status, named) == (200, [])  # the demo's contacts are withdrawn
    card = await red_card(hall, system, "nobody-named")
    escalator = CardEscalator(hall.platform.pool, Recipient("中心值班长", "webhook", f"{base}/centre"), 60)
    await escalator.tick()
    while await hall.alerts.sender.deliver_due():
        pass
    assert [path for path, _, _ in endpoint.requests] == ["/centre"]
    assert await notices(hall, card) == [("centre", "中心值班长", "sent")]


async def test_contacts_are_refused_naming_the_field(hall: Liandong) -> None:
    good = {"name": "王科长", "channel": "sms", "address": "13800000011"}
    for body, field in (({"department": "没有的局", "contact": good}, "department"),
                        ({"department": MARKET, "contact": {**good, "channel": "pigeon"}}, "contact.channel"),
                        ({"department": MARKET, "contact": {**good, "address": ""}}, "contact.address"),
                        ({"contact": good}, "department")):
        status, refused = await hall.call("PUT", "/api/efficiency/contacts", body, as_user="supervisor")
        assert (status, refused["error"]["field"]) == (422, field), (body, refused)
