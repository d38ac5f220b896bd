"""Create, read, find and rectify customers, their PII sealed at rest and every read audited.

Every customer keeps its profile (email, names, phone, address) only as ciphertext under its
own `customer_pii` data key, and its email as a keyed blind index (`engine/customers/sealing.py`);
the database refuses PII in clear (migration 0014). Each read that opens a profile writes a
`READ` audit entry (who, which customer, how) in the transaction that reads it, so nothing is
shown that was not audited. An erased customer reads with its PII null
(`engine/privacy/erasure.py`).
"""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from engine.audit.repository import AuditRepository
from engine.customers.models import Customer, CustomerRecord, Profile, ProfileChange
from engine.customers.repository import CustomerRepository, CustomerRow
from engine.customers.sealing import ProfileSealer
from engine.db.database import Database
from engine.errors import NotFound, StateError
from engine.events.outbox import Event, Outbox
from engine.keys.keyring import Keyring
from engine.principal import Principal
from engine.test_clocks.repository import TestClockRepository
from schema.states import AuditAction

ENTITY = "customers"


class CustomerService:
    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._sealer = ProfileSealer(keyring)
        self._repository = CustomerRepository()
        self._clocks = TestClockRepository()
        self._audit = AuditRepository()
        self._outbox = Outbox()

    async def create(self, record: CustomerRecord, principal: Principal) -> Customer:
        """A new customer with its profile sealed; NotFound for an unknown test clock."""
        customer_id = uuid4()
        async with self._db.transaction() as conn:
            if record.test_clock_id is not None:
                clock = await self._clocks.get(conn, clock_id=record.test_clock_id)
                if clock is None:
                    raise NotFound(f"no test clock {record.test_clock_id}", param="test_clock")
            sealed = await self._sealer.seal(conn, {customer_id: record.profile})
            row = await self._repository.insert_sealed(
                conn,
                customer_id=customer_id,
                sealed=sealed[customer_id],
                consent=record.consent,
                metadata=record.metadata,
                test_clock_id=record.test_clock_id,
                principal=principal,
            )
        return _customer(row, record.profile)

    async def get(self, customer_id: UUID, principal: Principal) -> Customer:
        """The customer with its profile opened (audited), or NotFound."""
        async with self._db.transaction() as conn:
            row = await self._row(conn, customer_id)
            profile = await self._sealer.open(conn, row)
            await self._audited_read(conn, [row], "retrieve", principal)
        return _customer(row, profile)

    async def find_by_email(
        self,
        email: str,
        principal: Principal,
        *,
        limit: int = 10,
        starting_after: UUID | None = None,
    ) -> tuple[list[Customer], bool]:
        """Customers with this email (any case), newest first, matched by the blind index,
        and whether more follow; each one shown is audited."""
        async with self._db.transaction() as conn:
            index = await self._sealer.email_index(conn, email)
            rows, has_more = await self._repository.page_by_email(
                conn, email_index=index, limit=limit, starting_after=starting_after
            )
            found = [_customer(row, await self._sealer.open(conn, row)) for row in rows]
            await self._audited_read(conn, rows, "email_lookup", principal)
        return found, has_more

    async def rectify(
        self, customer_id: UUID, change: ProfileChange, principal: Principal
    ) -> Customer:
        """Replace the profile fields `change` gives, sealed again under the customer's key,
        the email's index updated; the update is audited (the trigger) and evented. NotFound,
        or 422 `customer_erased` for an erased customer."""
        async with self._db.transaction() as conn:
            row = await self._row(conn, customer_id, lock=True)
            current = await self._sealer.open(conn, row)
            if current is None:
                raise StateError(
                    f"customer {customer_id} is erased", code="customer_erased", param="customer_id"
                )
            profile = change.applied_to(current)
            sealed = await self._sealer.reseal(conn, row, profile)
            row = await self._repository.update_profile(
                conn, customer_id=customer_id, sealed=sealed, principal=principal
            )
            fields = sorted(change.fields)
            payload = {"id": str(customer_id), "object": "customer", "fields": fields}
            await self._outbox.add(
                conn,
                events=[
                    Event(
                        "customer.updated",
                        "customer",
                        customer_id,
                        payload,
                        principal.api_key_id,
                        principal.correlation_id,
                    )
                ],
            )
        return _customer(row, profile)

    async def _row(
        self, conn: asyncpg.Connection, customer_id: UUID, *, lock: bool = False
    ) -> CustomerRow:
        row = await self._repository.get(conn, customer_id=customer_id, lock=lock)
        if row is None:
            raise NotFound(f"no customer {customer_id}", param="customer_id")
        return row

    async def _audited_read(
        self, conn: asyncpg.Connection, rows: list[CustomerRow], via: str, principal: Principal
    ) -> None:
        await self._audit.record(
            conn,
            entity_type=ENTITY,
            entity_ids=[r.id for r in rows if r.erased_at is None],
            action=AuditAction.READ,
            details={"fields": "profile", "via": via},
            principal=principal,
        )


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
