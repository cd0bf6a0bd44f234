-- Accounts (see the Postgres migration). UUIDs are 16-byte blobs, times RFC 3339 text (sqlx).
CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
