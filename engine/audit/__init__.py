"""The audit trail's entries that no row change writes: reads of PII, exports, erasures."""
