-- Where a session signed in and where it was last seen (GeoIP, written when the address changes), and
-- the User-Agent Client Hints its browser sent (JSON), so reduced user agents still read well.
ALTER TABLE sessions ADD COLUMN first_ip TEXT;
ALTER TABLE sessions ADD COLUMN first_country_code TEXT;
ALTER TABLE sessions ADD COLUMN first_city TEXT;
ALTER TABLE sessions ADD COLUMN country_code TEXT;
ALTER TABLE sessions ADD COLUMN city TEXT;
ALTER TABLE sessions ADD COLUMN client_hints TEXT;

CREATE INDEX sessions_country_code ON sessions (country_code);
