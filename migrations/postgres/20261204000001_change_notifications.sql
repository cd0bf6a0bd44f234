-- The change feed every replica listens to (service/src/db/changes.rs):
-- `sessions_changed` carries the id of a session row that was updated or deleted, so that each
-- replica evicts it from its session cache (a logout on one replica reaches all of them);
-- `jobs_queued` wakes idle job workers as soon as a job becomes claimable.
-- Triggers rather than application code, so that every writer (any release, an operator's SQL)
-- notifies. Notifications are sent at commit.
CREATE FUNCTION notify_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sessions_changed', OLD.id);
    RETURN NULL;
END
$$;

-- A row that had already expired is never served from a cache (entries carry their expiry), so
-- the periodic deletion of expired rows sends nothing.
CREATE TRIGGER sessions_changed
    AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW WHEN (OLD.expiry_date > now())
    EXECUTE FUNCTION notify_session_changed();

CREATE FUNCTION notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One payload for all jobs: Postgres folds identical notifications of one transaction.
    PERFORM pg_notify('jobs_queued', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_inserted
    AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION notify_job_queued();

-- A job handed back to the queue (released at shutdown, retried after a transient failure).
CREATE TRIGGER jobs_requeued
    AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued' AND OLD.status <> 'queued')
    EXECUTE FUNCTION notify_job_queued();
