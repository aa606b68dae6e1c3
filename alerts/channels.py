"""Notification channels: how a queued message leaves the building.

Each channel sends one message or raises DeliveryFailed with a reason worth showing a dispatcher.
Built in: webhook (HTTP POST of JSON), e-mail (SMTP), and SMS through a generic HTTP gateway whose
URL and body template come from the configuration.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiohttp


class DeliveryFailed(Exception):
    """The message did not go out; the message says why (it is stored with the notification)."""


@dataclass(frozen=True)
class Outgoing:
    id: int
    incident_id: int | None
    ticket_id: int | None
    reason: str
    recipient: str
    address: str
    subject: str
    body: str


class Channel(Protocol):
    async def send(self, message: Outgoing) -> None: ...


class Unconfigured:
    """A channel the configuration leaves empty: its messages fail, visibly, instead of vanishing."""

    def __init__(self, name: str) -> None:
        self._name = name

    async def send(self, message: Outgoing) -> None:
        raise DeliveryFailed(f"the {self._name} channel is not configured")


async def _post(http: aiohttp.ClientSession, url: str, data: bytes, content_type: str) -> None:
    try:
        async with http.post(url, data=data, headers={"Content-Type": content_type}) as response:
            if not 200 <= response.status < 300:
                raise DeliveryFailed(f"{url} answered {response.status} {response.reason}")
    except (aiohttp.ClientError, TimeoutError) as error:
        raise DeliveryFailed(f"{url}: {type(error).__name__} {error}".strip()) from None


class Webhook:
    """POSTs the message as JSON to the recipient's address, which is a URL."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self._http = http

    async def send(self, message: Outgoing) -> None:
        payload = {"id": message.id, "incident_id": message.incident_id, "ticket_id": message.ticket_id,
                   "reason": message.reason, "recipient": message.recipient, "subject": message.subject,
                   "body": message.body}
        await _post(self._http, message.address, json.dumps(payload, ensure_ascii=False).encode(),
                    "application/json")


class SmsGateway:
    """Sends through an HTTP SMS gateway: the body template gets {to} and {text}, JSON-escaped when
    the gateway takes JSON, so a message can never break the request it travels in."""

    def __init__(self, http: aiohttp.ClientSession, url: str, template: str, content_type: str) -> None:
        self._http = http
        self._url = url
        self._template = template
        self._json = "json" in content_type
        self._content_type = content_type

    def render(self, to: str, text: str) -> str:
        def escape(value: str) -> str:
            return json.dumps(value, ensure_ascii=False)[1:-1] if self._json else value
        return self._template.replace("{to}", escape(to)).replace("{text}", escape(text))

    async def send(self, message: Outgoing) -> None:
        await _post(self._http, self._url, self.render(message.address, message.body).encode(), self._content_type)


class Email:
    """SMTP, run in a worker thread (smtplib is blocking): one connection per message."""

    def __init__(self, host: str, port: int, sender: str, starttls: bool, username: str, password: str,
                 timeout_s: float) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._starttls, self._username, self._password = starttls, username, password
        self._timeout_s = timeout_s

    async def send(self, message: Outgoing) -> None:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self._sender, message.address, message.subject
        mail.set_content(message.body)
        try:
            await asyncio.to_thread(self._deliver, mail)
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"SMTP {self._host}:{self._port}: {type(error).__name__} {error}") from None

    def _deliver(self, mail: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username:
                smtp.login(self._username, self._password)
            smtp.send_message(mail)
