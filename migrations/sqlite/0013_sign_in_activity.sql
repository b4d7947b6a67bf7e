-- Sign-in activity (issue 21; src/accounts/activity.rs): each successful sign-in of an account and
-- each failed attempt on it (a wrong password, a wrong second-step code), with where it came from,
-- as the devices page's "Sign-in activity" and GET /api/v1/account/sign-ins show them. Kept as long
-- as session history (SESSION_HISTORY_DAYS). Times are Unix milliseconds.
CREATE TABLE sign_in_activity (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    succeeded BOOLEAN NOT NULL,
    -- How: the session's method (password, password_totp, passkey, …) for a success; the step
    -- that failed (password, second_factor) for a failure.
    method TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    client_hints TEXT,
    country_code TEXT,
    city TEXT,
    -- The session a success signed in (its public id, never a token).
    session_public_id TEXT
);

CREATE INDEX sign_in_activity_user ON sign_in_activity (user_id, at);
CREATE INDEX sign_in_activity_at ON sign_in_activity (at);
