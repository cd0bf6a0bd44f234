-- A job that failed for a transient reason (storage or database unavailable) is queued again
-- with a time before which no worker may claim it (Unix milliseconds): an outage of a few
-- seconds must not use up every attempt in a few polls.
ALTER TABLE jobs ADD COLUMN run_after_ms BIGINT;
