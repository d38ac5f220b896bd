-- The database holds subscriptions and invoices to their state machines, as the code does
-- (`engine/subscriptions/states.py`), so a writer that bypasses the repository's guarded
-- updates still cannot make an illegal move.
--
--   subscriptions: incomplete -> active | trialing | failed; trialing -> active | paused |
--                  cancelled; active -> past_due | paused | cancelled; past_due -> active |
--                  cancelled; paused -> active | cancelled; cancelled and failed are final.
--   invoices:      open -> paid | uncollectible | void, each final; what an invoice bills
--                  (subscription, customer, reason, currency, amount, period, lines, planned
--                  refunds, the change it applies) never changes after it is created.

CREATE FUNCTION subscriptions_transition_allowed() RETURNS trigger AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'incomplete' AND NEW.status IN ('active', 'trialing', 'failed'))
        OR (OLD.status = 'trialing' AND NEW.status IN ('active', 'paused', 'cancelled'))
        OR (OLD.status = 'active' AND NEW.status IN ('past_due', 'paused', 'cancelled'))
        OR (OLD.status = 'past_due' AND NEW.status IN ('active', 'cancelled'))
        OR (OLD.status = 'paused' AND NEW.status IN ('active', 'cancelled'))
    ) THEN
        RAISE EXCEPTION 'a % subscription cannot become %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF (NEW.id, NEW.customer_id, NEW.owner_api_key_id, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.customer_id, OLD.owner_api_key_id, OLD.created_at) THEN
        RAISE EXCEPTION 'a subscription''s identity never changes'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER subscriptions_transition_allowed BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION subscriptions_transition_allowed();

CREATE FUNCTION invoices_transition_allowed() RETURNS trigger AS $$
BEGIN
    IF OLD.status <> 'open' AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'a % invoice is final', OLD.status USING ERRCODE = 'check_violation';
    END IF;
    IF (NEW.id, NEW.subscription_id, NEW.customer_id, NEW.billing_reason, NEW.currency,
        NEW.amount_due, NEW.period_start, NEW.period_end, NEW.lines, NEW.refund_plan,
        NEW.applies, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.subscription_id, OLD.customer_id, OLD.billing_reason, OLD.currency,
        OLD.amount_due, OLD.period_start, OLD.period_end, OLD.lines, OLD.refund_plan,
        OLD.applies, OLD.created_at) THEN
        RAISE EXCEPTION 'what an invoice bills never changes' USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'paid' AND (NEW.amount_paid, NEW.payment_ids, NEW.paid_at)
       IS DISTINCT FROM (OLD.amount_paid, OLD.payment_ids, OLD.paid_at) THEN
        RAISE EXCEPTION 'a paid invoice is final' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER invoices_transition_allowed BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_transition_allowed();
