-- Failed logins per (lower-cased) username within a window, shared by every replica.
-- Times are Unix seconds so both dialects compare them the same way.
CREATE TABLE login_throttle (
    username_key     TEXT PRIMARY KEY,
    failures         INTEGER NOT NULL,
    window_started_at BIGINT NOT NULL
);
CREATE INDEX login_throttle_window_started_at_idx ON login_throttle (window_started_at);
