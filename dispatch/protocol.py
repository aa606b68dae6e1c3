"""The sub-centre terminal protocol (WebSocket, JSON text frames), modelled on NENA-STA-024.

Terminal → server: a `hello` first (token, and the last sequence number it saw, if any), then
`received` (delivery receipt), `ack`, `feedback` and `reject`, each with an optional client `id`
that the server's `result` or `error` echoes.

Server → terminal: `welcome`, then `ticket` messages in sequence order. Each carries `seq` (gap-free
per sub-centre), the event (`created`, `acknowledged`, ...) and the whole ticket with its incident
and the alert to sound. Delivery is at least once; the terminal keeps tickets by id.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

TicketId = Annotated[int, msgspec.Meta(ge=1)]
RequestId = Annotated[int, msgspec.Meta(ge=0)] | None


class _Message(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag_field="type"):
    pass


class Hello(_Message, tag="hello", frozen=True, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    last_seq: Annotated[int, msgspec.Meta(ge=0)] | None = None


class Received(_Message, tag="received", frozen=True, forbid_unknown_fields=True):
    ticket_id: TicketId
    id: RequestId = None


class Ack(_Message, tag="ack", frozen=True, forbid_unknown_fields=True):
    ticket_id: TicketId
    id: RequestId = None


class FeedbackMessage(_Message, tag="feedback", frozen=True, forbid_unknown_fields=True):
    ticket_id: TicketId
    outcome: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    people_affected: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] | None = None
    resources_used: Annotated[str, msgspec.Meta(max_length=500)] = ""
    notes: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    id: RequestId = None


class Reject(_Message, tag="reject", frozen=True, forbid_unknown_fields=True):
    ticket_id: TicketId
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    id: RequestId = None


TerminalRequest = Received | Ack | FeedbackMessage | Reject
