"""What every socket's messages share: the hello that opens a connection and the token it carries."""

from __future__ import annotations

from typing import Annotated

import msgspec

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Hello(msgspec.Struct, tag="hello", frozen=True, forbid_unknown_fields=True):
    """The first message on a socket that needs nothing else to start; others add their own fields."""

    token: Token
