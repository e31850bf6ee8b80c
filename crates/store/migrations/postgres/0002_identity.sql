-- Identity: account state, password history, recovery codes, login throttling, tokens
-- (stored as SHA-256 digests only) and OAuth clients.

ALTER TABLE users ADD COLUMN patient_id TEXT;
ALTER TABLE users ADD COLUMN password_changed_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_secret BYTEA;
ALTER TABLE users ADD COLUMN totp_confirmed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_login_ms BIGINT;
ALTER TABLE users ADD COLUMN updated_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE password_history (
    user_id       TEXT NOT NULL REFERENCES users (id),
    password_hash TEXT NOT NULL,
    replaced_ms   BIGINT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, replaced_ms);

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id),
    digest  BYTEA NOT NULL,
    PRIMARY KEY (user_id, digest)
);

-- Failed logins per client address and fixed time window.
CREATE TABLE login_throttle (
    source          TEXT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    failures        BIGINT NOT NULL,
    PRIMARY KEY (source, window_start_ms)
);

CREATE TABLE auth_tokens (
    digest           BYTEA PRIMARY KEY,
    kind             TEXT NOT NULL,
    grant_id         TEXT NOT NULL,
    user_id          TEXT REFERENCES users (id),
    client_id        TEXT,
    scopes           TEXT NOT NULL,
    stage            TEXT NOT NULL,
    mfa              BIGINT NOT NULL,
    authenticated_ms BIGINT NOT NULL,
    created_ms       BIGINT NOT NULL,
    last_seen_ms     BIGINT NOT NULL,
    idle_ms          BIGINT NOT NULL,
    expires_ms       BIGINT NOT NULL,
    data             TEXT,
    consumed         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);
CREATE INDEX auth_tokens_grant ON auth_tokens (grant_id);
CREATE INDEX auth_tokens_client ON auth_tokens (client_id);
CREATE INDEX auth_tokens_expiry ON auth_tokens (expires_ms);

CREATE TABLE oauth_clients (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    redirect_uris  TEXT NOT NULL,
    jwks           TEXT,
    allowed_scopes TEXT NOT NULL,
    active         BIGINT NOT NULL,
    created_ms     BIGINT NOT NULL
);

-- The OpenID Connect id_token signing key (PKCS#8, sealed under the server token key).
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Client assertion ids seen (SMART Backend Services: each jti is accepted once).
CREATE TABLE assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
