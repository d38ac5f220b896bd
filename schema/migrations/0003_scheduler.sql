-- The scheduler queue: durable jobs to run at a time (renewals, dunning, housekeeping), claimed
-- by scheduler actors under a lease and retried with backoff, then dead-lettered.

CREATE TABLE scheduled_jobs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind           text NOT NULL CHECK (kind ~ '^[a-z_]+(\.[a-z_]+)+$'),
    payload        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- At most one live job per key: enqueueing the same key twice is a no-op.
    dedupe_key     text,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    run_at         timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    claimed_until  timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz
);
CREATE INDEX idx_scheduled_jobs_due ON scheduled_jobs (run_at) WHERE status = 'pending';
CREATE UNIQUE INDEX scheduled_jobs_live_key ON scheduled_jobs (dedupe_key)
    WHERE status = 'pending' AND dedupe_key IS NOT NULL;

INSERT INTO queue_state (queue) VALUES ('scheduler');

CREATE FUNCTION notify_jobs() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('paygrid_scheduled_jobs', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER scheduled_jobs_notify AFTER INSERT OR UPDATE OF run_at, status
    ON scheduled_jobs FOR EACH STATEMENT EXECUTE FUNCTION notify_jobs();
