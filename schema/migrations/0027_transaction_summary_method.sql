-- transaction_summary tells payments settled outside paygrid from card payments, as the
-- transaction API (`method`) and the summary job's daily table do: a `method` column, `card`
-- for everything a gateway moved, else the `type` of the recorded settlement (`cash`,
-- `bank_transfer`; gateway 'external', engine/payments/commands.py RECORDED_GATEWAY). Their
-- `transaction_type` stays `purchase` (and `refund` for a recorded refund): what happened,
-- while `method` says how the money moved. Appended as the last column, so readers of the
-- earlier columns (GET /api/database/stats sums over them) are unchanged.

CREATE OR REPLACE VIEW transaction_summary AS
SELECT date_trunc('day', created_at) AS date,
       transaction_type,
       status,
       currency,
       count(*) AS transaction_count,
       sum(amount) AS total_amount,
       CASE WHEN gateway = 'external' AND payment_method IS NOT NULL
            THEN payment_method ->> 'type' ELSE 'card' END AS method
FROM transactions
GROUP BY date_trunc('day', created_at), transaction_type, status, currency,
         CASE WHEN gateway = 'external' AND payment_method IS NOT NULL
              THEN payment_method ->> 'type' ELSE 'card' END;
