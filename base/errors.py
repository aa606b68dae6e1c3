"""Errors a client can cause, and the one table that turns them into HTTP statuses and WebSocket codes.

Domain code raises a `DomainError` subclass naming a code, the field at fault and the reason; it
never knows about HTTP. Transports look the code up here (`http_status`, `close_code`), so one code
means the same thing over every transport.
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

T = TypeVar("T")

# code → HTTP status. A code not listed here is a programming error, caught by a test.
HTTP_STATUS: dict[str, int] = {
    "malformed_json": 400,
    "unknown_type": 422,
    "unauthenticated": 401,
    "bad_credentials": 401,
    "forbidden": 403,
    "not_found": 404,
    "no_picture": 404,
    "no_snapshot": 404,
    "illegal_transition": 409,
    "ambiguous_plan": 409,
    "closed": 409,
    "duplicate": 409,
    "last_administrator": 409,
    "name_taken": 409,
    "not_pending": 409,
    "overlap": 409,
    "too_large": 413,
    "too_many_attempts": 429,  # log-in throttled: try again after Retry-After seconds
    "unsupported_media_type": 415,
    "invalid": 422,
    "invalid_plan": 422,
    "weak_password": 422,
    "not_more_severe": 422,
    "unknown_department": 422,
    "outside_service_area": 422,
    "internal": 500,
    "unavailable": 503,  # the database cannot be reached now: try again (Retry-After)
}

# code → WebSocket close code, for the errors that end a connection rather than answer a message.
CLOSE_CODE: dict[str, int] = {
    "invalid": 4400,  # a hello that fails its schema
    "malformed_json": 4400,
    "unauthenticated": 4401,
    "forbidden": 4403,
    "too_slow": 1013,  # TRY_AGAIN_LATER: the client reconnects and catches up
    "internal": 1011,
    "unavailable": 1013,
}


class DomainError(Exception):
    """A request the domain refuses: `code` (see HTTP_STATUS), what is wrong, and the field at fault."""

    code = "invalid"

    def __init__(self, message: str, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def payload(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class NotFound(DomainError):
    code = "not_found"


class TooMany(DomainError):
    """Throttled: too many attempts (log-ins, public complaints); try again after `retry_after_s`."""

    code = "too_many_attempts"

    def __init__(self, message: str, retry_after_s: int, field: str) -> None:
        super().__init__(message, field)
        self.retry_after_s = retry_after_s


class RequestError(DomainError):
    """A transport-level refusal that carries its own status: a query parameter a handler cannot read
    is a 400 though a body field with the same problem is a 422."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message, field, code)
        self.status = status


def http_status(error: DomainError) -> int:
    if isinstance(error, RequestError):
        return error.status
    return HTTP_STATUS[error.code]


def close_code(code: str) -> int:
    return CLOSE_CODE.get(code, 1008)  # POLICY_VIOLATION: anything else that ends a connection


_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"field `(?P<field>[^`]+)`")


def field_of(error: msgspec.ValidationError, prefix: str = "") -> str:
    """The dotted field a msgspec validation error is about ("location.lon"), or "" for the whole body."""
    text = str(error)
    at = _AT_PATH.search(text)
    path = at.group("path") if at else ""
    named = _NAMED_FIELD.search(text)
    if named:  # "missing required field `x`", "unknown field `x`": the field is inside the path
        path = f"{path}.{named.group('field')}" if path else named.group("field")
    return f"{prefix}{path}" if path else prefix.rstrip(".")




def invalid(error: msgspec.ValidationError) -> DomainError:
    message = _AT_PATH.sub("", str(error))
    if "matching regex" in message and "x0b-" in message:  # base.messages.PLAIN, said in words
        message = "must not hold control characters (tab and newline are allowed)"
    return DomainError(message, field_of(error) or None)


def convert(value: object, kind: type[T]) -> T:
    """Check already-parsed JSON against `kind`, raising a DomainError that names the field."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        raise invalid(error) from None


def decode(raw: bytes | str, kind: type[T]) -> T:
    """Decode JSON into `kind`, raising a DomainError that names the field and the reason."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as error:
        raise invalid(error) from None
    except msgspec.DecodeError as error:
        raise DomainError(f"body is not valid JSON: {error}", code="malformed_json") from None
    except RecursionError:
        raise DomainError("the JSON is nested too deeply", code="malformed_json") from None
