-- paygrid core schema: customers, orders, payments and their operations, the ledger,
-- the transactional outbox, idempotency records, API keys and the audit trail.
--
-- Money is bigint minor units. The CHECK constraints and the operation-limit trigger make
-- it impossible to capture more than was authorized or refund more than was captured,
-- whatever the application code does.

CREATE TYPE transaction_status AS ENUM (
    'processing', 'authorized', 'captured', 'succeeded',
    'voided', 'expired', 'failed', 'refunded'
);

CREATE TYPE transaction_type AS ENUM (
    'purchase', 'authorize', 'capture', 'void', 'refund'
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    scopes       text[] NOT NULL CHECK (
        cardinality(scopes) > 0 AND scopes <@ ARRAY[
            'payments:write', 'payments:read', 'subscriptions',
            'webhooks', 'customers', 'admin'
        ]::text[]
    ),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE customers (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    first_name  text,
    last_name   text,
    phone       text,
    address     jsonb,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    api_key_id      uuid,
    correlation_id  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id  uuid NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    amount       bigint NOT NULL CHECK (amount > 0),
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'cancelled')),
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    api_key_id      uuid,
    correlation_id  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_orders_customer_created ON orders (customer_id, created_at);

-- One row per operation. Root rows (purchase, authorize) are the payments the API shows;
-- capture, void and refund rows point at their payment through parent_id.
CREATE TABLE transactions (
    id                      uuid PRIMARY KEY,
    parent_id               uuid REFERENCES transactions (id) ON DELETE RESTRICT,
    customer_id             uuid NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    order_id                uuid REFERENCES orders (id) ON DELETE RESTRICT,
    shard                   integer NOT NULL CHECK (shard >= 0),
    transaction_type        transaction_type NOT NULL,
    status                  transaction_status NOT NULL,
    amount                  bigint NOT NULL CHECK (amount > 0),
    currency                char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_capturable       bigint NOT NULL DEFAULT 0 CHECK (amount_capturable >= 0),
    amount_captured         bigint NOT NULL DEFAULT 0 CHECK (amount_captured >= 0),
    amount_refunded         bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    amount_refund_pending   bigint NOT NULL DEFAULT 0 CHECK (amount_refund_pending >= 0),
    gateway                 text NOT NULL,
    gateway_transaction_id  text,
    payment_method          jsonb,
    failure_code            text,
    failure_message         text,
    decline_code            text,
    description             text,
    metadata                jsonb NOT NULL DEFAULT '{}'::jsonb,
    api_key_id              uuid,
    correlation_id          text,
    authorization_expires_at timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT capture_within_authorized CHECK (amount_capturable + amount_captured <= amount),
    CONSTRAINT refund_within_captured CHECK (amount_refunded + amount_refund_pending <= amount_captured),
    CONSTRAINT root_iff_payment CHECK (
        (parent_id IS NULL) = (transaction_type IN ('purchase', 'authorize'))
    ),
    CONSTRAINT operations_carry_no_balances CHECK (
        parent_id IS NULL OR (amount_capturable = 0 AND amount_captured = 0
                              AND amount_refunded = 0 AND amount_refund_pending = 0)
    ),
    CONSTRAINT status_fits_type CHECK (
        CASE transaction_type
            WHEN 'purchase' THEN status IN ('processing', 'succeeded', 'failed', 'refunded')
            WHEN 'authorize' THEN status IN ('processing', 'authorized', 'captured', 'voided',
                                             'expired', 'failed', 'refunded')
            ELSE status IN ('processing', 'succeeded', 'failed')
        END
    ),
    CONSTRAINT balances_fit_status CHECK (
        parent_id IS NOT NULL
        OR CASE status
            WHEN 'authorized' THEN amount_capturable = amount AND amount_captured = 0
            WHEN 'captured' THEN amount_capturable = 0 AND amount_captured > 0
            WHEN 'succeeded' THEN amount_capturable = 0 AND amount_captured = amount
            WHEN 'refunded' THEN amount_capturable = 0 AND amount_captured > 0
                                 AND amount_refunded = amount_captured
            ELSE amount_capturable = 0 AND amount_captured = 0
        END
    )
);
CREATE INDEX idx_transactions_status ON transactions (status);
CREATE INDEX idx_transactions_customer_created ON transactions (customer_id, created_at DESC, id DESC);
CREATE INDEX idx_transactions_created ON transactions (created_at DESC, id DESC) WHERE parent_id IS NULL;
CREATE INDEX idx_transactions_parent ON transactions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX idx_transactions_processing ON transactions (shard, created_at) WHERE status = 'processing';

-- At most one live capture-or-void per authorization, whoever writes it.
CREATE UNIQUE INDEX transactions_one_settlement ON transactions (parent_id)
    WHERE transaction_type IN ('capture', 'void') AND status IN ('processing', 'succeeded');

-- Operations may never claim more than their payment allows: live captures within the
-- authorized amount, live refunds within the captured amount. Locks the payment row, so
-- concurrent writers serialize here even if they skipped the application's locking.
CREATE FUNCTION enforce_operation_limits() RETURNS trigger AS $$
DECLARE
    payment transactions%ROWTYPE;
    live_refunds bigint;
BEGIN
    IF NEW.parent_id IS NULL OR NEW.status = 'failed' THEN
        RETURN NEW;
    END IF;
    SELECT * INTO payment FROM transactions WHERE id = NEW.parent_id FOR UPDATE;
    IF NEW.currency <> payment.currency THEN
        RAISE EXCEPTION 'operation currency % differs from payment currency %',
            NEW.currency, payment.currency USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.transaction_type = 'capture' AND NEW.amount > payment.amount THEN
        RAISE EXCEPTION 'capture of % exceeds authorized %', NEW.amount, payment.amount
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.transaction_type = 'refund' THEN
        SELECT coalesce(sum(amount), 0) INTO live_refunds FROM transactions
            WHERE parent_id = NEW.parent_id AND transaction_type = 'refund'
              AND status IN ('processing', 'succeeded') AND id <> NEW.id;
        IF live_refunds + NEW.amount > payment.amount_captured THEN
            RAISE EXCEPTION 'refunds of % exceed captured %', live_refunds + NEW.amount,
                payment.amount_captured USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER transactions_operation_limits
    BEFORE INSERT OR UPDATE OF status, amount ON transactions
    FOR EACH ROW EXECUTE FUNCTION enforce_operation_limits();

CREATE TABLE refunds (
    id              uuid PRIMARY KEY REFERENCES transactions (id) ON DELETE RESTRICT,
    transaction_id  uuid NOT NULL REFERENCES transactions (id) ON DELETE RESTRICT,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reason          text CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
    status          transaction_status NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    api_key_id      uuid,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_refunds_transaction ON refunds (transaction_id);

-- Per-customer balance movements. held: authorized, not yet captured; captured: money taken;
-- refunded: money given back. A customer's balances are the sums of their entries.
CREATE TABLE ledger_entries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id     uuid NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    transaction_id  uuid NOT NULL REFERENCES transactions (id) ON DELETE RESTRICT,
    account         text NOT NULL CHECK (account IN ('held', 'captured', 'refunded')),
    currency        char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount          bigint NOT NULL CHECK (amount <> 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_ledger_entries_customer ON ledger_entries (customer_id, currency);
CREATE INDEX idx_ledger_entries_transaction ON ledger_entries (transaction_id);

-- The transactional outbox: written in the same transaction as the change it reports.
CREATE TABLE events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type      text NOT NULL CHECK (event_type ~ '^[a-z_]+(\.[a-z_]+)+$'),
    object_type     text NOT NULL,
    object_id       uuid NOT NULL,
    payload         jsonb NOT NULL,
    api_key_id      uuid,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_events_created ON events (created_at DESC, id DESC);
CREATE INDEX idx_events_object ON events (object_id);

CREATE TABLE idempotency_keys (
    api_key_id       uuid NOT NULL,
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL,
    status           text NOT NULL CHECK (status IN ('processing', 'completed')),
    response_status  integer,
    response_body    jsonb,
    resource_id      uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    expires_at       timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (api_key_id, idempotency_key),
    CONSTRAINT completed_has_response CHECK (
        (status = 'completed') = (response_status IS NOT NULL AND response_body IS NOT NULL)
    )
);
CREATE INDEX idx_idempotency_expires ON idempotency_keys (expires_at);
CREATE INDEX idx_idempotency_pending_resource ON idempotency_keys (resource_id)
    WHERE status = 'processing';

CREATE TABLE audit_logs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    entity_type     text NOT NULL,
    entity_id       uuid NOT NULL,
    action          text NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE')),
    old_values      jsonb,
    new_values      jsonb,
    api_key_id      uuid,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_audit_logs_entity ON audit_logs (entity_type, entity_id, created_at);

-- Who and why: every audited money row carries the API key and correlation id of its latest
-- change (api_key_id, correlation_id), written by the same statement, so batched writes of
-- many requests are attributed row by row. Rows without them (api_keys, operator tools) fall
-- back to transaction-local settings paygrid.api_key_id / paygrid.correlation_id.
-- Secrets never reach the audit trail.
CREATE FUNCTION audit_trigger_function() RETURNS trigger AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) - 'key_hash' END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) - 'key_hash' END;
    acting jsonb := coalesce(new_row, old_row);
    actor uuid := coalesce((acting ->> 'api_key_id')::uuid,
                           nullif(current_setting('paygrid.api_key_id', true), '')::uuid);
    correlation text := coalesce(acting ->> 'correlation_id',
                                 nullif(current_setting('paygrid.correlation_id', true), ''));
BEGIN
    INSERT INTO audit_logs (entity_type, entity_id, action, old_values, new_values,
                            api_key_id, correlation_id)
    VALUES (TG_TABLE_NAME, coalesce(NEW.id, OLD.id), TG_OP, old_row, new_row, actor, correlation);
    RETURN coalesce(NEW, OLD);
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_customers AFTER INSERT OR UPDATE OR DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
CREATE TRIGGER audit_orders AFTER INSERT OR UPDATE OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
CREATE TRIGGER audit_transactions AFTER INSERT OR UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
CREATE TRIGGER audit_refunds AFTER INSERT OR UPDATE OR DELETE ON refunds
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
CREATE TRIGGER audit_api_keys AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();

CREATE VIEW transaction_summary AS
SELECT date_trunc('day', created_at) AS date,
       transaction_type,
       status,
       currency,
       count(*) AS transaction_count,
       sum(amount) AS total_amount
FROM transactions
GROUP BY date_trunc('day', created_at), transaction_type, status, currency;
