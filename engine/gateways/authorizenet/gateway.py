"""The Authorize.Net gateway: the `Gateway` protocol over `createTransactionRequest` and the
transaction-reporting calls.

Outcomes: responseCode 1 approves; 2 declines and 3 refuses (both results, not exceptions);
4 holds the transaction for review (`GatewayResult.review`: the payment waits in `processing`
and `lookup` settles it once the review has decided). A request refused before any transaction
was made (bad credentials, a malformed request) raises a non-ambiguous `GatewayError`.

Duplicates: every transaction goes out with `duplicateWindow` and an invoice number of its
own, so a resend of the same reference inside the window is refused as a duplicate (reason 11)
with the original's transId; the adapter answers with the original's outcome instead, and the
card is charged once. A capture of a captured authorization (reason 311) and a void of a voided
one (310) answer as approved, so those two are safe to repeat as well.

Lookup by reference: the API finds a transaction only by its transId. A charge's or refund's
transId is remembered from its answer; when the answer was lost (or this process restarted),
the unsettled transactions and then the last days' settled batches are listed (newest first)
for the reference's invoice number, and each candidate's description is checked for the whole
reference. A capture or void makes no transaction of its own: it changes
the authorization's status, so its lookup reads the authorization it acted on: the one this
process sent it for, or after a restart the one the lookup's `LookupHint` names.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Literal
from uuid import UUID

import aiohttp

from engine.cards import CardDetails, CardSummary
from engine.gateways.authorizenet import wire
from engine.gateways.authorizenet.client import AuthorizeNetClient, open_session
from engine.gateways.authorizenet.settings import AuthorizeNetSettings
from engine.gateways.base import (
    ChargeRequest,
    GatewayError,
    GatewayResult,
    LookupHint,
    OperationRequest,
    VerifyRequest,
)
from engine.test_clocks.clock import WallClock, utc_now

log = logging.getLogger(__name__)

# References whose transaction this process knows; oldest forgotten first. Recovery looks up
# within minutes of a call, long before this many newer calls have been made.
REMEMBERED = 100_000


@dataclass(frozen=True, slots=True)
class _Known:
    """What a reference's call touched: a transaction of its own (charge, refund) or the
    authorization a capture or void acted on."""

    kind: Literal["transaction", "capture", "void"]
    trans_id: str


class AuthorizeNetGateway:
    """Authorize.Net behind the `Gateway` protocol."""

    name = "authorizenet"

    def __init__(
        self,
        settings: AuthorizeNetSettings,
        client: AuthorizeNetClient,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: WallClock = utc_now,
    ) -> None:
        self.lookup_grace_s = settings.lookup_grace_s
        self._client = client
        self._owned_session = session
        self._auth = wire.authentication(
            settings.api_login_id, settings.transaction_key.get_secret_value()
        )
        self._window = settings.duplicate_window_s
        self._pages = settings.lookup_pages
        self._settled_days = timedelta(days=settings.lookup_settled_days)
        self._clock = clock
        self._known: OrderedDict[UUID, _Known] = OrderedDict()

    def __repr__(self) -> str:
        return "AuthorizeNetGateway()"

    async def aclose(self) -> None:
        """Close the HTTP session if this gateway opened it."""
        if self._owned_session is not None:
            await self._owned_session.close()

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        card = request.source.summary() if isinstance(request.source, CardDetails) else None
        payload = wire.charge_request(self._auth, request, duplicate_window_s=self._window)
        return await self._new_transaction(request.reference, payload, card)

    async def verify(self, request: VerifyRequest) -> GatewayResult:
        payload = wire.verify_request(self._auth, request, duplicate_window_s=self._window)
        return await self._new_transaction(request.reference, payload, request.card.summary())

    async def capture(self, request: OperationRequest) -> GatewayResult:
        payload = wire.capture_request(self._auth, request)
        return await self._act_on(request, "capture", payload, wire.ALREADY_CAPTURED)

    async def void(self, request: OperationRequest) -> GatewayResult:
        payload = wire.void_request(self._auth, request)
        return await self._act_on(request, "void", payload, wire.ALREADY_VOIDED)

    async def refund(self, request: OperationRequest) -> GatewayResult:
        last4 = request.card_last4 or await self._card_last4(request.gateway_transaction_id)
        payload = wire.refund_request(
            self._auth, request, last4=last4, duplicate_window_s=self._window
        )
        return await self._new_transaction(request.reference, payload, None)

    async def lookup(self, reference: UUID, hint: LookupHint | None = None) -> GatewayResult | None:
        known = self._known.get(reference)
        if (
            known is None
            and hint is not None
            and hint.gateway_transaction_id is not None
            and (hint.kind == "capture" or hint.kind == "void")
        ):
            # Forgotten (a restart): the authorization it acted on still tells.
            known = _Known(hint.kind, hint.gateway_transaction_id)
        if known is not None and known.kind != "transaction":
            return await self._operation_outcome(known)
        details = None if known is None else await self._details(known.trans_id)
        if details is None:
            details = await self._find(reference)
        return None if details is None else details.result()

    async def _transaction(self, payload: wire.Json) -> wire.TransactionAnswer:
        """A createTransactionRequest's answer; a refusal without a transaction raises."""
        answer = await self._client.call(payload, moves_money=True)
        transaction = wire.transaction_answer(answer)
        if transaction is not None:
            return transaction
        message = wire.api_message(answer)
        # Only a stated refusal proves nothing happened; E00001 is the gateway's own unexpected
        # error, which may have got as far as acting, and an answer of no known shape proves
        # nothing either.
        refused = not message.ok and bool(message.code) and message.code != "E00001"
        raise GatewayError(
            f"authorizenet: {message.code} {message.text}".strip(), ambiguous=not refused
        )

    async def _new_transaction(
        self, reference: UUID, payload: wire.Json, card: CardSummary | None
    ) -> GatewayResult:
        """A charge, verification or refund: a transaction of its own, remembered for lookup."""
        result = await self._resolved(await self._transaction(payload), card)
        self._remember(reference, result.gateway_transaction_id)
        return result

    async def _act_on(
        self,
        request: OperationRequest,
        kind: Literal["capture", "void"],
        payload: wire.Json,
        already_done: str,
    ) -> GatewayResult:
        """A capture or void: it changes the authorization and makes no transaction of its
        own. Finding it already done (311, 310) is success, so a repeat is safe."""
        self._note(request.reference, _Known(kind, request.gateway_transaction_id))
        answer = await self._transaction(payload)
        if answer.reason_code == already_done:
            return GatewayResult(True, request.gateway_transaction_id, message=answer.text)
        return answer.result(None)

    async def _resolved(
        self, answer: wire.TransactionAnswer, card: CardSummary | None
    ) -> GatewayResult:
        """The answer's result; a duplicate answers with the original transaction's."""
        if answer.reason_code != wire.DUPLICATE:
            return answer.result(card)
        if answer.trans_id is None:
            raise GatewayError("authorizenet: duplicate of an unnamed transaction", ambiguous=True)
        original = await self._details(answer.trans_id)
        if original is None:
            raise GatewayError("authorizenet: duplicate of an unknown transaction", ambiguous=True)
        return replace(original.result(), card=card)

    async def _operation_outcome(self, known: _Known) -> GatewayResult | None:
        """A capture's or void's outcome, read off the authorization it acted on."""
        details = await self._details(known.trans_id)
        if details is None:
            return None
        done = (
            details.status in wire.STATUS_CAPTURED
            if known.kind == "capture"
            else details.status == "voided"
        )
        return GatewayResult(True, known.trans_id, message=details.status) if done else None

    async def _find(self, reference: UUID) -> wire.TransactionDetails | None:
        """The transaction made for `reference`: among the unsettled ones, then in the batches
        settled over the last `lookup_settled_days`, newest first."""
        found = await self._search(reference, partial(wire.unsettled_request, self._auth))
        if found is not None or not self._settled_days:
            return found
        now = self._clock()
        batches = await self._client.call(
            wire.settled_batches_request(self._auth, now - self._settled_days, now),
            moves_money=False,
        )
        self._check(batches)
        for batch_id in wire.batch_ids(batches):
            found = await self._search(reference, partial(wire.batch_request, self._auth, batch_id))
            if found is not None:
                return found
        return None

    async def _search(
        self, reference: UUID, page_request: Callable[[int], wire.Json]
    ) -> wire.TransactionDetails | None:
        """The transaction for `reference` in one paged list, confirmed by its description."""
        for page in range(1, self._pages + 1):
            answer = await self._client.call(page_request(page), moves_money=False)
            self._check(answer)
            matches, count = wire.listed(answer, reference)
            for trans_id in matches:
                details = await self._details(trans_id)
                if details is not None and details.names(reference):
                    self._remember(reference, trans_id)
                    return details
            if count < wire.LIST_PAGE:
                return None
        log.warning("authorizenet: %s not within %d pages of a list", reference, self._pages)
        return None

    async def _details(self, trans_id: str) -> wire.TransactionDetails | None:
        answer = await self._client.call(
            wire.details_request(self._auth, trans_id), moves_money=False
        )
        details = wire.transaction_details(answer)
        if details is None:
            message = wire.api_message(answer)
            if message.code == "E00040":  # "The record cannot be found."
                return None
            self._check(answer)
        return details

    async def _card_last4(self, trans_id: str) -> str:
        """The last four digits of the card charged by `trans_id`, read from the gateway."""
        details = await self._details(trans_id)
        if details is None or details.card_last4 is None:
            raise GatewayError("authorizenet: the refunded charge has no card", ambiguous=False)
        return details.card_last4

    @staticmethod
    def _check(answer: wire.Json) -> None:
        message = wire.api_message(answer)
        if not message.ok:
            raise GatewayError(f"authorizenet: {message.code} {message.text}", ambiguous=False)

    def _remember(self, reference: UUID, trans_id: str | None) -> None:
        if trans_id is not None:
            self._note(reference, _Known("transaction", trans_id))

    def _note(self, reference: UUID, known: _Known) -> None:
        self._known[reference] = known
        self._known.move_to_end(reference)
        while len(self._known) > REMEMBERED:
            self._known.popitem(last=False)


async def open_authorizenet(
    settings: AuthorizeNetSettings, session: aiohttp.ClientSession | None = None
) -> AuthorizeNetGateway:
    """The Authorize.Net gateway for this process. Without `session` it opens its own (one per
    process; `aclose` closes it); must run inside the event loop that will use it. Missing
    credentials stop start-up with the variable named."""
    for variable, value in (
        ("PAYGRID_AUTHORIZENET_API_LOGIN_ID", settings.api_login_id),
        ("PAYGRID_AUTHORIZENET_TRANSACTION_KEY", settings.transaction_key.get_secret_value()),
    ):
        if not value:
            raise ValueError(f"{variable} must be set to use the authorizenet gateway")
    if session is not None:
        return AuthorizeNetGateway(settings, AuthorizeNetClient(session, settings))
    owned = open_session(settings)
    return AuthorizeNetGateway(settings, AuthorizeNetClient(owned, settings), session=owned)
