"""Saved payment method states: `attached → detached`, and nothing after.

The enum is the data contract's (`schema/states.py`), mirrored by the CHECK constraints on
`payment_methods.status` (migration 0005). The one transition is the repository's conditional
update; detaching drops the ciphertext, so a detached method cannot come back or be charged.
"""

from __future__ import annotations

from schema.states import PaymentMethodStatus

__all__ = ["PaymentMethodStatus"]
