-- A prorated upgrade takes effect only once paid: its invoice carries the change it pays for
-- (`applies`: {"plan_id", "amount", "quantity"}), applied to the subscription when the invoice
-- is paid; a decline voids the invoice (update invoices are never dunned) and changes nothing.

ALTER TABLE invoices
    ADD COLUMN applies jsonb CHECK (
        applies IS NULL OR (jsonb_typeof(applies) = 'object' AND amount_due > 0
                            AND billing_reason = 'subscription_update')
    );
