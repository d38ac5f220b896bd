-- AML monitoring (engine/compliance): one row per rule hit, written by the ledger shard in the
-- transaction of the payment (or refund) it is about. `details` holds amounts, counts, windows
-- and thresholds only: never personal data or any part of a card.
-- The list reads newest first, filtered by rule and/or status (GET /api/compliance/alerts);
-- open alerts are the working queue, so the partial index keeps that walk short.

CREATE TABLE compliance_alerts (
    id               uuid PRIMARY KEY,
    rule             text NOT NULL CHECK (rule IN ('velocity', 'large_amount', 'structuring',
                                                   'refund_after_purchase', 'distinct_cards')),
    action           text NOT NULL CHECK (action IN ('flag', 'block')),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    customer_id      uuid NOT NULL,
    payment_id       uuid NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}',
    api_key_id       uuid,
    correlation_id   text,
    resolution_note  text CHECK (length(resolution_note) <= 2000),
    resolved_by      uuid,
    resolved_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT resolved_has_note CHECK (
        (status = 'resolved') = (resolved_at IS NOT NULL AND resolution_note IS NOT NULL)
    )
);
CREATE INDEX idx_compliance_alerts_created ON compliance_alerts (created_at DESC, id DESC);
CREATE INDEX idx_compliance_alerts_open ON compliance_alerts (created_at DESC, id DESC)
    WHERE status = 'open';
CREATE INDEX idx_compliance_alerts_customer ON compliance_alerts (customer_id);
