"""Lease queues: durable work items in PostgreSQL, claimed under a lease with `SKIP LOCKED`,
settled with a retry policy, dead-lettered, replayed, paused and inspected. The webhook
deliveries and the scheduler's jobs are two queues of this one mechanism."""
