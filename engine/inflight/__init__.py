"""The cluster's requests in flight: each API replica keeps its own in a dict (two dict updates
per request) and a heartbeat copies them to Redis, where every replica reads them all."""
