"""Login throttling: too many failed log-ins for one account, or from one address, within a window
are answered 429 with the seconds to wait, before any password is hashed — so guessing costs the
guesser time and never the server's hashing thread, which real log-ins need."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Window:
    """At most `limit` failures within `seconds`; past that, wait until the oldest leaves the window."""

    limit: int
    seconds: float
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        failures = self._failures.get(key)
        if failures is None:
            return 0.0
        while failures and failures[0] <= now - self.seconds:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return 0.0
        return max(0.0, failures[0] + self.seconds - now) if len(failures) >= self.limit else 0.0

    def failed(self, key: str, now: float) -> None:
        if len(self._failures) > 100_000:  # a flood of made-up names must not grow this without end
            self._failures.clear()
        self._failures.setdefault(key, deque()).append(now)


class LoginThrottle:
    """Per account (5 failures a minute) and per address (30 a minute: a whole office may share one)."""

    def __init__(self, per_account: Window | None = None, per_address: Window | None = None) -> None:
        self.per_account = per_account or Window(5, 60.0)
        self.per_address = per_address or Window(30, 60.0)

    def wait_s(self, username: str, address: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return max(self.per_account.wait_s(username.casefold(), now), self.per_address.wait_s(address, now))

    def failed(self, username: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.per_account.failed(username.casefold(), now)
        self.per_address.failed(address, now)
