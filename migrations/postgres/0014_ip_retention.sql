-- IP_RETENTION (src/sessions/retention.rs) for the addresses the account system keeps: sign-in
-- activity and security events, aged by the sweeper as the engine's sessions are (migration
-- 1004): partial indexes over their whole and their cut addresses, by time.
CREATE INDEX sign_in_activity_whole_ip ON sign_in_activity (at)
    WHERE ip IS NOT NULL AND ip NOT LIKE '%/%';
CREATE INDEX sign_in_activity_cut_ip ON sign_in_activity (at)
    WHERE ip IS NOT NULL AND ip LIKE '%/%';
CREATE INDEX security_events_whole_ip ON security_events (at)
    WHERE ip IS NOT NULL AND ip NOT LIKE '%/%';
CREATE INDEX security_events_cut_ip ON security_events (at)
    WHERE ip IS NOT NULL AND ip LIKE '%/%';
