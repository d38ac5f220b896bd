-- Subscriptions and their invoices.
--
-- A subscription bills its price every period, counted from its billing anchor by calendar
-- arithmetic (monthly from Jan 31: Feb 28 or 29, then Mar 31), on its customer's time (a test
-- clock's, if the customer lives on one). `next_run_at` is when billing must next look at it
-- (a period's end, a retry, the trial's end, a resume); nothing runs for a subscription that
-- has none. Each period is invoiced once (`invoices_one_per_period`), and each attempt to pay
-- an invoice is a purchase through the customer's ledger shard under an idempotency key made
-- of the subscription, the period's start and the attempt's number, so no period is charged
-- twice whoever retries. A change of price or quantity with prorations is invoiced at once:
-- the unused part of the period credited, the new price's remaining part charged, and a net
-- credit paid back as a refund of the period's payment.

CREATE TABLE subscriptions (
    id                    uuid PRIMARY KEY,
    customer_id           uuid NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    plan_id               uuid REFERENCES plans (id) ON DELETE RESTRICT,
    amount                bigint NOT NULL CHECK (amount > 0),
    currency              char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    interval              text NOT NULL CHECK (interval IN ('day', 'week', 'month', 'year')),
    interval_count        integer NOT NULL,
    quantity              integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    status                text NOT NULL CHECK (status IN ('incomplete', 'trialing', 'active',
                              'past_due', 'paused', 'cancelled', 'failed')),
    payment_method_id     uuid NOT NULL REFERENCES payment_methods (id) ON DELETE RESTRICT,
    billing_anchor        timestamptz NOT NULL,
    period_index          integer NOT NULL CHECK (period_index >= 0),
    current_period_start  timestamptz NOT NULL,
    current_period_end    timestamptz NOT NULL,
    trial_end             timestamptz,
    trial_will_end_sent   boolean NOT NULL DEFAULT false,
    cancel_at_period_end  boolean NOT NULL DEFAULT false,
    cancelled_at          timestamptz,
    paused_at             timestamptz,
    resume_at             timestamptz,
    next_run_at           timestamptz,
    test_clock_id         uuid REFERENCES test_clocks (id) ON DELETE RESTRICT,
    metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The API key the subscription's charges are idempotent under.
    owner_api_key_id      uuid NOT NULL,
    api_key_id            uuid,
    correlation_id        text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT subscription_period_within_a_year CHECK (
        interval_count >= 1 AND interval_count <= CASE interval
            WHEN 'day' THEN 365 WHEN 'week' THEN 52 WHEN 'month' THEN 12 ELSE 1 END
    ),
    CONSTRAINT period_runs_forward CHECK (current_period_end > current_period_start),
    CONSTRAINT cancelled_when_cancelled CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CONSTRAINT paused_when_paused CHECK ((status = 'paused') = (paused_at IS NOT NULL)),
    CONSTRAINT ended_runs_nothing CHECK (
        status NOT IN ('cancelled', 'failed') OR next_run_at IS NULL
    )
);
CREATE INDEX idx_subscriptions_created ON subscriptions (created_at DESC, id DESC);
CREATE INDEX idx_subscriptions_customer ON subscriptions (customer_id, created_at DESC, id DESC);
CREATE INDEX idx_subscriptions_clock_due ON subscriptions (test_clock_id, next_run_at)
    WHERE next_run_at IS NOT NULL;
CREATE INDEX idx_subscriptions_due ON subscriptions (next_run_at)
    WHERE next_run_at IS NOT NULL AND test_clock_id IS NULL;

CREATE TABLE invoices (
    id                uuid PRIMARY KEY,
    subscription_id   uuid NOT NULL REFERENCES subscriptions (id) ON DELETE RESTRICT,
    customer_id       uuid NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    billing_reason    text NOT NULL CHECK (billing_reason IN ('subscription_create',
                          'subscription_cycle', 'subscription_update')),
    status            text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'paid', 'uncollectible', 'void')),
    currency          char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Negative only for a proration's credit, paid back by a refund.
    amount_due        bigint NOT NULL CHECK (
        amount_due > 0 OR (amount_due < 0 AND billing_reason = 'subscription_update')
    ),
    amount_paid       bigint NOT NULL DEFAULT 0,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    lines             jsonb NOT NULL CHECK (jsonb_typeof(lines) = 'array'),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- An attempt begun and not yet settled: a rerun charges again under the same key.
    attempt_pending   boolean NOT NULL DEFAULT false,
    next_attempt_at   timestamptz,
    last_decline_code text,
    payment_ids       uuid[] NOT NULL DEFAULT '{}',
    paid_at           timestamptz,
    api_key_id        uuid,
    correlation_id    text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT invoice_period_runs_forward CHECK (period_end > period_start),
    CONSTRAINT paid_in_full CHECK (
        CASE status
            WHEN 'paid' THEN amount_paid = amount_due AND paid_at IS NOT NULL
                             AND cardinality(payment_ids) >= 1
            ELSE amount_paid = 0 AND paid_at IS NULL
        END
    ),
    CONSTRAINT only_open_is_attempted CHECK (
        status = 'open' OR (NOT attempt_pending AND next_attempt_at IS NULL)
    )
);
-- A period is invoiced once, whoever renews it.
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (subscription_id, period_start)
    WHERE billing_reason IN ('subscription_create', 'subscription_cycle');
CREATE INDEX idx_invoices_subscription ON invoices (subscription_id, created_at DESC, id DESC);

CREATE TRIGGER audit_subscriptions AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
CREATE TRIGGER audit_invoices AFTER INSERT OR UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
