"""Idempotency keys: one durable record per (API key, Idempotency-Key), replayed for 24 h."""
