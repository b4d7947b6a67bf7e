-- The session engine alone (`Database::migrate_sessions`): the sessions table as the full schema
-- (migrations/sqlite/0002, 0003, 0005) leaves it, except that user_id is a plain column, since
-- there is no users table here. The token itself is never stored: only its SHA-256 (token_hash).
-- Pages and APIs name a session by public_id. Times are Unix milliseconds.
--
-- Idempotent: run on a database that has the full schema, it changes nothing.
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    token_hash BLOB NOT NULL UNIQUE,
    user_id BIGINT,
    data TEXT NOT NULL DEFAULT '{}',
    ip TEXT,
    -- The address as 16 bytes (IPv4 mapped into IPv6), so prefix and CIDR searches are range scans.
    ip_key BLOB,
    user_agent TEXT,
    -- NULL: the configured idle timeout; else a JSON expiry policy set by the application.
    expiry_policy TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Where it signed in and was last seen (GeoIP), and the client hints its browser sent (JSON).
    first_ip TEXT,
    first_country_code TEXT,
    first_city TEXT,
    country_code TEXT,
    city TEXT,
    client_hints TEXT,
    -- The kind of device, written with the user agent (see src/sessions/db_store.rs).
    device_category TEXT
);

CREATE INDEX IF NOT EXISTS sessions_user_activity ON sessions (user_id, last_activity_at);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS sessions_ip_key ON sessions (ip_key);
CREATE INDEX IF NOT EXISTS sessions_country_code ON sessions (country_code);
CREATE INDEX IF NOT EXISTS sessions_device_category ON sessions (device_category, expires_at);
CREATE INDEX IF NOT EXISTS sessions_created_at ON sessions (created_at);
