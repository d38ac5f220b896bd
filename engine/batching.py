"""Natural batching: items submitted while a batch is running form the next batch.

No timer and no added latency when idle: a lone item goes out on the event loop's next turn
(so items submitted in the same turn, such as the commands of one actor call, travel
together); under load, batches grow to match the rate. It amortizes per-call costs (a Ray actor
hop, a transaction) without tuning.

Traced (`span_name` given, tracing on): each item keeps the span current where it was
submitted, and its batch runs in a span named `span_name` that links every one of them, child
of the first, so a lone request's trace holds its batch whole and every other request reaches
its batch through the link.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext

from engine.tracing.setup import enabled, tracer

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Feeds `run_batch` lists of at most `max_batch` items, with at most `max_in_flight`
    batches running at once. `run_batch` returns one result per item, in order; if it raises,
    every item of that batch gets the exception."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int,
        max_in_flight: int = 1,
        span_name: str | None = None,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        # Each item, its answer to be, and its submitter's span context when traced.
        self._pending: list[tuple[T, asyncio.Future[R], SpanContext | None]] = []
        self._span_name = span_name
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatch_scheduled = False

    async def submit(self, item: T) -> R:
        """Run `item` in the next batch with room and return its result."""
        return (await self.submit_many([item]))[0]

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Run `items` (possibly across batches) and return their results in order."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = []
        context = None
        if self._span_name is not None and enabled():
            # Only a recorded submitter's batch is traced: an unsampled one costs nothing more.
            span = trace.get_current_span()
            context = span.get_span_context() if span.is_recording() else None
        for item in items:
            future: asyncio.Future[R] = loop.create_future()
            self._pending.append((item, future, context))
            futures.append(future)
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            loop.call_soon(self._dispatch)
        return list(await asyncio.gather(*futures))

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        while self._pending and self._in_flight < self._max_in_flight:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            self._in_flight += 1
            traced = any(context is not None for _, _, context in batch)
            run = self._run_traced(batch) if traced else self._run(batch)
            task = asyncio.get_running_loop().create_task(run)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_traced(
        self, batch: list[tuple[T, asyncio.Future[R], SpanContext | None]]
    ) -> None:
        assert self._span_name is not None
        valid = [c for _, _, c in batch if c is not None and c.is_valid]
        parent = trace.set_span_in_context(trace.NonRecordingSpan(valid[0])) if valid else None
        with tracer().start_as_current_span(
            self._span_name,
            context=parent,
            links=list({c.span_id: Link(c) for c in valid}.values()),
            attributes={"paygrid.batch.size": len(batch)},
        ):
            await self._run(batch)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R], SpanContext | None]]) -> None:
        try:
            results = await self._run_batch([item for item, _, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} returned {len(results)} results")
        except BaseException as exc:
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future, _), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._dispatch()

    @property
    def pending(self) -> int:
        return len(self._pending)
