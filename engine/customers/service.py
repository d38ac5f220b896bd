"""Create and read customers, their PII sealed at rest.

A customer made here keeps its profile (email, names, phone, address) only as ciphertext under
its own `customer_pii` data key, bound to its row; its email is also kept as a keyed blind index
(`customer_email`), so a lookup by email matches without any column holding the address.
Destroying the customer's key leaves the profile unreadable (crypto-shredding). Customers a
purchase creates inline still hold their PII in clear; reads serve both forms.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg
import orjson

from engine.customers.models import Customer, CustomerRecord, Profile
from engine.customers.repository import CustomerRepository, CustomerRow
from engine.db.database import Database
from engine.errors import NotFound
from engine.keys.cipher import row_binding
from engine.keys.keyring import Keyring
from engine.principal import Principal
from engine.test_clocks.repository import TestClockRepository

KEY_PURPOSE = "customer_pii"
EMAIL_INDEX = "customer_email"
_TABLE = "customers"


def _aad(customer_id: UUID) -> bytes:
    return row_binding(_TABLE, "ciphertext", customer_id)


def normalized_email(email: str) -> str:
    """The form an email is indexed in: addresses differing only in case are one customer's."""
    return email.strip().lower()


class CustomerService:
    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring
        self._repository = CustomerRepository()
        self._clocks = TestClockRepository()

    async def create(self, record: CustomerRecord, principal: Principal) -> Customer:
        """A new customer with its profile sealed; NotFound for an unknown test clock."""
        customer_id = uuid4()
        async with self._db.transaction() as conn:
            if record.test_clock_id is not None:
                clock = await self._clocks.get(conn, clock_id=record.test_clock_id)
                if clock is None:
                    raise NotFound(f"no test clock {record.test_clock_id}", param="test_clock")
            key = await self._keyring.customer_key(
                conn, purpose=KEY_PURPOSE, customer_id=customer_id
            )
            index = await self._keyring.blind_index(
                conn, index=EMAIL_INDEX, value=normalized_email(record.profile.email)
            )
            sealed = key.encrypt(orjson.dumps(record.profile.sealed_form()), aad=_aad(customer_id))
            row = await self._repository.insert_sealed(
                conn,
                customer_id=customer_id,
                data_key_id=key.id,
                ciphertext=sealed,
                email_index=index,
                consent=record.consent,
                metadata=record.metadata,
                test_clock_id=record.test_clock_id,
                principal=principal,
            )
        return _customer(row, record.profile)

    async def get(self, customer_id: UUID) -> Customer:
        """The customer with its profile opened, or NotFound."""
        async with self._db.connection() as conn:
            row = await self._repository.get(conn, customer_id=customer_id)
            if row is None:
                raise NotFound(f"no customer {customer_id}", param="customer_id")
            profile = await self._profile(conn, row)
        return _customer(row, profile)

    async def find_by_email(self, email: str, *, limit: int = 10) -> list[Customer]:
        """Customers with this email (any case), newest first, matched by the blind index
        for sealed customers and in clear for those a purchase created inline."""
        async with self._db.connection() as conn:
            index = await self._keyring.blind_index(
                conn, index=EMAIL_INDEX, value=normalized_email(email)
            )
            rows = await self._repository.by_email(
                conn, email_index=index, email=email, limit=limit
            )
            return [_customer(row, await self._profile(conn, row)) for row in rows]

    async def _profile(self, conn: asyncpg.Connection, row: CustomerRow) -> Profile:
        fields = row.clear
        if row.data_key_id is not None and row.ciphertext is not None:
            key = await self._keyring.data_key(conn, key_id=row.data_key_id)
            fields = orjson.loads(key.decrypt(row.ciphertext, aad=_aad(row.id)))
        return Profile(
            email=fields["email"],
            first_name=fields["first_name"],
            last_name=fields["last_name"],
            phone=fields["phone"],
            address=fields["address"],
        )


def _customer(row: CustomerRow, profile: Profile) -> Customer:
    return Customer(
        id=row.id,
        profile=profile,
        consent=row.consent,
        metadata=row.metadata,
        test_clock_id=row.test_clock_id,
        created_at=row.created_at,
    )
