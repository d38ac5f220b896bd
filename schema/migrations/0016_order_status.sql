-- Orders follow their payments (engine/orders).
--
-- An order is what a customer owes (amount, currency); its payments (root `transactions` rows
-- naming it) pay it. The order keeps the totals of its payments, `amount_paid` (the sum of
-- their captured amounts) and `amount_refunded`, written by the ledger shard in the
-- transaction that moves the payment, and its status follows from them:
--
--   pending → paid                once what its payments captured reaches its amount
--   pending | paid → partially_refunded → refunded   as refunds give money back
--   pending → cancelled           by the merchant, only while nothing is paid or in flight
--
-- The database holds it to that, like the payment invariants of 0001: named CHECKs keep the
-- totals within the amount and the status equal to what the totals say, a trigger allows only
-- the transitions above, and a deferred constraint trigger checks at commit that an order's
-- totals are its payments' sums, whichever of the two rows a writer changed. Payments without
-- an order skip it (the trigger's WHEN), so the hot path of orderless payments pays nothing.
--
-- Before this release nothing but hand-written SQL wrote orders, so the status `open` becomes
-- `pending` and the totals are computed once here; an order its payments overpaid fails the
-- migration by name rather than being rewritten silently.

ALTER TABLE orders DROP CONSTRAINT orders_status_check;

ALTER TABLE orders
    ADD COLUMN description text CHECK (length(description) <= 1000),
    ADD COLUMN amount_paid bigint NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    ADD COLUMN amount_refunded bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    ALTER COLUMN status SET DEFAULT 'pending';

-- The one definition of an order's status from its totals: the CHECK below and the shard's
-- update (engine/orders/repository.py) both use it.
CREATE FUNCTION order_status_for(amount bigint, paid bigint, refunded bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN refunded > 0 AND refunded >= paid THEN 'refunded'
        WHEN refunded > 0 THEN 'partially_refunded'
        WHEN paid >= amount THEN 'paid'
        ELSE 'pending'
    END
$$;

UPDATE orders o
SET amount_paid = t.paid, amount_refunded = t.refunded
FROM (SELECT order_id, sum(amount_captured)::bigint AS paid,
             sum(amount_refunded)::bigint AS refunded
      FROM transactions WHERE order_id IS NOT NULL AND parent_id IS NULL
      GROUP BY order_id) t
WHERE o.id = t.order_id AND (t.paid > 0 OR t.refunded > 0);

UPDATE orders
SET status = CASE WHEN status = 'cancelled' AND amount_paid = 0 THEN 'cancelled'
                  ELSE order_status_for(amount, amount_paid, amount_refunded) END;

ALTER TABLE orders
    ADD CONSTRAINT order_paid_within_amount CHECK (amount_paid <= amount),
    ADD CONSTRAINT order_refunded_within_paid CHECK (amount_refunded <= amount_paid),
    ADD CONSTRAINT order_status_fits_totals CHECK (
        CASE status
            WHEN 'cancelled' THEN amount_paid = 0
            ELSE status = order_status_for(amount, amount_paid, amount_refunded)
        END
    );

CREATE FUNCTION enforce_order_transition() RETURNS trigger AS $$
BEGIN
    IF NEW.status = OLD.status
       OR OLD.status = 'pending'
       OR (OLD.status = 'paid' AND NEW.status IN ('partially_refunded', 'refunded'))
       OR (OLD.status = 'partially_refunded' AND NEW.status = 'refunded') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'order % cannot move from % to %', NEW.id, OLD.status, NEW.status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'order_status_transition';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER orders_status_transition BEFORE UPDATE OF status ON orders
    FOR EACH ROW EXECUTE FUNCTION enforce_order_transition();

-- At commit: the order's totals are the sums of its payments' captured and refunded amounts.
CREATE FUNCTION enforce_order_totals() RETURNS trigger AS $$
DECLARE
    target uuid;
    recorded orders%ROWTYPE;
    paid bigint;
    refunded bigint;
BEGIN
    IF TG_TABLE_NAME = 'orders' THEN
        target := NEW.id;
    ELSE
        target := NEW.order_id;
    END IF;
    SELECT * INTO recorded FROM orders WHERE id = target;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(sum(amount_captured), 0), coalesce(sum(amount_refunded), 0)
        INTO paid, refunded
        FROM transactions WHERE order_id = target AND parent_id IS NULL;
    IF recorded.amount_paid <> paid OR recorded.amount_refunded <> refunded THEN
        RAISE EXCEPTION 'order % records % paid and % refunded, its payments % and %',
            target, recorded.amount_paid, recorded.amount_refunded, paid, refunded
            USING ERRCODE = 'check_violation', CONSTRAINT = 'order_totals_match_payments';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER orders_totals_inserted AFTER INSERT ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.amount_paid <> 0 OR NEW.amount_refunded <> 0)
    EXECUTE FUNCTION enforce_order_totals();
CREATE CONSTRAINT TRIGGER orders_totals_updated AFTER UPDATE OF amount_paid, amount_refunded
    ON orders DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.amount_paid <> NEW.amount_paid OR OLD.amount_refunded <> NEW.amount_refunded)
    EXECUTE FUNCTION enforce_order_totals();
CREATE CONSTRAINT TRIGGER transactions_order_totals_inserted AFTER INSERT ON transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.order_id IS NOT NULL AND NEW.parent_id IS NULL
          AND (NEW.amount_captured <> 0 OR NEW.amount_refunded <> 0))
    EXECUTE FUNCTION enforce_order_totals();
CREATE CONSTRAINT TRIGGER transactions_order_totals_updated
    AFTER UPDATE OF amount_captured, amount_refunded ON transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.order_id IS NOT NULL AND NEW.parent_id IS NULL
          AND (OLD.amount_captured <> NEW.amount_captured
               OR OLD.amount_refunded <> NEW.amount_refunded))
    EXECUTE FUNCTION enforce_order_totals();

-- An order's payments (its detail, the totals above, the room a new payment has) and the
-- orders list newest first; the customer filter rides idx_orders_customer_created (0001).
CREATE INDEX idx_transactions_order ON transactions (order_id, created_at)
    WHERE order_id IS NOT NULL;
CREATE INDEX idx_orders_created ON orders (created_at DESC, id DESC);
