"""Rate limiting in Redis: GCRA buckets shared by every replica, one script call per request."""
