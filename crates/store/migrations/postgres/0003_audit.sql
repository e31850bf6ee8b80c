-- The audit trail: canonical entries with their RFC 6962 leaf hash and hash-chain value,
-- in one global order (seq), and the signed checkpoints published over it.
CREATE TABLE audit_log (
    seq     BIGINT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    entry   BYTEA NOT NULL,
    leaf    BYTEA NOT NULL,
    chain   BYTEA NOT NULL
);

CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root      TEXT NOT NULL,
    chain     TEXT NOT NULL,
    time_ms   BIGINT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);
