-- Sessions, in the schema tower-sessions-sqlx-store's SqliteStore expects.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);
CREATE INDEX sessions_expiry_date_idx ON sessions (expiry_date);
