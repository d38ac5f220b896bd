"""Every metric paygrid exports: name, type, help and label names. Label values come from
bounded sets only (route templates, status codes, operations, outcomes, currencies, queue,
shard and component names), never from ids or free text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


# Seconds; 0.2 is a bucket edge, so the 200 ms response-time threshold is exact.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


HTTP_REQUESTS = MetricSpec(
    "paygrid_http_requests_total",
    Kind.COUNTER,
    "HTTP requests answered, by route template, method and status code.",
    ("route", "method", "status"),
)
HTTP_DURATION = MetricSpec(
    "paygrid_http_request_duration_seconds",
    Kind.HISTOGRAM,
    "Time to answer an HTTP request, by route template and method.",
    ("route", "method"),
    LATENCY_BUCKETS,
)
PAYMENTS = MetricSpec(
    "paygrid_payments_total",
    Kind.COUNTER,
    "Money commands answered by the ledger shards, by operation, outcome and currency.",
    ("operation", "outcome", "currency"),
)
PAYMENT_AMOUNTS = MetricSpec(
    "paygrid_payment_amount_minor_total",
    Kind.COUNTER,
    "Amounts of approved purchases and authorizations, in minor units, by currency.",
    ("operation", "currency"),
)
IDEMPOTENT_REPLAYS = MetricSpec(
    "paygrid_idempotent_replays_total",
    Kind.COUNTER,
    "Money commands answered by replaying the first answer to their Idempotency-Key.",
    ("operation",),
)
SHARD_MUTATION_DURATION = MetricSpec(
    "paygrid_shard_mutation_duration_seconds",
    Kind.HISTOGRAM,
    "Time a ledger shard takes to run one call's batch of money commands.",
    ("shard",),
    LATENCY_BUCKETS,
)
SHARD_QUEUE_DEPTH = MetricSpec(
    "paygrid_shard_queue_depth",
    Kind.GAUGE,
    "Money commands inside a ledger shard (waiting or running).",
    ("shard",),
)
GATEWAY_DURATION = MetricSpec(
    "paygrid_gateway_request_duration_seconds",
    Kind.HISTOGRAM,
    "Time of a payment gateway call, by gateway, operation and result.",
    ("gateway", "operation", "result"),
    LATENCY_BUCKETS,
)
QUEUE_ITEMS = MetricSpec(
    "paygrid_queue_items_total",
    Kind.COUNTER,
    "Queue items run (webhook deliveries, scheduler jobs), by queue and outcome.",
    ("queue", "outcome"),
)
QUEUE_DEPTH = MetricSpec(
    "paygrid_queue_depth",
    Kind.GAUGE,
    "Due items waiting to be claimed, by queue (read from PostgreSQL at scrape time).",
    ("queue",),
)
QUEUE_LAG = MetricSpec(
    "paygrid_queue_lag_seconds",
    Kind.GAUGE,
    "Age of the oldest due item still waiting, by queue: webhook and scheduler lag.",
    ("queue",),
)
DB_POOL_IN_USE = MetricSpec(
    "paygrid_db_pool_connections_in_use",
    Kind.GAUGE,
    "Database connections checked out, summed over the processes of a component.",
    ("component",),
)
DB_POOL_MAX = MetricSpec(
    "paygrid_db_pool_connections_max",
    Kind.GAUGE,
    "Database pools' maximum size, summed over the processes of a component.",
    ("component",),
)

CATALOGUE: tuple[MetricSpec, ...] = (
    HTTP_REQUESTS,
    HTTP_DURATION,
    PAYMENTS,
    PAYMENT_AMOUNTS,
    IDEMPOTENT_REPLAYS,
    SHARD_MUTATION_DURATION,
    SHARD_QUEUE_DEPTH,
    GATEWAY_DURATION,
    QUEUE_ITEMS,
    QUEUE_DEPTH,
    QUEUE_LAG,
    DB_POOL_IN_USE,
    DB_POOL_MAX,
)
