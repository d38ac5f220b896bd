"""The client's address: the peer's, or, when the peer is a trusted proxy (HAProxy in front),
the nearest untrusted address its `X-Forwarded-For` names; and whether the client came over
TLS, which only a trusted proxy's `X-Forwarded-Proto` can say once TLS ends in front of us."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from starlette.types import Scope


class ClientAddress:
    def __init__(self, trusted_proxies: tuple[str, ...]) -> None:
        self._trusted: tuple[IPv4Network | IPv6Network, ...] = tuple(
            ip_network(n) for n in trusted_proxies
        )

    def _is_trusted(self, text: str) -> bool:
        try:
            address = ip_address(text)
        except ValueError:
            return False
        return any(address in n for n in self._trusted)

    def _from_trusted_peer(self, scope: Scope) -> bool:
        client = scope.get("client")
        return bool(self._trusted and client and self._is_trusted(client[0]))

    def scheme_of(self, scope: Scope) -> str:
        """`https` when the request came over TLS: to us, or, as a trusted proxy says in
        `X-Forwarded-Proto`, to the proxy in front (whose own hop to us is plain HTTP)."""
        scheme = str(scope.get("scheme", "http"))
        if scheme == "https" or not self._from_trusted_peer(scope):
            return scheme
        proto = [v for k, v in scope["headers"] if k == b"x-forwarded-proto"]
        # The last value is the one the nearest proxy set.
        return "https" if proto and proto[-1].strip().lower() == b"https" else scheme

    def of(self, scope: Scope) -> str | None:
        """The address the request came from, as far as the trusted proxies vouch."""
        client = scope.get("client")
        peer = client[0] if client else None
        if peer is None or not self._from_trusted_peer(scope):
            return peer
        forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
        hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
        # Read from the right: each trusted proxy appended the address it was connected from.
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer
