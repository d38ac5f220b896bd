"""Purchases sent back to back by several clients while a test breaks something, and the checks
that follow: each request retried with its Idempotency-Key until its answer is final."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.factories import Api, payment_body
from tests.waiting import wait_until

# Answers that say "not now": the request is to be retried with its key.
RETRYABLE = frozenset({409, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Sent:
    key: str
    body: dict[str, Any]
    # None when the connection itself failed (the server went away mid-request).
    response: httpx.Response | None

    @property
    def status(self) -> int:
        return 0 if self.response is None else self.response.status_code


@dataclass
class PurchaseLoad:
    """Clients each sending purchases, one at a time, with a fresh Idempotency-Key each."""

    api: Api
    customers: list[str]
    prefix: str
    sent: list[Sent] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, clients: int) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def succeeded(self) -> int:
        return sum(1 for s in self.sent if s.status == 200)

    async def until_succeeded(self, count: int, *, timeout_s: float, what: str) -> None:
        async def enough() -> bool:
            return self.succeeded() >= count

        await wait_until(enough, timeout_s=timeout_s, what=what)

    async def final_answer(self, sent: Sent, *, timeout_s: float = 120) -> httpx.Response:
        """Retry `sent` with its key until the answer is final."""
        answer: list[httpx.Response] = []
        trouble: list[str] = []

        async def final() -> bool:
            try:
                response = await self.api.post(
                    "/api/payments/purchase", sent.body, idempotency_key=sent.key
                )
            except httpx.TransportError as exc:
                trouble[:] = [repr(exc)]
                return False
            answer[:] = [response]
            trouble[:] = [response.text]
            return response.status_code not in RETRYABLE

        await wait_until(
            final,
            timeout_s=timeout_s,
            what=lambda: f"a final answer for {sent.key} (last answer: {trouble})",
        )
        return answer[0]

    async def _client(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            key = f"{self.prefix}-{n}-{i}-{uuid.uuid4().hex[:8]}"
            customer = self.customers[(n + i) % len(self.customers)]
            body = payment_body(amount=200 + i, customer_id=customer)
            try:
                response: httpx.Response | None = await self.api.post(
                    "/api/payments/purchase", body, idempotency_key=key
                )
            except httpx.TransportError:
                response = None
            self.sent.append(Sent(key, body, response))
            i += 1
