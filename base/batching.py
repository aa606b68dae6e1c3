"""Group commit: requests that arrive while one batch is being written wait, and go together in the next.

Each write is one transaction, and on this hardware a transaction's fixed cost (its round trips, its
commit's WAL flush, its locks) is most of what a small change costs. Writing whatever has queued as
one transaction makes that cost per batch rather than per request: under light load a batch is one
request and nothing waits; under heavy load batches grow and the cost per request falls, while the
wait stays at most the one batch ahead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Queue items for `write`, which stores a batch in one transaction and returns, per item in order,
    its result or the exception that item alone should raise. An exception `write` raises fails the
    whole batch (nothing of it was stored) and every item in it raises that."""

    def __init__(self, write: Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]],
                 max_batch: int = 256) -> None:
        self._write = write
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Store `item` with whatever else is queued; its result once the batch is committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        # Shielded: a caller that goes away (its socket closed) does not cancel a batch that also holds
        # other callers' items; its own item is still written, as a sent request would be.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queue:
                # One turn of the loop first, so the other requests read in the same turn join this batch.
                await asyncio.sleep(0)
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as error:  # handed to every caller of the batch, raised there
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                batch = []
        finally:
            # Cancelled (shutting down): nobody waits for ever on a batch that will not be written.
            for _, future in [*batch, *self._queue]:
                if not future.done():
                    future.cancel()
            self._queue = []
            self._writer = None
