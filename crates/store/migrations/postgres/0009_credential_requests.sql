-- Separation of duties: credential changes an administrator asked for, awaiting (or having
-- had) a second person's approval. No secret is stored here: an approved password is
-- written to users.password_hash as any password is.
CREATE TABLE credential_requests (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    change       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    state        TEXT NOT NULL,
    decided_by   TEXT,
    decided_ms   BIGINT
);
CREATE INDEX credential_requests_user ON credential_requests (user_id, requested_ms);
CREATE INDEX credential_requests_time ON credential_requests (requested_ms);
