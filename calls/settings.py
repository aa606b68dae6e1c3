"""The [calls] section of config.toml."""

from __future__ import annotations

from typing import Annotated

import msgspec

from base.settings import Section


class IceServerConfig(Section, frozen=True, forbid_unknown_fields=True):
    """A STUN or TURN server the parties and the server may use (e.g. coturn at the centre's edge)."""

    urls: Annotated[str, msgspec.Meta(pattern=r"^(stun|turn|turns):[^\s]+$")]
    username: str = ""
    credential: str = ""
    # coturn's use-auth-secret: each party is given its own credential, valid for the call's length,
    # made from this shared secret (the TURN REST scheme), so no lasting password reaches a phone.
    secret: str = ""


class CallsConfig(Section, frozen=True, forbid_unknown_fields=True):
    recordings_dir: str = "var/calls"
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 180
    max_minutes: Annotated[float, msgspec.Meta(gt=0, le=24 * 60)] = 120.0
    max_parties: Annotated[int, msgspec.Meta(ge=3, le=16)] = 8
    caller_link_minutes: Annotated[float, msgspec.Meta(gt=0, le=24 * 60)] = 30.0
    # The most 20 ms frames of a party's voice the mixer holds against jitter: 1–2 on a LAN, more for
    # callers on poor links. It holds fewer when the jitter allows.
    jitter_frames: Annotated[int, msgspec.Meta(ge=1, le=8)] = 2
    # Whether the caller's link goes out by SMS when the call opens with a caller's number.
    sms_link: bool = True
    # The address callers reach the server at (their phones are outside): the link is <public_url>/call#…
    public_url: str = ""
    ice_servers: list[IceServerConfig] = msgspec.field(default_factory=list)
    # Browsers use only TURN relays (never a direct path): for networks where only the relay is open.
    relay_only: bool = False
