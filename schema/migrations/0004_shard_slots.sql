-- Fenced shard ownership. Customers map to 1,024 fixed virtual slots (the low ten bits of the
-- customer id, as engine/sharding.py computes them); each slot is owned by one ledger shard at
-- a time, at an epoch that every claim bumps.
--
-- Every write transaction of a shard starts with paygrid_hold_slots: a shared advisory lock on
-- each slot it touches, then a check that it still owns them at the epoch it claimed. A claim
-- takes the same locks exclusively before it bumps the epochs, so it waits for the old owner's
-- open transactions, and every later transaction of the old owner fails its check (SQLSTATE
-- PGS01): two actors that both believe they own a customer can never both write. Advisory
-- locks live in memory, so the check writes nothing (a row lock would dirty the slot rows).

CREATE TABLE shard_slots (
    slot        integer PRIMARY KEY CHECK (slot >= 0 AND slot < 1024),
    owner       text NOT NULL,
    epoch       bigint NOT NULL CHECK (epoch > 0),
    claimed_at  timestamptz NOT NULL DEFAULT now()
);

-- The advisory-lock namespace of slots (the first key of the two-key form).
CREATE FUNCTION paygrid_slot_lock_space() RETURNS integer
    LANGUAGE sql IMMUTABLE AS 'SELECT 73201';

CREATE FUNCTION paygrid_hold_slots(holder text, slots integer[], epochs bigint[])
RETURNS void AS $$
DECLARE
    held integer;
BEGIN
    -- Sorted, as claims take them, so a claim and a writer never deadlock.
    PERFORM pg_advisory_xact_lock_shared(paygrid_slot_lock_space(), s)
        FROM unnest(slots) AS s ORDER BY s;
    -- A new statement, so a new snapshot: it sees every claim that committed while we waited.
    SELECT count(*) INTO held
        FROM shard_slots o JOIN unnest(slots, epochs) AS f(slot, epoch)
          ON o.slot = f.slot AND o.epoch = f.epoch
       WHERE o.owner = holder;
    IF held <> cardinality(slots) THEN
        RAISE EXCEPTION 'slots lost by %', holder USING ERRCODE = 'PGS01';
    END IF;
END;
$$ LANGUAGE plpgsql;

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
