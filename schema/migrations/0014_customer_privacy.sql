-- Privacy by construction: every customer's PII sealed or erased, and reads of it audited.
--
-- From here on no row of `customers` may hold PII in clear: the email, names, phone and address
-- columns stay only so that rows written before this migration can be read once more and
-- sealed, and a CHECK keeps them NULL. A customer is either sealed (ciphertext under its
-- `customer_pii` data key, email as a keyed blind index) or erased (`erased_at`: its data keys
-- destroyed, nothing of its profile left, its financial rows kept under its id).
--
-- Sealing needs the master key, which never reaches the database, so this migration cannot
-- seal rows left in clear by an earlier release. The constraint is added NOT VALID (every
-- insert and update obeys it at once) and validated here when no such row exists, as on every
-- new installation; otherwise `paygrid migrate` (and start-up) seals them and validates it
-- (`engine/customers/sealing.py`).

ALTER TABLE customers
    DROP CONSTRAINT pii_in_one_form,
    ADD COLUMN erased_at timestamptz,
    ADD CONSTRAINT pii_sealed_or_erased CHECK (
        email IS NULL AND first_name IS NULL AND last_name IS NULL AND phone IS NULL
        AND address IS NULL
        AND CASE WHEN erased_at IS NULL
            THEN ciphertext IS NOT NULL AND data_key_id IS NOT NULL AND email_index IS NOT NULL
            ELSE ciphertext IS NULL AND data_key_id IS NULL AND email_index IS NULL
        END
    ) NOT VALID;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM customers WHERE ciphertext IS NULL AND erased_at IS NULL) THEN
        ALTER TABLE customers VALIDATE CONSTRAINT pii_sealed_or_erased;
    END IF;
END
$$;

CREATE INDEX idx_customers_email_page ON customers (email_index, created_at DESC, id DESC)
    WHERE email_index IS NOT NULL;
DROP INDEX idx_customers_email_index;

-- Reads of PII (a customer's detail, a lookup by email, an export) and erasures are audited
-- beside the changes: who (API key, correlation id) read which customer, and when.
ALTER TABLE audit_logs
    DROP CONSTRAINT audit_logs_action_check,
    ADD CONSTRAINT audit_logs_action_check
        CHECK (action IN ('INSERT', 'UPDATE', 'DELETE', 'READ', 'EXPORT', 'ERASE'));

-- The audit trail outlives an erasure, so it never holds PII: the clear columns join the
-- hidden ones (sealing a row written by an earlier release updates them to NULL, and its old
-- values must not be kept), and the trail's copies of inline customers written before this
-- migration lose them.
CREATE OR REPLACE FUNCTION audit_trigger_function() RETURNS trigger AS $$
DECLARE
    hidden text[] := ARRAY['key_hash', 'secret', 'previous_secret', 'ciphertext', 'wrapped_key',
                           'email_index', 'email', 'first_name', 'last_name', 'phone', 'address'];
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

UPDATE audit_logs
SET old_values = old_values - ARRAY['email', 'first_name', 'last_name', 'phone', 'address'],
    new_values = new_values - ARRAY['email', 'first_name', 'last_name', 'phone', 'address']
WHERE entity_type = 'customers';
