-- Which entries name which patient: the index behind a patient's accounting of disclosures
-- and the privacy officer's search by patient. Derived from audit_log (each entry's
-- patient_ids), written in the same transaction as the entries; not part of what is hashed.
CREATE TABLE audit_patients (
    patient_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (patient_id, seq)
);
INSERT INTO audit_patients (patient_id, seq)
    SELECT DISTINCT p.value, a.seq
    FROM audit_log a,
         jsonb_array_elements_text(COALESCE(convert_from(a.entry, 'UTF8')::jsonb -> 'patient_ids', '[]'::jsonb)) AS p(value)
    WHERE octet_length(a.entry) > 0;
