"""The server's own responsiveness: how late its event loop wakes up.

Everything a terminal waits for passes through this loop, so a stall here (a long computation, a
garbage-collection pause) is dispatch latency. Reported by /healthz over a sliding window.
"""

from __future__ import annotations

import asyncio
import collections
import time

_TICK_S = 0.01
_WINDOW = 1000  # ticks: the last ten seconds or so


class LoopLag:
    def __init__(self) -> None:
        self._lags_ms: collections.deque[float] = collections.deque(maxlen=_WINDOW)

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(_TICK_S)
            self._lags_ms.append((time.perf_counter() - started - _TICK_S) * 1000)

    def summary(self) -> dict[str, float]:
        lags = sorted(self._lags_ms)
        if not lags:
            return {"p99_ms": 0.0, "max_ms": 0.0}
        return {"p99_ms": round(lags[int(0.99 * (len(lags) - 1))], 2), "max_ms": round(lags[-1], 2)}
