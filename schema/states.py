"""Every status of the data contract, one `StrEnum` per aggregate.

They live here, beside the migrations that mirror them, because both the API models (`schema/`)
and the engine use them and `schema/` imports nothing of ours. Each aggregate's engine module
(`engine/payments/states.py`, `engine/webhooks/states.py`, …) re-exports its enums next to its
transition table. The database mirrors each one with an enum type or a CHECK constraint (named
below), so the type checker, the database and `/openapi.json` agree.
"""

from __future__ import annotations

from enum import StrEnum


class TransactionType(StrEnum):
    """`transactions.transaction_type` (enum `transaction_type`, migration 0001)."""

    PURCHASE = "purchase"
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class RecordedMethod(StrEnum):
    """How an externally settled payment was paid (`POST /api/database/transactions`): the
    `type` of its `payment_method` summary. No gateway is involved in either."""

    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"


class TransactionMethod(StrEnum):
    """How a transaction's money moved: through a gateway with a card (saved or not), or
    settled outside paygrid (`RecordedMethod`). The `method` of a transaction row and its
    list filter; derived from the row's gateway and payment method, not a column."""

    CARD = "card"
    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"


class PaymentStatus(StrEnum):
    """A payment (a root `transactions` row; enum `transaction_status`, migration 0001)."""

    PROCESSING = "processing"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    SUCCEEDED = "succeeded"
    VOIDED = "voided"
    EXPIRED = "expired"
    FAILED = "failed"
    REFUNDED = "refunded"


class OperationStatus(StrEnum):
    """A capture, void or refund row (`status_fits_type`, migration 0001)."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundStatus(StrEnum):
    """`refunds.status` (CHECK in migration 0001): the refund operation's own status."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class OrderStatus(StrEnum):
    """`orders.status` (CHECKs `order_status_fits_totals` and trigger
    `orders_status_transition`, migration 0016): it follows the order's payments; transitions
    in `engine/orders/states.py`."""

    PENDING = "pending"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


class GatewayRequestKind(StrEnum):
    """`gateway_attempts.kind` (CHECK in migration 0023): what a gateway call asked for; a
    `charge` authorizes and captures at once."""

    CHARGE = "charge"
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    LOOKUP = "lookup"
    VERIFY = "verify"


class AttemptOutcome(StrEnum):
    """`gateway_attempts.outcome` (CHECK in migration 0023): how a gateway call came out.
    `ambiguous` means the gateway may have acted (the answer was lost); `review` means it holds
    the transaction for review (neither approved nor declined yet)."""

    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"
    AMBIGUOUS = "ambiguous"
    REVIEW = "review"


class CircuitState(StrEnum):
    """A gateway's circuit breaker (`engine/gateways/circuit.py`; memory only, shown by
    `GET /health` and `GET /api/payments/methods`)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class IdempotencyStatus(StrEnum):
    """`idempotency_keys.status` (CHECK in migration 0001)."""

    PROCESSING = "processing"
    COMPLETED = "completed"


class PaymentMethodStatus(StrEnum):
    """`payment_methods.status` (CHECK in migration 0005)."""

    ATTACHED = "attached"
    DETACHED = "detached"


class BillingInterval(StrEnum):
    """The unit of a price's period (CHECKs on `plans.interval` and `subscriptions.interval`,
    migrations 0008 and 0009)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class PlanStatus(StrEnum):
    """`plans.status` (CHECK in migration 0008): an archived plan takes no new subscriptions."""

    ACTIVE = "active"
    ARCHIVED = "archived"


class SubscriptionStatus(StrEnum):
    """`subscriptions.status` (CHECK in migration 0009); transitions in
    `engine/subscriptions/states.py`. `incomplete` is the seed's "created": the first
    invoice's payment is under way."""

    INCOMPLETE = "incomplete"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"


class InvoiceStatus(StrEnum):
    """`invoices.status` (CHECK in migration 0009)."""

    OPEN = "open"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


class BillingReason(StrEnum):
    """`invoices.billing_reason` (CHECK in migration 0009)."""

    SUBSCRIPTION_CREATE = "subscription_create"
    SUBSCRIPTION_CYCLE = "subscription_cycle"
    SUBSCRIPTION_UPDATE = "subscription_update"


class TestClockStatus(StrEnum):
    """`test_clocks.status` (CHECK in migration 0007): `advancing` while what became due on
    the clock's customers runs."""

    READY = "ready"
    ADVANCING = "advancing"


class EndpointStatus(StrEnum):
    """`webhook_endpoints.status` (CHECK in migration 0002)."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"


class JobStatus(StrEnum):
    """An item of a lease queue: a webhook delivery or a scheduled job (CHECKs on
    `webhook_deliveries.status`, migration 0002, and `scheduled_jobs.status`, migration 0003)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"


# A webhook delivery is an item of the `webhooks` queue.
DeliveryStatus = JobStatus


class QueueName(StrEnum):
    """The lease queues (`queue_state.queue`, migrations 0002 and 0003)."""

    WEBHOOKS = "webhooks"
    SCHEDULER = "scheduler"


class ClearableState(StrEnum):
    """Finished queue items an operator may clear; never work waiting or in flight."""

    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"


class AuditAction(StrEnum):
    """`audit_logs.action` (CHECK in migrations 0001, 0014): the statement the audit trigger
    saw, or what the application recorded itself where no trigger sees it (a read of a
    customer's PII, an export, an erasure)."""

    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    READ = "READ"
    EXPORT = "EXPORT"
    ERASE = "ERASE"


class ReportStatus(StrEnum):
    """A report's batch job, as Ray's job API reports it (no table: reports are Ray jobs)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


class AmlRule(StrEnum):
    """`compliance_alerts.rule` (CHECK in migration 0015): the AML rule an alert is about."""

    VELOCITY = "velocity"
    LARGE_AMOUNT = "large_amount"
    STRUCTURING = "structuring"
    REFUND_AFTER_PURCHASE = "refund_after_purchase"
    DISTINCT_CARDS = "distinct_cards"


class RuleAction(StrEnum):
    """What an AML rule does on a hit: nothing (off), an alert (flag), or an alert and a
    decline (block). Configuration only; an alert records the action taken."""

    OFF = "off"
    FLAG = "flag"
    BLOCK = "block"


class AlertStatus(StrEnum):
    """`compliance_alerts.status` (CHECK in migration 0015): open → resolved, once."""

    OPEN = "open"
    RESOLVED = "resolved"


class HealthStatus(StrEnum):
    """`/health`: the whole deployment's and each component's (not stored)."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


class Scope(StrEnum):
    """What an API key may do (`api_keys.scopes` CHECK, migration 0001)."""

    PAYMENTS_WRITE = "payments:write"
    PAYMENTS_READ = "payments:read"
    SUBSCRIPTIONS = "subscriptions"
    WEBHOOKS = "webhooks"
    CUSTOMERS = "customers"
    ADMIN = "admin"


class AuthFailure(StrEnum):
    """Why an authentication failed (`auth_failures_reason` CHECK, migration 0020)."""

    MISSING = "missing"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    ROTATED_OUT = "rotated_out"
    IP_NOT_ALLOWED = "ip_not_allowed"
