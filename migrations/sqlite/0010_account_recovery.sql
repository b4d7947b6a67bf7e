-- Account recovery and new sign-in alerts (issue 19); see src/accounts/tokens.rs, recovery.rs and
-- alerts.rs. Times are Unix milliseconds.

-- When the user's current email address was shown to be theirs (NULL: never, or changed since), and
-- whether a sign-in from a browser, system or country they have not used before is mailed to them.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
ALTER TABLE users ADD COLUMN sign_in_alerts BOOLEAN NOT NULL DEFAULT TRUE;

-- One-time tokens sent by mail: 256 random bits, of which only the SHA-256 is kept, each good for one
-- purpose, once, until expires_at.
--   'password_reset'      a forgotten password (a new request voids the user's unused ones);
--   'email_verification'  email: the address it was sent to, which must still be the user's;
--   'email_change'        email: the new address, set when the token comes back;
--   'alert_confirm'       "it was me", about the sign-in of session_public_id;
--   'alert_deny'          "this wasn't me": ends session_public_id and leads to a new password.
-- used_at is set by the one statement that accepts the token, so a second or concurrent use fails.
CREATE TABLE account_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE,
    purpose TEXT NOT NULL CHECK (purpose IN
        ('password_reset', 'email_verification', 'email_change', 'alert_confirm', 'alert_deny')),
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,
    session_public_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX account_tokens_user_purpose ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);

-- What each user has signed in from: browser family, operating system and country ('' where unknown,
-- so that the unique key compares them). A sign-in from a combination not listed is a new one.
CREATE TABLE sign_in_contexts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    browser TEXT NOT NULL,
    os TEXT NOT NULL,
    country_code TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    UNIQUE (user_id, browser, os, country_code)
);

-- What happened to an account's security, for its owner's pages: new sign-ins, the answers to their
-- alerts, password resets and changes, email verification and changes. kind: see
-- SecurityEventKind in src/accounts/alerts.rs.
CREATE TABLE security_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    session_public_id TEXT,
    ip TEXT,
    device TEXT,
    country_code TEXT,
    city TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX security_events_user_at ON security_events (user_id, at);

-- Password reset requests are counted in login_attempts in fixed windows, like sign-ups:
--   'reset'     HMAC-SHA256 of the folded username or email address typed (as 'account');
--   'reset_ip'  the client's IPv4 address or IPv6 /64.
-- SQLite cannot change a CHECK constraint: the table is made again with its rows.
CREATE TABLE login_attempts_new (
    kind TEXT NOT NULL CHECK (kind IN
        ('account', 'account_ip', 'device', 'ip', 'signup_ip', 'signup', 'reset', 'reset_ip')),
    subject TEXT NOT NULL,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    forget_at BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);
INSERT INTO login_attempts_new (kind, subject, failures, last_failure_at, locked_until, forget_at)
    SELECT kind, subject, failures, last_failure_at, locked_until, forget_at FROM login_attempts;
DROP TABLE login_attempts;
ALTER TABLE login_attempts_new RENAME TO login_attempts;
CREATE INDEX login_attempts_forget_at ON login_attempts (forget_at);
