"""The OpenAPI document as built, without a cluster: what the fuzz test relies on it saying."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from engine.config import Settings
from schema.api.common import CURRENCY_SPELLINGS, MAX_AMOUNT_MARK
from serve_app.app import create_app

MAX_AMOUNT = 12_345


def _document() -> dict[str, Any]:
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
        secret_key=SecretStr("openapi-test-" + "x" * 32),
        max_amount=MAX_AMOUNT,
    )
    return create_app(settings).openapi()


def test_every_operation_documents_its_error_statuses() -> None:
    document = _document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            if path.startswith("/api/"):
                assert {"400", "401", "403", "429", "503"} <= statuses, (method, path)
            if method in ("post", "put", "patch"):
                assert {"413", "415"} <= statuses, (method, path)
    money = document["paths"]["/api/payments/purchase"]["post"]["responses"]
    assert {"402", "409", "422", "502", "504"} <= set(money)
    assert "503" in document["paths"]["/health"]["get"]["responses"]


def test_amounts_carry_the_deployments_maximum() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    assert schemas["PaymentCreate"]["properties"]["amount"]["maximum"] == MAX_AMOUNT
    assert MAX_AMOUNT_MARK not in str(document)


def test_the_document_states_what_validation_checks() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    payment = schemas["PaymentCreate"]["properties"]
    assert payment["currency"]["enum"] == CURRENCY_SPELLINGS
    card = schemas["CardCreate"]["properties"]
    assert card["number"]["format"] == "card-number"
    assert card["cvc"]["anyOf"][0]["pattern"] == "^[0-9]{3,4}$"
    assert schemas["CustomerUpdate"]["minProperties"] == 1
    # Update fields that refuse null do not offer it.
    assert "anyOf" not in schemas["EndpointUpdate"]["properties"]["url"]
    key = document["paths"]["/api/payments/purchase"]["post"]["parameters"][0]
    assert key["name"] == "Idempotency-Key"
    assert key["schema"]["maxLength"] == 255
    assert "not" in key["schema"]
