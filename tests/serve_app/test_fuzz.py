"""Schemathesis against the running API: every operation of `/openapi.json`, called with a key
that holds every scope and no rate limit, all checks on. A case fails on a 5xx, a status or body
the schema does not document, a schema-valid request the API refuses (positive data acceptance),
a schema-invalid one it accepts, or a response that echoes a card number the request sent.

`make test` runs it with 5 examples per operation, `make fuzz` with 30
(`PAYGRID_FUZZ_EXAMPLES`); Hypothesis is derandomized, so a run draws the same cases every time.

The document says what validation accepts in JSON Schema wherever JSON Schema can: lengths,
patterns, ranges, enums, required and non-nullable fields. Two rules have a `format` of their own,
which this test teaches the generator (`card-number`: digits passing the Luhn check;
`ip-network`: an address or a CIDR network). What no schema can state is in `SEMANTIC`, each
with its reason: a refusal of a schema-valid request passes only when its status, field and
message are one of those, and, for integers spelled `2.0`, only when the request really held one.

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
from dataclasses import dataclass
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
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.ratelimit.limits import UNLIMITED
from schema.cards import luhn_valid

EXAMPLES = int(os.environ.get("PAYGRID_FUZZ_EXAMPLES", "5"))
# The cap on the whole run; `make test` must stay bounded whatever the API answers.
TOTAL_TIMEOUT_S = max(600, EXAMPLES * 60)
EXCLUDED = {
    ("POST", "/api/queues/pause"),
    ("POST", "/api/queues/resume"),
    ("DELETE", "/api/queues/clear"),
    ("POST", "/api/webhooks/deliveries/retry"),
}


@dataclass(frozen=True)
class Semantic:
    """A refusal the document states in words (a description), because JSON Schema cannot: the
    status, the field the error names (`param`) and a fragment of its message."""

    status: int
    param: str
    says: str
    why: str


_RANGE = "a reversed range: JSON Schema cannot compare two fields"
_EXPIRED = Semantic(
    400, "exp_year", "the card has expired", "an expiry in the past: it depends on today"
)
_ONE_CUSTOMER = Semantic(
    400, "customer", "give exactly one of", "one of two fields, each optional on its own"
)
_PRICE = (
    Semantic(400, "plan_id", "not both", "a plan or an inline price: fields that exclude others"),
    Semantic(400, "interval_count", "at most", "the most intervals depends on the interval"),
)
_PRICE_REQUIRED = tuple(
    Semantic(400, name, "required for an inline price", "required unless plan_id is given")
    for name in ("amount", "currency", "interval")
)
_NO_SUCH_DAY = "a day its month lacks (30 February): a pattern cannot count a month's days"
_CURSOR = Semantic(
    400, "starting_after", "to start after", "a cursor must name a row that exists (400, named)"
)
_AMOUNT_TIMES_QUANTITY = Semantic(
    400, "quantity", "amount times quantity may be at most", "a bound on two fields' product"
)
_TIME_RANGE = (
    _CURSOR,
    Semantic(400, "created_lt", "must be later than created_gte", _RANGE),
    *(
        Semantic(400, name, "day value is outside expected range", _NO_SUCH_DAY)
        for name in ("created_gte", "created_lt")
    ),
)
_DNS = "where a webhook URL's host points is a fact of DNS, not of the request's shape"
_URL = (
    Semantic(400, "url", "does not resolve", _DNS),
    Semantic(400, "url", "resolves to", _DNS),
)
SEMANTIC: dict[str, tuple[Semantic, ...]] = {
    "POST /api/payments/purchase": (_EXPIRED, _ONE_CUSTOMER),
    "POST /api/payments/authorize": (_EXPIRED, _ONE_CUSTOMER),
    "POST /api/payment-methods": (
        _EXPIRED,
        Semantic(400, "token", "no such token", "tokens are the gateway's: no list to state"),
    ),
    "POST /api/webhooks/endpoints": _URL,
    "PUT /api/webhooks/endpoints/{endpoint_id}": _URL,
    "GET /api/compliance/alerts": (_CURSOR,),
    "GET /api/database/stats": (
        Semantic(400, "from", "the range may cover at most", "a range's length: today minus from"),
        Semantic(400, "to", "must not be before from", _RANGE),
    ),
    "POST /api/subscriptions": (_EXPIRED, *_PRICE, *_PRICE_REQUIRED, _AMOUNT_TIMES_QUANTITY),
    "PUT /api/subscriptions/{subscription_id}": (
        _EXPIRED,
        *_PRICE,
        *_PRICE_REQUIRED,
        _AMOUNT_TIMES_QUANTITY,
    ),
    "POST /api/plans": (_PRICE[1],),
    "GET /api/database/orders": _TIME_RANGE,
    "GET /api/audit-logs": _TIME_RANGE,
    "GET /api/database/transactions": (
        *_TIME_RANGE,
        Semantic(400, "amount_lte", "must not be less than amount_gte", _RANGE),
    ),
    "POST /api/database/transactions": (
        Semantic(400, "reference", "must not hold a card number", "a Luhn-valid run of digits"),
    ),
    "POST /api/reports/transaction-summary": (
        Semantic(400, "to", "is before `from`", _RANGE),
        Semantic(400, "to", "a range covers at most", "a range's length: two fields compared"),
    ),
}
# JSON Schema (draft 6 on) calls 2.0 an integer; paygrid refuses an integer written with a
# fraction (an amount of `10.0` is a 400 naming the field, never converted), as each integer's
# type says. Forgiven only where the request held exactly such a number at the named field.
_WHOLE_FLOAT = "Input should be a valid integer"
_DIGITS = re.compile(r"^\d{12,19}$")


def _luhn_completed(payload: str) -> str:
    return next(payload + d for d in "0123456789" if luhn_valid(payload + d))


# The two formats of the document that JSON Schema does not define, generated as they read.
schemathesis.openapi.format(
    "card-number",
    st.integers(min_value=11, max_value=18)
    .flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))
    .map(_luhn_completed),
)
schemathesis.openapi.format(
    "ip-network",
    st.one_of(
        st.ip_addresses().map(str),
        st.tuples(st.ip_addresses(v=4), st.integers(0, 32)).map(lambda n: f"{n[0]}/{n[1]}"),
        st.tuples(st.ip_addresses(v=6), st.integers(0, 128)).map(lambda n: f"{n[0]}/{n[1]}"),
    ),
)


def _value_at(case: Case[Any], param: str) -> object:
    """What the request held at `param` (a dotted path into the body, or a query parameter)."""
    value: object = case.body
    for part in param.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return (case.query or {}).get(param)
    return value


def _forgiven(case: Case[Any], response: Response) -> bool:
    """Whether a refused schema-valid request was refused for a reason the document states in
    words (`SEMANTIC`), answered as a card's decline (an answer, not a refusal), or refused
    because its Idempotency-Key was first used for another request."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    param = str(error.get("param") or "")
    message = str(error.get("message", ""))
    if response.status_code == 402:
        return bool(error.get("type") == "card_error")
    if response.status_code == 422 and error.get("code") == "idempotency_key_reused":
        # The fuzzer draws the same keys for different requests: the key's first request
        # decides, which no document of a single request can say.
        return True
    if response.status_code == 400 and message.endswith(_WHOLE_FLOAT):
        value = _value_at(case, param)
        return isinstance(value, float) and value.is_integer()
    return any(
        rule.status == response.status_code
        and (param == rule.param or param.endswith("." + rule.param))
        and rule.says in message
        for rule in SEMANTIC.get(case.operation.label, ())
    )


def positive_data_accepted(ctx: Any, response: Response, case: Case[Any]) -> bool | None:
    """Schemathesis' positive data acceptance (ST202), except the refusals `_forgiven` names."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if _forgiven(case, response):
            return None
        raise


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
            additional_checks=[no_card_number_echoed, positive_data_accepted],
            excluded_checks=[positive_data_acceptance],
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
    assert not failures, "\n\n".join(f"{op}\n{why}" for op, why in failures.items())


def test_the_card_number_check_can_fail() -> None:
    body = {"card": {"number": "4242424242424242", "cvc": "123"}, "amount": 100}
    assert list(_card_numbers(body)) == ["4242424242424242"]
    assert json.dumps(body).count("4242424242424242") == 1
