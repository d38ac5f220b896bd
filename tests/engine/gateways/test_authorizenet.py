"""The Authorize.Net adapter against the local fake server (`authorizenet_fake.py`): every
operation's approval, declines and errors, a review hold settled by lookup, duplicates,
timeouts and dropped answers (ambiguous, resolved by lookup, charged once), a connection that
never opened (not ambiguous), and no card number, CVC or transaction key in logs or errors.
Nothing leaves 127.0.0.1."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import pytest
from pydantic import SecretStr

from engine.cards import CardDetails, CardToken
from engine.gateways.authorizenet import (
    AuthorizeNetGateway,
    AuthorizeNetSettings,
    open_authorizenet,
    wire,
)
from engine.gateways.authorizenet.client import AuthorizeNetClient
from engine.gateways.base import (
    ChargeRequest,
    GatewayError,
    GatewayResult,
    OperationRequest,
    VerifyRequest,
)
from engine.money import Money
from tests.engine.gateways.authorizenet_fake import FakeAuthorizeNet, adapter_settings, serving

VISA = "4111111111111111"
USD_10 = Money(1000, "USD")

Open = Callable[..., Awaitable[AuthorizeNetGateway]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAuthorizeNet]:
    async with serving(review_over=Decimal("500.00")) as server:
        yield server


@pytest.fixture
async def open_gateway(fake: FakeAuthorizeNet) -> AsyncIterator[Open]:
    """Gateways on the fake (each a fresh process's view: nothing remembered); closed after."""
    opened: list[AuthorizeNetGateway] = []

    async def open_one(**overrides: Any) -> AuthorizeNetGateway:
        settings = adapter_settings(fake, **({"lookup_grace_s": 0.0} | overrides))
        gateway = await open_authorizenet(settings)
        opened.append(gateway)
        return gateway

    yield open_one
    for gateway in opened:
        await gateway.aclose()


@pytest.fixture
async def gateway(open_gateway: Open) -> AuthorizeNetGateway:
    return await open_gateway()


def card(number: str = VISA, cvc: str = "123", year: int = 2034) -> CardDetails:
    return CardDetails(number, 12, year, cvc)


def charge(money: Money = USD_10, *, number: str = VISA, capture: bool = True) -> ChargeRequest:
    return ChargeRequest(uuid4(), money, card(number), capture=capture)


async def authorization(gateway: AuthorizeNetGateway) -> str:
    """The transId of a fresh approved authorization of USD 10."""
    authorized = await gateway.charge(charge(capture=False))
    assert authorized.approved
    assert authorized.gateway_transaction_id is not None
    return authorized.gateway_transaction_id


def sent(fake: FakeAuthorizeNet) -> dict[str, Any]:
    """The last request the fake received, decoded."""
    last: dict[str, Any] = wire.decode(fake.bodies[-1])
    return last


async def test_a_purchase_is_approved_and_charged_once(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    request = charge()
    result = await gateway.charge(request)
    assert result.approved
    assert not result.review
    assert result.gateway_transaction_id is not None
    assert result.card is not None
    assert result.card.last4 == "1111"
    assert fake.transactions[result.gateway_transaction_id].status == "capturedPendingSettlement"
    assert fake.charges(request.reference) == 1
    body = sent(fake)["createTransactionRequest"]
    assert body["refId"] == request.reference.hex[:20]
    assert body["transactionRequest"]["amount"] == "10.00"


async def test_an_authorization_is_captured_in_part_and_a_repeat_capture_is_approved(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    trans_id = await authorization(gateway)
    assert fake.transactions[trans_id].status == "authorizedPendingCapture"
    capture = OperationRequest(uuid4(), trans_id, Money(600, "USD"))
    captured = await gateway.capture(capture)
    assert captured.approved
    assert captured.gateway_transaction_id == trans_id
    assert fake.transactions[trans_id].status == "capturedPendingSettlement"
    assert fake.transactions[trans_id].amount == Decimal("6.00")
    # Authorize.Net refuses a second capture as "already captured" (311): that is success.
    again = await gateway.capture(capture)
    assert again.approved
    assert await gateway.lookup(capture.reference) == GatewayResult(
        True, trans_id, message="capturedPendingSettlement"
    )


async def test_a_capture_above_the_authorization_and_of_an_unknown_one_are_declined(
    gateway: AuthorizeNetGateway,
) -> None:
    trans_id = await authorization(gateway)
    too_much = OperationRequest(uuid4(), trans_id, Money(1001, "USD"))
    result = await gateway.capture(too_much)
    assert (result.approved, result.decline_code) == (False, "amount_too_large")
    unknown = await gateway.capture(OperationRequest(uuid4(), "123", USD_10))
    assert (unknown.approved, unknown.decline_code) == (False, "transaction_not_found")


async def test_an_authorization_is_voided_and_a_repeat_void_is_approved(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    trans_id = await authorization(gateway)
    void = OperationRequest(uuid4(), trans_id, USD_10)
    assert (await gateway.void(void)).approved
    assert fake.transactions[trans_id].status == "voided"
    assert (await gateway.void(void)).approved  # 310 "already voided"
    found = await gateway.lookup(void.reference)
    assert found is not None
    assert found.approved


async def test_a_settled_purchase_is_refunded_naming_the_card_by_its_last_four_digits(
    open_gateway: Open, fake: FakeAuthorizeNet
) -> None:
    gateway = await open_gateway()
    bought = await gateway.charge(charge())
    assert bought.gateway_transaction_id is not None
    early = OperationRequest(uuid4(), bought.gateway_transaction_id, USD_10, card_last4="1111")
    refused = await gateway.refund(early)
    assert (refused.approved, refused.decline_code) == (False, "not_settled")
    fake.settle_batch()

    part = OperationRequest(uuid4(), bought.gateway_transaction_id, Money(400, "USD"), "1111")
    refunded = await gateway.refund(part)
    assert refunded.approved
    assert refunded.gateway_transaction_id is not None
    assert refunded.gateway_transaction_id != bought.gateway_transaction_id
    payment = sent(fake)["createTransactionRequest"]["transactionRequest"]["payment"]
    assert payment == {"creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX"}}
    assert fake.transactions[refunded.gateway_transaction_id].status == "refundPendingSettlement"

    # Without the last four digits the adapter reads them off the charge first.
    rest = OperationRequest(uuid4(), bought.gateway_transaction_id, Money(600, "USD"))
    assert (await gateway.refund(rest)).approved
    beyond = OperationRequest(uuid4(), bought.gateway_transaction_id, Money(1, "USD"), "1111")
    assert not (await gateway.refund(beyond)).approved

    # Another process, which remembers nothing, finds the refund by its reference.
    found = await (await open_gateway()).lookup(part.reference)
    assert found is not None
    assert found.approved
    assert found.gateway_transaction_id == refunded.gateway_transaction_id


async def test_a_verification_is_a_zero_amount_authorization(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    request = VerifyRequest(uuid4(), card())
    result = await gateway.verify(request)
    assert result.approved
    assert result.card is not None
    body = sent(fake)["createTransactionRequest"]["transactionRequest"]
    assert (body["transactionType"], body["amount"]) == ("authOnlyTransaction", "0.00")
    assert fake.charges(request.reference) == 0
    failed = await gateway.verify(VerifyRequest(uuid4(), card(cvc="901")))
    assert (failed.approved, failed.decline_code) == (False, "incorrect_cvc")


@pytest.mark.parametrize(
    ("source", "amount", "code"),
    [
        (card("4222222222222"), 200, "generic_decline"),  # error card, reason 2: declined
        (card("4222222222222"), 2700, "address_mismatch"),  # reason 27: an error
        (card(cvc="901"), 1000, "incorrect_cvc"),
        (card(year=2020), 1000, "expired_card"),
        (card("4111111111111112"), 1000, "incorrect_number"),
    ],
)
async def test_sandbox_triggers_decline(
    gateway: AuthorizeNetGateway,
    fake: FakeAuthorizeNet,
    source: CardDetails,
    amount: int,
    code: str,
) -> None:
    request = ChargeRequest(uuid4(), Money(amount, "USD"), source, capture=True)
    result = await gateway.charge(request)
    assert (result.approved, result.review, result.decline_code) == (False, False, code)
    assert result.message
    assert fake.charges(request.reference) == 0


async def test_the_declining_zip_code_declines(fake: FakeAuthorizeNet) -> None:
    """The adapter sends no address; the fake still honours the testing guide's ZIP."""
    request = charge()
    payload = wire.charge_request(
        wire.authentication(fake.api_login_id, fake.transaction_key), request, duplicate_window_s=0
    )
    body = payload["createTransactionRequest"]["transactionRequest"]
    # billTo sits between order and transactionSettings in the schema.
    settings = body.pop("transactionSettings")
    body["billTo"] = {"zip": "46282"}
    body["transactionSettings"] = settings
    async with aiohttp.ClientSession() as session:
        client = AuthorizeNetClient(session, AuthorizeNetSettings(endpoint_url=fake.url))
        answer = wire.transaction_answer(await client.call(payload, moves_money=True))
    assert answer is not None
    assert (answer.response_code, answer.reason_code) == ("2", "2")


async def test_held_for_review_then_settled_by_lookup(
    open_gateway: Open, fake: FakeAuthorizeNet
) -> None:
    gateway = await open_gateway()
    approved, declined = charge(Money(60000, "USD")), charge(Money(70000, "USD"))
    for request in (approved, declined):
        held = await gateway.charge(request)
        assert (held.approved, held.review, held.decline_code) == (False, True, "held_for_review")
        assert held.gateway_transaction_id is not None
        pending = await gateway.lookup(request.reference)
        assert pending is not None
        assert pending.review
    assert fake.charges(approved.reference) == 1

    await review(fake, approved.reference, "approve")
    await review(fake, declined.reference, "decline")
    # Another process finds both through the unsettled list.
    later = await open_gateway()
    settled = await later.lookup(approved.reference)
    assert settled is not None
    assert settled.approved
    assert not settled.review
    refused = await later.lookup(declined.reference)
    assert refused is not None
    assert (refused.approved, refused.review, refused.decline_code) == (
        False,
        False,
        "review_declined",
    )


async def review(fake: FakeAuthorizeNet, reference: UUID, action: str) -> None:
    """The merchant's decision on a held transaction (updateHeldTransactionRequest)."""
    (trans_id,) = [
        t.trans_id for t in fake.transactions.values() if t.invoice_number == reference.hex[:20]
    ]
    payload = {
        "updateHeldTransactionRequest": {
            "merchantAuthentication": wire.authentication(fake.api_login_id, fake.transaction_key),
            "heldTransactionRequest": {"action": action, "refTransId": trans_id},
        }
    }
    async with aiohttp.ClientSession() as session:
        client = AuthorizeNetClient(session, AuthorizeNetSettings(endpoint_url=fake.url))
        assert wire.api_message(await client.call(payload, moves_money=False)).ok


async def test_answers_start_with_a_byte_order_mark(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    payload = wire.details_request(
        wire.authentication(fake.api_login_id, fake.transaction_key), "1"
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url, data=wire.encode(payload)) as response,
    ):
        raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert (await gateway.charge(charge())).approved  # and the adapter reads past it


async def test_elements_out_of_schema_order_are_refused(fake: FakeAuthorizeNet) -> None:
    request = charge()
    payload = wire.charge_request(
        wire.authentication(fake.api_login_id, fake.transaction_key), request, duplicate_window_s=0
    )
    body = payload["createTransactionRequest"]["transactionRequest"]
    body["amount"] = body.pop("amount")  # now after transactionSettings
    async with aiohttp.ClientSession() as session:
        client = AuthorizeNetClient(session, AuthorizeNetSettings(endpoint_url=fake.url))
        answer = await client.call(payload, moves_money=True)
    message = wire.api_message(answer)
    assert (message.ok, message.code) == (False, "E00003")
    assert "amount" in message.text
    assert fake.charges(request.reference) == 0


async def test_missing_credentials_stop_start_up() -> None:
    with pytest.raises(ValueError, match="PAYGRID_AUTHORIZENET_TRANSACTION_KEY"):
        await open_authorizenet(AuthorizeNetSettings(api_login_id="login"))


async def test_bad_credentials_raise_a_non_ambiguous_error(
    open_gateway: Open, fake: FakeAuthorizeNet
) -> None:
    gateway = await open_gateway(transaction_key=SecretStr("wrongKey00000000"))
    with pytest.raises(GatewayError) as raised:
        await gateway.charge(charge())
    assert not raised.value.ambiguous
    assert "E00007" in str(raised.value)
    assert "wrongKey" not in str(raised.value)


async def test_the_gateways_own_error_is_ambiguous(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    """E00001 says nothing of whether the transaction went through."""
    fake.error_next = "E00001"
    with pytest.raises(GatewayError) as raised:
        await gateway.charge(charge())
    assert raised.value.ambiguous


async def test_a_token_goes_as_opaque_data(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    request = ChargeRequest(uuid4(), USD_10, CardToken("unknown-nonce"), capture=True)
    with pytest.raises(GatewayError) as raised:
        await gateway.charge(request)
    assert not raised.value.ambiguous
    assert "E00114" in str(raised.value)
    payment = sent(fake)["createTransactionRequest"]["transactionRequest"]["payment"]
    assert payment["opaqueData"]["dataValue"] == "unknown-nonce"


async def test_a_timeout_is_ambiguous_and_lookup_finds_the_charge(
    open_gateway: Open, fake: FakeAuthorizeNet
) -> None:
    gateway = await open_gateway(timeout_s=0.2)
    fake.latency_s = 1.0
    request = charge()
    with pytest.raises(GatewayError) as raised:
        await gateway.charge(request)
    assert raised.value.ambiguous
    assert isinstance(raised.value.__cause__, TimeoutError)
    fake.latency_s = 0.0
    found = await gateway.lookup(request.reference)
    assert found is not None
    assert found.approved
    assert fake.charges(request.reference) == 1


async def test_approved_then_dropped_is_ambiguous_resolved_by_lookup_and_charged_once(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    request = charge()
    fake.drop_next = 1
    with pytest.raises(GatewayError) as raised:
        await gateway.charge(request)
    assert raised.value.ambiguous
    assert isinstance(raised.value.__cause__, aiohttp.ServerDisconnectedError)
    found = await gateway.lookup(request.reference)
    assert found is not None
    assert found.approved
    # A resend of the same reference inside the duplicate window answers with the original.
    again = await gateway.charge(request)
    assert again.approved
    assert again.gateway_transaction_id == found.gateway_transaction_id
    assert fake.charges(request.reference) == 1


async def test_a_lost_answer_is_found_after_its_batch_settled(
    open_gateway: Open, fake: FakeAuthorizeNet
) -> None:
    """Another process looks up a charge whose answer was lost and whose batch has settled
    since: it is no longer unsettled, and the settled batches have it."""
    request, held = charge(), charge(Money(90000, "USD"))
    gateway = await open_gateway()
    fake.drop_next = 1
    with pytest.raises(GatewayError):
        await gateway.charge(request)
    assert (await gateway.charge(held)).review
    await review(fake, held.reference, "approve")
    batch = fake.settle_batch()
    fake.settle_batch()  # a later, empty batch is searched too
    assert {t.batch_id for t in fake.transactions.values()} == {batch}

    blind = await open_gateway(lookup_settled_days=0)
    assert await blind.lookup(request.reference) is None
    later = await open_gateway()
    for reference in (request.reference, held.reference):
        found = await later.lookup(reference)
        assert found is not None
        assert found.approved
        assert fake.charges(reference) == 1


async def test_without_a_duplicate_window_a_resend_charges_twice(
    open_gateway: Open, fake: FakeAuthorizeNet
) -> None:
    """What the window is for: with it off, the gateway would take the resend."""
    gateway = await open_gateway(duplicate_window_s=0)
    request = charge()
    await gateway.charge(request)
    await gateway.charge(request)
    assert fake.charges(request.reference) == 2


async def test_a_dropped_capture_is_resolved_by_lookup(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet
) -> None:
    trans_id = await authorization(gateway)
    capture = OperationRequest(uuid4(), trans_id, USD_10)
    assert await gateway.lookup(capture.reference) is None
    fake.drop_next = 1
    with pytest.raises(GatewayError) as raised:
        await gateway.capture(capture)
    assert raised.value.ambiguous
    found = await gateway.lookup(capture.reference)
    assert found is not None
    assert found.approved


async def test_a_reference_the_gateway_never_saw_is_not_found(
    gateway: AuthorizeNetGateway,
) -> None:
    await gateway.charge(charge())
    assert await gateway.lookup(uuid4()) is None


async def test_a_connection_that_never_opened_is_not_ambiguous(open_gateway: Open) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = await open_gateway(endpoint_url=f"http://127.0.0.1:{port}/xml/v1/request.api")
    with pytest.raises(GatewayError) as raised:
        await gateway.charge(charge())
    assert not raised.value.ambiguous
    assert isinstance(raised.value.__cause__, aiohttp.ClientConnectorError)
    with pytest.raises(GatewayError) as looked:
        await gateway.lookup(uuid4())
    assert not looked.value.ambiguous


@pytest.mark.parametrize(
    ("money", "text"), [(Money(480, "JPY"), "480"), (Money(1234, "KWD"), "1.234")]
)
async def test_amounts_go_out_with_the_currency_exponent(
    gateway: AuthorizeNetGateway, fake: FakeAuthorizeNet, money: Money, text: str
) -> None:
    assert (await gateway.charge(charge(money))).approved
    body = sent(fake)["createTransactionRequest"]["transactionRequest"]
    assert (body["amount"], body["currencyCode"]) == (text, money.currency)


async def test_no_card_number_cvc_or_key_in_logs_or_errors(
    open_gateway: Open, fake: FakeAuthorizeNet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_cvc = "7319"
    number = "5424000000000015"
    gateway = await open_gateway(timeout_s=0.2)
    texts: list[str] = [repr(gateway), repr(card(number, secret_cvc))]
    fake.latency_s = 1.0
    with pytest.raises(GatewayError) as charged:
        await gateway.charge(ChargeRequest(uuid4(), USD_10, card(number, secret_cvc), True))
    with pytest.raises(GatewayError) as verified:
        await gateway.verify(VerifyRequest(uuid4(), card(number, secret_cvc)))
    timed_out = [charged.value, verified.value]
    texts += [f"{e} {e!r} {e.__cause__!r}" for e in timed_out]
    fake.latency_s = 0.0
    wrong = await open_gateway(transaction_key=SecretStr(fake.transaction_key[::-1]))
    with pytest.raises(GatewayError) as refused:
        await wrong.charge(ChargeRequest(uuid4(), USD_10, card(number, secret_cvc), True))
    texts += [str(refused.value), repr(wrong)]
    declined = await gateway.charge(ChargeRequest(uuid4(), USD_10, card(number, "901"), True))
    texts.append(repr(declined))
    everything = "\n".join([*texts, caplog.text])
    for secret in (number, secret_cvc, fake.transaction_key, fake.transaction_key[::-1]):
        assert secret not in everything
