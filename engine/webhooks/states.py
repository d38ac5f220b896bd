"""Webhook endpoint and delivery states, with the endpoint's transition table.

The enums are the data contract's (`schema/states.py`), mirrored by the CHECK constraints on
`webhook_endpoints.status` and `webhook_deliveries.status` (migration 0002). A delivery is an
item of the `webhooks` lease queue: its transitions are the queue's (`engine.queueing.states`).
"""

from __future__ import annotations

from schema.states import DeliveryStatus, EndpointStatus

__all__ = ["ENDPOINT_TRANSITIONS", "DeliveryStatus", "EndpointStatus", "can_transition"]

# Deleting is final: a deleted endpoint keeps its history but never changes again (the
# repository's updates skip deleted rows).
ENDPOINT_TRANSITIONS: dict[EndpointStatus, frozenset[EndpointStatus]] = {
    EndpointStatus.ENABLED: frozenset({EndpointStatus.DISABLED, EndpointStatus.DELETED}),
    EndpointStatus.DISABLED: frozenset({EndpointStatus.ENABLED, EndpointStatus.DELETED}),
    EndpointStatus.DELETED: frozenset(),
}


def can_transition(current: EndpointStatus, target: EndpointStatus) -> bool:
    """Whether an endpoint may go from `current` to `target`."""
    return target in ENDPOINT_TRANSITIONS[current]
