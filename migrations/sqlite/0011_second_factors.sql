-- Second factors (issue 20; src/accounts/factors.rs). Times are Unix milliseconds.

-- An authenticator app (TOTP, RFC 6238: SHA-1, 6 digits, 30-second steps). The secret is what the
-- app was given; confirmed_at stays NULL until a first code shows the app has it, and such a row
-- is forgotten after a while. last_step is the latest step whose code was accepted: a code of that
-- step or an earlier one is refused, so a code works once.
CREATE TABLE totp_credentials (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT 0
);

-- Recovery codes: 80 random bits each, of which only the SHA-256 is kept; used_at is set by the
-- one statement that accepts the code, so a second or concurrent use fails.
CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Failed second steps and confirmations by a factor are counted in login_attempts as
-- 'second_factor', per user id, like failed passwords per account.
-- SQLite cannot change a CHECK constraint: the table is made again with its rows.
CREATE TABLE login_attempts_new (
    kind TEXT NOT NULL CHECK (kind IN ('account', 'account_ip', 'device', 'ip', 'signup_ip',
        'signup', 'reset', 'reset_ip', 'second_factor')),
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
