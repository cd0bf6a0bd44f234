-- Processing jobs: the queue lives here so that any replica can claim, continue or finish any job.
-- A running job holds a lease (`lease_owner`, `lease_expires_ms`, Unix milliseconds) that its
-- worker's heartbeat extends; when the lease expires (the replica died or hung) another replica
-- claims the job again, until `max_attempts` is reached.
CREATE TABLE jobs (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_id          UUID NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_ms BIGINT,
    bytes_processed  BIGINT NOT NULL DEFAULT 0,
    bytes_total      BIGINT NOT NULL,
    result_key       TEXT,
    result_summary   TEXT,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL
);
-- What workers scan: only unfinished jobs, oldest first.
CREATE INDEX jobs_claimable_idx ON jobs (created_at, id) WHERE status IN ('queued', 'running');
-- A user's listing, newest first (ids are UUIDv7, time-ordered).
CREATE INDEX jobs_user_id_id_idx ON jobs (user_id, id DESC);
CREATE INDEX jobs_file_id_idx ON jobs (file_id);

-- One row per execution attempt (owner = the claim's unique token): who ran it and when, so that
-- an operator (and the tests) can see
-- that no job ran twice at the same time and what each attempt ended with.
CREATE TABLE job_attempts (
    job_id     UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt    INTEGER NOT NULL,
    owner      TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    ended_ms   BIGINT,
    outcome    TEXT,
    PRIMARY KEY (job_id, owner)
);
