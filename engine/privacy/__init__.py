"""A data subject's rights over what paygrid holds about a customer: export and erasure."""
