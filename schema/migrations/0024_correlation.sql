-- Correlation ids on every row a request touches (issue 11). Payments, refunds, events, audit
-- rows and the other audited tables carry the request's `correlation_id` since 0001; this adds
-- it where it was missing:
--
-- ledger_entries: written by the ledger shard with the command that booked them (one set-based
--   insert per batch, each entry with its own command's id). Entries booked before this
--   migration keep NULL: their transaction row holds the id of its latest change, not
--   necessarily of the one that booked the entry.
-- webhook_deliveries: inherit their event's id, copied by the fan-out trigger in the same
--   statement that creates them.
-- webhook_attempts: inherit their delivery's id, copied by the insert that records them.
--
-- No new index: GET /api/tracing/requests/{correlation_id} starts from the audit rows
-- (idx_audit_logs_correlation, 0013), whose entity ids lead to the transactions, refunds and
-- event objects by primary key, and from those to ledger entries, events, deliveries and
-- attempts through their existing foreign-key indexes, filtering each on the id. An index on
-- each table would cost every payment's write path an extra B-tree insert per row.

ALTER TABLE ledger_entries ADD COLUMN correlation_id text;
ALTER TABLE webhook_deliveries ADD COLUMN correlation_id text;
ALTER TABLE webhook_attempts ADD COLUMN correlation_id text;

CREATE OR REPLACE FUNCTION fan_out_event() RETURNS trigger AS $$
DECLARE
    created integer;
BEGIN
    INSERT INTO webhook_deliveries (event_id, endpoint_id, event_type, correlation_id)
    SELECT NEW.id, e.id, NEW.event_type, NEW.correlation_id
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

-- Deliveries and attempts made before this migration take their event's id, exactly as new
-- ones do.
UPDATE webhook_deliveries d SET correlation_id = e.correlation_id
FROM events e
WHERE e.id = d.event_id AND e.correlation_id IS NOT NULL;

UPDATE webhook_attempts a SET correlation_id = d.correlation_id
FROM webhook_deliveries d
WHERE d.id = a.delivery_id AND d.correlation_id IS NOT NULL;
