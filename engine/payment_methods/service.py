"""Save, show, list and detach payment methods, and open a saved one for a charge.

The card number, its expiry and the holder's name (or the gateway token) are sealed under the
customer's `payment_methods` data key, bound to the row and its customer; brand, last4 and a
fingerprint (the number's keyed blind index: equal cards match, and nothing else can be read
from it) stay in clear. A card saved before migration 0025 had its expiry in clear columns;
`seal_expiries` (the `payment_methods.seal_expiries` job that migration queues) moves it into
the ciphertext. Saving and detaching write their event in the same transaction.

Opening a saved method for a charge happens in the API replica, so the number travels to the
ledger shard exactly as a card in the request body does, and the same redactions keep it out
of every log, row, event and answer. The CVC is never saved: a card given with one is verified
with the gateway before it is saved (an account verification, no money held; a decline saves
nothing and answers 402), and from then on it is charged without it, as a card on file.

Saving honours an Idempotency-Key like a payment does, in the same `idempotency_keys` records:
the key is claimed and answered in the transaction that saves the card, so a retry after a lost
answer replays it instead of saving the card twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson

from engine.audit.repository import AuditRepository
from engine.cards import CardDetails, CardSummary, CardToken
from engine.customers.repository import CustomerRepository
from engine.db.database import Database
from engine.errors import (
    CardDeclined,
    CryptoError,
    GatewayUnavailable,
    InternalError,
    InvalidRequest,
    NotFound,
    PaygridError,
    StateError,
)
from engine.events.outbox import Event, Outbox
from engine.gateways import sandbox
from engine.gateways.base import Gateway, GatewayError, VerifyRequest
from engine.idempotency.guard import IdempotencyGuard
from engine.keys.cipher import row_binding
from engine.keys.keyring import DataKey, Keyring
from engine.payment_methods.fingerprints import fingerprints
from engine.payment_methods.models import (
    ChargeSource,
    NewCard,
    NewToken,
    PaymentMethod,
    SealedMethod,
)
from engine.payment_methods.repository import PaymentMethodRepository
from engine.payment_methods.states import PaymentMethodStatus
from engine.payments.commands import CommandResult, RequestContext
from engine.principal import Principal
from engine.scheduler.handlers import Handler
from schema.api.payment_method_ids import format_payment_method_id

# The job migration 0025 queues to move clear expiries into the ciphertext.
SEAL_EXPIRIES_JOB = "payment_methods.seal_expiries"
# The data-key purpose of the vault.
KEY_PURPOSE = "payment_methods"
_TABLE = "payment_methods"
_REF = "payment_method.id"


def _aad(method_id: UUID, customer_id: UUID) -> bytes:
    return row_binding(_TABLE, "ciphertext", method_id, customer_id)


class PaymentMethodService:
    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        *,
        idempotency_ttl_h: int,
        token_card: Callable[[str], CardSummary | None] = sandbox.token_card,
        gateway: Gateway | None = None,
    ) -> None:
        """`gateway` verifies the cards saved with a CVC; a process that never saves cards
        (it only opens saved ones for charges) needs none."""
        self._db = db
        self._gateway = gateway
        self._keyring = keyring
        self._token_card = token_card
        self._repository = PaymentMethodRepository()
        self._idempotency = IdempotencyGuard(ttl_h=idempotency_ttl_h)
        self._customers = CustomerRepository()
        self._outbox = Outbox()
        self._audit = AuditRepository()

    async def attach(
        self, method: NewCard | NewToken, *, customer_id: UUID, ctx: RequestContext
    ) -> CommandResult:
        """Save `method` for the customer (NotFound if there is no such customer); the answer
        holds the saved method's public object. A repeat under the same Idempotency-Key replays
        the first answer and saves nothing; the key with another request is 422."""
        secret: dict[str, Any]
        if isinstance(method, NewCard):
            details = CardDetails(method.number, method.exp_month, method.exp_year, method.cvc)
            card = details.summary()
            if method.cvc is not None:
                # Outside any transaction: a gateway call holds no connection or lock. A retry
                # of a save verifies again, which moves no money.
                await self._verify(details)
            secret = {
                "number": method.number,
                "exp_month": method.exp_month,
                "exp_year": method.exp_year,
                "holder_name": method.holder_name,
            }
            indexed = method.number
        else:
            found = self._token_card(method.token)
            if found is None:
                raise InvalidRequest("no such token", param="token")
            card, secret, indexed = found, {"token": method.token}, method.token
        method_id = uuid4()
        principal = ctx.principal
        async with self._db.transaction() as conn:
            held = await self._idempotency.claim(conn, ctx, resource_id=method_id)
            if held is not None:
                return held
            await self._require_customer(conn, customer_id)
            key = await self._keyring.customer_key(
                conn, purpose=KEY_PURPOSE, customer_id=customer_id
            )
            [fingerprint] = await fingerprints(self._keyring, conn, values=[indexed])
            saved = await self._repository.insert(
                conn,
                method_id=method_id,
                customer_id=customer_id,
                method_type="card" if isinstance(method, NewCard) else "token",
                card=card,
                fingerprint=fingerprint,
                data_key_id=key.id,
                ciphertext=key.encrypt(orjson.dumps(secret), aad=_aad(method_id, customer_id)),
                principal=principal,
            )
            await self._outbox.add(
                conn, events=[_event("payment_method.attached", saved, principal)]
            )
            return await self._idempotency.answer(conn, ctx, CommandResult(200, saved.public()))

    async def get(self, method_id: UUID) -> PaymentMethod:
        """An attached or detached method, or NotFound."""
        async with self._db.connection() as conn:
            found = await self._repository.get(conn, method_id=method_id)
        if found is None:
            raise NotFound(_missing(method_id), param="payment_method_id")
        return found

    async def page(
        self, customer_id: UUID, *, limit: int, starting_after: UUID | None
    ) -> tuple[list[PaymentMethod], bool]:
        """The customer's attached methods, newest first, and whether more follow."""
        async with self._db.connection() as conn:
            await self._require_customer(conn, customer_id)
            return await self._repository.page(
                conn, customer_id=customer_id, limit=limit, starting_after=starting_after
            )

    async def detach(self, method_id: UUID, principal: Principal) -> PaymentMethod:
        """Detach a method for good, dropping its ciphertext; detaching it again changes
        nothing."""
        async with self._db.transaction() as conn:
            detached = await self._repository.detach(conn, method_id=method_id, principal=principal)
            if detached is None:
                current = await self._repository.get(conn, method_id=method_id)
                if current is None:
                    raise NotFound(_missing(method_id), param="payment_method_id")
                return current
            await self._outbox.add(
                conn, events=[_event("payment_method.detached", detached, principal)]
            )
        return detached

    async def charge_source(self, method_id: UUID, customer_id: UUID | None) -> ChargeSource:
        """The card (or token) a saved method holds, for a charge of `customer_id`: refused
        unless the method exists, is the customer's and is still attached."""
        async with self._db.connection() as conn:
            found = await self._repository.sealed(conn, method_id=method_id)
            sealed = _chargeable(method_id, customer_id, found)
            key = await self._keyring.data_key(conn, key_id=sealed.data_key_id)
        return _opened(sealed, key)

    async def charge_sources(
        self, wanted: Sequence[tuple[UUID, UUID | None]]
    ) -> list[ChargeSource | PaygridError]:
        """`charge_source` of each (method, customer), in two statements however many: the
        card or token, or the refusal `charge_source` would raise."""
        async with self._db.connection() as conn:
            found = await self._repository.sealed_many(conn, method_ids=[m for m, _ in wanted])
            keys = await self._keyring.data_keys(
                conn,
                key_ids=[s.data_key_id for s in found.values() if s.data_key_id is not None],
            )
        opened: list[ChargeSource | PaygridError] = []
        for method_id, customer_id in wanted:
            try:
                sealed = _chargeable(method_id, customer_id, found.get(method_id))
                key = keys.get(sealed.data_key_id)
                if key is None:
                    raise CryptoError(
                        f"data key {sealed.data_key_id} does not exist", code="key_unavailable"
                    )
                opened.append(_opened(sealed, key))
            except PaygridError as exc:
                opened.append(exc)
        return opened

    async def seal_expiries(self, *, batch: int = 500) -> int:
        """Move the clear expiry of cards saved before migration 0025 into their ciphertext,
        a batch per transaction (rows another run holds are skipped), and strip it from their
        audit rows; returns how many were resealed. Idempotent: a resealed card has no clear
        expiry left to find."""
        total = 0
        while True:
            async with self._db.transaction() as conn:
                found = await self._repository.with_clear_expiry(conn, limit=batch)
                keys = await self._keyring.data_keys(
                    conn, key_ids=[s.data_key_id for s in found if s.data_key_id is not None]
                )
                for sealed in found:
                    method = sealed.method
                    key = keys.get(sealed.data_key_id) if sealed.data_key_id else None
                    if key is None or sealed.ciphertext is None or sealed.legacy_expiry is None:
                        continue
                    aad = _aad(method.id, method.customer_id)
                    secret = orjson.loads(key.decrypt(sealed.ciphertext, aad=aad))
                    secret["exp_month"], secret["exp_year"] = sealed.legacy_expiry
                    await self._repository.reseal(
                        conn,
                        method_id=method.id,
                        ciphertext=key.encrypt(orjson.dumps(secret), aad=aad),
                    )
                await self._audit.strip_expiry(conn, method_ids=[s.method.id for s in found])
            total += len(found)
            if len(found) < batch:
                return total

    def handlers(self) -> dict[str, Handler]:
        """The scheduler's job of the vault: resealing the clear expiries migration 0025
        found."""

        async def seal(db: Database, payload: dict[str, Any]) -> None:
            await self.seal_expiries()

        return {SEAL_EXPIRIES_JOB: seal}

    async def _verify(self, card: CardDetails) -> None:
        if self._gateway is None:
            raise InternalError("this process has no gateway to verify cards with")
        try:
            result = await self._gateway.verify(VerifyRequest(uuid4(), card))
        except GatewayError as exc:
            raise GatewayUnavailable(
                f"the card could not be verified: {exc.args[0]}; nothing was saved, retry"
            ) from exc
        if not result.approved:
            code = result.decline_code or "generic_decline"
            raise CardDeclined(
                result.message or "The card was declined.",
                decline_code=code,
                param="cvc" if code == "incorrect_cvc" else "number",
            )

    async def _require_customer(self, conn: asyncpg.Connection, customer_id: UUID) -> None:
        if not await self._customers.existing(conn, customer_ids=[customer_id]):
            raise NotFound(f"no customer {customer_id}", param="customer_id")


def _missing(method_id: UUID) -> str:
    return f"no payment method {format_payment_method_id(method_id)}"


def _event(event_type: str, method: PaymentMethod, principal: Principal) -> Event:
    return Event(
        event_type,
        "payment_method",
        method.id,
        method.public(),
        principal.api_key_id,
        principal.correlation_id,
    )


@dataclass(frozen=True, slots=True)
class _Chargeable:
    method: PaymentMethod
    data_key_id: UUID
    ciphertext: bytes
    legacy_expiry: tuple[int, int] | None


def _chargeable(
    method_id: UUID, customer_id: UUID | None, found: SealedMethod | None
) -> _Chargeable:
    """The sealed method, if it may pay for `customer_id`: it exists, is the customer's and
    is still attached; the refusal otherwise."""
    if found is None:
        raise NotFound(_missing(method_id), param=_REF)
    method = found.method
    if method.customer_id != customer_id:
        raise StateError(
            "the payment method belongs to another customer; a saved method pays only "
            "for its own customer (give its customer_id)",
            code="payment_method_customer_mismatch",
            param=_REF,
        )
    if (
        method.status is not PaymentMethodStatus.ATTACHED
        or found.data_key_id is None
        or found.ciphertext is None
    ):
        raise StateError(
            "the payment method is detached and can no longer be charged",
            code="payment_method_detached",
            param=_REF,
        )
    return _Chargeable(method, found.data_key_id, found.ciphertext, found.legacy_expiry)


def _opened(sealed: _Chargeable, key: DataKey) -> ChargeSource:
    """The card or token a chargeable method seals, opened with its data key."""
    method = sealed.method
    secret = orjson.loads(key.decrypt(sealed.ciphertext, aad=_aad(method.id, method.customer_id)))
    if method.type == "token":
        return CardToken(secret["token"])
    if "exp_month" in secret:
        return CardDetails(secret["number"], secret["exp_month"], secret["exp_year"])
    # Saved before migration 0025 and not resealed yet: the expiry is still in clear.
    assert sealed.legacy_expiry is not None, "a saved card without an expiry"
    return CardDetails(secret["number"], *sealed.legacy_expiry)
