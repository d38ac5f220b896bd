-- The card vault: saved payment methods.
--
-- The card number and holder name (or the gateway token) only as ciphertext under the
-- customer's data key (data_keys, migration 0005), bound to the row and its customer by the
-- associated data; brand, last4, expiry and the fingerprint (a keyed blind index of the number)
-- in clear. Detaching drops the ciphertext: a detached method holds nothing that could be
-- charged.

CREATE TABLE payment_methods (
    id              uuid PRIMARY KEY,
    customer_id     uuid NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    type            text NOT NULL CHECK (type IN ('card', 'token')),
    status          text NOT NULL DEFAULT 'attached' CHECK (status IN ('attached', 'detached')),
    brand           text NOT NULL,
    last4           text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    exp_month       smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year        smallint NOT NULL CHECK (exp_year BETWEEN 2000 AND 2100),
    fingerprint     text NOT NULL CHECK (length(fingerprint) BETWEEN 8 AND 64),
    data_key_id     uuid REFERENCES data_keys (id) ON DELETE RESTRICT,
    ciphertext      bytea,
    api_key_id      uuid,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    detached_at     timestamptz,

    CONSTRAINT attached_holds_ciphertext CHECK (
        (status = 'attached') = (ciphertext IS NOT NULL AND data_key_id IS NOT NULL)
    ),
    CONSTRAINT detached_holds_nothing CHECK (
        status = 'attached' OR (ciphertext IS NULL AND data_key_id IS NULL AND detached_at IS NOT NULL)
    )
);
CREATE INDEX idx_payment_methods_customer
    ON payment_methods (customer_id, created_at DESC, id DESC) WHERE status = 'attached';

CREATE TRIGGER audit_payment_methods AFTER INSERT OR UPDATE OR DELETE ON payment_methods
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
