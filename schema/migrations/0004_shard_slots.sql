-- Fenced shard ownership. Customers map to 1,024 fixed virtual slots (the low ten bits of the
-- customer id, as engine/sharding.py computes them); each slot is owned by one ledger shard at
-- a time. Claiming a slot bumps its epoch, and every write of a shard checks, under FOR SHARE,
-- that it still holds the epoch it claimed: a claim waits for the old owner's open transaction
-- and the old owner's next one fails, so two actors that both believe they own a customer can
-- never both write.

CREATE TABLE shard_slots (
    slot        integer PRIMARY KEY CHECK (slot >= 0 AND slot < 1024),
    owner       text NOT NULL,
    epoch       bigint NOT NULL CHECK (epoch > 0),
    claimed_at  timestamptz NOT NULL DEFAULT now()
);

-- The slot of each money row, derived from its customer, so a slot's owner finds the rows it
-- must recover and expire.
ALTER TABLE transactions ADD COLUMN slot integer NOT NULL GENERATED ALWAYS AS (
    ('x' || right(replace(customer_id::text, '-', ''), 3))::bit(12)::integer & 1023
) STORED;
DROP INDEX idx_transactions_processing;
CREATE INDEX idx_transactions_processing ON transactions (slot, created_at)
    WHERE status = 'processing';
CREATE INDEX idx_transactions_authorized ON transactions (slot, authorization_expires_at)
    WHERE status = 'authorized' AND parent_id IS NULL;
