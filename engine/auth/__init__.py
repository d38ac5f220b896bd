"""API keys: random secrets stored only as keyed hashes, with scopes, expiry and revocation."""
