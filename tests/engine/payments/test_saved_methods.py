"""A purchase naming a saved payment method: `PaymentRequests` opens it for the payment's
customer before the command is made, and the command carries the card as if the body had."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from engine.cards import CardDetails, CardToken
from engine.db.database import Database
from engine.errors import StateError
from engine.payments.commands import Command, CommandResult, CreatePayment, RequestContext
from engine.payments.reads import PaymentReads
from engine.payments.requests import PaymentRequests
from engine.payments.states import TransactionType
from schema.api.payment_method_ids import format_payment_method_id
from schema.api.payments import PaymentCreate

CARD = CardDetails("4242424242424242", 12, 2034)


async def test_the_saved_card_becomes_the_commands_source(database: Database) -> None:
    executed: list[Command] = []
    opened: list[tuple[UUID, UUID | None]] = []

    async def execute(command: Command) -> CommandResult:
        executed.append(command)
        return CommandResult(200, {})

    async def open_saved(method_id: UUID, customer_id: UUID | None) -> CardDetails | CardToken:
        opened.append((method_id, customer_id))
        if customer_id is None:
            raise StateError("not yours", code="payment_method_customer_mismatch")
        return CARD

    requests = PaymentRequests(
        execute=execute, reads=PaymentReads(database), max_amount=10_000, open_saved=open_saved
    )
    method, customer = uuid4(), uuid4()
    body = PaymentCreate.model_validate(
        {
            "amount": 500,
            "currency": "USD",
            "customer_id": str(customer),
            "payment_method": {"id": format_payment_method_id(method)},
        }
    )
    await requests.authorize(body, RequestContext(uuid4(), "req-1"))
    (command,) = executed
    assert isinstance(command, CreatePayment)
    assert (command.kind, command.customer_id, command.source) == (
        TransactionType.AUTHORIZE,
        customer,
        CARD,
    )
    assert opened == [(method, customer)]

    inline = PaymentCreate.model_validate(
        {
            "amount": 500,
            "currency": "USD",
            "customer": {"email": "a@example.com"},
            "payment_method": {"id": format_payment_method_id(method)},
        }
    )
    with pytest.raises(StateError):
        await requests.purchase(inline, RequestContext(uuid4(), "req-2"))
    assert len(executed) == 1
