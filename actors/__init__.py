"""Ray actors, thin over `engine/`: ledger shards."""
