"""Per-key sequencing: one key's work runs one at a time in reservation order; other keys are
not held up; a failed holder still passes its turn on."""

from __future__ import annotations

import asyncio

import pytest

from engine.sequencing import KeyedSequencer


async def test_one_key_runs_in_reservation_order_one_at_a_time() -> None:
    sequencer: KeyedSequencer[str] = KeyedSequencer()
    running = 0
    order: list[int] = []
    gates = [asyncio.Event() for _ in range(4)]

    async def work(i: int) -> None:
        nonlocal running
        async with turns[i]:
            running += 1
            assert running == 1
            order.append(i)
            await gates[i].wait()
            running -= 1

    turns = [sequencer.reserve("a") for _ in range(4)]
    tasks = [asyncio.create_task(work(i)) for i in reversed(range(4))]
    for gate in gates:
        await asyncio.sleep(0)
        gate.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert len(sequencer) == 0


async def test_other_keys_are_not_held_up() -> None:
    sequencer: KeyedSequencer[str] = KeyedSequencer()
    release_a = asyncio.Event()
    first_a = sequencer.reserve("a")
    second_a = sequencer.reserve("a")
    b = sequencer.reserve("b")
    done: list[str] = []

    async def hold_a() -> None:
        async with first_a:
            await release_a.wait()
            done.append("a1")

    async def then_a() -> None:
        async with second_a:
            done.append("a2")

    async def run_b() -> None:
        async with b:
            done.append("b")

    tasks = [asyncio.create_task(c) for c in (hold_a(), then_a(), run_b())]
    await tasks[2]
    assert done == ["b"]
    assert sequencer.busy("a")
    assert not sequencer.busy("b")
    release_a.set()
    await asyncio.gather(*tasks)
    assert done == ["b", "a1", "a2"]


async def test_a_failed_holder_passes_the_turn_on() -> None:
    sequencer: KeyedSequencer[int] = KeyedSequencer()
    first, second = sequencer.reserve(1), sequencer.reserve(1)

    async def fail() -> None:
        async with first:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail()
    async with second:
        pass
    assert len(sequencer) == 0


async def test_a_cancelled_waiter_does_not_cancel_the_turn_before_it() -> None:
    sequencer: KeyedSequencer[int] = KeyedSequencer()
    first, second, third = (sequencer.reserve(1) for _ in range(3))
    release = asyncio.Event()

    async def hold() -> None:
        async with first:
            await release.wait()

    async def wait_behind() -> None:
        async with second:
            pass

    holder = asyncio.create_task(hold())
    waiter = asyncio.create_task(wait_behind())
    await asyncio.sleep(0)
    waiter.cancel()
    second.release()
    release.set()
    await holder
    async with third:
        pass
    assert not holder.cancelled()
