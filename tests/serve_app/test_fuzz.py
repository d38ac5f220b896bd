"""Schemathesis against the running API: every operation of `/openapi.json`, called with a key
that holds every scope and no rate limit, all checks on. A case fails on a 5xx, a status or body
the schema does not document, a schema-valid request the API refuses (positive data acceptance),
or a response that echoes a card number the request sent.

`make fuzz` runs it (30 examples per operation, `PAYGRID_FUZZ_EXAMPLES`). `make test` skips it, by
name, until the schema says exactly what validation accepts: with `KNOWN_REJECTED` naming only
the operations one run found, a few examples per operation turn up a different schema-valid
request refused on another operation from run to run, and CI must not depend on the draw.

Left out, because each acts on the whole instance and the session's other tests share it: pausing,
resuming and clearing the webhook queues, and the bulk retry of failed deliveries. Everything else
the fuzzer changes is its own (ids it sends are random, so it can only delete, revoke or erase
what it made or nothing at all); the webhook endpoints it creates are deleted afterwards, so
other tests' events are not delivered to its made-up URLs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.transport import Response
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.ratelimit.limits import UNLIMITED

EXAMPLES = int(os.environ.get("PAYGRID_FUZZ_EXAMPLES", "0"))
pytestmark = pytest.mark.skipif(
    EXAMPLES == 0,
    reason="make fuzz: the schema still promises more than validation accepts (README: Fuzzing)",
)
# The cap on the whole run; `make test` must stay bounded whatever the API answers.
TOTAL_TIMEOUT_S = max(300, EXAMPLES * 60)
EXCLUDED = {
    ("POST", "/api/queues/pause"),
    ("POST", "/api/queues/resume"),
    ("DELETE", "/api/queues/clear"),
    ("POST", "/api/webhooks/deliveries/retry"),
}
# Operations whose schema still promises more than validation accepts (schemathesis ST202 only:
# a schema-valid request answered 400), each with what it sent. Open work of issue 12: the models
# must say these in the OpenAPI document. Any other failure on them, and any failure at all on
# every other operation, fails the test.
KNOWN_REJECTED = {
    # A Luhn-failing card number (JSON Schema cannot say Luhn).
    "POST /api/payments/purchase",
    "POST /api/payments/authorize",
    "POST /api/payment-methods",
    "POST /api/subscriptions",
    # Amounts and times as 1896.0: JSON Schema's integer admits them, strict ints do not.
    "POST /api/payments/capture",
    "POST /api/test-clocks",
    "POST /api/test-clocks/{test_clock_id}/advance",
    # An Idempotency-Key outside printable characters or with the reserved `paygrid:` prefix.
    "POST /api/payments/void",
    "POST /api/payments/refund",
    "POST /api/database/orders",
    "POST /api/database/transactions",
    "POST /api/database/transactions/{transaction_id}/refunds",
    "PUT /api/subscriptions/{subscription_id}",
    # `pm_…` ids, e-mail syntax, `{}` updates, empty or unknown event types, metadata key
    # lengths, `to` before `from`, IP networks: constraints not yet in the document.
    "GET /api/payment-methods/{payment_method_id}",
    "DELETE /api/payment-methods/{payment_method_id}",
    "POST /api/database/customers",
    "GET /api/database/customers",
    "PUT /api/database/customers/{customer_id}",
    "POST /api/webhooks/endpoints",
    "PUT /api/webhooks/endpoints/{endpoint_id}",
    "POST /api/plans",
    "POST /api/reports/transaction-summary",
    "POST /api/keys",
}
_CODES = re.compile(r"- (ST\d+) ")
_DIGITS = re.compile(r"^\d{12,19}$")


def _card_numbers(value: Any) -> Iterator[str]:
    """Every string of 12 to 19 digits in a request body: what a card number looks like."""
    if isinstance(value, str) and _DIGITS.match(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _card_numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _card_numbers(item)


def no_card_number_echoed(ctx: Any, response: Response, case: Case[Any]) -> bool | None:
    """Fails a case whose response carries a card number from its request."""
    text = response.content.decode("utf-8", "replace")
    for number in _card_numbers(case.body):
        if number in text:
            raise Failure(
                operation=case.operation.label,
                title="Card number echoed",
                message="The response contains a card number that the request sent",
            )
    return None


@pytest.fixture(scope="module")
async def fuzz_key(keys: ApiKeyService) -> str:
    # Its own key, every scope, unlimited: the fuzzer tests the contract, not the limiter.
    _, secret = await keys.create(name="fuzz", scopes=frozenset(Scope), rate_limit=UNLIMITED)
    return secret


def _endpoint_ids(base: str, key: str) -> set[str]:
    ids: set[str] = set()
    after: str | None = None
    headers = {"Authorization": f"Bearer {key}"}
    while True:
        params = {"limit": "100", **({"starting_after": after} if after else {})}
        page = httpx.get(f"{base}/api/webhooks/endpoints", params=params, headers=headers).json()
        ids.update(item["id"] for item in page["data"])
        if not page["has_more"]:
            return ids
        after = page["data"][-1]["id"]


@pytest.fixture(scope="module")
def api_schema(cluster: Settings, fuzz_key: str) -> Iterator[BaseSchema]:
    base = f"http://127.0.0.1:{cluster.port}"
    before = _endpoint_ids(base, fuzz_key)
    schema: BaseSchema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    schema = schema.exclude(
        func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in EXCLUDED
    )
    schema.config.headers = {"Authorization": f"Bearer {fuzz_key}"}
    yield schema
    for endpoint_id in _endpoint_ids(base, fuzz_key) - before:
        httpx.delete(
            f"{base}/api/webhooks/endpoints/{endpoint_id}",
            headers={"Authorization": f"Bearer {fuzz_key}"},
        )


def _fuzz(operation: APIOperation[Any, Any, Any, Any], key: str) -> None:
    """Up to EXAMPLES cases of `operation`, valid and invalid, through every check."""
    strategy = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Case[Any]) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {key}"},
            additional_checks=[no_card_number_echoed],
            timeout=30,
        )

    run()


@pytest.mark.timeout(TOTAL_TIMEOUT_S)
def test_every_operation_answers_as_its_schema_says(api_schema: BaseSchema, fuzz_key: str) -> None:
    # One test over every operation (schemathesis' pytest plugin needs pytest < 9.2): each
    # operation's first failing case is kept, so one run reports them all.
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 50
    for operation in operations:
        try:
            _fuzz(operation, fuzz_key)
        except (Exception, FailureGroup) as exc:  # noqa: BLE001 - every failure is reported below
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    unexpected = {
        op: why
        for op, why in failures.items()
        if not (op in KNOWN_REJECTED and set(_CODES.findall(why)) == {"ST202"})
    }
    assert not unexpected, "\n\n".join(f"{op}\n{why}" for op, why in unexpected.items())


def test_the_card_number_check_can_fail() -> None:
    body = {"card": {"number": "4242424242424242", "cvc": "123"}, "amount": 100}
    assert list(_card_numbers(body)) == ["4242424242424242"]
    assert json.dumps(body).count("4242424242424242") == 1
