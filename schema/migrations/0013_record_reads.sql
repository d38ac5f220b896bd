-- Reading the records: transaction rows newest first (GET /api/database/transactions) and the
-- audit trail newest first, a page at a time, filtered by the row it is about or the request
-- that wrote it (GET /api/audit-logs).
--
-- Every money write adds a transactions row and several audit rows, so each index here is paid
-- for on the hot path; only the reads an operator makes while investigating get one, and two
-- replace narrower ones rather than add to them:
-- - The newest-first index of transactions covered payments only (parent_id IS NULL); the
--   records list shows operations too. One index over every row serves both lists (the
--   payments list filters out the operations as it walks it).
-- - The audit entity index led with entity_type, which a lookup by id alone could not use: ids
--   are UUIDs, unique across tables, so the id leads now and the type is a filter.
-- A filter by action or API key alone rides the newest-first index (it is meant to come with a
-- time range). Sorting transactions by amount has no index: it sorts the filtered rows.

DROP INDEX idx_transactions_created;
CREATE INDEX idx_transactions_created ON transactions (created_at DESC, id DESC);

DROP INDEX idx_audit_logs_entity;
CREATE INDEX idx_audit_logs_entity_id ON audit_logs (entity_id, created_at DESC, id DESC);
CREATE INDEX idx_audit_logs_created ON audit_logs (created_at DESC, id DESC);
CREATE INDEX idx_audit_logs_correlation ON audit_logs (correlation_id, created_at DESC, id DESC)
    WHERE correlation_id IS NOT NULL;
