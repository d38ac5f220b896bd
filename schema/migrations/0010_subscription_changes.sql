-- Changes of price or quantity that wait for the next period, and the refunds a credit
-- invoice is paid back with.
--
-- `proration_behavior: none` stores the new price and quantity as the pending change; the next
-- period's renewal applies it (and invoices it), so `amount` and `quantity` always describe what
-- the current period was paid for. A proration's credit is paid back by refunds of the period's
-- payments, planned when the credit is invoiced (`refund_plan`: [{"payment_id", "amount"}], at
-- most each payment's refundable rest), so a run taking it up again after a crash refunds the
-- same amounts from the same payments under the same keys.

ALTER TABLE subscriptions
    ADD COLUMN pending_plan_id  uuid REFERENCES plans (id) ON DELETE RESTRICT,
    ADD COLUMN pending_amount   bigint CHECK (pending_amount > 0),
    ADD COLUMN pending_quantity integer CHECK (pending_quantity BETWEEN 1 AND 10000),
    ADD CONSTRAINT pending_change_whole CHECK (
        (pending_amount IS NULL) = (pending_quantity IS NULL)
        AND (pending_plan_id IS NULL OR pending_amount IS NOT NULL)
    );

ALTER TABLE invoices
    ADD COLUMN refund_plan jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(refund_plan) = 'array'),
    ADD CONSTRAINT refunds_only_for_credits CHECK (
        refund_plan = '[]'::jsonb OR amount_due < 0
    );
