-- Encrypted records, wrapped data keys, blind index terms, clinical date ranges, accounts.
-- No column holds identifying plaintext: bodies are AES-256-GCM ciphertext, identifying
-- search values are HMAC terms, ids are server-assigned random UUIDs.
CREATE TABLE data_keys (
    key_id       TEXT PRIMARY KEY,
    scope        TEXT NOT NULL UNIQUE,
    kek_id       TEXT,
    wrapped      BYTEA,
    created_ms   BIGINT NOT NULL,
    destroyed_ms BIGINT
);
CREATE INDEX data_keys_by_kek ON data_keys (kek_id);

CREATE TABLE resources (
    resource_type   TEXT NOT NULL,
    id              TEXT NOT NULL,
    version         BIGINT NOT NULL,
    is_current      BIGINT NOT NULL,
    last_updated_ms BIGINT NOT NULL,
    compartment     TEXT,
    key_id          TEXT NOT NULL REFERENCES data_keys (key_id),
    body            BYTEA NOT NULL,
    PRIMARY KEY (resource_type, id, version)
);
CREATE INDEX resources_current ON resources (resource_type, last_updated_ms, id) WHERE is_current = 1;
CREATE INDEX resources_compartment ON resources (compartment, resource_type) WHERE is_current = 1;
CREATE INDEX resources_history ON resources (resource_type, last_updated_ms);

CREATE TABLE search_terms (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    term          BYTEA NOT NULL
);
CREATE INDEX search_terms_lookup ON search_terms (resource_type, param, term);
CREATE INDEX search_terms_owner ON search_terms (resource_type, id);

CREATE TABLE search_dates (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    lo            BIGINT NOT NULL,
    hi            BIGINT NOT NULL
);
CREATE INDEX search_dates_lookup ON search_dates (resource_type, param, lo);
CREATE INDEX search_dates_owner ON search_dates (resource_type, id);

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    display_name         TEXT NOT NULL,
    roles                TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    must_change_password BIGINT NOT NULL,
    status               TEXT NOT NULL,
    created_ms           BIGINT NOT NULL
);
