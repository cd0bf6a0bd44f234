-- Uploaded files: the metadata of objects in the object store. A row is written only after its
-- object is complete, so every row has bytes behind it. `object_key` is the store's key
-- (users/{user_id}/files/{id}); the file name is the client's, metadata only.
-- Ids are UUIDv7 (time-ordered), so a user's listing, newest first, pages on the id alone:
-- one index, and the same order in Postgres and SQLite.
CREATE TABLE files (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL CHECK (size >= 0),
    sha256       TEXT NOT NULL,
    object_key   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX files_user_id_id_idx ON files (user_id, id DESC);
