-- The mail outbox (issue 19); see src/mail/outbox.rs and src/mail/worker.rs.
--
-- A message is written here before enqueue returns, and sent later by a worker: the request that
-- queued it never waits for an SMTP server, and a crash loses nothing once it is committed.
-- Times are Unix milliseconds.
--   state           'pending' (waiting, or being sent), 'sent', or 'failed' (given up; staff may
--                   queue it again, which makes it 'pending' with attempts and queued_at afresh)
--   message         the whole RFC 5322 message as sent, Message-ID included, so every attempt
--                   sends the same bytes; emptied once sent, since its links open accounts
--   queued_at       when it was queued (or queued again by staff): its age, for giving up
--   next_attempt_at due from then on, while pending
--   locked_until    the lease of the worker sending it (0: none); once past, it is due again
--   claim           random, set by each claim: only the worker holding the latest one records
--                   the outcome
--   last_error      why the last attempt failed, on one line, never a password
CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    message BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    queued_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    claim BIGINT NOT NULL DEFAULT 0,
    last_attempt_at BIGINT,
    sent_at BIGINT,
    last_error TEXT
);
-- What the workers look for: pending messages by due time.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
-- What staff list: a state, newest first.
CREATE INDEX mail_outbox_state ON mail_outbox (state, id);
