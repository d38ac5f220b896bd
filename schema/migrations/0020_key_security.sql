-- API-key security: per-key rate limits and IP allow-lists, rotation with a grace period,
-- last use, and the trail of failed authentications.
--
-- rate_limit is NULL (the deployment's default tiers), 'unlimited', or '<count>/<s|m|h>'.
-- allowed_ips is NULL (any address) or a non-empty list of networks the key may be used from.
ALTER TABLE api_keys
    ADD COLUMN rate_limit  text CONSTRAINT api_keys_rate_limit_form
        CHECK (rate_limit ~ '^(unlimited|[1-9][0-9]{0,8}/[smh])$'),
    ADD COLUMN allowed_ips cidr[] CONSTRAINT api_keys_allowed_ips_not_empty
        CHECK (cardinality(allowed_ips) > 0),
    ADD COLUMN rotated_at  timestamptz;

-- A rotated key's earlier hashes: each keeps working until its expires_at (the grace period),
-- then authenticates nothing. Hashes only, never secrets, so this table is not audited (the
-- rotation itself is, as an UPDATE of api_keys).
CREATE TABLE api_key_retired_hashes (
    key_hash    bytea PRIMARY KEY,
    key_id      uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    retired_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CONSTRAINT api_key_retired_hashes_grace CHECK (expires_at >= retired_at)
);
CREATE INDEX idx_api_key_retired_hashes_key ON api_key_retired_hashes (key_id);

-- When a key was last used, kept apart from api_keys so touching it (at most once a minute per
-- key and replica) neither rewrites the key's row nor lands in the audit trail.
CREATE TABLE api_key_usage (
    key_id        uuid PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    last_used_at  timestamptz NOT NULL
);

-- Failed authentications: which key (its id when known, else the presented prefix), from where,
-- and why. Never the presented secret.
CREATE TABLE auth_failures (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reason          text NOT NULL CONSTRAINT auth_failures_reason CHECK (
        reason IN ('missing', 'unknown', 'expired', 'revoked', 'rotated_out', 'ip_not_allowed')
    ),
    api_key_id      uuid,
    key_prefix      text CONSTRAINT auth_failures_prefix_short CHECK (length(key_prefix) <= 10),
    client_ip       inet,
    method          text NOT NULL,
    path            text NOT NULL CHECK (length(path) <= 512),
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_auth_failures_created ON auth_failures (created_at);
CREATE INDEX idx_auth_failures_key ON auth_failures (api_key_id, created_at);
