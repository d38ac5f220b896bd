"""AML monitoring in the ledger path: rules over each customer's recent payments, held in the
shard's memory, and the alerts their hits write."""
