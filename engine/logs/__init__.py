"""Logs as JSON lines, scrubbed of card data and secrets, carrying the request's correlation
id: the same in every paygrid process (API replicas, actors, the CLI)."""
