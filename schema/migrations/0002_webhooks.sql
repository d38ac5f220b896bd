-- Webhooks: endpoints, one delivery per (event, endpoint), every attempt, and the queue switches.
--
-- Deliveries are fanned out by a trigger on `events`, so they exist exactly when their event
-- does (same transaction), and a NOTIFY wakes the dispatchers when that transaction commits
-- (retries are found by the dispatchers' polling; replays notify explicitly).

CREATE TABLE webhook_endpoints (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url                   text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    description           text,
    enabled_events        text[] NOT NULL CHECK (cardinality(enabled_events) > 0),
    status                text NOT NULL DEFAULT 'enabled'
                          CHECK (status IN ('enabled', 'disabled', 'deleted')),
    disabled_reason       text,
    secret                text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    previous_secret       text CHECK (previous_secret LIKE 'whsec\_%'),
    previous_secret_until timestamptz,
    failing_since         timestamptz,
    metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
    api_key_id            uuid,
    correlation_id        text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_endpoints_created ON webhook_endpoints (created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id         uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type       text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_until    timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX idx_webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX idx_webhook_deliveries_endpoint_due ON webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX idx_webhook_deliveries_created ON webhook_deliveries (created_at DESC, id DESC);

CREATE TABLE webhook_attempts (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    delivery_id       uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at      timestamptz NOT NULL DEFAULT now(),
    http_status       integer,
    latency_ms        integer NOT NULL CHECK (latency_ms >= 0),
    response_excerpt  text,
    error             text
);
CREATE INDEX idx_webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);

-- Operator switches per queue; survive restarts and apply to every dispatcher.
CREATE TABLE queue_state (
    queue       text PRIMARY KEY,
    paused      boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO queue_state (queue) VALUES ('webhooks');

-- An event aimed at one endpoint (webhook.test) goes to that endpoint only; every other event
-- goes to each enabled endpoint subscribed to its type (or to '*').
ALTER TABLE events ADD COLUMN target_endpoint_id uuid REFERENCES webhook_endpoints (id)
    ON DELETE CASCADE;

CREATE FUNCTION fan_out_event() RETURNS trigger AS $$
DECLARE
    created integer;
BEGIN
    INSERT INTO webhook_deliveries (event_id, endpoint_id, event_type)
    SELECT NEW.id, e.id, NEW.event_type
    FROM webhook_endpoints e
    WHERE e.status = 'enabled'
      AND CASE WHEN NEW.target_endpoint_id IS NOT NULL
               THEN e.id = NEW.target_endpoint_id
               ELSE NEW.event_type = ANY (e.enabled_events) OR '*' = ANY (e.enabled_events)
          END;
    GET DIAGNOSTICS created = ROW_COUNT;
    -- Only when there is something to send; PostgreSQL folds repeats within a transaction.
    IF created > 0 THEN
        PERFORM pg_notify('paygrid_webhook_deliveries', '');
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER events_fan_out AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION fan_out_event();

-- Signing secrets never reach the audit trail either.
CREATE OR REPLACE FUNCTION audit_trigger_function() RETURNS trigger AS $$
DECLARE
    hidden text[] := ARRAY['key_hash', 'secret', 'previous_secret'];
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

CREATE TRIGGER audit_webhook_endpoints AFTER INSERT OR UPDATE OR DELETE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION audit_trigger_function();
