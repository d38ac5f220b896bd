-- Key management: data keys wrapped by the master key.
--
-- data_keys holds random 256-bit data keys, each wrapped (AES-256-GCM) by the master key named
-- by master_key_id, so rotating the master key re-wraps these rows and re-encrypts no data.
-- A key either protects one customer's data for one purpose (per-customer keys: destroying
-- them is crypto-shredding) or, with no customer, serves everyone (the keys of blind indexes).
-- The master key itself is never stored here.

CREATE TABLE data_keys (
    id             uuid PRIMARY KEY,
    purpose        text NOT NULL CHECK (purpose ~ '^[a-z_]+(\.[a-z_]+)*$'),
    customer_id    uuid REFERENCES customers (id) ON DELETE RESTRICT,
    master_key_id  text NOT NULL CHECK (master_key_id ~ '^[0-9a-f]{16}$'),
    -- version byte, 12-byte nonce, 32-byte key, 16-byte tag
    wrapped_key    bytea NOT NULL CHECK (length(wrapped_key) = 61),
    created_at     timestamptz NOT NULL DEFAULT now(),
    rewrapped_at   timestamptz
);
-- One key per purpose and customer (and one shared key per blind index).
CREATE UNIQUE INDEX data_keys_one_per_owner ON data_keys (purpose, customer_id) NULLS NOT DISTINCT;
CREATE INDEX idx_data_keys_master ON data_keys (master_key_id);

-- Ciphertext and wrapped keys never reach the audit trail: it outlives them (a destroyed key
-- must leave nothing behind) and needs only who changed what.
CREATE OR REPLACE FUNCTION audit_trigger_function() RETURNS trigger AS $$
DECLARE
    hidden text[] := ARRAY['key_hash', 'secret', 'previous_secret', 'ciphertext', 'wrapped_key'];
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

CREATE TRIGGER audit_data_keys AFTER INSERT OR UPDATE OR DELETE ON data_keys
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
