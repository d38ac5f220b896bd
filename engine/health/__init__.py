"""Whether paygrid can serve: each component probed within a time limit, the seed's thresholds
compared with what the metrics saw, one overall `ok | degraded | down`."""
