"""Request builders and a thin client for the API under test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

VISA = "4242424242424242"


def card(number: str = VISA, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "card",
        "number": number,
        "exp_month": 12,
        "exp_year": 2034,
        "cvc": "123",
        **overrides,
    }


def card_on_file(number: str = VISA) -> dict[str, Any]:
    """A card to save without its CVC: saved unverified, as a card on file (a declining test
    card saved so is refused only when charged)."""
    return {k: v for k, v in card(number).items() if k != "cvc"}


def payment_body(
    amount: int = 1000,
    currency: str = "USD",
    *,
    number: str = VISA,
    customer_id: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": amount, "currency": currency, "payment_method": card(number)}
    if customer_id is None:
        body["customer"] = {
            "email": f"c-{uuid.uuid4().hex[:8]}@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
        }
    else:
        body["customer_id"] = customer_id
    body.update(overrides)
    return body


@dataclass
class Api:
    http: httpx.AsyncClient
    key: str

    def headers(self, idempotency_key: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}", **extra}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def post(
        self, path: str, body: Any, idempotency_key: str | None = None, **headers: str
    ) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers=self.headers(idempotency_key, **headers)
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers())

    async def purchase(self, **kwargs: Any) -> dict[str, Any]:
        response = await self.post("/api/payments/purchase", payment_body(**kwargs))
        assert response.status_code == 200, response.text
        return response.json()["data"]  # type: ignore[no-any-return]

    async def authorize(self, **kwargs: Any) -> dict[str, Any]:
        response = await self.post("/api/payments/authorize", payment_body(**kwargs))
        assert response.status_code == 200, response.text
        return response.json()["data"]  # type: ignore[no-any-return]
