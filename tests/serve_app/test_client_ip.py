"""`serve_app/client_ip.py`: whether a client came over TLS, as far as trusted proxies vouch.
An untrusted peer's `X-Forwarded-Proto` counts for nothing; a trusted proxy's `https` on any
hop does (a forged `https` only adds `Secure`; a forged `http` cannot remove it)."""

from __future__ import annotations

import pytest
from starlette.types import Scope

from serve_app.client_ip import ClientAddress

PROXY = "10.0.0.5"


def _scope(peer: str, scheme: str = "http", proto: str | None = None) -> Scope:
    headers = [] if proto is None else [(b"x-forwarded-proto", proto.encode())]
    return {"type": "http", "scheme": scheme, "client": (peer, 40000), "headers": headers}


@pytest.mark.parametrize(
    ("peer", "scheme", "proto", "tls"),
    [
        ("203.0.113.9", "https", None, True),
        ("203.0.113.9", "http", None, False),
        ("203.0.113.9", "http", "https", False),
        (PROXY, "http", "https", True),
        (PROXY, "http", "HTTPS", True),
        (PROXY, "http", "http", False),
        (PROXY, "http", "http, https", True),
        (PROXY, "http", "https, http", True),
        (PROXY, "http", None, False),
    ],
)
def test_over_tls(peer: str, scheme: str, proto: str | None, tls: bool) -> None:
    clients = ClientAddress(("10.0.0.0/8",))
    assert clients.over_tls(_scope(peer, scheme, proto)) is tls


def test_no_trusted_proxy_means_the_connection_alone_decides() -> None:
    clients = ClientAddress(())
    assert clients.over_tls(_scope(PROXY, "http", "https")) is False
    assert clients.over_tls(_scope(PROXY, "https")) is True
