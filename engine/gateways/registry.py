"""The gateways a process talks to: built by name from its settings, in order of preference.

A registry maps a gateway's name (`PAYGRID_GATEWAYS`) to a factory that builds it from the
settings and the resources a process shares among its gateways. Adding an adapter is one entry
in `builtin_registry`: its module holds the adapter and reads its own settings.

`Gateways` is what a process built: each gateway by name (a payment's recorded gateway is where
its captures, voids, refunds and lookups go), and the ordered candidates for a new payment by
currency and card brand (`PAYGRID_GATEWAY_ROUTES`), which failover walks in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from redis.asyncio import Redis

from engine.config import Settings
from engine.errors import InternalError
from engine.gateways.authorizenet import AuthorizeNetSettings, open_authorizenet
from engine.gateways.base import Gateway, close_gateway
from engine.gateways.sandbox import SandboxGateway


@dataclass(frozen=True, slots=True)
class GatewayResources:
    """What the gateways of one process share."""

    redis: Redis


# Async: an adapter may open its HTTP session, which belongs to the event loop that uses it.
GatewayFactory = Callable[[Settings, GatewayResources], Awaitable[Gateway]]

CARD_BRANDS = ("visa", "mastercard", "amex", "discover", "jcb", "diners", "unionpay")
ALL_OPERATIONS = ("purchase", "authorize", "capture", "void", "refund")


@dataclass(frozen=True, slots=True)
class GatewayCapabilities:
    """What a gateway takes, as `GET /api/payments/methods` lists it; `currencies` is ("*",)
    for every currency paygrid knows."""

    methods: tuple[str, ...]
    currencies: tuple[str, ...]
    brands: tuple[str, ...]
    supports: tuple[str, ...] = ALL_OPERATIONS
    # Moves no real money: test clocks exist only while every configured gateway is one.
    sandbox: bool = False
    # Operations the gateway deduplicates by our reference: a repeat cannot act twice, so one
    # that never reached the gateway may be retried (engine/gateways/retry.py).
    deduplicates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayEntry:
    """A registered gateway: how to build it, and what it takes."""

    factory: GatewayFactory
    capabilities: GatewayCapabilities


# The sandbox keeps the first decision per reference; Authorize.Net answers a repeated capture
# or void as already done (311, 310) and a refund repeated in its duplicate window with the
# original (its invoice number is our reference).
_SANDBOX_CAPABILITIES = GatewayCapabilities(
    ("card", "token", "bank", "wallet"),
    ("*",),
    CARD_BRANDS,
    sandbox=True,
    deduplicates=("capture", "void", "refund"),
)
# An Authorize.Net merchant account settles in one of these (route the others elsewhere).
_AUTHORIZENET_CAPABILITIES = GatewayCapabilities(
    ("card", "token"),
    ("USD", "CAD", "EUR", "GBP", "AUD", "NZD"),
    ("visa", "mastercard", "amex", "discover", "jcb", "diners"),
    deduplicates=("capture", "void", "refund"),
)


async def _sandbox(name: str, settings: Settings, resources: GatewayResources) -> Gateway:
    return SandboxGateway(
        resources.redis,
        name=name,
        latency_ms=settings.sandbox_latency_ms,
        timeout_rate=settings.sandbox_timeout_rate,
    )


async def _authorizenet(settings: Settings, resources: GatewayResources) -> Gateway:
    # Its own settings (PAYGRID_AUTHORIZENET_*); missing credentials stop start-up, named.
    return await open_authorizenet(AuthorizeNetSettings())


def builtin_registry() -> GatewayRegistry:
    """Every gateway paygrid ships. `sandbox_b` is a second, independent sandbox (its own
    records) for failover drills and tests."""
    return GatewayRegistry(
        {
            "sandbox": GatewayEntry(partial(_sandbox, "sandbox"), _SANDBOX_CAPABILITIES),
            "sandbox_b": GatewayEntry(partial(_sandbox, "sandbox_b"), _SANDBOX_CAPABILITIES),
            "authorizenet": GatewayEntry(_authorizenet, _AUTHORIZENET_CAPABILITIES),
        }
    )


class GatewayRegistry:
    """Gateway factories by name."""

    def __init__(self, entries: Mapping[str, GatewayEntry]) -> None:
        self._entries = dict(entries)

    @property
    def names(self) -> list[str]:
        """The names a gateway is registered under."""
        return sorted(self._entries)

    def sandboxes_only(self, names: Sequence[str]) -> bool:
        """Whether every gateway of `names` is a sandbox (moves no real money)."""
        return all(n in self._entries and self._entries[n].capabilities.sandbox for n in names)

    async def build(self, settings: Settings, resources: GatewayResources) -> Gateways:
        """The gateways `settings.gateways` names, in that order; a name nothing is
        registered under stops start-up, named."""
        unknown = [n for n in settings.gateways if n not in self._entries]
        if unknown:
            raise ValueError(
                f"PAYGRID_GATEWAYS names unknown gateways {unknown}; known: {self.names}"
            )
        entries = [self._entries[name] for name in settings.gateways]
        return Gateways(
            [await e.factory(settings, resources) for e in entries],
            settings.gateway_routes,
            capabilities=[e.capabilities for e in entries],
        )


class Gateways:
    """The configured gateways of a process, by name and by route."""

    def __init__(
        self,
        gateways: list[Gateway],
        routes: Mapping[str, tuple[str, ...]] | None = None,
        *,
        capabilities: list[GatewayCapabilities] | None = None,
    ) -> None:
        if not gateways:
            raise ValueError("at least one gateway must be configured")
        self._by_name = {g.name: g for g in gateways}
        self._order = tuple(g.name for g in gateways)
        self._routes = dict(routes or {})
        self._capabilities = dict(
            zip(self._order, capabilities or [_SANDBOX_CAPABILITIES] * len(gateways), strict=True)
        )

    def wrapped(self, wrap: Callable[[Gateway, GatewayCapabilities], Gateway]) -> Gateways:
        """The same gateways, routes and capabilities, each seen through `wrap` (a meter, a
        retry), which is given the gateway and its capabilities."""
        return Gateways(
            [wrap(g, self._capabilities[g.name]) for g in self],
            self._routes,
            capabilities=[self._capabilities[name] for name in self._order],
        )

    async def aclose(self) -> None:
        """Close what the gateways hold open (an adapter's HTTP session)."""
        for gateway in self:
            await close_gateway(gateway)

    def capabilities(self, name: str) -> GatewayCapabilities:
        """What the configured gateway `name` takes."""
        return self._capabilities[name]

    def takes(self, name: str, method: str) -> bool:
        """Whether the configured gateway `name` takes payments of `method` (a
        `PaymentMethod.type`: card, token, bank, wallet)."""
        return method in self._capabilities[name].methods

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
