-- Webhook signing secrets encrypted at rest: each endpoint's current and previous secret are
-- AES-256-GCM ciphertexts under the shared `webhook_secret` data key (wrapped by the master
-- key, so a master-key rotation re-wraps it), each bound to its row and column.
--
-- The clear columns stay only so that rows written before this migration can be read once
-- more and sealed; a CHECK keeps them NULL. Sealing needs the master key, which never reaches
-- the database, so the constraint is added NOT VALID (every insert and update obeys it at
-- once) and validated here when no clear row exists, as on every new installation; otherwise
-- `paygrid migrate` (and start-up) seals them and validates it (engine/webhooks/secrets.py).
-- The audit trail already hides `secret` and `previous_secret`; the sealed columns hold only
-- ciphertext.

ALTER TABLE webhook_endpoints
    ADD COLUMN secret_sealed bytea,
    ADD COLUMN previous_secret_sealed bytea,
    ALTER COLUMN secret DROP NOT NULL,
    ADD CONSTRAINT webhook_secrets_sealed CHECK (
        secret IS NULL AND previous_secret IS NULL AND secret_sealed IS NOT NULL
    ) NOT VALID;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE secret IS NOT NULL) THEN
        ALTER TABLE webhook_endpoints VALIDATE CONSTRAINT webhook_secrets_sealed;
    END IF;
END
$$;
