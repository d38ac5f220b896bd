"""The read side of the records: transactions as stored (payments with their operations and
refunds) and the audit trail, filtered and paged for operators and data teams."""
