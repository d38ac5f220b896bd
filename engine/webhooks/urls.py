"""Webhook URL checks, SSRF included: a URL must be http(s) and resolve only to public
addresses. The operator may allow private and loopback ones (tests and local development do);
cloud metadata addresses are refused even then."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from engine.errors import InvalidRequest

_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(address.split("%", 1)[0])


async def check_url(url: str, *, allow_private: bool) -> str:
    """`url` if it may receive webhooks; InvalidRequest (param `url`) otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"url is malformed: {exc}", param="url") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("url must be an absolute http or https URL", param="url")
    if parts.username or parts.password:
        raise InvalidRequest("url must not carry credentials", param="url")
    if parts.scheme == "http" and not allow_private:
        raise InvalidRequest("url must use https", param="url")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except (OSError, UnicodeError) as exc:
        raise InvalidRequest(f"url host {parts.hostname} does not resolve", param="url") from exc
    addresses = {_ip(str(info[4][0])) for info in infos}
    if not addresses or addresses & _METADATA:
        raise InvalidRequest("url resolves to a cloud metadata address", param="url")
    if not allow_private and not all(a.is_global and not a.is_multicast for a in addresses):
        raise InvalidRequest(
            "url resolves to a private, loopback or link-local address", param="url"
        )
    return url


def allowed_address(address: str, *, allow_private: bool) -> bool:
    """Whether webhooks may connect to `address`."""
    ip = _ip(address)
    if ip in _METADATA:
        return False
    return allow_private or (ip.is_global and not ip.is_multicast)


class GuardedResolver(AbstractResolver):
    """Resolves webhook hosts at connect time and drops forbidden addresses, so a name that
    was public when registered cannot be re-pointed at an internal host (DNS rebinding)."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [
            r for r in found if allowed_address(r["host"], allow_private=self._allow_private)
        ]
        if not allowed:
            raise OSError(f"{host} resolves only to addresses webhooks may not reach")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
