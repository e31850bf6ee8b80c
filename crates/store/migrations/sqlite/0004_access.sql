-- Access relationships that policies read: care-team memberships and clearances for
-- sensitive categories (made by an administrator, audited), and break-glass grants.
CREATE TABLE access_assignments (
    kind        TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    value       TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    assigned_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, user_id, value)
);
CREATE INDEX access_assignments_by_value ON access_assignments (kind, value);
CREATE INDEX access_assignments_by_user ON access_assignments (user_id);

-- Emergency access (45 CFR 164.312(a)(2)(ii)): one patient, a reason, an end, a review.
-- The free-text reason is sealed: a clinician may write clinical details into it.
CREATE TABLE break_glass_grants (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    patient_id    TEXT NOT NULL,
    reason_code   TEXT NOT NULL,
    reason_sealed BLOB NOT NULL,
    started_ms    BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL,
    review        TEXT,
    reviewed_by   TEXT,
    reviewed_ms   BIGINT
);
CREATE INDEX break_glass_live ON break_glass_grants (user_id, expires_ms);
