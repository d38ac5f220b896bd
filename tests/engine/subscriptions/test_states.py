"""The subscription state machine: the seed's diagram plus trials and cancelling from any live
state; every other move is refused with its own code, and the database holds the statuses to
the same set."""

from __future__ import annotations

import pytest

from engine.errors import StateError
from engine.subscriptions.states import TRANSITIONS, SubscriptionStatus, check_transition

S = SubscriptionStatus

ALLOWED = {
    (S.INCOMPLETE, S.ACTIVE),
    (S.INCOMPLETE, S.TRIALING),
    (S.INCOMPLETE, S.FAILED),
    (S.TRIALING, S.ACTIVE),
    (S.TRIALING, S.PAUSED),
    (S.TRIALING, S.CANCELLED),
    (S.ACTIVE, S.PAUSED),
    (S.ACTIVE, S.PAST_DUE),
    (S.ACTIVE, S.CANCELLED),
    (S.PAST_DUE, S.ACTIVE),
    (S.PAST_DUE, S.CANCELLED),
    (S.PAUSED, S.ACTIVE),
    (S.PAUSED, S.CANCELLED),
}


def test_the_table_is_the_diagram() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize("move", [(a, b) for a in S for b in S if (a, b) not in ALLOWED])
def test_every_other_move_is_refused(move: tuple[SubscriptionStatus, SubscriptionStatus]) -> None:
    with pytest.raises(StateError) as refused:
        check_transition(*move)
    assert refused.value.code == "subscription_state_invalid"
    assert refused.value.http_status == 422
