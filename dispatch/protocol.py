"""The sub-centre terminal protocol (WebSocket, JSON text frames), modelled on NENA-STA-024.

Terminal → server: a `hello` first (token, and the last sequence number it saw, if any), then
`received` (delivery receipt), `ack`, `feedback` and `reject`, each with an optional client `id`
that the server's `result` or `error` echoes.

Server → terminal: `welcome`, then `ticket` messages in sequence order. Each carries `seq` (gap-free
per sub-centre), the event (`created`, `acknowledged`, ...) and the whole ticket with its incident
and the alert to sound. Other events for the sub-centre (a call inviting it: `call.invited`,
`call.party`, `call.ended`) come in the same sequence as `notice` messages with their `kind` and
`data`. Delivery is at least once; the terminal keeps tickets by id.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from base.messages import PLAIN, Id, Token
from dispatch.tickets import Feedback, Notes, Outcome, PeopleAffected, ResourcesUsed

TicketId = Id
RequestId = Annotated[int, msgspec.Meta(ge=0)] | None


class _Message(msgspec.Struct, forbid_unknown_fields=True, frozen=True, tag_field="type"):
    pass


class TerminalHello(_Message, tag="hello", frozen=True, forbid_unknown_fields=True):
    token: Token
    last_seq: Annotated[int, msgspec.Meta(ge=0)] | None = None


class Received(_Message, tag="received", frozen=True, forbid_unknown_fields=True):
    ticket_id: TicketId
    id: RequestId = None


class Ack(_Message, tag="ack", frozen=True, forbid_unknown_fields=True):
    ticket_id: TicketId
    id: RequestId = None


class FeedbackMessage(_Message, tag="feedback", frozen=True, forbid_unknown_fields=True):
    ticket_id: TicketId
    outcome: Outcome
    people_affected: PeopleAffected = None
    resources_used: ResourcesUsed = ""
    notes: Notes = ""
    id: RequestId = None

    def feedback(self) -> Feedback:
        return Feedback(self.outcome, self.people_affected, self.resources_used, self.notes)


class Reject(_Message, tag="reject", frozen=True, forbid_unknown_fields=True):
    ticket_id: TicketId
    reason: Annotated[str, PLAIN, msgspec.Meta(min_length=1, max_length=500)]
    id: RequestId = None


TerminalRequest = Received | Ack | FeedbackMessage | Reject
