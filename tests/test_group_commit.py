"""Group commit: what arrives while a batch is being written goes together in the next one, each caller
gets its own outcome, and a caller that leaves does not take others' requests with it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from base.batching import GroupCommit


class Ledger:
    """A write that stores batches in a list and can be held mid-write, as a slow commit would be."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next: Exception | None = None

    async def write(self, items: Sequence[str]) -> list[str | Exception]:
        await self.gate.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.batches.append(list(items))
        return [ValueError(f"{item} refused") if item.startswith("bad") else item.upper() for item in items]


async def test_requests_that_arrive_while_a_batch_is_written_go_together_in_the_next() -> None:
    ledger = Ledger()
    queue: GroupCommit[str, str] = GroupCommit(ledger.write)
    ledger.gate.clear()
    first = asyncio.create_task(queue.submit("a"))
    await asyncio.sleep(0.01)  # "a" is being written, held at the gate
    later = [asyncio.create_task(queue.submit(x)) for x in ("b", "c", "d")]
    await asyncio.sleep(0.01)
    ledger.gate.set()
    assert [await first, *await asyncio.gather(*later)] == ["A", "B", "C", "D"]
    assert ledger.batches == [["a"], ["b", "c", "d"]]


async def test_one_requests_refusal_is_raised_at_its_caller_only() -> None:
    ledger = Ledger()
    queue: GroupCommit[str, str] = GroupCommit(ledger.write)
    outcomes = await asyncio.gather(queue.submit("x"), queue.submit("bad y"), queue.submit("z"),
                                    return_exceptions=True)
    assert outcomes[0] == "X" and outcomes[2] == "Z"
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad y refused"
    assert ledger.batches == [["x", "bad y", "z"]]


async def test_a_failed_write_fails_its_whole_batch_and_the_next_batch_still_goes() -> None:
    ledger = Ledger()
    queue: GroupCommit[str, str] = GroupCommit(ledger.write)
    ledger.fail_next = ConnectionError("the database went away")
    outcomes = await asyncio.gather(queue.submit("p"), queue.submit("q"), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert await queue.submit("r") == "R"
    assert ledger.batches == [["r"]]


async def test_a_caller_that_goes_away_does_not_cancel_the_batch_holding_others_requests() -> None:
    ledger = Ledger()
    queue: GroupCommit[str, str] = GroupCommit(ledger.write)
    ledger.gate.clear()
    leaving = asyncio.create_task(queue.submit("m"))
    staying = asyncio.create_task(queue.submit("n"))
    await asyncio.sleep(0.01)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    ledger.gate.set()
    assert await staying == "N"
    assert ledger.batches == [["m", "n"]]  # "m" was sent, so it is written, as a sent request would be
