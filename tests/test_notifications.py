"""Notifications reach people through real local servers: an SMTP server (aiosmtpd) and an HTTP
receiver standing in for the SMS gateway and a webhook endpoint. Retries follow the test's clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller

from alerts.sender import LEASE_S
from app.config import ConfigError, load
from app.server import build_app
from tests.conftest import config_text_for_tests, free_port
from tests.helpers import Liandong
from tests.receiver import Receiver

XILING = (111.29, 30.70)



class Mailbox:
    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode("utf-8", "replace")))
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
async def wired(database_url: str, tmp_path: Path, receiver: tuple[Receiver, str],
                mailbox: tuple[Mailbox, int]) -> AsyncIterator[Liandong]:
    """The server with every channel pointed at the local servers; background passes slowed down,
    so the test alone decides when deliveries and escalations happen."""
    _, base = receiver
    _, smtp_port = mailbox
    text = config_text_for_tests()
    text = text.replace('url = ""\nbody_template', f'url = "{base}/sms"\nbody_template')
    text = text.replace('host = ""\nport = 25', f'host = "127.0.0.1"\nport = {smtp_port}')
    text = text.replace("max_attempts = 6\n# How often each server looks for notifications to send, in seconds.\n"
                        "poll_s = 1.0", "max_attempts = 3\npoll_s = 60")
    text = text.replace("poll_s = 0.5", "poll_s = 60")
    text = text.replace('supervisor = { name = "指挥中心值班长", channel = "sms", address = "13800000000" }',
                        f'supervisor = {{ name = "指挥中心值班长", channel = "webhook", address = "{base}/hook" }}')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    config = load(path, environ={"LIANDONG_DATABASE_URL": database_url})
    assert config.channels.enabled() == {"webhook", "email", "sms"}
    server = TestServer(build_app(config), host="127.0.0.1")
    await server.start_server()
    async with Liandong(str(server.make_url("/")), server.app) as client:
        yield client
    await server.close()


async def outcomes(liandong: Liandong, incident_id: int) -> list[dict[str, Any]]:
    status, body = await liandong.call("GET", f"/api/incidents/{incident_id}/notifications", as_user="dispatcher")
    assert status == 200
    result: list[dict[str, Any]] = body
    return result


async def test_a_severe_flood_tells_the_plans_leaders_by_sms_and_e_mail(
        wired: Liandong, receiver: tuple[Receiver, str], mailbox: tuple[Mailbox, int]) -> None:
    gateway, _ = receiver
    box, _ = mailbox
    flood = await wired.report("101", 1, *XILING, address='夷陵区 "黄柏河" 大堤', description="堤防出现管涌\n需要支援")
    assert await wired.alerts.sender.deliver_due() == 2
    sms = [json.loads(body) for path, body, _ in gateway.requests if path == "/sms"]
    assert [m["to"] for m in sms] == ["13800000001"]
    assert "重大洪涝灾害处置预案" in sms[0]["text"] and '"黄柏河"' in sms[0]["text"] and "\n" in sms[0]["text"]
    ((sender, recipients, content),) = box.mails
    assert recipients == ["duty@yichang-emergency.example"] and sender == "liandong@localhost"
    assert "Subject: =?utf-8?" in content  # the Chinese subject, encoded as mail requires
    assert [(n["channel"], n["status"], n["attempts"]) for n in await outcomes(wired, flood["id"])] == [
        ("sms", "sent", 1), ("email", "sent", 1)]


async def test_a_message_claimed_by_a_server_that_died_sending_it_is_sent_by_another_after_the_lease(
        wired: Liandong, receiver: tuple[Receiver, str]) -> None:
    """A server claims a message by pushing its next attempt a lease ahead (committed at once) and dies
    while the gateway has it: nobody else sends it during the lease, and after it any server does."""
    gateway, _ = receiver
    gateway.hang_next = 1
    flood = await wired.report("101", 2, *XILING)
    sender = wired.alerts.sender
    now = datetime.fromisoformat(flood["created_at"])
    dying = asyncio.create_task(sender.deliver_due(now + timedelta(seconds=1)))
    await asyncio.wait_for(gateway.hung.wait(), 10)
    dying.cancel()  # the server is gone mid-send: its claim stays, nothing after it is recorded
    with contextlib.suppress(asyncio.CancelledError):
        await dying
    (sms, _mail) = await outcomes(wired, flood["id"])
    assert (sms["status"], sms["attempts"]) == ("pending", 1)
    assert await sender.deliver_due(now + timedelta(seconds=60)) == 0  # still leased: not sent twice at once
    await sender.deliver_due(now + timedelta(seconds=1 + LEASE_S + 1))  # another server, after the lease
    (sms, _mail) = await outcomes(wired, flood["id"])
    assert (sms["status"], sms["attempts"], sms["last_error"]) == ("sent", 2, "")
    assert len([r for r in gateway.requests if r[0] == "/sms"]) == 2  # at least once: the first may have gone


async def test_a_failing_gateway_is_retried_with_backoff_until_it_takes_the_message(
        wired: Liandong, receiver: tuple[Receiver, str]) -> None:
    gateway, _ = receiver
    gateway.fail_next = 2
    flood = await wired.report("101", 2, *XILING)
    sender = wired.alerts.sender
    now = datetime.fromisoformat(flood["created_at"])
    await sender.deliver_due(now + timedelta(seconds=1))
    (sms, _mail) = await outcomes(wired, flood["id"])
    assert (sms["status"], sms["attempts"]) == ("pending", 1) and "503" in sms["last_error"]
    assert await sender.deliver_due(now + timedelta(seconds=2)) == 0  # backing off: 2 s after attempt 1
    await sender.deliver_due(now + timedelta(seconds=4))
    await sender.deliver_due(now + timedelta(seconds=9))
    (sms, _mail) = await outcomes(wired, flood["id"])
    assert (sms["status"], sms["attempts"], sms["last_error"]) == ("sent", 3, "")
    assert len([r for r in gateway.requests if r[0] == "/sms"]) == 3


async def test_a_gateway_that_never_answers_well_ends_failed_and_says_why(
        wired: Liandong, receiver: tuple[Receiver, str]) -> None:
    gateway, _ = receiver
    gateway.fail_next = 100
    flood = await wired.report("101", 2, *XILING)
    sender = wired.alerts.sender
    now = datetime.fromisoformat(flood["created_at"])
    for minutes in range(1, 6):
        await sender.deliver_due(now + timedelta(minutes=minutes))
    sms = (await outcomes(wired, flood["id"]))[0]
    assert (sms["status"], sms["attempts"]) == ("failed", 3) and "503" in sms["last_error"]


async def test_the_supervisor_hears_of_a_silent_sub_centre_by_webhook(
        wired: Liandong, receiver: tuple[Receiver, str]) -> None:
    gateway, _ = receiver
    incident = await wired.report("201", 4, *XILING)  # plan "fire": acknowledge within 45 s, three steps
    t0 = datetime.fromisoformat(incident["created_at"])
    escalator = wired.alerts.escalator
    for seconds in (16, 46, 92, 138):
        await escalator.tick(t0 + timedelta(seconds=seconds))
    await wired.alerts.sender.deliver_due(t0 + timedelta(seconds=139))
    hooks = [json.loads(body) for path, body, _ in gateway.requests if path == "/hook"]
    assert len(hooks) == 1
    assert hooks[0]["reason"] == "supervisor" and hooks[0]["incident_id"] == incident["id"]
    assert hooks[0]["ticket_id"] == incident["tickets"][0]["id"] and "西陵消防站" in hooks[0]["body"]
    sent = {(n["reason"], n["channel"], n["status"]) for n in await outcomes(wired, incident["id"])}
    assert sent == {("undelivered", "sms", "sent"), ("leader", "sms", "sent"), ("leader", "email", "sent"),
                    ("supervisor", "webhook", "sent")}


async def test_an_unconfigured_channel_fails_at_once_and_visibly(liandong: Liandong) -> None:
    flood = await liandong.report("101", 1, *XILING)  # the shipped config enables neither SMS nor e-mail
    await liandong.alerts.sender.deliver_due()
    results = await outcomes(liandong, flood["id"])
    assert [(n["channel"], n["status"], n["attempts"]) for n in results] == [("sms", "failed", 1),
                                                                            ("email", "failed", 1)]
    assert all("not configured" in n["last_error"] for n in results)


@pytest.mark.parametrize("setting, key", [
    ('url = "http://gateway.local/send"\nbody_template = \'{"text": "{text}"}\'', "channels.sms.body_template"),
    ('url = "http://gateway.local/send"\nbody_template = \'{"to": {to}, "text": "{text}"\'',
     "channels.sms.body_template"),
    ('url = "ftp://gateway.local/send"', "channels.sms.url"),
])
def test_a_misconfigured_channel_stops_start_up_naming_the_key(tmp_path: Path, setting: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[channels.sms]\n{setting}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load(path, environ={})
    assert key in str(refused.value)


