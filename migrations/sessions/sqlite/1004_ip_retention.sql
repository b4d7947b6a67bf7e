-- IP_RETENTION (src/sessions/retention.rs): the expiry sweeper cuts old client addresses to their
-- network, stored with the prefix (`203.0.113.0/24`), or forgets them. Each address column has
-- two partial indexes on the time it was last seen: one over the whole addresses (what cutting
-- reads) and one over the cut ones (what forgetting reads besides), so a sweep reads only the rows
-- it changes. The queries repeat these predicates word for word, as both planners need.
CREATE INDEX IF NOT EXISTS sessions_whole_ip ON sessions (last_activity_at)
    WHERE ip IS NOT NULL AND ip NOT LIKE '%/%';
CREATE INDEX IF NOT EXISTS sessions_cut_ip ON sessions (last_activity_at)
    WHERE ip IS NOT NULL AND ip LIKE '%/%';
CREATE INDEX IF NOT EXISTS sessions_whole_first_ip ON sessions (created_at)
    WHERE first_ip IS NOT NULL AND first_ip NOT LIKE '%/%';
CREATE INDEX IF NOT EXISTS sessions_cut_first_ip ON sessions (created_at)
    WHERE first_ip IS NOT NULL AND first_ip LIKE '%/%';

CREATE INDEX IF NOT EXISTS session_history_whole_ip ON session_history (last_activity_at)
    WHERE ip IS NOT NULL AND ip NOT LIKE '%/%';
CREATE INDEX IF NOT EXISTS session_history_cut_ip ON session_history (last_activity_at)
    WHERE ip IS NOT NULL AND ip LIKE '%/%';
CREATE INDEX IF NOT EXISTS session_history_whole_first_ip ON session_history (created_at)
    WHERE first_ip IS NOT NULL AND first_ip NOT LIKE '%/%';
CREATE INDEX IF NOT EXISTS session_history_cut_first_ip ON session_history (created_at)
    WHERE first_ip IS NOT NULL AND first_ip LIKE '%/%';
