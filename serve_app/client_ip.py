"""The client's address: the peer's, or, when the peer is a trusted proxy (HAProxy in front),
the nearest untrusted address its `X-Forwarded-For` names; and whether the client's own
connection was TLS (directly, or as a trusted proxy's `X-Forwarded-Proto` says)."""

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
        """`https` when the request came over TLS (`over_tls`): to us, or to the trusted proxy
        in front, whose own hop to us is plain HTTP."""
        return "https" if self.over_tls(scope) else str(scope.get("scheme", "http"))

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

    def over_tls(self, scope: Scope) -> bool:
        """Whether the client reached us over TLS: this connection's scheme, or, from a trusted
        proxy, any hop of its `X-Forwarded-Proto` saying `https`. Any hop, not the first or
        the last: a forged `https` only adds `Secure` to a cookie (which then breaks only the
        forger's own session), while a forged `http` must never take it away."""
        if scope.get("scheme") in ("https", "wss"):
            return True
        client = scope.get("client")
        if client is None or not self._is_trusted(client[0]):
            return False
        forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-proto")
        return any(p.strip().lower() == "https" for p in forwarded.decode("latin-1").split(","))
