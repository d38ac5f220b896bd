"""The gateway registry: `PAYGRID_GATEWAYS` names the gateways to build, in order; routes pick
the ordered candidates of a payment by currency and brand; an unknown name stops start-up with
the setting named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from engine.config import Settings
from engine.errors import InternalError
from engine.gateways.registry import GatewayRegistry, GatewayResources, builtin_registry
from engine.gateways.sandbox import SandboxGateway


def test_the_gateways_setting_reads_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYGRID_GATEWAYS", "sandbox_b, sandbox")
    assert Settings().gateways == ("sandbox_b", "sandbox")
    monkeypatch.delenv("PAYGRID_GATEWAYS")
    assert Settings().gateways == ("sandbox",)


def test_routes_read_as_json_and_must_name_configured_gateways(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYGRID_GATEWAYS", "sandbox,sandbox_b")
    monkeypatch.setenv("PAYGRID_GATEWAY_ROUTES", '{"EUR": ["sandbox_b", "sandbox"]}')
    assert Settings().gateway_routes == {"EUR": ("sandbox_b", "sandbox")}

    with pytest.raises(ValidationError, match="gateway_routes"):
        Settings(gateways=("sandbox",), gateway_routes={"EUR": ("sandbox_b",)})
    with pytest.raises(ValidationError, match="twice"):
        Settings(gateways=("sandbox", "sandbox"))


async def test_the_registry_builds_the_configured_gateways_in_order(redis: Redis) -> None:
    gateways = await builtin_registry().build(
        Settings(gateways=("sandbox_b", "sandbox")), GatewayResources(redis)
    )

    assert gateways.names == ("sandbox_b", "sandbox")
    assert [g.name for g in gateways] == ["sandbox_b", "sandbox"]
    assert gateways.primary.name == "sandbox_b"
    assert isinstance(gateways.get("sandbox"), SandboxGateway)
    with pytest.raises(InternalError, match="authorizenet"):
        gateways.get("authorizenet")
    with pytest.raises(ValueError, match="PAYGRID_GATEWAYS names unknown gateways"):
        await GatewayRegistry({}).build(Settings(), GatewayResources(redis))


async def test_a_payment_routes_by_currency_and_brand_first(redis: Redis) -> None:
    settings = Settings(
        gateways=("sandbox", "sandbox_b"),
        gateway_routes={
            "USD/amex": ("sandbox_b",),
            "EUR": ("sandbox_b", "sandbox"),
            "*": ("sandbox",),
        },
    )
    gateways = await builtin_registry().build(settings, GatewayResources(redis))
    assert gateways.route("USD", "amex") == ("sandbox_b",)
    assert gateways.route("USD", "visa") == ("sandbox",)
    assert gateways.route("EUR", "amex") == ("sandbox_b", "sandbox")
    assert gateways.route("JPY", None) == ("sandbox",)

    unrouted = await builtin_registry().build(
        Settings(gateways=("sandbox", "sandbox_b")), GatewayResources(redis)
    )
    assert unrouted.route("USD", "visa") == ("sandbox", "sandbox_b")


async def test_authorizenet_is_built_from_its_own_settings(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(gateways=("authorizenet", "sandbox"))
    with pytest.raises(ValueError, match="PAYGRID_AUTHORIZENET_API_LOGIN_ID"):
        await builtin_registry().build(settings, GatewayResources(redis))

    monkeypatch.setenv("PAYGRID_AUTHORIZENET_API_LOGIN_ID", "login")
    monkeypatch.setenv("PAYGRID_AUTHORIZENET_TRANSACTION_KEY", "key")
    gateways = await builtin_registry().build(settings, GatewayResources(redis))
    try:
        assert gateways.primary.name == "authorizenet"
        assert "JPY" not in gateways.capabilities("authorizenet").currencies
    finally:
        await gateways.aclose()
