"""Prometheus metrics without a cluster: every process records into its own `Registry` (a few
dict updates per event), a publisher adds what it recorded to Redis every few seconds, and
`/metrics` renders the cluster's totals from Redis. The engine sees only the `Metrics`
interface; which processes publish, under which name, is the outer layers' business."""
