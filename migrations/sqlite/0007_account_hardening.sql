-- Sign-in and sign-up hardening (issue 17); see src/accounts/throttle.rs and src/accounts/mod.rs.
--
-- login_attempts is made again rather than altered: its subjects were typed usernames in clear, which
-- must not survive, and its kinds grow. The counts are short-lived (every lock ends within
-- max_delay, every count is forgotten a window later), so starting them over loses nothing that
-- matters. Kinds and their subjects:
--   'account'    HMAC-SHA256 of the folded username (hex): failures of browsers without the
--                account's device cookie, shared by all of them;
--   'account_ip' that HMAC, '@', and the client's IPv4 address or IPv6 /64: one client's failures
--                on one account;
--   'device'     the id of a known_devices row: failures of the browser holding that device cookie;
--   'ip'         the client's IPv4 address or IPv6 /64: its failures on any account;
--   'signup_ip'  the client's IPv4 address or IPv6 /64: its sign-ups in the current window;
--   'signup'     '*': every sign-up in the current window.
-- Times are Unix milliseconds.
DROP TABLE login_attempts;
CREATE TABLE login_attempts (
    kind TEXT NOT NULL
        CHECK (kind IN ('account', 'account_ip', 'device', 'ip', 'signup_ip', 'signup')),
    subject TEXT NOT NULL,
    -- Failures in a row since the count was last forgotten (sign-ups: attempts in the window).
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    -- Attempts are refused until then (0: not locked).
    locked_until BIGINT NOT NULL DEFAULT 0,
    -- The count is forgotten from then on; always after locked_until, so no lock is permanent.
    forget_at BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX login_attempts_forget_at ON login_attempts (forget_at);

-- Secrets the server makes for itself: generated from the operating system's random source the
-- first time one is needed (src/accounts/keys.rs), the same for every node sharing the database.
-- 'throttle': the HMAC-SHA256 key of the usernames in login_attempts.
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

-- Browsers that signed in to an account successfully: their device cookie (a random 256-bit token,
-- stored as its SHA-256 only) lets them past the lock that failures of other browsers put on the
-- account (OWASP's device cookies). It opens nothing by itself: the password is still checked.
CREATE TABLE known_devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX known_devices_user_id ON known_devices (user_id);
CREATE INDEX known_devices_expires_at ON known_devices (expires_at);
