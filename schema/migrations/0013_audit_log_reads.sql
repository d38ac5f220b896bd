-- Reading the audit trail (GET /api/audit-logs): newest first, a page at a time, filtered by
-- the row it is about or the request that wrote it.
--
-- Every money write appends audit rows, so each index here is paid for on the hot path; only
-- the reads an operator makes while investigating get one. The entity index of 0001 led with
-- entity_type, which a lookup by id alone could not use: ids are UUIDs, unique across tables,
-- so the id leads now and the type is a filter. A filter by action or API key alone rides the
-- newest-first index (it is meant to come with a time range).

DROP INDEX idx_audit_logs_entity;
CREATE INDEX idx_audit_logs_entity_id ON audit_logs (entity_id, created_at DESC, id DESC);
CREATE INDEX idx_audit_logs_created ON audit_logs (created_at DESC, id DESC);
CREATE INDEX idx_audit_logs_correlation ON audit_logs (correlation_id, created_at DESC, id DESC)
    WHERE correlation_id IS NOT NULL;
