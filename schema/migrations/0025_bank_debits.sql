-- Bank debits (ACH) and wallets (issue 10): a bank debit's settlement and return checks, its
-- return code, and no account number or expiry in any payment summary.
--
-- bank_check_at: when paygrid next asks the gateway about a bank debit. While the debit is
-- `processing` it is its expected settlement, before which recovery does not ask; once it has
-- settled, the shard's round asks it for a return (ACH returns come up to the return window
-- later) and moves it on, until the window has passed or the debit was returned (NULL).
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
    ADD COLUMN return_code text CONSTRAINT return_code_is_ach CHECK (return_code ~ '^R[0-9]{2}$');

CREATE INDEX idx_transactions_bank_check ON transactions (slot, bank_check_at)
    WHERE bank_check_at IS NOT NULL;

ALTER TABLE transactions ADD CONSTRAINT payment_method_holds_no_secret
    CHECK (NOT coalesce(payment_method ?| ARRAY['account_number', 'number', 'cvc', 'token'],
                        false));
