"""What the API tells about the configured gateways: what each takes, and its circuit as this
process last saw it (a memory read, so `/health` and `/api/payments/methods` stay cheap)."""

from __future__ import annotations

from engine.gateways.breaker import CircuitBreakers
from engine.gateways.registry import Gateways
from schema.api.payments import GatewayMethodsPublic
from schema.states import CircuitState


class GatewayDirectory:
    def __init__(self, gateways: Gateways, breakers: CircuitBreakers) -> None:
        self._gateways = gateways
        self._breakers = breakers

    def methods(self) -> list[GatewayMethodsPublic]:
        """Each configured gateway, in order of preference."""
        listed = []
        for name in self._gateways.names:
            can = self._gateways.capabilities(name)
            listed.append(
                GatewayMethodsPublic(
                    gateway=name,
                    methods=list(can.methods),
                    currencies=list(can.currencies),
                    brands=list(can.brands),
                    supports=list(can.supports),
                    circuit=self._breakers.state(name),
                )
            )
        return listed

    async def aclose(self) -> None:
        """Close the gateways (an adapter's HTTP session) when the process stops."""
        await self._gateways.aclose()

    def circuits(self) -> dict[str, CircuitState]:
        """Each configured gateway's circuit state."""
        return self._breakers.states(self._gateways.names)
