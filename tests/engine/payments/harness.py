"""The one place engine tests build a `PaymentService`, wired as `engine/runtime/shard.py` wires
a shard, but with a fake (or sandbox) gateway and a clock the test moves.

Every engine test of the money path goes through `make_service` (directly or through `Rig`), so
when the service's constructor changes only this module follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pydantic import SecretStr

from engine.config import Settings
from engine.db.database import Database
from engine.fencing.ownership import SlotOwnership
from engine.gateways.base import Gateway
from engine.gateways.breaker import CircuitBreakers, local_breakers
from engine.gateways.registry import GatewayCapabilities, Gateways
from engine.keys.keyring import Keyring
from engine.keys.master import new_master_key
from engine.ledger.book import LedgerBook
from engine.ledger.entries import LedgerRepository
from engine.payments.commands import Command, CommandResult
from engine.payments.service import PaymentService
from engine.payments.steps import PaymentSteps
from engine.sharding import slots_of
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import FakeClock, FakeGateway

AUTHORIZATION_WINDOW_H = 168
IDLE_EVICT_S = 300.0
# One master key for every engine test of the money path, so a restarted shard (and a test's
# own keyring) opens what an earlier one sealed.
MASTER_KEY = new_master_key()


def engine_settings(
    *,
    authorization_window_h: int = AUTHORIZATION_WINDOW_H,
    idempotency_ttl_h: int = 24,
    shard_idle_evict_s: float = IDLE_EVICT_S,
) -> Settings:
    """Settings with every knob the money path reads set explicitly (none from the
    environment)."""
    return Settings(
        authorization_window_h=authorization_window_h,
        idempotency_ttl_h=idempotency_ttl_h,
        shard_idle_evict_s=shard_idle_evict_s,
        max_amount=99_999_999,
        master_key=SecretStr(MASTER_KEY),
    )


class ServiceUnderTest(NamedTuple):
    service: PaymentService
    book: LedgerBook


async def make_service(
    db: Database,
    gateway: Gateway,
    clock: FakeClock,
    *,
    shard: int = 0,
    shards: int = 1,
    settings: Settings | None = None,
    more_gateways: tuple[Gateway, ...] = (),
    breakers: CircuitBreakers | None = None,
    capabilities: list[GatewayCapabilities] | None = None,
) -> ServiceUnderTest:
    """Shard `shard` of `shards` (its slots claimed, as a starting shard claims them): its
    payment service and ledger book, both on `clock`. New payments go to `gateway` unless
    `settings` routes them to one of `more_gateways`; each gateway takes what `capabilities`
    says (a sandbox's, by default)."""
    settings = settings or engine_settings()
    steps = PaymentSteps(
        settings=settings,
        gateways=Gateways(
            [gateway, *more_gateways], settings.gateway_routes, capabilities=capabilities
        ),
        breakers=breakers or local_breakers(settings),
        shard=shard,
        clock=clock.now,
        keyring=Keyring.from_settings(settings),
    )
    book = LedgerBook(
        db, LedgerRepository(), idle_evict_s=settings.shard_idle_evict_s, clock=clock.monotonic
    )
    ownership = SlotOwnership(name=f"ledger-shard-{shard}", slots=slots_of(shard, shards))
    service = PaymentService(
        db=db,
        steps=steps,
        book=book,
        ownership=ownership,
        stage_transactions=settings.shard_stage_transactions,
        clock=clock.now,
    )
    await service.start()
    return ServiceUnderTest(service, book)


@dataclass
class Rig:
    """One shard's service under test with its collaborators, and commands of one API key."""

    db: Database
    gateway: FakeGateway
    clock: FakeClock
    service: PaymentService
    book: LedgerBook
    shard: int
    shards: int
    requests: Requests
    settings: Settings

    @classmethod
    async def build(
        cls,
        db: Database,
        requests: Requests,
        *,
        shard: int = 0,
        shards: int = 1,
        gateway: FakeGateway | None = None,
        clock: FakeClock | None = None,
        settings: Settings | None = None,
        more_gateways: tuple[Gateway, ...] = (),
        breakers: CircuitBreakers | None = None,
    ) -> Rig:
        gateway = gateway or FakeGateway()
        clock = clock or FakeClock()
        settings = settings or engine_settings()
        service, book = await make_service(
            db,
            gateway,
            clock,
            shard=shard,
            shards=shards,
            settings=settings,
            more_gateways=more_gateways,
            breakers=breakers,
        )
        return cls(db, gateway, clock, service, book, shard, shards, requests, settings)

    async def restarted(self) -> Rig:
        """The same shard after a restart: a new service (claiming the same slots) and an empty
        book, the same gateway, clock and database."""
        return await Rig.build(
            self.db,
            self.requests,
            shard=self.shard,
            shards=self.shards,
            gateway=self.gateway,
            clock=self.clock,
            settings=self.settings,
        )

    async def one(self, command: Command) -> CommandResult:
        [result] = await self.service.execute([command])
        return result
