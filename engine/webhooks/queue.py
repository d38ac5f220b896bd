"""The `webhooks` lease queue: one item per (event, endpoint) delivery, grouped by endpoint so
each endpoint gets its own room, and only enabled endpoints are served. The fan-out trigger of
migration 0002 notifies `paygrid_webhook_deliveries` when it creates deliveries."""

from __future__ import annotations

from engine.queueing.spec import Groups, QueueSpec
from engine.queueing.states import QueueName
from engine.webhooks.states import EndpointStatus

DELIVERIES = QueueSpec(
    name=QueueName.WEBHOOKS,
    table="webhook_deliveries",
    due="next_attempt_at",
    channel="paygrid_webhook_deliveries",
    groups=Groups(table="webhook_endpoints", column="endpoint_id", eligible=EndpointStatus.ENABLED),
)
