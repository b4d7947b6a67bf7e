-- Failed sign-ins, counted in the database so throttling holds across nodes (src/accounts/throttle.rs).
-- kind 'account': subject is the folded username (whether or not such a user exists);
-- kind 'ip': subject is the client's IPv4 address or IPv6 /64. Times are Unix milliseconds.
CREATE TABLE login_attempts (
    kind TEXT NOT NULL CHECK (kind IN ('account', 'ip')),
    subject TEXT NOT NULL,
    -- Failures in a row since the count was last forgotten.
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    -- Attempts are refused until then (0: not locked).
    locked_until BIGINT NOT NULL DEFAULT 0,
    -- The count is forgotten from then on; always after locked_until, so no lock is permanent.
    forget_at BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);

CREATE INDEX login_attempts_forget_at ON login_attempts (forget_at);
