-- Processing jobs: the queue lives here so that any replica can claim, continue or finish any job.
-- A running job holds a lease (`lease_owner`, `lease_expires_ms`, Unix milliseconds) that its
-- worker's heartbeat extends; when the lease expires (the replica died or hung) another replica
-- claims the job again, until `max_attempts` is reached.
CREATE TABLE jobs (
    id               BLOB PRIMARY KEY,
    user_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_id          BLOB NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    bytes_processed  INTEGER NOT NULL DEFAULT 0,
    bytes_total      INTEGER NOT NULL,
    result_key       TEXT,
    result_summary   TEXT,
    error            TEXT,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    updated_at       TEXT NOT NULL
);
-- What workers scan: only unfinished jobs, oldest first.
CREATE INDEX jobs_claimable_idx ON jobs (created_at, id) WHERE status IN ('queued', 'running');
-- A user's listing, newest first (ids are BLOBv7, time-ordered).
CREATE INDEX jobs_user_id_id_idx ON jobs (user_id, id DESC);
CREATE INDEX jobs_file_id_idx ON jobs (file_id);

-- One row per execution attempt: who ran it and when, so that an operator (and the tests) can see
-- that no job ran twice at the same time and what each attempt ended with.
CREATE TABLE job_attempts (
    job_id     BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt    INTEGER NOT NULL,
    owner      TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    ended_ms   INTEGER,
    outcome    TEXT,
    PRIMARY KEY (job_id, owner)
);
