"""Authorize.Net's JSON wire format: requests built in schema order, answers read into results.

The API is its XML schema (AnetApiSchema.xsd) spoken as JSON, and like the XML it is
order-sensitive: every object here is built with its keys in the schema's sequence (Python
dicts keep insertion order, `json.dumps` writes it). Answers start with a UTF-8 byte-order
mark. Amounts are decimal strings rendered from minor units with the currency's exponent, and
decimals in answers are kept as their text, never parsed as floats.

Our reference travels three ways, because the API has no lookup by merchant id: `refId` (20
characters at most, echoed in the answer), `order.invoiceNumber` (20 characters, listed by the
transaction-list calls) — both the reference's first 20 hex digits — and
`order.description`, which carries the whole reference and confirms a match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from engine.cards import CardDetails, CardSummary, CardToken
from engine.gateways.base import ChargeRequest, GatewayResult, OperationRequest, VerifyRequest
from engine.money import Money, exponent

Json = dict[str, Any]

# Accept.js / in-app payment nonces: what a token stands for when Authorize.Net holds the card.
OPAQUE_DESCRIPTOR = "COMMON.ACCEPT.INAPP.PAYMENT"
# Transactions per page of a list (the API's largest page).
LIST_PAGE = 1000

APPROVED, DECLINED, ERROR, HELD = "1", "2", "3", "4"
DUPLICATE = "11"
ALREADY_VOIDED, ALREADY_CAPTURED = "310", "311"

# Response reason codes → the decline codes paygrid answers with (others: authorizenet_<code>).
DECLINE_CODES: dict[str, str] = {
    "2": "generic_decline",
    "3": "generic_decline",
    "4": "pickup_card",
    "5": "invalid_amount",
    "6": "incorrect_number",
    "7": "invalid_expiry",
    "8": "expired_card",
    "11": "duplicate_transaction",
    "16": "transaction_not_found",
    "27": "address_mismatch",
    "37": "incorrect_number",
    "44": "incorrect_cvc",
    "45": "incorrect_cvc",
    "47": "amount_too_large",
    "54": "not_settled",
    "65": "incorrect_cvc",
    "78": "incorrect_cvc",
}

# transactionStatus values (transactionStatusEnum) by what they say of the call that made them.
# A transaction approved when made (responseCode 1) stays approved whatever came after (a void,
# an expiry, a settlement, a return) unless its status says the call itself failed.
STATUS_FAILED = frozenset({"declined", "generalError", "communicationError", "failedReview"})
# A held transaction (responseCode 4) that its review let through.
STATUS_RELEASED = frozenset(
    {
        "approvedReview",
        "authorizedPendingCapture",
        "capturedPendingSettlement",
        "settledSuccessfully",
        "pendingFinalSettlement",
        "pendingSettlement",
        "updatingSettlement",
        "refundPendingSettlement",
        "refundSettledSuccessfully",
        "returnedItem",
        "chargeback",
        "chargebackReversal",
    }
)
STATUS_REVIEW = frozenset({"FDSPendingReview", "FDSAuthorizedPendingReview", "underReview"})
# What an authorization shows once it has been captured.
STATUS_CAPTURED = frozenset(
    {
        "capturedPendingSettlement",
        "settledSuccessfully",
        "pendingFinalSettlement",
        "pendingSettlement",
        "updatingSettlement",
        "returnedItem",
        "chargeback",
        "chargebackReversal",
    }
)


def short_reference(reference: UUID) -> str:
    """The 20 characters of `reference` that fit `refId` and `invoiceNumber`."""
    return reference.hex[:20]


def describe(reference: UUID) -> str:
    """The order description that names the whole reference."""
    return f"paygrid {reference}"


def amount_text(money: Money) -> str:
    """Minor units as the decimal string the API takes: 1234 USD → "12.34", JPY → "1234",
    KWD → "1.234". Exact: integer arithmetic only."""
    places = exponent(money.currency)
    if money.amount < 0:
        raise ValueError("Authorize.Net amounts are never negative")
    if not places:
        return str(money.amount)
    whole, fraction = divmod(money.amount, 10**places)
    return f"{whole}.{fraction:0{places}d}"


def authentication(api_login_id: str, transaction_key: str) -> Json:
    """merchantAuthenticationType: name, then transactionKey."""
    return {"name": api_login_id, "transactionKey": transaction_key}


def _envelope(root: str, auth: Json, ref_id: str | None, body: Json) -> Json:
    # ANetApiRequest: merchantAuthentication, clientId, refId; then the request's own fields.
    request: Json = {"merchantAuthentication": auth}
    if ref_id is not None:
        request["refId"] = ref_id
    request.update(body)
    return {root: request}


def _create(auth: Json, reference: UUID, body: Json) -> Json:
    """createTransactionRequest: refId, then the transactionRequest."""
    return _envelope(
        "createTransactionRequest", auth, short_reference(reference), {"transactionRequest": body}
    )


def _newest_first(page: int) -> Json:
    """A list's sorting and paging: newest first, `LIST_PAGE` per page, 1-based page numbers
    (the API's `offset` counts pages)."""
    return {
        "sorting": {"orderBy": "submitTimeUTC", "orderDescending": "true"},
        "paging": {"limit": str(LIST_PAGE), "offset": str(page)},
    }


def _settings(duplicate_window_s: int) -> Json:
    return {"setting": {"settingName": "duplicateWindow", "settingValue": str(duplicate_window_s)}}


def _order(reference: UUID) -> Json:
    return {"invoiceNumber": short_reference(reference), "description": describe(reference)}


def _payment(source: CardDetails | CardToken) -> Json:
    if isinstance(source, CardToken):
        return {"opaqueData": {"dataDescriptor": OPAQUE_DESCRIPTOR, "dataValue": source.token}}
    card: Json = {
        "cardNumber": source.number,
        "expirationDate": f"{source.exp_year:04d}-{source.exp_month:02d}",
    }
    if source.cvc:
        card["cardCode"] = source.cvc
    return {"creditCard": card}


def charge_request(auth: Json, request: ChargeRequest, *, duplicate_window_s: int) -> Json:
    """authCaptureTransaction (purchase) or authOnlyTransaction (authorize)."""
    kind = "authCaptureTransaction" if request.capture else "authOnlyTransaction"
    # transactionRequestType's sequence: transactionType, amount, currencyCode, payment, …,
    # order, …, transactionSettings.
    body: Json = {
        "transactionType": kind,
        "amount": amount_text(request.money),
        "currencyCode": request.money.currency,
        "payment": _payment(request.source),
        "order": _order(request.reference),
        "transactionSettings": _settings(duplicate_window_s),
    }
    return _create(auth, request.reference, body)


def verify_request(auth: Json, request: VerifyRequest, *, duplicate_window_s: int) -> Json:
    """A zero-amount authOnlyTransaction: the issuer checks the card and nothing is held."""
    body: Json = {
        "transactionType": "authOnlyTransaction",
        "amount": "0.00",
        "payment": _payment(request.card),
        "order": _order(request.reference),
        "transactionSettings": _settings(duplicate_window_s),
    }
    return _create(auth, request.reference, body)


def capture_request(auth: Json, request: OperationRequest) -> Json:
    """priorAuthCaptureTransaction of (part of) an authorization."""
    body: Json = {
        "transactionType": "priorAuthCaptureTransaction",
        "amount": amount_text(request.money),
        "refTransId": request.gateway_transaction_id,
    }
    return _create(auth, request.reference, body)


def void_request(auth: Json, request: OperationRequest) -> Json:
    """voidTransaction of an unsettled transaction."""
    body: Json = {
        "transactionType": "voidTransaction",
        "refTransId": request.gateway_transaction_id,
    }
    return _create(auth, request.reference, body)


def refund_request(
    auth: Json, request: OperationRequest, *, last4: str, duplicate_window_s: int
) -> Json:
    """refundTransaction of a settled transaction: the card is named by its last four digits
    and a masked expiry, as the API requires of refunds."""
    body: Json = {
        "transactionType": "refundTransaction",
        "amount": amount_text(request.money),
        "payment": {"creditCard": {"cardNumber": f"XXXX{last4}", "expirationDate": "XXXX"}},
        "refTransId": request.gateway_transaction_id,
        "order": _order(request.reference),
        "transactionSettings": _settings(duplicate_window_s),
    }
    return _create(auth, request.reference, body)


def details_request(auth: Json, trans_id: str) -> Json:
    """getTransactionDetailsRequest: one transaction by its transId."""
    return _envelope("getTransactionDetailsRequest", auth, None, {"transId": trans_id})


def unsettled_request(auth: Json, page: int) -> Json:
    """getUnsettledTransactionListRequest: one page of the transactions not yet settled."""
    return _envelope("getUnsettledTransactionListRequest", auth, None, _newest_first(page))


def settled_batches_request(auth: Json, first: datetime, last: datetime) -> Json:
    """getSettledBatchListRequest: the batches settled between `first` and `last`."""
    return _envelope(
        "getSettledBatchListRequest",
        auth,
        None,
        {"firstSettlementDate": _utc(first), "lastSettlementDate": _utc(last)},
    )


def batch_request(auth: Json, batch_id: str, page: int) -> Json:
    """getTransactionListRequest: one settled batch's transactions, newest first."""
    return _envelope(
        "getTransactionListRequest", auth, None, {"batchId": batch_id, **_newest_first(page)}
    )


def batch_ids(answer: Json) -> list[str]:
    """The batches in a settled-batch list, newest first."""
    batches = _items(answer.get("batchList"), "batch")
    ordered = sorted(batches, key=lambda b: str(b.get("settlementTimeUTC", "")), reverse=True)
    return [str(b["batchId"]) for b in ordered]


def encode(payload: Json) -> bytes:
    """The request body: UTF-8 JSON in the order the payload was built."""
    return json.dumps(payload, separators=(",", ":")).encode()


def decode(body: bytes) -> Json:
    """An answer's JSON without its byte-order mark; decimals stay text. Raises ValueError."""
    data = json.loads(body.decode("utf-8-sig"), parse_float=str)
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    return data


@dataclass(frozen=True, slots=True)
class ApiMessage:
    """The answer's top-level `messages`: resultCode Ok/Error and its first message."""

    ok: bool
    code: str
    text: str


def api_message(answer: Json) -> ApiMessage:
    messages = answer.get("messages") or {}
    first = _first(messages.get("message"))
    return ApiMessage(
        messages.get("resultCode") == "Ok", str(first.get("code", "")), str(first.get("text", ""))
    )


@dataclass(frozen=True, slots=True)
class TransactionAnswer:
    """createTransactionResponse's transactionResponse, as far as paygrid reads it."""

    response_code: str
    trans_id: str | None
    reason_code: str
    text: str
    ref_id: str | None

    def result(self, card: CardSummary | None) -> GatewayResult:
        """1 approved, 2 declined, 3 error (not approved), 4 held for review (not approved)."""
        if self.response_code == APPROVED:
            return GatewayResult(True, self.trans_id, message=self.text, card=card)
        if self.response_code == HELD:
            return GatewayResult(False, self.trans_id, "held_for_review", self.text, card, True)
        return GatewayResult(False, self.trans_id, decline_code(self.reason_code), self.text, card)


def transaction_answer(answer: Json) -> TransactionAnswer | None:
    """The transaction's answer, or None when the request was refused before any transaction
    (an authentication or schema error: only the top-level messages say why)."""
    response = answer.get("transactionResponse")
    if not isinstance(response, dict) or not response.get("responseCode"):
        return None
    # Approvals and reviews carry `messages` ({code, description}); refusals carry `errors`
    # ({errorCode, errorText}).
    error = _first(response.get("errors"))
    message = _first(response.get("messages"))
    reason = str(error.get("errorCode") or message.get("code") or "")
    text = str(error.get("errorText") or message.get("description") or "")
    trans_id = str(response.get("transId") or "")
    ref_id = answer.get("refId")
    return TransactionAnswer(
        str(response["responseCode"]),
        # "0" is a test-mode transaction, which Authorize.Net does not keep.
        trans_id if trans_id not in ("", "0") else None,
        reason,
        text,
        None if ref_id is None else str(ref_id),
    )


@dataclass(frozen=True, slots=True)
class TransactionDetails:
    """getTransactionDetailsResponse's transaction, as far as paygrid reads it."""

    trans_id: str
    ref_trans_id: str | None
    transaction_type: str
    status: str
    response_code: str
    reason_code: str
    reason_text: str
    invoice_number: str | None
    description: str | None
    card_last4: str | None

    def names(self, reference: UUID) -> bool:
        """Whether this transaction was made for `reference` (its description says so)."""
        return self.description == describe(reference)

    def result(self) -> GatewayResult:
        """What the transaction's current status says of the call that made it."""
        if self.response_code == HELD:
            # Held for review: approved once the review approves it, declined if the review
            # declines or voids it.
            if self.status in STATUS_REVIEW:
                return GatewayResult(
                    False, self.trans_id, "held_for_review", self.reason_text, review=True
                )
            if self.status in STATUS_RELEASED:
                return GatewayResult(True, self.trans_id, message=self.reason_text)
            return GatewayResult(False, self.trans_id, "review_declined", self.reason_text)
        if self.status in STATUS_REVIEW:
            return GatewayResult(
                False, self.trans_id, "held_for_review", self.reason_text, review=True
            )
        if self.response_code == APPROVED and self.status not in STATUS_FAILED:
            return GatewayResult(True, self.trans_id, message=self.reason_text)
        return GatewayResult(False, self.trans_id, decline_code(self.reason_code), self.reason_text)


def transaction_details(answer: Json) -> TransactionDetails | None:
    """The transaction in a details answer, or None when there is none."""
    found = answer.get("transaction")
    if not isinstance(found, dict):
        return None
    order = found.get("order") or {}
    card = (found.get("payment") or {}).get("creditCard") or {}
    number = str(card.get("cardNumber") or "")
    return TransactionDetails(
        trans_id=str(found["transId"]),
        ref_trans_id=_text(found.get("refTransId")),
        transaction_type=str(found.get("transactionType", "")),
        status=str(found.get("transactionStatus", "")),
        response_code=str(found.get("responseCode", "")),
        reason_code=str(found.get("responseReasonCode", "")),
        reason_text=str(found.get("responseReasonDescription", "")),
        invoice_number=_text(order.get("invoiceNumber")),
        description=_text(order.get("description")),
        card_last4=number[-4:] if len(number) >= 4 else None,
    )


def listed(answer: Json, reference: UUID) -> tuple[list[str], int]:
    """The transIds on one page of a transaction list whose invoice number is `reference`'s,
    and how many transactions the page held."""
    transactions = _items(answer.get("transactions"), "transaction")
    invoice = short_reference(reference)
    matches = [str(t["transId"]) for t in transactions if t.get("invoiceNumber") == invoice]
    return matches, len(transactions)


def decline_code(reason_code: str) -> str:
    """Our decline code for an Authorize.Net response reason code."""
    return DECLINE_CODES.get(reason_code, f"authorizenet_{reason_code or 'unknown'}")


def _items(value: object, element: str) -> list[dict[str, Any]]:
    """A JSON list of objects, also when it comes as the XML's wrapper ({element: [...]}) or
    as one lone object."""
    if isinstance(value, dict) and element in value:
        value = value[element]
    if isinstance(value, dict):
        value = [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _first(items: object) -> dict[str, Any]:
    if isinstance(items, list):
        items = items[0] if items else {}
    return items if isinstance(items, dict) else {}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: object) -> str | None:
    return None if value in (None, "") else str(value)
