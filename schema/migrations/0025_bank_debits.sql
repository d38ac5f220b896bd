-- Bank debits (ACH) and wallets (issue 10): a bank debit's settlement and return checks, its
-- return code, and no account number or expiry in any payment summary.
--
-- bank_check_at: when paygrid next asks the gateway about a bank debit (or a refund of one),
-- on the customer's clock (its test clock's time, else real time). While the debit is
-- `processing` it is its expected settlement, before which recovery does not ask; once it has
-- settled, the shard's round asks it for a return and moves it on, until bank_returns_until
-- (the end of the return window, on the same clock) has passed or the debit was returned
-- (NULL).
--
-- return_code: the ACH return code (R01 insufficient funds, R02 account closed, R03 no
-- account, ...) of a debit returned after it succeeded; its money went back through a refund
-- of the payment, so it is `refunded` (or being refunded).
--
-- A payment's summary of a bank account keeps the bank name, routing number, last4, holder
-- type and a keyed fingerprint; of a wallet, the wallet and its card's brand and last4. A CHECK
-- keeps the account number, and any card number or expiry, out of every summary.

ALTER TABLE transactions
    ADD COLUMN bank_check_at timestamptz,
    ADD COLUMN bank_returns_until timestamptz,
    ADD COLUMN return_code text CONSTRAINT return_code_is_ach CHECK (return_code ~ '^R[0-9]{2}$');

CREATE INDEX idx_transactions_bank_check ON transactions (slot, bank_check_at)
    WHERE bank_check_at IS NOT NULL;

ALTER TABLE transactions ADD CONSTRAINT payment_method_holds_no_secret
    CHECK (NOT coalesce(payment_method ?| ARRAY['account_number', 'number', 'cvc', 'token'],
                        false));

-- The vault keeps a card's expiry only sealed, with its number. Cards saved from now on write
-- it into the ciphertext and leave these columns NULL; a card saved before keeps it here until
-- the `payment_methods.seal_expiries` job (queued below, run by the scheduler, which holds the
-- keys this migration cannot) moves it into its ciphertext. Detached methods and gateway
-- tokens need no expiry at all: theirs goes now. Then every copy made of an expiry so far
-- outside the vault (audit rows, events, stored idempotent answers) loses it.
ALTER TABLE payment_methods
    ALTER COLUMN exp_month DROP NOT NULL,
    ALTER COLUMN exp_year DROP NOT NULL,
    ADD CONSTRAINT expiry_both_or_neither CHECK ((exp_month IS NULL) = (exp_year IS NULL));

UPDATE payment_methods SET exp_month = NULL, exp_year = NULL
WHERE exp_month IS NOT NULL AND (status = 'detached' OR type = 'token');

-- After the update above, whose own audit rows quote the old values.
UPDATE audit_logs
SET old_values = old_values - ARRAY['exp_month', 'exp_year'],
    new_values = new_values - ARRAY['exp_month', 'exp_year']
WHERE entity_type = 'payment_methods'
  AND (old_values ?| ARRAY['exp_month', 'exp_year'] OR new_values ?| ARRAY['exp_month', 'exp_year']);

UPDATE events SET payload = payload - ARRAY['exp_month', 'exp_year']
WHERE object_type = 'payment_method' AND payload ?| ARRAY['exp_month', 'exp_year'];

UPDATE idempotency_keys SET response_body = response_body - ARRAY['exp_month', 'exp_year']
WHERE jsonb_typeof(response_body) = 'object'
  AND response_body ?| ARRAY['exp_month', 'exp_year'];

INSERT INTO scheduled_jobs (kind, payload, dedupe_key)
SELECT 'payment_methods.seal_expiries', '{}'::jsonb, 'payment_methods.seal_expiries'
WHERE EXISTS (SELECT 1 FROM payment_methods WHERE exp_month IS NOT NULL)
ON CONFLICT (dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL DO NOTHING;
