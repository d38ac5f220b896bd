"""From validated API requests to the subscription service's requests."""

from __future__ import annotations

from engine.payment_methods.models import NewCard, NewToken
from engine.plans.models import Price
from engine.subscriptions.commands import MethodChoice, NewSubscription, SubscriptionChange
from schema.api.payment_method_ids import SavedMethodRef
from schema.api.payments import CardCreate, RecurringMethodCreate
from schema.api.subscriptions import PriceChoice, SubscriptionCreate, SubscriptionUpdate


def _method(method: RecurringMethodCreate) -> MethodChoice:
    if isinstance(method, SavedMethodRef):
        return method.id
    if isinstance(method, CardCreate):
        # Its CVC, if given, is verified with the gateway when the card is saved, then dropped.
        cvc = None if method.cvc is None else method.cvc.get_secret_value()
        return NewCard(method.number.get_secret_value(), method.exp_month, method.exp_year, cvc=cvc)
    return NewToken(method.token)


def _price(body: PriceChoice) -> Price | None:
    if body.amount is None or body.currency is None or body.interval is None:
        return None
    return Price(body.amount, body.currency, body.interval, body.interval_count or 1)


def new_subscription(body: SubscriptionCreate) -> NewSubscription:
    """The service request of `POST /api/subscriptions`."""
    return NewSubscription(
        customer_id=body.customer_id,
        method=_method(body.payment_method),
        plan_id=body.plan_id,
        price=_price(body),
        quantity=body.quantity,
        trial_period_days=body.trial_period_days,
        metadata=body.metadata,
    )


def subscription_change(body: SubscriptionUpdate) -> SubscriptionChange:
    """The service request of `PUT /api/subscriptions/{id}`."""
    return SubscriptionChange(
        quantity=body.quantity,
        plan_id=body.plan_id,
        price=_price(body),
        method=None if body.payment_method is None else _method(body.payment_method),
        cancel_at_period_end=body.cancel_at_period_end,
        metadata=body.metadata,
        prorate=body.proration_behavior == "create_prorations",
    )
