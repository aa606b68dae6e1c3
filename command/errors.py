"""The one place where validation failures become error payloads, for HTTP and WebSocket alike."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

T = TypeVar("T")

_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"field `(?P<field>[^`]+)`")


class RequestError(Exception):
    """A request the server refuses: `status` for HTTP, `code` for both transports."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def payload(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


def field_of(error: msgspec.ValidationError, prefix: str = "") -> str:
    """The dotted field a msgspec validation error is about ("location.lon"), or "" for the whole body."""
    text = str(error)
    at = _AT_PATH.search(text)
    path = at.group("path") if at else ""
    named = _NAMED_FIELD.search(text)
    if named:  # "missing required field `x`", "unknown field `x`": the field is inside the path
        path = f"{path}.{named.group('field')}" if path else named.group("field")
    return f"{prefix}{path}" if path else prefix.rstrip(".")


def invalid(error: msgspec.ValidationError) -> RequestError:
    field = field_of(error)
    message = _AT_PATH.sub("", str(error))
    return RequestError(422, "invalid", message, field or None)


def convert(value: object, kind: type[T]) -> T:
    """Check already-parsed JSON against `kind`, raising RequestError that names the field."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        raise invalid(error) from None


def decode(raw: bytes | str, kind: type[T]) -> T:
    """Decode JSON into `kind`, raising RequestError that names the field and the reason."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as error:
        raise invalid(error) from None
    except msgspec.DecodeError as error:
        raise RequestError(400, "malformed_json", f"body is not valid JSON: {error}") from None


def from_domain(error: Exception) -> RequestError | None:
    """Map a domain exception to the error a client sees; None for anything unexpected."""
    from command.plans import AmbiguousPlan, PlanProblem
    from dispatch.store import NotYourTicket, TicketNotFound
    from dispatch.tickets import IllegalTransition

    if isinstance(error, RequestError):
        return error
    if isinstance(error, IllegalTransition):
        return RequestError(409, "illegal_transition", str(error), "ticket_id")
    if isinstance(error, NotYourTicket):
        return RequestError(403, "forbidden", str(error), "ticket_id")
    if isinstance(error, AmbiguousPlan):
        return RequestError(409, "ambiguous_plan", str(error), error.field)
    if isinstance(error, PlanProblem):
        return RequestError(422, "invalid_plan", str(error), error.field)
    if isinstance(error, TicketNotFound):
        return RequestError(404, "not_found", str(error), "ticket_id")
    return None
