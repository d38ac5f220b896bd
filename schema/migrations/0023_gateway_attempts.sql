-- Gateways (engine/gateways): every call a ledger shard makes to a gateway, one row each, and
-- card summaries without expiry dates.
--
-- gateway_attempts: written by the shard in the transaction that finalizes the payment or
-- operation the call was for (one set-based insert per batch), so an attempt and the outcome it
-- produced commit together. A call whose outcome is unknown (`ambiguous`) is recorded with the
-- batch that leaves its row `processing`; recovery's `lookup` is recorded when it settles it.
-- `reference` is what the gateway was told: the payment id for a charge, the operation id for a
-- capture, void or refund. GET /api/payments/{id} reads a payment's attempts in order.
--
-- Expiry dates: the seed architecture stores a card's expiry only in the vault of saved payment
-- methods (encrypted). Payment summaries (`transactions.payment_method`) keep brand, BIN, last4
-- and the card's fingerprint; the expiry is stripped here from every copy made of them so far
-- (payments, their audit rows, their events, stored idempotent answers) and a CHECK keeps it out.

CREATE TABLE gateway_attempts (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id              uuid NOT NULL REFERENCES transactions (id) ON DELETE RESTRICT,
    reference               uuid NOT NULL,
    gateway                 text NOT NULL CHECK (length(gateway) BETWEEN 1 AND 64),
    kind                    text NOT NULL CHECK (kind IN ('charge', 'authorize', 'capture', 'void',
                                                          'refund', 'lookup', 'verify')),
    outcome                 text NOT NULL CHECK (outcome IN ('approved', 'declined', 'error',
                                                             'ambiguous', 'review')),
    latency_ms              integer NOT NULL CHECK (latency_ms >= 0),
    gateway_transaction_id  text,
    decline_code            text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT decline_has_code CHECK (outcome = 'declined' OR decline_code IS NULL)
);
CREATE INDEX idx_gateway_attempts_payment ON gateway_attempts (payment_id, id);

UPDATE transactions
SET payment_method = payment_method - ARRAY['exp_month', 'exp_year']
WHERE payment_method ?| ARRAY['exp_month', 'exp_year'];

-- After the update above, whose own audit rows still quote the old summaries.
UPDATE audit_logs
SET old_values = CASE WHEN jsonb_typeof(old_values -> 'payment_method') = 'object'
                      THEN jsonb_set(old_values, '{payment_method}',
                                     (old_values -> 'payment_method') - ARRAY['exp_month', 'exp_year'])
                      ELSE old_values END,
    new_values = CASE WHEN jsonb_typeof(new_values -> 'payment_method') = 'object'
                      THEN jsonb_set(new_values, '{payment_method}',
                                     (new_values -> 'payment_method') - ARRAY['exp_month', 'exp_year'])
                      ELSE new_values END
WHERE entity_type = 'transactions'
  AND (old_values -> 'payment_method' ?| ARRAY['exp_month', 'exp_year']
       OR new_values -> 'payment_method' ?| ARRAY['exp_month', 'exp_year']);

UPDATE events
SET payload = jsonb_set(payload, '{payment_method}',
                        (payload -> 'payment_method') - ARRAY['exp_month', 'exp_year'])
WHERE jsonb_typeof(payload -> 'payment_method') = 'object'
  AND payload -> 'payment_method' ?| ARRAY['exp_month', 'exp_year'];

UPDATE idempotency_keys
SET response_body = jsonb_set(response_body, '{payment_method}',
                              (response_body -> 'payment_method') - ARRAY['exp_month', 'exp_year'])
WHERE jsonb_typeof(response_body -> 'payment_method') = 'object'
  AND response_body -> 'payment_method' ?| ARRAY['exp_month', 'exp_year'];

ALTER TABLE transactions ADD CONSTRAINT payment_method_has_no_expiry
    CHECK (NOT coalesce(payment_method ?| ARRAY['exp_month', 'exp_year'], false));
