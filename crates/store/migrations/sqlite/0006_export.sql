-- Bulk Data export jobs and their files. A job row holds ids, types, counts, times and the
-- job's wrapped data key (no PHI); the files are sealed chunks under that key, deleted when
-- the job expires or is cancelled.
CREATE TABLE export_jobs (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    status     TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    job        TEXT NOT NULL
);
CREATE INDEX export_jobs_expiry ON export_jobs (expires_ms);

CREATE TABLE export_chunks (
    job_id  TEXT NOT NULL,
    file_no BIGINT NOT NULL,
    chunk   BIGINT NOT NULL,
    body    BLOB NOT NULL,
    PRIMARY KEY (job_id, file_no, chunk)
);
