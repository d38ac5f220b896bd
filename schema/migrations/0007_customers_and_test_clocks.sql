-- Customers created on their own, with their PII encrypted, and the sandbox's test clocks.
--
-- A customer created through the customers API keeps its PII (email, names, phone, address)
-- only as ciphertext under its own `customer_pii` data key (migration 0005), bound to the row,
-- and its email as a keyed blind index for lookups. Customers a purchase creates inline still
-- carry their email in clear (`email`), until those move to the same form: a row holds one
-- form or the other, never neither.
--
-- A test clock is a frozen time a customer may live on (sandbox only): its subscriptions
-- renew, retry and expire by the clock's time, which only an API call moves forward.

CREATE TABLE test_clocks (
    id              uuid PRIMARY KEY,
    name            text CHECK (length(name) BETWEEN 1 AND 200),
    frozen_time     timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'advancing')),
    api_key_id      uuid,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER audit_test_clocks AFTER INSERT OR UPDATE OR DELETE ON test_clocks
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();

-- A customer's data key is made in the transaction that creates the customer, before the row
-- that names it: the key's reference to its customer is checked at commit.
ALTER TABLE data_keys ALTER CONSTRAINT data_keys_customer_id_fkey DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE customers
    ALTER COLUMN email DROP NOT NULL,
    ADD COLUMN data_key_id     uuid REFERENCES data_keys (id) ON DELETE RESTRICT,
    ADD COLUMN ciphertext      bytea,
    ADD COLUMN email_index     bytea CHECK (length(email_index) = 32),
    ADD COLUMN consent_version text CHECK (length(consent_version) BETWEEN 1 AND 100),
    ADD COLUMN consent_at      timestamptz,
    ADD COLUMN test_clock_id   uuid REFERENCES test_clocks (id) ON DELETE RESTRICT,
    ADD CONSTRAINT pii_in_one_form CHECK (
        CASE WHEN ciphertext IS NULL
            THEN email IS NOT NULL AND data_key_id IS NULL AND email_index IS NULL
            ELSE email IS NULL AND first_name IS NULL AND last_name IS NULL AND phone IS NULL
                 AND address IS NULL AND data_key_id IS NOT NULL AND email_index IS NOT NULL
        END
    ),
    ADD CONSTRAINT consent_given_whole CHECK ((consent_version IS NULL) = (consent_at IS NULL));

CREATE INDEX idx_customers_email_index ON customers (email_index) WHERE email_index IS NOT NULL;

-- An email's blind index joins ciphertext and wrapped keys outside the audit trail: the trail
-- outlives an erasure, and the index would still confirm a guessed address after it.
CREATE OR REPLACE FUNCTION audit_trigger_function() RETURNS trigger AS $$
DECLARE
    hidden text[] := ARRAY['key_hash', 'secret', 'previous_secret', 'ciphertext', 'wrapped_key',
                           'email_index'];
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) - hidden END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) - hidden END;
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
CREATE INDEX idx_customers_test_clock ON customers (test_clock_id) WHERE test_clock_id IS NOT NULL;
