-- Uploaded files (see the Postgres migration). UUIDs are 16-byte blobs (UUIDv7, time-ordered:
-- listings sort on the id, as RFC 3339 text with trimmed fractions does not sort like time).
CREATE TABLE files (
    id           BLOB PRIMARY KEY NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT NOT NULL,
    object_key   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
);
CREATE INDEX files_user_id_id_idx ON files (user_id, id DESC);
