"""The OpenAPI document as built, without a cluster: what the fuzz test relies on it saying."""

from __future__ import annotations

import re
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
    for partial in ("CaptureCreate", "CaptureBody", "RefundCreate", "RefundBody"):
        (amount, _null) = schemas[partial]["properties"]["amount"]["anyOf"]
        assert amount["maximum"] == MAX_AMOUNT, partial
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


# Formats whose spelling bounds the string's length: no maxLength is needed beside them.
_BOUNDED_FORMATS = frozenset({"uuid", "date-time", "date"})


def _bounded_pattern(pattern: str) -> bool:
    """An anchored pattern without unbounded repetition (`*`, `+`, `{n,}`), nor an alternative
    outside its groups (which would escape the anchors), matches strings of bounded length."""
    if not (pattern.startswith("^") and pattern.endswith("$")) or pattern.endswith("\\$"):
        return False
    depth, in_class, i = 0, False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c in "*+" or (c == "|" and depth == 0) or re.match(r"\{[0-9]*,\}", pattern[i:]):
            return False
        i += 1
    return True


def _unbounded(
    node: object, schemas: dict[str, Any], where: str, seen: frozenset[str]
) -> list[str]:
    """Where, under `node`, a string has no maxLength, enum or const (nor a format or a pattern
    that bounds it), or an integer lacks a minimum or a maximum; each `$ref` is followed once
    per path."""
    if not isinstance(node, dict):
        return []
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _unbounded(schemas[name], schemas, f"{where}<{name}>", seen | {name})
    found: list[str] = []
    kind = node.get("type")
    fixed = "enum" in node or "const" in node
    if kind == "string" and not (
        fixed
        or "maxLength" in node
        or node.get("format") in _BOUNDED_FORMATS
        or _bounded_pattern(node.get("pattern", ""))
    ):
        found.append(f"{where}: string without maxLength")
    if kind == "integer" and not (
        fixed
        or (
            ("minimum" in node or "exclusiveMinimum" in node)
            and ("maximum" in node or "exclusiveMaximum" in node)
        )
    ):
        found.append(f"{where}: integer without both minimum and maximum")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for index, option in enumerate(node.get(key, [])):
            found += _unbounded(option, schemas, f"{where}/{key}[{index}]", seen)
    for name, value in node.get("properties", {}).items():
        found += _unbounded(value, schemas, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        found += _unbounded(node.get(key), schemas, f"{where}/{key}", seen)
    return found


def test_every_input_string_and_integer_is_bounded() -> None:
    """Every parameter and request body of every operation (issue 12): strings are
    length-bounded (or an enum, a constant, a uuid, a time or a pattern of bounded length),
    integers range-bounded; the offenders are listed."""
    document = _document()
    schemas = document["components"]["schemas"]
    offenders: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                offenders += _unbounded(
                    parameter["schema"], schemas, f"{where} {parameter['name']}", frozenset()
                )
            body = operation.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                offenders += _unbounded(content["schema"], schemas, f"{where} {media}", frozenset())
    assert not offenders, "\n".join(offenders)


def test_bounded_patterns() -> None:
    for bounded in ("^[0-9]{3,4}$", "^(unlimited|[1-9][0-9]{0,8}/[smh])$", r"^\+?[a-z]{2}$"):
        assert _bounded_pattern(bounded), bounded
    for unbounded in ("^[0-9]+$", "^a*$", "^a{2,}$", "^a|b$", "[0-9]{3}", r"^[^\x00]*$", ""):
        assert not _bounded_pattern(unbounded), unbounded
