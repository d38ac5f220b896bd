"""`engine/batching.py`: natural batching without timers.

A scripted `run_batch` records each batch and holds it open until the test releases it, so every
test decides exactly which items are in flight and which are waiting. Timing is driven by events
only; `wait_for` bounds are there to fail a broken coalescer instead of hanging it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from engine.batching import Coalescer

BOUND_S = 5.0


class ScriptedBatches:
    """A `run_batch` that returns `item * 10` per item once its batch is released."""

    def __init__(self, *, auto_release: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.started: asyncio.Queue[list[int]] = asyncio.Queue()
        self.running = 0
        self.max_running = 0
        self.failures: dict[int, BaseException] = {}
        self.short_results: set[int] = set()
        self._auto_release = auto_release
        self._gates: dict[int, asyncio.Event] = {}

    def _gate(self, index: int) -> asyncio.Event:
        return self._gates.setdefault(index, asyncio.Event())

    def release(self, index: int) -> None:
        self._gate(index).set()

    async def next_batch(self) -> list[int]:
        return await asyncio.wait_for(self.started.get(), BOUND_S)

    async def __call__(self, batch: list[int]) -> list[int]:
        index = len(self.batches)
        self.batches.append(list(batch))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.started.put_nowait(list(batch))
        try:
            if not self._auto_release:
                await self._gate(index).wait()
        finally:
            self.running -= 1
        if index in self.failures:
            raise self.failures[index]
        results = [item * 10 for item in batch]
        return results[:-1] if index in self.short_results else results


async def scheduled() -> None:
    """Return once every task created so far has run up to its first await: the loop's ready
    queue is FIFO, so a callback queued now runs after their first steps."""
    reached = asyncio.Event()
    asyncio.get_running_loop().call_soon(reached.set)
    await asyncio.wait_for(reached.wait(), BOUND_S)


def spawn(coro: Coroutine[Any, Any, int]) -> asyncio.Task[int]:
    return asyncio.get_running_loop().create_task(coro)


async def outcome(task: asyncio.Task[int]) -> int:
    return await asyncio.wait_for(task, BOUND_S)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(ScriptedBatches(), max_batch=0)
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(ScriptedBatches(), max_batch=1, max_in_flight=0)


async def test_a_lone_item_runs_at_once_alone() -> None:
    runner = ScriptedBatches(auto_release=True)
    coalescer: Coalescer[int, int] = Coalescer(runner, max_batch=10)
    assert await asyncio.wait_for(coalescer.submit(7), BOUND_S) == 70
    assert runner.batches == [[7]]
    assert coalescer.pending == 0


async def test_a_lone_item_does_not_wait_for_company() -> None:
    runner = ScriptedBatches()
    coalescer: Coalescer[int, int] = Coalescer(runner, max_batch=10)
    task = spawn(coalescer.submit(1))
    assert await runner.next_batch() == [1]
    runner.release(0)
    assert await outcome(task) == 10


async def test_items_arriving_during_a_batch_form_the_next_batch() -> None:
    runner = ScriptedBatches()
    coalescer: Coalescer[int, int] = Coalescer(runner, max_batch=10)
    first = spawn(coalescer.submit(1))
    assert await runner.next_batch() == [1]

    later = [spawn(coalescer.submit(n)) for n in (2, 3, 4)]
    await scheduled()
    assert coalescer.pending == 3
    assert runner.batches == [[1]], "nothing may start while the only slot is busy"

    runner.release(0)
    assert await runner.next_batch() == [2, 3, 4]
    runner.release(1)
    assert [await outcome(t) for t in (first, *later)] == [10, 20, 30, 40]
    assert runner.batches == [[1], [2, 3, 4]]
    assert coalescer.pending == 0


async def test_max_batch_splits_the_backlog() -> None:
    runner = ScriptedBatches()
    coalescer: Coalescer[int, int] = Coalescer(runner, max_batch=2)
    first = spawn(coalescer.submit(0))
    assert await runner.next_batch() == [0]
    later = [spawn(coalescer.submit(n)) for n in range(1, 6)]
    await scheduled()
    assert coalescer.pending == 5

    for index, expected in enumerate([[1, 2], [3, 4], [5]], start=1):
        runner.release(index - 1)
        assert await runner.next_batch() == expected
    runner.release(3)
    assert [await outcome(t) for t in (first, *later)] == [0, 10, 20, 30, 40, 50]
    assert runner.batches == [[0], [1, 2], [3, 4], [5]]


async def test_submit_many_respects_max_batch_and_keeps_order() -> None:
    runner = ScriptedBatches(auto_release=True)
    coalescer: Coalescer[int, int] = Coalescer(runner, max_batch=3)
    results = await asyncio.wait_for(coalescer.submit_many(list(range(7))), BOUND_S)
    assert results == [n * 10 for n in range(7)]
    assert runner.batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_max_in_flight_bounds_concurrent_batches() -> None:
    runner = ScriptedBatches()
    coalescer: Coalescer[int, int] = Coalescer(runner, max_batch=1, max_in_flight=2)
    tasks = [spawn(coalescer.submit(n)) for n in range(1, 5)]
    assert await runner.next_batch() == [1]
    assert await runner.next_batch() == [2]
    await scheduled()
    assert runner.running == 2
    assert coalescer.pending == 2
    assert runner.batches == [[1], [2]]

    runner.release(1)
    assert await runner.next_batch() == [3], "a finished batch frees its slot for the next"
    assert runner.running == 2
    for index in (0, 2, 3):
        runner.release(index)
    assert [await outcome(t) for t in tasks] == [10, 20, 30, 40]
    assert runner.max_running == 2


async def test_a_failing_batch_fails_only_its_own_waiters() -> None:
    runner = ScriptedBatches()
    boom = RuntimeError("gateway down")
    runner.failures[1] = boom
    coalescer: Coalescer[int, int] = Coalescer(runner, max_batch=10)

    first = spawn(coalescer.submit(1))
    assert await runner.next_batch() == [1]
    doomed = [spawn(coalescer.submit(n)) for n in (2, 3)]
    await scheduled()
    runner.release(0)
    assert await runner.next_batch() == [2, 3]
    last = spawn(coalescer.submit(4))
    await scheduled()
    runner.release(1)
    assert await runner.next_batch() == [4]
    runner.release(2)

    assert await outcome(first) == 10
    for task in doomed:
        with pytest.raises(RuntimeError) as caught:
            await outcome(task)
        assert caught.value is boom
    assert await outcome(last) == 40
    assert runner.batches == [[1], [2, 3], [4]]


async def test_result_count_mismatch_fails_the_batch() -> None:
    runner = ScriptedBatches()
    runner.short_results.add(1)
    coalescer: Coalescer[int, int] = Coalescer(runner, max_batch=10)
    first = spawn(coalescer.submit(1))
    assert await runner.next_batch() == [1]
    short = [spawn(coalescer.submit(n)) for n in (2, 3)]
    await scheduled()
    runner.release(0)
    assert await runner.next_batch() == [2, 3]
    runner.release(1)

    assert await outcome(first) == 10
    for task in short:
        with pytest.raises(RuntimeError, match="batch of 2 returned 1 results"):
            await outcome(task)
    # The coalescer recovered its slot: the next item still runs.
    runner.release(2)
    assert await asyncio.wait_for(coalescer.submit(5), BOUND_S) == 50
