-- Which entries name which patient: the index behind a patient's accounting of disclosures
-- and the privacy officer's search by patient. Derived from audit_log (each entry's
-- patient_ids), written in the same transaction as the entries; not part of what is hashed.
CREATE TABLE audit_patients (
    patient_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (patient_id, seq)
);
INSERT OR IGNORE INTO audit_patients (patient_id, seq)
    SELECT j.value, a.seq FROM audit_log a, json_each(CAST(a.entry AS TEXT), '$.patient_ids') j
    WHERE length(a.entry) > 0 AND json_valid(CAST(a.entry AS TEXT));
