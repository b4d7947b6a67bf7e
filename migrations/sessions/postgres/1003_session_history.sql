-- What a session's owner may call it ("Work laptop"), set only by renaming it (never by a save, so a
-- request holding an older copy of the row cannot undo a rename).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS label TEXT;

-- Ended sessions, kept SESSION_HISTORY_DAYS (src/sessions/history.rs): what the devices page's
-- "Recently ended" and the admin's history read. Only signed-in sessions leave one. No token hash
-- and no data: nothing here can be replayed as a session. Times are Unix milliseconds.
--
-- user_id is a plain column, as in the engine's sessions table; an account system deleting a user
-- deletes their rows (src/accounts/mod.rs).
CREATE TABLE IF NOT EXISTS session_history (
    id BIGSERIAL PRIMARY KEY,
    public_id TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    label TEXT,
    ip TEXT,
    ip_key BYTEA,
    user_agent TEXT,
    client_hints TEXT,
    device_category TEXT,
    country_code TEXT,
    city TEXT,
    first_ip TEXT,
    first_country_code TEXT,
    first_city TEXT,
    auth_method TEXT,
    created_at BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    -- Why: signed_out, revoked, not_me, staff, idle_timeout, absolute_lifetime, password_changed,
    -- deactivated, session_limit, user_deleted.
    reason TEXT NOT NULL,
    -- Who: the public id of the session it was signed out from, or the staff member's user id.
    ended_by_session TEXT,
    ended_by_user BIGINT
);

CREATE INDEX IF NOT EXISTS session_history_user ON session_history (user_id, ended_at);
CREATE INDEX IF NOT EXISTS session_history_ended_at ON session_history (ended_at);
CREATE INDEX IF NOT EXISTS session_history_ip_key ON session_history (ip_key);
CREATE INDEX IF NOT EXISTS session_history_country_code ON session_history (country_code, ended_at);
CREATE INDEX IF NOT EXISTS session_history_reason ON session_history (reason, ended_at);
