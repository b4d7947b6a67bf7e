-- The staff sessions admin.
-- device_category: woothee's kind of device (desktop, smartphone, …), written with the user agent so
-- the changelist can filter on it without parsing a million user agents. NULL for rows written before.
ALTER TABLE sessions ADD COLUMN device_category TEXT;
CREATE INDEX sessions_device_category ON sessions (device_category, expires_at);
CREATE INDEX sessions_created_at ON sessions (created_at);
CREATE INDEX users_email ON users (email);

-- Every staff action, kept after the sessions and even the users it names are gone (no foreign keys).
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor_user_id BIGINT,
    actor_username TEXT NOT NULL,
    actor_ip TEXT,
    -- What was done: 'sessions.sign_out', 'user.sign_out_all', 'user.deactivate', 'user.activate'.
    action TEXT NOT NULL,
    target_user_id BIGINT,
    target_username TEXT,
    -- JSON array of the public ids of the sessions ended.
    session_ids TEXT NOT NULL DEFAULT '[]',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
