-- Accounts. Usernames are unique case-insensitively (they are ASCII by the domain rules, so
-- lower() is exact); the stored spelling is the one the user registered with.
CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
