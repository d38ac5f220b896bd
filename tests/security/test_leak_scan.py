"""Leak scan (issue 12): drive every payment flow with real-looking card numbers and a
distinctive CVC (and a bank debit from an account number made for this run, and a wallet
payment), then look for them, and for any API key or webhook secret, everywhere this run
could have put them: every text, JSON, array and binary column of every table, every log file of
every process (Ray's session logs: the API replicas, every actor, Ray's own processes; the
databases' logs), every Redis value, the event log as the API serves it, every webhook body the
receiver got, and every answer the API gave, errors included.

The card numbers are made for this run (Luhn-valid, unlike any test card), so finding one can
only mean this run leaked it; the scan also flags any Luhn-valid number at all.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from ray.cluster_utils import Cluster
from redis.asyncio import Redis

from engine.auth.keys import ApiKeyService, Scope
from engine.ratelimit.limits import UNLIMITED
from schema.cards import luhn_valid
from tests.local_server import serving
from tests.ray_cluster import session_logs
from tests.security.leaks import RAY_CORE_LOGS, Finding, Scanner
from tests.serve_app.routes.receiver import Receiver, until
from tests.serve_app.routes.test_bank_debits import bank
from tests.serve_app.routes.test_customers import customer_body
from tests.waiting import wait_until

CVC = "9731"
WALLET_TOKEN = "wtok_mastercard"
DECLINED = "4000000000000002"
JAN_31_2027 = 1_801_396_800
DAY = 86_400


def new_pan(prefix: str, length: int = 16) -> str:
    """A Luhn-valid card number with `prefix`, random otherwise: real-looking, and used
    nowhere but in this run."""
    body = prefix + "".join(random.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


class Recorder:
    """The API client of the scan: every answer it gets is kept (with where it came from), to
    be scanned for what it must never echo."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.key = key
        self.answers: list[tuple[str, str]] = []

    def _keep(self, response: httpx.Response) -> httpx.Response:
        where = f"answer {response.request.method} {response.request.url.path}"
        self.answers.append((f"{where} {response.status_code}", response.text))
        self.answers.append((f"{where} headers", str(dict(response.headers))))
        return response

    async def post(self, path: str, body: Any, status: int | None = 200) -> dict[str, Any]:
        response = await self.http.post(
            path,
            json=body,
            headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": str(uuid.uuid4())},
        )
        if status is not None:
            assert response.status_code == status, response.text
        return self._keep(response).json()  # type: ignore[no-any-return]

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(
            path, params=params, headers={"Authorization": f"Bearer {self.key}"}
        )
        assert response.status_code == 200, response.text
        return self._keep(response).json()  # type: ignore[no-any-return]


def _card(number: str, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "card",
        "number": number,
        "exp_month": 11,
        "exp_year": 2033,
        "cvc": CVC,
        **overrides,
    }


def _pay(amount: int, source: dict[str, Any], customer: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"amount": amount, "currency": "USD", "payment_method": source}
    if customer is None:
        body["customer"] = {"email": f"leak-{uuid.uuid4().hex[:8]}@example.com"}
    else:
        body["customer_id"] = customer
    return body


@pytest.fixture
async def leak_receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    async with serving(recv.handle) as url:
        recv.base_url = url
        yield recv


async def _drive(api: Recorder, receiver: Receiver, scanner: Scanner) -> list[str]:
    """Every payment flow once; returns the ids of the payments it made."""
    endpoint = (
        await api.post(
            "/api/webhooks/endpoints",
            {"url": f"{receiver.base_url}/leaks", "enabled_events": ["*"]},
        )
    )["data"]
    # Its one legitimate appearance is the answer that created it, which is not kept.
    api.answers.pop()
    api.answers.pop()
    scanner.secrets.add(endpoint["secret"])
    pan = {name: new_pan(prefix) for name, prefix in [
        ("purchase", "4539"), ("capture", "5191"), ("void", "4716"),
        ("refund", "2221"), ("saved", "4556"), ("subscription", "5425"), ("typo", "4929"),
    ]}  # fmt: skip
    scanner.pans |= set(pan.values())
    payments = []

    bought = (await api.post("/api/payments/purchase", _pay(1250, _card(pan["purchase"]))))["data"]
    customer = bought["customer_id"]
    payments.append(bought["id"])
    held = (await api.post("/api/payments/authorize", _pay(900, _card(pan["capture"]))))["data"]
    await api.post("/api/payments/capture", {"payment_id": held["id"], "amount": 700})
    held_too = (await api.post("/api/payments/authorize", _pay(400, _card(pan["void"]))))["data"]
    await api.post("/api/payments/void", {"payment_id": held_too["id"]})
    paid = (await api.post("/api/payments/purchase", _pay(2000, _card(pan["refund"]))))["data"]
    await api.post("/api/payments/refund", {"payment_id": paid["id"], "amount": 500})
    payments += [held["id"], held_too["id"], paid["id"]]

    # A debit from an account number made for this run (the sandbox settles any account but
    # its documented failing ones), and a wallet payment with the sandbox's approving token.
    account = "0007" + "".join(random.choice("0123456789") for _ in range(10))
    scanner.secrets |= {account, WALLET_TOKEN}
    debit = (
        await api.post(
            "/api/payments/purchase", _pay(1100, bank(account_number=account)), status=202
        )
    )["data"]
    wallet = {"type": "wallet", "wallet": "apple_pay", "token": WALLET_TOKEN}
    by_wallet = (await api.post("/api/payments/purchase", _pay(800, wallet)))["data"]
    payments += [debit["id"], by_wallet["id"]]

    declined = await api.post("/api/payments/purchase", _pay(300, _card(DECLINED)), status=402)
    assert declined["error"]["decline_code"] == "generic_decline"
    # Bad input with a card in it: every error must name the field, never echo the number.
    typo = pan["typo"][:-1] + str((int(pan["typo"][-1]) + 1) % 10)
    scanner.pans.add(typo)  # a mistyped card number is still a card number
    for bad in (
        _card(typo),
        _card(pan["purchase"], exp_month=13),
        _card(pan["purchase"], cvc="97310"),
        _card(pan["purchase"], exp_year=2001),
        {**_card(pan["purchase"]), "pin": "1234"},
    ):
        await api.post("/api/payments/purchase", _pay(100, bad), status=400)
    unknown_field = {"payment_id": paid["id"], "number": pan["purchase"]}
    await api.post("/api/payments/capture", unknown_field, status=400)

    saved = await api.post(
        "/api/payment-methods",
        {**_card(pan["saved"]), "customer_id": customer, "holder_name": "Leak Scan"},
    )
    from_saved = await api.post(
        "/api/payments/purchase", _pay(1500, {"id": saved["data"]["id"]}, customer)
    )
    payments.append(from_saved["data"]["id"])

    clock = (await api.post("/api/test-clocks", {"frozen_time": JAN_31_2027}, status=201))["data"]
    subscriber = (
        await api.post("/api/database/customers", customer_body(test_clock=clock["id"]), status=201)
    )["data"]
    plan = (
        await api.post(
            "/api/plans", {"amount": 1999, "currency": "USD", "interval": "month"}, status=201
        )
    )["data"]
    await api.post(
        "/api/subscriptions",
        {
            "customer_id": subscriber["id"],
            "plan_id": plan["id"],
            "payment_method": _card(pan["subscription"]),
        },
        status=201,
    )
    await api.post(
        f"/api/test-clocks/{clock['id']}/advance", {"frozen_time": JAN_31_2027 + 31 * DAY}
    )

    async def renewed() -> bool:
        found = await api.get(f"/api/test-clocks/{clock['id']}")
        return bool(found["data"]["status"] == "ready")

    await wait_until(renewed, timeout_s=60, what="the renewal")
    # The API's own views of what happened: payments, events.
    for payment_id in payments:
        await api.get(f"/api/payments/{payment_id}")
        await api.get(f"/api/database/transactions/{payment_id}")
    await api.get("/api/events", limit=100)
    return payments


async def test_no_card_number_cvc_or_secret_leaks_anywhere(
    http: httpx.AsyncClient,
    keys: ApiKeyService,
    leak_receiver: Receiver,
    db: asyncpg.Pool,
    ray_nodes: Cluster,
    infra: dict[str, str],
) -> None:
    _, key = await keys.create(
        name="leak scan", scopes=frozenset({Scope.ADMIN}), rate_limit=UNLIMITED
    )
    scanner = Scanner(cvcs={CVC}, secrets={key})
    api = Recorder(http, key)
    payments = await _drive(api, leak_receiver, scanner)

    events = await db.fetch(
        "SELECT id::text FROM events WHERE object_id = ANY($1::uuid[])", payments
    )
    assert len(events) >= len(payments)

    def delivered() -> bool:
        got = {r.headers.get("webhook-id") for r in leak_receiver.at("/leaks")}
        return {e["id"] for e in events} <= got

    await until(delivered, "every payment event delivered to the receiver")

    # What was scanned showed the cards as it may (last4), so the answers are the real ones.
    assert any(pan[-4:] in text for pan in scanner.pans for _, text in api.answers)
    findings: list[Finding] = []
    findings += scanner.scan_all(api.answers)
    findings += scanner.scan_all(
        (f"webhook {r.headers.get('webhook-id')}", f"{r.headers} {r.body.decode('latin-1')}")
        for r in leak_receiver.got
    )
    findings += await scanner.scan_database(db)
    redis = Redis.from_url(infra["redis_url"])
    try:
        findings += await scanner.scan_redis(redis)
        # The session traces every process into the in-memory span store in Redis
        # (tests/conftest.py): the spans of this run were among the values just scanned.
        assert [k async for k in redis.scan_iter(match="paygrid:trace:spans:*", count=1000)]
    finally:
        await redis.aclose()
    logs = session_logs(ray_nodes)
    workers = await asyncio.to_thread(lambda: list(logs.glob("worker-*.err")))
    assert workers, "Ray's worker logs (API replicas, actors) are among those scanned"
    findings += await asyncio.to_thread(scanner.scan_files, logs, numbers_not_data=RAY_CORE_LOGS)
    # The embedded servers' logs (PostgreSQL's would show a failing row's values).
    findings += await asyncio.to_thread(scanner.scan_files, Path(infra["data_dir"]), logs_only=True)
    assert not findings, "leaked:\n" + "\n".join(map(str, findings[:50]))
