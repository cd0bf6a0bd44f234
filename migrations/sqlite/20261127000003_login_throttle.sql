-- Failed logins per (lower-cased) username within a window (see the Postgres migration).
CREATE TABLE login_throttle (
    username_key      TEXT PRIMARY KEY NOT NULL,
    failures          INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL
);
CREATE INDEX login_throttle_window_started_at_idx ON login_throttle (window_started_at);
