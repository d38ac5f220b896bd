-- Plans: reusable prices for subscriptions.
--
-- A plan's price (amount, currency, interval, interval_count) and trial never change once
-- created (a trigger refuses it): subscriptions and invoices that point at a plan can rely on
-- it. A plan is archived instead, and takes no new subscriptions.

CREATE TABLE plans (
    id                 uuid PRIMARY KEY,
    name               text CHECK (length(name) BETWEEN 1 AND 200),
    amount             bigint NOT NULL CHECK (amount > 0),
    currency           char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    interval           text NOT NULL CHECK (interval IN ('day', 'week', 'month', 'year')),
    interval_count     integer NOT NULL,
    trial_period_days  integer NOT NULL DEFAULT 0 CHECK (trial_period_days BETWEEN 0 AND 730),
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
    api_key_id         uuid,
    correlation_id     text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    archived_at        timestamptz,

    -- A period is at most a year.
    CONSTRAINT period_within_a_year CHECK (
        interval_count >= 1 AND interval_count <= CASE interval
            WHEN 'day' THEN 365 WHEN 'week' THEN 52 WHEN 'month' THEN 12 ELSE 1 END
    ),
    CONSTRAINT archived_when_archived CHECK ((status = 'archived') = (archived_at IS NOT NULL))
);
CREATE INDEX idx_plans_created ON plans (created_at DESC, id DESC);

CREATE FUNCTION plans_price_immutable() RETURNS trigger AS $$
BEGIN
    IF (NEW.amount, NEW.currency, NEW.interval, NEW.interval_count, NEW.trial_period_days)
       IS DISTINCT FROM
       (OLD.amount, OLD.currency, OLD.interval, OLD.interval_count, OLD.trial_period_days) THEN
        RAISE EXCEPTION 'a plan''s price never changes: archive it and create another'
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'archived' AND NEW.status <> 'archived' THEN
        RAISE EXCEPTION 'an archived plan stays archived' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER plans_price_immutable BEFORE UPDATE ON plans
    FOR EACH ROW EXECUTE FUNCTION plans_price_immutable();

CREATE TRIGGER audit_plans AFTER INSERT OR UPDATE OR DELETE ON plans
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
