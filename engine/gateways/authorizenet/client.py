"""HTTP to Authorize.Net: one pooled aiohttp session per process, a timeout on every call, and
every transport failure translated into `GatewayError` here.

`ambiguous` follows what the gateway may have done: a call that never connected cannot have
acted (`ambiguous=False`); a money-moving call that connected and then timed out, lost its
connection or got no readable answer may have (`ambiguous=True`). Read-only calls are never
ambiguous. Errors name the failure's type, never the request, so neither a card number nor the
transaction key can reach a message or a log.
"""

from __future__ import annotations

import aiohttp

from engine.gateways.authorizenet import wire
from engine.gateways.authorizenet.settings import AuthorizeNetSettings
from engine.gateways.base import GatewayError

HEADERS = {"Content-Type": "application/json"}


def open_session(settings: AuthorizeNetSettings) -> aiohttp.ClientSession:
    """The process's session to the gateway. Must run inside the event loop that will use it
    (aiohttp binds its session there)."""
    connector = aiohttp.TCPConnector(
        limit=settings.connections,
        limit_per_host=settings.connections,
        # Authorize.Net answers through a CDN whose addresses change; don't pin one for long.
        ttl_dns_cache=60,
    )
    return aiohttp.ClientSession(connector=connector)


class AuthorizeNetClient:
    """Posts one JSON request to the API and returns its decoded answer."""

    def __init__(self, session: aiohttp.ClientSession, settings: AuthorizeNetSettings) -> None:
        self._session = session
        self._url = settings.url
        # `sock_connect` bounds the TCP (and TLS) connect alone, so a connect timeout is told
        # apart from a timeout after the request went out; `total` bounds the whole call,
        # a wait for a pooled connection included.
        self._timeout = aiohttp.ClientTimeout(
            total=settings.timeout_s, sock_connect=settings.connect_timeout_s
        )

    async def call(self, payload: wire.Json, *, moves_money: bool) -> wire.Json:
        """The answer to `payload`. Raises `GatewayError` for transport trouble."""
        try:
            async with self._session.post(
                self._url, data=wire.encode(payload), headers=HEADERS, timeout=self._timeout
            ) as response:
                status = response.status
                body = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise GatewayError(
                f"authorizenet: could not connect ({type(exc).__name__})", ambiguous=False
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayError(
                f"authorizenet: no answer ({type(exc).__name__})", ambiguous=moves_money
            ) from exc
        if status != 200:
            raise GatewayError(f"authorizenet: HTTP {status}", ambiguous=moves_money)
        try:
            return wire.decode(body)
        except ValueError as exc:
            raise GatewayError("authorizenet: unreadable answer", ambiguous=moves_money) from exc
