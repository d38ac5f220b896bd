"""Every illegal transition of the payment state machine is a 422 that leaves the payment as it
was."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.factories import Api, payment_body


async def _data(response: httpx.Response) -> dict[str, Any]:
    data: dict[str, Any] = response.json()["data"]
    return data


async def _failed(api: Api) -> dict[str, Any]:
    response = await api.post("/api/payments/authorize", payment_body(number="4000000000000002"))
    payment_id = response.json()["error"]["payment_id"]
    return await _data(await api.get(f"/api/payments/{payment_id}"))


async def _voided(api: Api) -> dict[str, Any]:
    auth = await api.authorize(amount=500)
    return await _data(await api.post("/api/payments/void", {"payment_id": auth["id"]}))


async def _captured(api: Api) -> dict[str, Any]:
    auth = await api.authorize(amount=500)
    return await _data(await api.post("/api/payments/capture", {"payment_id": auth["id"]}))


async def _refunded(api: Api) -> dict[str, Any]:
    payment = await api.purchase(amount=500)
    return await _data(await api.post("/api/payments/refund", {"payment_id": payment["id"]}))


async def _succeeded(api: Api) -> dict[str, Any]:
    return await api.purchase(amount=500)


Setup = Callable[[Api], Awaitable[dict[str, Any]]]

ILLEGAL: list[tuple[str, Setup, str]] = [
    ("failed", _failed, "capture"),
    ("failed", _failed, "void"),
    ("failed", _failed, "refund"),
    ("voided", _voided, "capture"),
    ("voided", _voided, "void"),
    ("voided", _voided, "refund"),
    ("captured", _captured, "capture"),
    ("captured", _captured, "void"),
    ("succeeded", _succeeded, "capture"),
    ("succeeded", _succeeded, "void"),
    ("refunded", _refunded, "capture"),
    ("refunded", _refunded, "void"),
    ("refunded", _refunded, "refund"),
]


@pytest.mark.parametrize(
    ("state", "setup", "operation"), ILLEGAL, ids=[f"{s}-{o}" for s, _, o in ILLEGAL]
)
async def test_illegal_transition_is_422(
    api: Api, state: str, setup: Setup, operation: str
) -> None:
    payment = await setup(api)
    assert payment["status"] == state
    response = await api.post(f"/api/payments/{operation}", {"payment_id": payment["id"]})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "payment_id"
    after = (await api.get(f"/api/payments/{payment['id']}")).json()["data"]
    assert after["status"] == state
    assert after["amount_captured"] == payment["amount_captured"]
    assert after["amount_refunded"] == payment["amount_refunded"]
