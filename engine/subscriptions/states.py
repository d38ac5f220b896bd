"""Subscription and invoice states, and the transitions a subscription may make.

    incomplete ──▶ active | trialing | failed          (the first invoice, or a trial)
    trialing   ──▶ active | paused | cancelled         (the trial's end bills as active)
    active     ──▶ past_due | paused | cancelled
    past_due   ──▶ active | cancelled
    paused     ──▶ active | cancelled                  (resuming bills a new period)
    cancelled, failed: final

The seed's diagram (created → active | failed; active → paused | past_due | cancelled;
paused → active; past_due → active | cancelled), plus trials and cancelling from any live
state. `SubscriptionRepository.change` changes a status only from a state allowed here.
"""

from __future__ import annotations

from engine.errors import StateError
from schema.states import BillingReason, InvoiceStatus, SubscriptionStatus

__all__ = [
    "CHARGEABLE",
    "TRANSITIONS",
    "BillingReason",
    "InvoiceStatus",
    "SubscriptionStatus",
    "allowed_from",
    "check_live",
    "check_transition",
]

S = SubscriptionStatus

TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    S.INCOMPLETE: frozenset({S.ACTIVE, S.TRIALING, S.FAILED}),
    S.TRIALING: frozenset({S.ACTIVE, S.PAUSED, S.CANCELLED}),
    S.ACTIVE: frozenset({S.PAST_DUE, S.PAUSED, S.CANCELLED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.CANCELLED}),
    S.PAUSED: frozenset({S.ACTIVE, S.CANCELLED}),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}

LIVE = frozenset({S.TRIALING, S.ACTIVE, S.PAST_DUE, S.PAUSED})
# The states in which an invoice's new attempt may charge the customer.
CHARGEABLE = frozenset({S.INCOMPLETE, S.TRIALING, S.ACTIVE, S.PAST_DUE})


def allowed_from(target: SubscriptionStatus) -> frozenset[SubscriptionStatus]:
    """The states a subscription may move to `target` from."""
    return frozenset(s for s, to in TRANSITIONS.items() if target in to)


def check_transition(current: SubscriptionStatus, target: SubscriptionStatus) -> None:
    """Refuse (422 `subscription_state_invalid`) a move the table does not allow."""
    if target not in TRANSITIONS[current]:
        raise StateError(
            f"a {current} subscription cannot become {target}",
            code="subscription_state_invalid",
        )


def check_live(current: SubscriptionStatus) -> None:
    """Refuse (422 `subscription_state_invalid`) any change to an ended subscription."""
    if current not in LIVE:
        raise StateError(
            f"the subscription is {current}; nothing can change it any more",
            code="subscription_state_invalid",
        )
