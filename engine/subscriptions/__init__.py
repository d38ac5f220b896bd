"""Subscriptions: recurring billing by plan or inline price, invoices, renewals and dunning on
the scheduler queue, every cent charged through the customer's ledger shard."""
