"""The gateways a process talks to: built by name from its settings, in order of preference.

A registry maps a gateway's name (`PAYGRID_GATEWAYS`) to a factory that builds it from the
settings and the resources a process shares among its gateways. Adding an adapter is one entry
in `builtin_registry`: its module holds the adapter and reads its own settings.

`Gateways` is what a process built: each gateway by name (a payment's recorded gateway is where
its captures, voids, refunds and lookups go), and the ordered candidates for a new payment by
currency and card brand (`PAYGRID_GATEWAY_ROUTES`), which failover walks in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial

from redis.asyncio import Redis

from engine.config import Settings
from engine.errors import InternalError
from engine.gateways.base import Gateway
from engine.gateways.sandbox import SandboxGateway


@dataclass(frozen=True, slots=True)
class GatewayResources:
    """What the gateways of one process share."""

    redis: Redis


GatewayFactory = Callable[[Settings, GatewayResources], Gateway]


def _sandbox(name: str, settings: Settings, resources: GatewayResources) -> Gateway:
    return SandboxGateway(
        resources.redis,
        name=name,
        latency_ms=settings.sandbox_latency_ms,
        timeout_rate=settings.sandbox_timeout_rate,
    )


def builtin_registry() -> GatewayRegistry:
    """Every gateway paygrid ships. `sandbox_b` is a second, independent sandbox (its own
    records) for failover drills and tests."""
    return GatewayRegistry(
        {
            "sandbox": partial(_sandbox, "sandbox"),
            "sandbox_b": partial(_sandbox, "sandbox_b"),
        }
    )


class GatewayRegistry:
    """Gateway factories by name."""

    def __init__(self, factories: Mapping[str, GatewayFactory]) -> None:
        self._factories = dict(factories)

    @property
    def names(self) -> list[str]:
        """The names a factory is registered under."""
        return sorted(self._factories)

    def build(self, settings: Settings, resources: GatewayResources) -> Gateways:
        """The gateways `settings.gateways` names, in that order; a name nothing is
        registered under stops start-up, named."""
        unknown = [n for n in settings.gateways if n not in self._factories]
        if unknown:
            raise ValueError(
                f"PAYGRID_GATEWAYS names unknown gateways {unknown}; known: {self.names}"
            )
        built = [self._factories[name](settings, resources) for name in settings.gateways]
        return Gateways(built, settings.gateway_routes)


class Gateways:
    """The configured gateways of a process, by name and by route."""

    def __init__(
        self, gateways: list[Gateway], routes: Mapping[str, tuple[str, ...]] | None = None
    ) -> None:
        if not gateways:
            raise ValueError("at least one gateway must be configured")
        self._by_name = {g.name: g for g in gateways}
        self._order = tuple(g.name for g in gateways)
        self._routes = dict(routes or {})

    def __iter__(self) -> Iterator[Gateway]:
        return (self._by_name[name] for name in self._order)

    @property
    def names(self) -> tuple[str, ...]:
        """The configured names, in order of preference."""
        return self._order

    @property
    def primary(self) -> Gateway:
        """The first configured gateway: what verifies cards being saved."""
        return self._by_name[self._order[0]]

    def get(self, name: str) -> Gateway:
        """The gateway called `name`: a payment's recorded gateway. One no longer configured is
        an operator's error, not the client's."""
        gateway = self._by_name.get(name)
        if gateway is None:
            raise InternalError(f"gateway {name!r} is not configured in this process")
        return gateway

    def route(self, currency: str, brand: str | None) -> tuple[str, ...]:
        """The gateways a new payment in `currency` with a card of `brand` may go to, first
        choice first: the most specific route (currency and brand, currency, "*"), else every
        configured gateway."""
        for key in (f"{currency}/{brand}" if brand else None, currency, "*"):
            if key is not None and key in self._routes:
                return self._routes[key]
        return self._order
