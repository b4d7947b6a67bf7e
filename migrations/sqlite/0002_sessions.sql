-- Server-side sessions. The token itself is never stored: only its SHA-256 (token_hash). Pages and
-- APIs name a session by public_id. Times are Unix milliseconds.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    token_hash BLOB NOT NULL UNIQUE,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
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
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_user_activity ON sessions (user_id, last_activity_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_ip_key ON sessions (ip_key);
