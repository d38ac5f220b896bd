"""The per-customer ledger: balance movements per currency (held, captured, refunded)."""
