"""A local fake of Authorize.Net's JSON API (aiohttp, 127.0.0.1, a random port), for the adapter's
tests and for benchmarks (`latency_s`).

It answers as the sandbox does (developer.authorize.net's testing guide): the test card numbers
approve; ZIP 46282 declines (response code 2, reason 2); the error-generation card 4222222222222
answers with the response reason code given as the amount's whole dollars (2 to 4 declined, others
errors); card code 901 fails the card code check (declined, reason 65, as with the card code
filter on); an expired card is refused (reason 8) and a number failing the Luhn check too
(reason 6). Amounts above `review_over` are held for review (responseCode 4, the fraud filter's
"authorize and hold"), and `updateHeldTransactionRequest` approves or declines them.

Run alone (`python -m tests.engine.gateways.authorizenet_fake --latency-ms 300`) it serves on
127.0.0.1 until stopped and prints its URL first: the benchmark's gateway process.

Beyond the sandbox: `latency_s` delays every answer after the request took effect,
`drop_next` answers that many requests by closing the connection after they took effect,
`error_next` answers the next request with that top-level error code (E00001: the gateway's
own unexpected error) without acting, wrong
credentials get E00007, elements out of schema order get E00003, and `duplicateWindow` (120 s
unless sent) refuses a repeat of the same card, amount and invoice number (reason 11) naming
the original. `charges(reference)` counts the authorizations and purchases that moved or held
money under a reference's invoice number, `captures(trans_id)` and `voids(trans_id)` the
captures and voids that took effect on an authorization; answers start with a UTF-8
byte-order mark like the real ones. The fake keeps no card number, only the last four digits
and a hash.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from aiohttp import web
from pydantic import SecretStr

from engine.cards import luhn_valid
from engine.gateways.authorizenet.settings import AuthorizeNetSettings
from engine.gateways.authorizenet.wire import short_reference

Json = dict[str, Any]

BOM = "\ufeff"
TEST_CARDS = {
    "370000000000002": "AmericanExpress",
    "6011000000000012": "Discover",
    "3088000000000017": "JCB",
    "38000000000006": "DinersClub",
    "4007000000027": "Visa",
    "4012888818888": "Visa",
    "4111111111111111": "Visa",
    "5424000000000015": "MasterCard",
    "2223000010309703": "MasterCard",
    "2223000010309711": "MasterCard",
}
ERROR_CARD = "4222222222222"
DECLINING_ZIP = "46282"
FAILING_CARD_CODE = "901"
DEFAULT_DUPLICATE_WINDOW_S = 120
REASONS = {
    1: "This transaction has been approved.",
    2: "This transaction has been declined.",
    3: "This transaction has been declined.",
    4: "This transaction has been declined.",
    6: "The credit card number is invalid.",
    8: "The credit card has expired.",
    11: "A duplicate transaction has been submitted.",
    16: "The transaction cannot be found.",
    27: "The transaction has been declined because of an AVS mismatch.",
    47: "The amount requested for settlement cannot be greater than the original amount.",
    54: "The referenced transaction does not meet the criteria for issuing a credit.",
    65: "This transaction has been declined.",
    252: "Your order has been received. Thank you for your business!",
    310: "This transaction has already been voided.",
    311: "This transaction has already been captured.",
}

# The schema's sequences (AnetApiSchema.xsd) for the elements the adapter sends.
ORDER = {
    "request": ["merchantAuthentication", "clientId", "refId"],
    "merchantAuthentication": ["name", "transactionKey"],
    "createTransactionRequest": ["transactionRequest"],
    "getTransactionDetailsRequest": ["transId"],
    "getUnsettledTransactionListRequest": ["status", "sorting", "paging"],
    "getSettledBatchListRequest": [
        "includeStatistics",
        "firstSettlementDate",
        "lastSettlementDate",
    ],
    "getTransactionListRequest": ["batchId", "sorting", "paging"],
    "updateHeldTransactionRequest": ["heldTransactionRequest"],
    "transactionRequest": [
        "transactionType",
        "amount",
        "currencyCode",
        "payment",
        "profile",
        "solution",
        "callId",
        "terminalNumber",
        "authCode",
        "refTransId",
        "splitTenderId",
        "order",
        "lineItems",
        "tax",
        "duty",
        "shipping",
        "taxExempt",
        "poNumber",
        "customer",
        "billTo",
        "shipTo",
        "customerIP",
        "cardholderAuthentication",
        "retail",
        "employeeId",
        "transactionSettings",
        "userFields",
    ],
    "creditCard": ["cardNumber", "expirationDate", "cardCode"],
    "order": ["invoiceNumber", "description"],
    "setting": ["settingName", "settingValue"],
    "sorting": ["orderBy", "orderDescending"],
    "paging": ["limit", "offset"],
}


class SchemaError(Exception):
    """A request the real API would refuse with E00003."""


@dataclass
class FakeTransaction:
    trans_id: str
    transaction_type: str
    status: str
    response_code: int
    reason_code: int
    amount: Decimal
    invoice_number: str | None
    description: str | None
    last4: str
    card_hash: str
    account_type: str
    ref_trans_id: str | None = None
    auth_code: str = ""
    held: bool = False
    batch_id: str | None = None
    refunded: Decimal = Decimal(0)
    submitted: datetime = field(default_factory=lambda: datetime.now(UTC))
    submitted_mono: float = field(default_factory=time.monotonic)


class FakeAuthorizeNet:
    """The fake server; `url` once started."""

    def __init__(
        self,
        *,
        api_login_id: str = "fake-login",
        transaction_key: str = "fakeTransKey0001",
        latency_s: float = 0.0,
        review_over: Decimal | None = None,
    ) -> None:
        self.api_login_id = api_login_id
        self.transaction_key = transaction_key
        self.latency_s = latency_s
        self.review_over = review_over
        self.drop_next = 0
        self.error_next: str | None = None
        # The latest requests as received (bounded, so a benchmark can run the fake for long).
        self.bodies: deque[bytes] = deque(maxlen=100)
        self.transactions: dict[str, FakeTransaction] = {}
        self.batches: dict[str, datetime] = {}
        self._charges: Counter[str] = Counter()
        self._acted: Counter[tuple[str, str]] = Counter()
        # The latest transaction per duplicate key (type, card, amount, invoice number).
        self._latest: dict[tuple[str, str, Decimal, str | None], FakeTransaction] = {}
        self._ids = itertools.count(60_000_000_001)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/xml/v1/request.api", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/xml/v1/request.api"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def charges(self, reference: UUID) -> int:
        """Authorizations and purchases that moved or held money for `reference`."""
        return self._charges[short_reference(reference)]

    def captures(self, trans_id: str) -> int:
        """Captures that took effect on the authorization `trans_id`."""
        return self._acted["capture", trans_id]

    def voids(self, trans_id: str) -> int:
        """Voids that took effect on the transaction `trans_id`."""
        return self._acted["void", trans_id]

    def settle_batch(self) -> str:
        """The daily settlement, returning its batch id: captured transactions and refunds
        settle, and everything but open authorizations and held transactions moves from the
        unsettled list into the batch."""
        batch_id = str(len(self.batches) + 9_000_001)
        self.batches[batch_id] = datetime.now(UTC)
        for t in self.transactions.values():
            if t.batch_id is not None or t.status in (
                "authorizedPendingCapture",
                "FDSAuthorizedPendingReview",
            ):
                continue
            if t.status == "capturedPendingSettlement":
                t.status = "settledSuccessfully"
            elif t.status == "refundPendingSettlement":
                t.status = "refundSettledSuccessfully"
            t.batch_id = batch_id
        return batch_id

    # The HTTP side.

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append(body)
        if self.error_next is not None:
            answer = _error(self.error_next, "An error occurred during processing.", None)
            self.error_next = None
        else:
            answer = self._answer(json.loads(body))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.drop_next > 0:
            self.drop_next -= 1
            assert request.transport is not None
            request.transport.abort()  # the request took effect; its answer is lost
            return web.Response()
        text = BOM + json.dumps(answer)
        return web.Response(body=text.encode(), content_type="application/json", charset="utf-8")

    def _answer(self, data: Json) -> Json:
        (root, fields), *_ = data.items()
        try:
            check_order(root, fields)
        except SchemaError as exc:
            return _error("E00003", str(exc), fields.get("refId"))
        auth = fields.get("merchantAuthentication") or {}
        if auth != {"name": self.api_login_id, "transactionKey": self.transaction_key}:
            return _error(
                "E00007",
                "User authentication failed due to invalid authentication values.",
                fields.get("refId"),
            )
        if root == "createTransactionRequest":
            return self._create(fields["transactionRequest"], fields.get("refId"))
        if root == "getTransactionDetailsRequest":
            return self._details(fields["transId"])
        if root == "getUnsettledTransactionListRequest":
            listed = [t for t in self.transactions.values() if t.batch_id is None]
            return _listing(listed, fields.get("paging") or {})
        if root == "getSettledBatchListRequest":
            return self._batches(fields)
        if root == "getTransactionListRequest":
            batch = [t for t in self.transactions.values() if t.batch_id == fields["batchId"]]
            return _listing(batch, fields.get("paging") or {})
        if root == "updateHeldTransactionRequest":
            return self._update_held(fields["heldTransactionRequest"])
        return _error("E00003", f"The element '{root}' is not supported here.", None)

    # createTransactionRequest.

    def _create(self, request: Json, ref_id: str | None) -> Json:
        kind = request["transactionType"]
        if kind in ("authCaptureTransaction", "authOnlyTransaction"):
            return self._charge(request, ref_id)
        original = self.transactions.get(str(request.get("refTransId")))
        if original is None:
            return _refused(3, 16, None, ref_id)
        if kind == "priorAuthCaptureTransaction":
            return self._capture(request, original, ref_id)
        if kind == "voidTransaction":
            return self._void(original, ref_id)
        if kind == "refundTransaction":
            return self._refund(request, original, ref_id)
        return _error("E00003", f"transactionType {kind} is not supported here.", ref_id)

    def _charge(self, request: Json, ref_id: str | None) -> Json:
        payment = request.get("payment") or {}
        if "creditCard" not in payment:
            return _error("E00114", "Invalid OTS Token.", ref_id)
        card = payment["creditCard"]
        number = str(card["cardNumber"])
        amount = Decimal(str(request["amount"]))
        order = request.get("order") or {}
        duplicate = self._duplicate(request, number, amount, order)
        if duplicate is not None:
            return _refused(3, 11, duplicate, ref_id)
        response_code, reason = self._card_outcome(request, number, card, amount)
        held = response_code == 1 and self.review_over is not None and amount > self.review_over
        capture = request["transactionType"] == "authCaptureTransaction"
        status = {
            2: "declined",
            3: "generalError",
        }.get(response_code, "capturedPendingSettlement" if capture else "authorizedPendingCapture")
        if held:
            response_code, reason, status = 4, 252, "FDSAuthorizedPendingReview"
        t = self._record(
            request["transactionType"],
            status,
            response_code,
            reason,
            amount,
            order,
            number,
            held=held,
        )
        if response_code in (1, 4) and amount > 0:
            self._charges[t.invoice_number or ""] += 1
        return _transaction_answer(t, ref_id)

    def _card_outcome(
        self, request: Json, number: str, card: Json, amount: Decimal
    ) -> tuple[int, int]:
        if number == ERROR_CARD:
            reason = int(amount)
            return (2 if reason in (2, 3, 4) else 3), reason
        if not luhn_valid(number):
            return 3, 6
        year, month = (int(part) for part in str(card["expirationDate"]).split("-"))
        today = datetime.now(UTC)
        if (year, month) < (today.year, today.month):
            return 3, 8
        if ((request.get("billTo") or {}).get("zip")) == DECLINING_ZIP:
            return 2, 2
        if card.get("cardCode") == FAILING_CARD_CODE:
            return 2, 65
        return 1, 1

    def _capture(self, request: Json, original: FakeTransaction, ref_id: str | None) -> Json:
        if original.status in ("capturedPendingSettlement", "settledSuccessfully"):
            return _refused(3, 311, original, ref_id)
        if original.status != "authorizedPendingCapture":
            return _refused(3, 16, original, ref_id)
        amount = Decimal(str(request["amount"]))
        if amount > original.amount:
            return _refused(3, 47, original, ref_id)
        original.status = "capturedPendingSettlement"
        original.amount = amount
        self._acted["capture", original.trans_id] += 1
        return _transaction_answer(original, ref_id, ref_trans_id=original.trans_id)

    def _void(self, original: FakeTransaction, ref_id: str | None) -> Json:
        if original.status == "voided":
            return _refused(3, 310, original, ref_id)
        if original.batch_id is not None:
            return _refused(3, 16, original, ref_id)
        original.status = "voided"
        self._acted["void", original.trans_id] += 1
        return _transaction_answer(original, ref_id, ref_trans_id=original.trans_id)

    def _refund(self, request: Json, original: FakeTransaction, ref_id: str | None) -> Json:
        card = request["payment"]["creditCard"]
        amount = Decimal(str(request["amount"]))
        order = request.get("order") or {}
        if (
            original.status != "settledSuccessfully"
            or card != {"cardNumber": f"XXXX{original.last4}", "expirationDate": "XXXX"}
            or amount > original.amount - original.refunded
        ):
            return _refused(3, 54, None, ref_id)
        duplicate = self._duplicate(request, original.trans_id, amount, order)
        if duplicate is not None:
            return _refused(3, 11, duplicate, ref_id)
        original.refunded += amount
        t = self._record(
            "refundTransaction",
            "refundPendingSettlement",
            1,
            1,
            amount,
            order,
            original.trans_id,
            last4=original.last4,
            ref_trans_id=original.trans_id,
        )
        return _transaction_answer(t, ref_id)

    def _duplicate(
        self, request: Json, card: str, amount: Decimal, order: Json
    ) -> FakeTransaction | None:
        window = DEFAULT_DUPLICATE_WINDOW_S
        settings = (request.get("transactionSettings") or {}).get("setting") or []
        for setting in settings if isinstance(settings, list) else [settings]:
            if setting.get("settingName") == "duplicateWindow":
                window = int(setting["settingValue"])
        latest = self._latest.get(
            (request["transactionType"], _hash(card), amount, order.get("invoiceNumber"))
        )
        if latest is None or latest.submitted_mono < time.monotonic() - window:
            return None
        return latest

    def _record(
        self,
        kind: str,
        status: str,
        response_code: int,
        reason: int,
        amount: Decimal,
        order: Json,
        card: str,
        *,
        held: bool = False,
        last4: str | None = None,
        ref_trans_id: str | None = None,
    ) -> FakeTransaction:
        t = FakeTransaction(
            trans_id=str(next(self._ids)),
            transaction_type=kind,
            status=status,
            response_code=response_code,
            reason_code=reason,
            amount=amount,
            invoice_number=order.get("invoiceNumber"),
            description=order.get("description"),
            last4=last4 or card[-4:],
            card_hash=_hash(card),
            account_type=TEST_CARDS.get(card, "Visa"),
            ref_trans_id=ref_trans_id,
            auth_code="A1B2C3" if response_code in (1, 4) else "",
            held=held,
        )
        self.transactions[t.trans_id] = t
        self._latest[(kind, t.card_hash, amount, t.invoice_number)] = t
        return t

    # Reporting and review.

    def _details(self, trans_id: str) -> Json:
        t = self.transactions.get(str(trans_id))
        if t is None:
            return _error("E00040", "The record cannot be found.", None)
        details: Json = {
            "transId": t.trans_id,
            **({"refTransId": t.ref_trans_id} if t.ref_trans_id else {}),
            "submitTimeUTC": t.submitted.isoformat(),
            "submitTimeLocal": t.submitted.isoformat(),
            "transactionType": t.transaction_type,
            "transactionStatus": t.status,
            "responseCode": t.response_code,
            "responseReasonCode": t.reason_code,
            "responseReasonDescription": REASONS.get(t.reason_code, "Error."),
            "authCode": t.auth_code,
            **({"FDSFilterAction": "authAndHold"} if t.held else {}),
            "order": {"invoiceNumber": t.invoice_number, "description": t.description},
            "authAmount": float(t.amount),
            "settleAmount": float(t.amount),
            "payment": {
                "creditCard": {
                    "cardNumber": f"XXXX{t.last4}",
                    "expirationDate": "XXXX",
                    "cardType": t.account_type,
                }
            },
        }
        return {"transaction": details, "messages": _ok()}

    def _batches(self, fields: Json) -> Json:
        first = datetime.fromisoformat(fields["firstSettlementDate"])
        last = datetime.fromisoformat(fields["lastSettlementDate"])
        batches = [
            {
                "batchId": batch_id,
                "settlementTimeUTC": settled.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "settlementTimeLocal": settled.strftime("%Y-%m-%dT%H:%M:%S"),
                "settlementState": "settledSuccessfully",
                "paymentMethod": "creditCard",
            }
            for batch_id, settled in self.batches.items()
            if first <= settled <= last + timedelta(seconds=1)
        ]
        answer: Json = {"messages": _ok()}
        return {"batchList": batches, **answer} if batches else answer

    def _update_held(self, held: Json) -> Json:
        t = self.transactions.get(str(held["refTransId"]))
        if t is None or t.status != "FDSAuthorizedPendingReview":
            return _refused(3, 16, None, None)
        if held["action"] == "approve":
            capture = t.transaction_type == "authCaptureTransaction"
            t.status = "capturedPendingSettlement" if capture else "authorizedPendingCapture"
        else:
            t.status = "voided"
        return _transaction_answer(t, None)


@asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[FakeAuthorizeNet]:
    """A fake started with `options` (those of `FakeAuthorizeNet`), stopped after."""
    server = FakeAuthorizeNet(**options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def adapter_settings(fake: FakeAuthorizeNet, **overrides: Any) -> AuthorizeNetSettings:
    """The adapter's settings pointing at `fake` with its credentials, a 5 s timeout unless
    `overrides` say otherwise."""
    fields: dict[str, Any] = {
        "api_login_id": fake.api_login_id,
        "transaction_key": SecretStr(fake.transaction_key),
        "endpoint_url": fake.url,
        "timeout_s": 5.0,
    }
    return AuthorizeNetSettings(**(fields | overrides))


def check_order(root: str, fields: Json) -> None:
    """Raise `SchemaError` if an element's children are not in the schema's order."""
    _check_sequence(root, list(fields), ORDER["request"] + ORDER.get(root, []))
    for name, value in fields.items():
        _check_nested(name, value)


def _check_nested(name: str, value: object) -> None:
    if isinstance(value, list):
        for item in value:
            _check_nested(name, item)
        return
    if not isinstance(value, dict):
        return
    if name in ORDER:
        _check_sequence(name, list(value), ORDER[name])
    for child, child_value in value.items():
        _check_nested(child, child_value)


def _check_sequence(name: str, keys: list[str], sequence: list[str]) -> None:
    # Only the elements the lists above name are checked; the adapter sends no others.
    known = [k for k in keys if k in sequence]
    for earlier, later in itertools.pairwise(known):
        if sequence.index(later) < sequence.index(earlier):
            raise SchemaError(f"The element '{name}' has invalid child element '{later}'.")


def _listing(transactions: list[FakeTransaction], paging: Json) -> Json:
    """A transaction list's page: newest first, `limit` per page, `offset` the page number."""
    limit, page = int(paging.get("limit", 1000)), int(paging.get("offset", 1))
    shown = list(reversed(transactions))[(page - 1) * limit : page * limit]
    summaries = [
        {
            "transId": t.trans_id,
            "submitTimeUTC": t.submitted.isoformat(),
            "submitTimeLocal": t.submitted.isoformat(),
            "transactionStatus": t.status,
            "invoiceNumber": t.invoice_number,
            "accountType": t.account_type,
            "accountNumber": f"XXXX{t.last4}",
            "settleAmount": float(t.amount),
            "marketType": "eCommerce",
            "product": "Card Not Present",
        }
        for t in shown
    ]
    answer: Json = {"messages": _ok()}
    if summaries:
        answer = {"transactions": summaries, "totalNumInResultSet": len(transactions), **answer}
    return answer


def _hash(card: str) -> str:
    return hashlib.sha256(card.encode()).hexdigest()


def _ok() -> Json:
    return {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]}


def _error(code: str, text: str, ref_id: str | None) -> Json:
    answer: Json = {}
    if ref_id is not None:
        answer["refId"] = ref_id
    answer["messages"] = {"resultCode": "Error", "message": [{"code": code, "text": text}]}
    return answer


def _transaction_answer(t: FakeTransaction, ref_id: str | None, **extra: str) -> Json:
    response: Json = {
        "responseCode": str(t.response_code),
        "authCode": t.auth_code,
        "avsResultCode": "Y",
        "cvvResultCode": "M" if t.response_code == 1 else "",
        "cavvResultCode": "",
        "transId": t.trans_id,
        "refTransID": extra.get("ref_trans_id", t.ref_trans_id or ""),
        "transHash": "",
        "testRequest": "0",
        "accountNumber": f"XXXX{t.last4}",
        "accountType": t.account_type,
    }
    if t.response_code in (1, 4):
        text = REASONS[1] if t.response_code == 1 else REASONS[t.reason_code]
        response["messages"] = [{"code": str(t.reason_code), "description": text}]
        top = {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]}
    else:
        response["errors"] = [
            {"errorCode": str(t.reason_code), "errorText": REASONS.get(t.reason_code, "Error.")}
        ]
        top = {
            "resultCode": "Error",
            "message": [{"code": "E00027", "text": "The transaction was unsuccessful."}],
        }
    response["transHashSha2"] = ""
    answer: Json = {"transactionResponse": response}
    if ref_id is not None:
        answer["refId"] = ref_id
    answer["messages"] = top
    return answer


def _refused(
    response_code: int, reason: int, original: FakeTransaction | None, ref_id: str | None
) -> Json:
    """A refusal; a duplicate names its original's transId and authCode, as the API does."""
    response: Json = {
        "responseCode": str(response_code),
        "authCode": original.auth_code if original is not None and reason == 11 else "",
        "avsResultCode": "P",
        "cvvResultCode": "",
        "cavvResultCode": "",
        "transId": original.trans_id if original is not None else "0",
        "refTransID": "",
        "transHash": "",
        "testRequest": "0",
        "accountNumber": f"XXXX{original.last4}" if original is not None else "",
        "accountType": original.account_type if original is not None else "",
        "errors": [{"errorCode": str(reason), "errorText": REASONS.get(reason, "Error.")}],
        "transHashSha2": "",
    }
    answer: Json = {"transactionResponse": response}
    if ref_id is not None:
        answer["refId"] = ref_id
    answer["messages"] = {
        "resultCode": "Error",
        "message": [{"code": "E00027", "text": "The transaction was unsuccessful."}],
    }
    return answer


async def _serve(latency_s: float) -> None:
    server = FakeAuthorizeNet(latency_s=latency_s)
    url = await server.start()
    # The parent reads this line to know where the fake listens (and that it does).
    print(url, flush=True)  # noqa: T201
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    """Serve the fake on 127.0.0.1 until the process is stopped."""
    parser = argparse.ArgumentParser(description="A local fake of Authorize.Net's JSON API.")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay of every answer")
    args = parser.parse_args()
    asyncio.run(_serve(args.latency_ms / 1000))


if __name__ == "__main__":
    main()
