-- How each signed-in session proved itself (src/sessions/assurance.rs): the method it signed in
-- with ('password', 'password_totp', 'passkey', …), its assurance level (1 or 2, NIST's AAL) and
-- when its user last proved themselves in it (the sign-in, or the latest "confirm access"), in Unix
-- milliseconds. NULL for sessions with no user and those signed in before this migration.
--
-- Part of the engine's own set, which `Database::migrate` also applies after the whole schema, so
-- both kinds of database get it once.
ALTER TABLE sessions ADD COLUMN auth_method TEXT;
ALTER TABLE sessions ADD COLUMN aal SMALLINT;
ALTER TABLE sessions ADD COLUMN authenticated_at BIGINT;

-- The admin's filter by level goes with expiry, like its filter by device kind.
CREATE INDEX sessions_aal ON sessions (aal, expires_at);
