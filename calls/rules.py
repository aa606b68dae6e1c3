"""What a call allows, free of transport: who may take part, the caller's link, and what an offer
must be before it reaches the media stack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from base.errors import DomainError

MAX_SDP_BYTES = 64_000  # a browser's offer with every candidate is a few kilobytes


class PartyKind(StrEnum):
    DISPATCHER = "dispatcher"
    SUBCENTRE = "subcentre"
    CALLER = "caller"


@dataclass(frozen=True)
class Limits:
    max_parties: int
    max_duration: timedelta
    caller_link: timedelta


def new_secret() -> tuple[str, bytes]:
    """A secret for a URL or a page's storage, and the hash that is all the database keeps."""
    secret = secrets.token_urlsafe(24)
    return secret, secret_hash(secret)


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_offer(sdp: str, field: str = "sdp") -> None:
    """An offer the media stack can take: SDP, with audio, gathered ICE (the server does not trickle)."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise DomainError(f"at most {MAX_SDP_BYTES} bytes", field)
    lines = sdp.replace("\r\n", "\n").split("\n")
    if not lines or lines[0] != "v=0":
        raise DomainError("not an SDP offer: it must begin with v=0", field)
    if not any(line.startswith("m=audio ") for line in lines):
        raise DomainError("the offer has no audio: a call needs the microphone", field)
    if not any(line.startswith("a=fingerprint:") for line in lines):
        raise DomainError("the offer has no DTLS fingerprint", field)
    if not any(line.startswith("a=candidate:") for line in lines):
        raise DomainError("the offer has no ICE candidates: wait for gathering to complete before sending it",
                          field)


def check_room(parties: int, limits: Limits) -> None:
    if parties >= limits.max_parties:
        raise DomainError(f"a call has at most {limits.max_parties} parties", "subcentre_id", "conflict")


def overdue(opened_at: datetime, now: datetime, limits: Limits) -> bool:
    """A call past its longest allowed length is ended by the server."""
    return now - opened_at >= limits.max_duration


def check_link(expires_at: datetime, used_at: datetime | None, now: datetime) -> None:
    """A caller's link is good once, until it expires; the page rejoins with its session, not the link."""
    if used_at is not None:
        raise DomainError("this call link has been used; ask the centre for a new one", "token", "forbidden")
    if now >= expires_at:
        raise DomainError("this call link has expired; ask the centre for a new one", "token", "forbidden")


def turn_credential(secret: str, who: str, until: datetime) -> tuple[str, str]:
    """A TURN username and password good until `until`, as coturn checks them with use-auth-secret:
    the username is "<expiry unix time>:<who>", the password base64(HMAC-SHA1(secret, username))."""
    username = f"{int(until.timestamp())}:{who}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
