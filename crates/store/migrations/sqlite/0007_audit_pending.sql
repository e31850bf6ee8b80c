-- Audit entries written in the same transaction as the records they describe (an outbox):
-- a change and its entry are durable together or not at all. The trail's writer moves them
-- into audit_log (sequence number, leaf hash, chain value) and deletes them here, in one
-- transaction; whatever a crash leaves here is chained when the next process starts.
CREATE TABLE audit_pending (
    id      INTEGER PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    entry   BLOB NOT NULL
);
