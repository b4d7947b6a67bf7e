-- Passkeys (issue 20; src/accounts/passkeys.rs). Times are Unix milliseconds.

-- The WebAuthn user handle of an account: 16 random bytes, made at its first passkey and never
-- changed. Authenticators keep it with a discoverable passkey and hand it back at a passwordless
-- sign-in, which is how the account is found; being random, it says nothing of the account.
CREATE TABLE webauthn_users (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle BLOB NOT NULL UNIQUE
);

-- A registered passkey: its credential id (unique across accounts, as WebAuthn requires), the name
-- its owner gave it, and webauthn-rs' record of it as JSON (public key, signature counter, backup
-- state: nothing secret). The record is rewritten when a sign-in moves its counter.
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);
