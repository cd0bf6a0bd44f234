-- Sessions, in the schema tower-sessions-sqlx-store's PostgresStore expects (we create it here
-- instead of calling the store's migrate(), so one migration history owns the database).
-- The index serves the periodic deletion of expired sessions.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BYTEA NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expiry_date_idx ON sessions (expiry_date);
