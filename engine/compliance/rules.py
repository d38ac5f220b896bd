"""The AML rules as pure functions of a customer's recent attempts: no I/O, no clock of their
own, so the shard evaluates them inside its batch at the cost of a few comparisons.

Amount thresholds are configured in the currency's major unit and compared in minor units
(`schema/currencies.py` exponents): 10,000 is 1,000,000 cents, 10,000 yen and 10,000,000 fils.
Details of a hit carry amounts, counts, windows and thresholds only: never personal data or any
part of a card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from engine.config import Settings
from schema.currencies import CURRENCY_EXPONENTS
from schema.states import AmlRule, RuleAction

# The decline code of a payment a blocking rule stopped.
COMPLIANCE_BLOCK = "compliance_block"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One purchase or authorization of a customer, as the rules remember it. `card` is a
    keyed in-memory fingerprint of the card (None when unknown), never the card itself."""

    payment_id: UUID
    at: datetime
    amount: int
    currency: str
    card: bytes | None


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that fired, what it does, and why (no personal data)."""

    rule: AmlRule
    action: RuleAction
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocks(self) -> bool:
        return self.action is RuleAction.BLOCK


def minor_units(major: int, currency: str) -> int:
    """`major` units of `currency` in its minor unit."""
    exponent: int = CURRENCY_EXPONENTS.get(currency, 2)
    return major * int(10**exponent)


@dataclass(frozen=True, slots=True)
class AmlPolicy:
    """Every rule's action and thresholds, from the `PAYGRID_AML_*` settings."""

    enabled: bool
    actions: dict[AmlRule, RuleAction]
    velocity_window: timedelta
    velocity_max_count: int
    velocity_max_amount: int
    large_amount: int
    structuring_window: timedelta
    structuring_margin_pct: int
    structuring_count: int
    refund_window: timedelta
    cards_window: timedelta
    cards_max: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AmlPolicy:
        actions = {
            AmlRule.VELOCITY: settings.aml_velocity_action,
            AmlRule.LARGE_AMOUNT: settings.aml_large_amount_action,
            AmlRule.STRUCTURING: settings.aml_structuring_action,
            AmlRule.REFUND_AFTER_PURCHASE: settings.aml_refund_action,
            AmlRule.DISTINCT_CARDS: settings.aml_cards_action,
        }
        return cls(
            enabled=settings.aml_enabled and any(a is not RuleAction.OFF for a in actions.values()),
            actions=actions,
            velocity_window=timedelta(seconds=settings.aml_velocity_window_s),
            velocity_max_count=settings.aml_velocity_max_count,
            velocity_max_amount=settings.aml_velocity_max_amount,
            large_amount=settings.aml_large_amount,
            structuring_window=timedelta(hours=settings.aml_structuring_window_h),
            structuring_margin_pct=settings.aml_structuring_margin_pct,
            structuring_count=settings.aml_structuring_count,
            refund_window=timedelta(hours=settings.aml_refund_window_h),
            cards_window=timedelta(hours=settings.aml_cards_window_h),
            cards_max=settings.aml_cards_max,
        )

    @property
    def memory(self) -> timedelta:
        """How far back any payment rule looks: older attempts can be forgotten."""
        return max(self.velocity_window, self.structuring_window, self.cards_window)

    def on(self, rule: AmlRule) -> bool:
        return self.enabled and self.actions[rule] is not RuleAction.OFF


Check = Callable[["AmlPolicy", Sequence[Attempt], Attempt], dict[str, Any]]
ActiveRule = tuple[AmlRule, RuleAction, Check]


def payment_rules(policy: AmlPolicy) -> list[ActiveRule]:
    """The payment rules `policy` turns on, with their actions: chosen once, not per payment."""
    return [(rule, policy.actions[rule], check) for rule, check in _CHECKS if policy.on(rule)]


def screen(
    policy: AmlPolicy, rules: Sequence[ActiveRule], past: Sequence[Attempt], attempt: Attempt
) -> list[Hit]:
    """The payment rules (of `rules`) that fire on `attempt`, given the customer's earlier
    attempts within the longest window."""
    hits: list[Hit] = []
    for rule, action, check in rules:
        # With no earlier attempt only a single payment's own rule can fire.
        if past or rule is AmlRule.LARGE_AMOUNT:
            details = check(policy, past, attempt)
            if details:
                hits.append(Hit(rule, action, details))
    return hits


def refund_hit(
    policy: AmlPolicy, *, purchased_at: datetime, now: datetime, amount: int, currency: str
) -> Hit | None:
    """The refund rule: a refund asked for within the window after its purchase."""
    rule = AmlRule.REFUND_AFTER_PURCHASE
    if not policy.on(rule) or now - purchased_at >= policy.refund_window:
        return None
    details = {
        "amount": amount,
        "currency": currency,
        "seconds_after_purchase": int((now - purchased_at).total_seconds()),
        "window_s": int(policy.refund_window.total_seconds()),
    }
    return Hit(rule, policy.actions[rule], details)


def _within(past: Sequence[Attempt], attempt: Attempt, window: timedelta) -> list[Attempt]:
    since = attempt.at - window
    return [a for a in past if a.at > since]


def _velocity(policy: AmlPolicy, past: Sequence[Attempt], attempt: Attempt) -> dict[str, Any]:
    recent = _within(past, attempt, policy.velocity_window)
    count = len(recent) + 1
    same = [a.amount for a in recent if a.currency == attempt.currency]
    amount = attempt.amount + sum(same)
    limit = minor_units(policy.velocity_max_amount, attempt.currency)
    # One payment alone is the large-amount rule's business: the amount counts from the second.
    too_much = bool(same) and amount > limit
    if count <= policy.velocity_max_count and not too_much:
        return {}
    return {
        "count": count,
        "max_count": policy.velocity_max_count,
        "amount": amount,
        "max_amount": limit,
        "currency": attempt.currency,
        "window_s": int(policy.velocity_window.total_seconds()),
    }


def _large(policy: AmlPolicy, past: Sequence[Attempt], attempt: Attempt) -> dict[str, Any]:
    threshold = minor_units(policy.large_amount, attempt.currency)
    if attempt.amount < threshold:
        return {}
    return {"amount": attempt.amount, "currency": attempt.currency, "threshold": threshold}


def _structuring(policy: AmlPolicy, past: Sequence[Attempt], attempt: Attempt) -> dict[str, Any]:
    threshold = minor_units(policy.large_amount, attempt.currency)
    floor = threshold * (100 - policy.structuring_margin_pct) // 100

    def just_under(a: Attempt) -> bool:
        return a.currency == attempt.currency and floor <= a.amount < threshold

    if not just_under(attempt):
        return {}
    recent = _within(past, attempt, policy.structuring_window)
    under = [a for a in recent if just_under(a)]
    if len(under) + 1 < policy.structuring_count:
        return {}
    return {
        "count": len(under) + 1,
        "total": attempt.amount + sum(a.amount for a in under),
        "currency": attempt.currency,
        "threshold": threshold,
        "floor": floor,
        "window_s": int(policy.structuring_window.total_seconds()),
    }


def _cards(policy: AmlPolicy, past: Sequence[Attempt], attempt: Attempt) -> dict[str, Any]:
    if attempt.card is None:
        return {}
    seen = {a.card for a in _within(past, attempt, policy.cards_window) if a.card is not None}
    # Only a card beyond the limit is refused: the customer's known cards still pay.
    if attempt.card in seen or len(seen) + 1 <= policy.cards_max:
        return {}
    return {
        "distinct_cards": len(seen) + 1,
        "max_cards": policy.cards_max,
        "window_s": int(policy.cards_window.total_seconds()),
    }


_CHECKS: tuple[tuple[AmlRule, Check], ...] = (
    (AmlRule.VELOCITY, _velocity),
    (AmlRule.LARGE_AMOUNT, _large),
    (AmlRule.STRUCTURING, _structuring),
    (AmlRule.DISTINCT_CARDS, _cards),
)
