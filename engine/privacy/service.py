"""A customer's export (access and portability) and erasure (crypto-shredding).

Export: everything held about the customer as one document, read in one repeatable-read
transaction (a consistent snapshot), with an `EXPORT` audit entry written in it.

Erasure destroys every data key of the customer (its profile's and its saved cards'), so no
copy of a ciphertext, in a backup or anywhere, can be opened again; its email index and
metadata go, its attached payment methods are detached (their ciphertext dropped, brand and
last4 kept; each with its `payment_method.detached` event). Its financial rows (orders,
payments, refunds, ledger entries, invoices) stay under its id, with amounts, dates and last4,
as retention law requires: they never held its PII (event payloads name customers by id
only). An `ERASE` audit entry and a `customer.erased` event are written in the same
transaction. Refused (409) while the customer has a subscription not ended or a payment
`processing`; erasing an erased customer answers the same and writes nothing.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from engine.audit.repository import AuditRepository
from engine.customers.models import Customer, Profile
from engine.customers.repository import CustomerRepository, CustomerRow
from engine.customers.sealing import ProfileSealer
from engine.customers.service import ENTITY
from engine.db.database import Database
from engine.errors import NotFound, StillInUse
from engine.events.outbox import Event, Outbox
from engine.keys.keyring import Keyring
from engine.payment_methods.repository import PaymentMethodRepository
from engine.principal import Principal
from engine.privacy.repository import ExportRepository
from schema.api.payment_method_ids import format_payment_method_id
from schema.states import AuditAction


class PrivacyService:
    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring
        self._sealer = ProfileSealer(keyring)
        self._customers = CustomerRepository()
        self._methods = PaymentMethodRepository()
        self._export = ExportRepository()
        self._audit = AuditRepository()
        self._outbox = Outbox()

    async def export(self, customer_id: UUID, principal: Principal) -> dict[str, Any]:
        """Everything held about the customer as one JSON-ready document (audited), or
        NotFound. An erased customer's export says so, its profile null."""
        async with self._db.connection() as conn, conn.transaction(isolation="repeatable_read"):
            row = await self._customers.get(conn, customer_id=customer_id)
            if row is None:
                raise NotFound(f"no customer {customer_id}", param="customer_id")
            profile = await self._sealer.open(conn, row)
            held = await self._export.held_about(conn, customer_id=customer_id)
            await self._audit.record(
                conn,
                entity_type=ENTITY,
                entity_ids=[customer_id],
                action=AuditAction.EXPORT,
                details={"sections": sorted(held)},
                principal=principal,
            )
        customer = _customer(row, profile)
        # Saved methods are known by their public `pm_…` ids, as the API shows them.
        for method in held["payment_methods"]:
            method["id"] = format_payment_method_id(UUID(method["id"]))
        return {
            "object": "customer_export",
            "customer": customer.public(),
            "erased": row.erased_at is not None,
            **held,
        }

    async def erase(self, customer_id: UUID, principal: Principal) -> Customer:
        """Erase the customer's PII by destroying its data keys; the erased customer as it now
        reads. NotFound; 409 `customer_has_active_subscription` or `payment_in_flight`."""
        async with self._db.transaction() as conn:
            row = await self._customers.get(conn, customer_id=customer_id, lock=True)
            if row is None:
                raise NotFound(f"no customer {customer_id}", param="customer_id")
            if row.erased_at is not None:
                return _customer(row, None)
            subscribed, in_flight = await self._customers.erasure_blockers(
                conn, customer_id=customer_id
            )
            if subscribed:
                raise StillInUse(
                    "the customer has a subscription that is not cancelled; cancel it first",
                    code="customer_has_active_subscription",
                    param="customer_id",
                )
            if in_flight:
                raise StillInUse(
                    "a payment of the customer is still processing; erase it once settled",
                    code="payment_in_flight",
                    param="customer_id",
                )
            detached = await self._methods.detach_all(
                conn, customer_id=customer_id, principal=principal
            )
            erased = await self._customers.erase(conn, customer_id=customer_id, principal=principal)
            destroyed = await self._keyring.destroy_customer_keys(conn, customer_id=customer_id)
            details = {
                "data_keys_destroyed": destroyed,
                "payment_methods_detached": [str(m.id) for m in detached],
            }
            await self._audit.record(
                conn,
                entity_type=ENTITY,
                entity_ids=[customer_id],
                action=AuditAction.ERASE,
                details=details,
                principal=principal,
            )
            payload = {
                "id": str(customer_id),
                "object": "customer",
                "erased": True,
                "erased_at": erased.erased_at.isoformat() if erased.erased_at else None,
                **details,
            }
            who = (principal.api_key_id, principal.correlation_id)
            events = [
                Event("payment_method.detached", "payment_method", m.id, m.public(), *who)
                for m in detached
            ]
            events.append(Event("customer.erased", "customer", customer_id, payload, *who))
            await self._outbox.add(conn, events=events)
        return _customer(erased, None)


def _customer(row: CustomerRow, profile: Profile | None) -> Customer:
    return Customer(
        id=row.id,
        profile=profile,
        consent=row.consent,
        metadata=row.metadata,
        test_clock_id=row.test_clock_id,
        created_at=row.created_at,
        erased_at=row.erased_at,
    )
