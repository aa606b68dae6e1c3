"""What every message shares, HTTP body or socket frame: the one rule for text a client may send, the
hello that opens a connection and the token it carries."""

from __future__ import annotations

from typing import Annotated

import msgspec

# Text Liandong accepts: no C0 control character but tab and newline (NUL included), so nothing it
# later writes — XML, CSV, JSON, HTML — can be made invalid by what a client typed. Add it to every
# str a client sends: Annotated[str, PLAIN, msgspec.Meta(max_length=…)].
NO_CONTROL = r"^[^\x00-\x08\x0b-\x1f]*$"
PLAIN = msgspec.Meta(pattern=NO_CONTROL)
Token = Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=200)]


class Hello(msgspec.Struct, tag="hello", frozen=True, forbid_unknown_fields=True):
    """The first message on a socket that needs nothing else to start; others add their own fields."""

    token: Token


# Ids as the database stores them: a client's id beyond these is no row at all, not a server error.
INT4_MAX = 2**31 - 1  # serial: accounts, sub-centres, cameras
INT8_MAX = 2**63 - 1  # bigserial: incidents, tickets, everything recorded
SmallId = Annotated[int, msgspec.Meta(ge=1, le=INT4_MAX)]
Id = Annotated[int, msgspec.Meta(ge=1, le=INT8_MAX)]
