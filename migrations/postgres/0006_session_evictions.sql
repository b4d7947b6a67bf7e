-- Several nodes on one database: every node with a `cached_db` cache LISTENs on the channel
-- console_sessions_evict and drops the sessions named there from its memory at once.
--
-- Whatever ends a session or replaces its token — a revoke, a sign-out, a token cycle, a bulk or
-- per-user delete, a user deleted (the cascade too), the expiry sweep, even a statement typed in psql —
-- publishes the token hashes it made invalid. NOTIFY is transactional: a notification is delivered only
-- when the statement's transaction commits, and never for one rolled back.
--
-- Payload: token hashes in lowercase hex, comma separated, at most 100 per notification (6,499 bytes,
-- under PostgreSQL's 8,000-byte limit); a large statement sends several. `*` (after TRUNCATE) means
-- "forget every session".
CREATE FUNCTION console_sessions_publish_evictions() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload TEXT;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('console_sessions_evict', '*');
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        FOR payload IN
            SELECT string_agg(encode(hash, 'hex'), ',')
            FROM (SELECT token_hash AS hash, (row_number() OVER () - 1) / 100 AS batch
                  FROM old_rows) AS numbered
            GROUP BY batch
        LOOP
            PERFORM pg_notify('console_sessions_evict', payload);
        END LOOP;
    ELSE
        -- An UPDATE: only the rows whose token changed (a cycled key); the old hash is now invalid.
        FOR payload IN
            SELECT string_agg(encode(hash, 'hex'), ',')
            FROM (SELECT old_rows.token_hash AS hash, (row_number() OVER () - 1) / 100 AS batch
                  FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id
                  WHERE new_rows.token_hash <> old_rows.token_hash) AS numbered
            GROUP BY batch
        LOOP
            PERFORM pg_notify('console_sessions_evict', payload);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_publish_deletions
    AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_sessions_publish_evictions();

CREATE TRIGGER sessions_publish_token_changes
    AFTER UPDATE ON sessions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_sessions_publish_evictions();

CREATE TRIGGER sessions_publish_truncate
    AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION console_sessions_publish_evictions();
