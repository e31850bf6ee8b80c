-- Activity review (45 CFR 164.308(a)(1)(ii)(D), (a)(5)(ii)(C)): alerts raised by the rules
-- over the audit trail, their review, and how far the rules have read. Ids, codes and
-- counts only: the detail is fixed text written by the rules, never client text.
CREATE TABLE audit_alerts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    time_ms     BIGINT NOT NULL,
    raised_ms   BIGINT NOT NULL,
    user_id     TEXT,
    source_ip   TEXT,
    patient_ids TEXT NOT NULL,
    seqs        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    status      TEXT NOT NULL,
    reviewed_by TEXT,
    reviewed_ms BIGINT
);
CREATE INDEX audit_alerts_by_status ON audit_alerts (status, raised_ms);

-- One row: the next audit entry the rules have not yet looked at. Moved with the alerts
-- it produced, in one transaction, by compare-and-swap, so several nodes never raise an
-- alert twice or skip an entry.
CREATE TABLE audit_alert_cursor (
    name     TEXT PRIMARY KEY,
    next_seq BIGINT NOT NULL
);

-- Patients whose every access raises an alert (VIPs, staff who are also patients).
CREATE TABLE flagged_patients (
    patient_id TEXT PRIMARY KEY,
    flagged_by TEXT NOT NULL,
    flagged_ms BIGINT NOT NULL
);
