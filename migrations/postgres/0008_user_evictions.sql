-- Several nodes on one database remember who a user is (forward authentication asks on every
-- request). Whatever changes what they remember — a user deactivated, made staff or not, renamed,
-- or deleted, from any node or from psql — publishes the user ids on the channel every node
-- already LISTENs on (console_sessions_evict, see 0006), as `users:<id>,<id>,…` (at most 500 ids per
-- notification). Only committed changes are heard. A sign-in, which only writes last_login_at,
-- publishes nothing.
CREATE FUNCTION console_sessions_publish_user_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        FOR payload IN
            SELECT 'users:' || string_agg(id::text, ',')
            FROM (SELECT id, (row_number() OVER () - 1) / 500 AS batch FROM old_rows) AS numbered
            GROUP BY batch
        LOOP
            PERFORM pg_notify('console_sessions_evict', payload);
        END LOOP;
    ELSE
        FOR payload IN
            SELECT 'users:' || string_agg(id::text, ',')
            FROM (SELECT old_rows.id, (row_number() OVER () - 1) / 500 AS batch
                  FROM old_rows JOIN new_rows ON new_rows.id = old_rows.id
                  WHERE new_rows.is_active IS DISTINCT FROM old_rows.is_active
                     OR new_rows.is_staff IS DISTINCT FROM old_rows.is_staff
                     OR new_rows.username IS DISTINCT FROM old_rows.username
                     OR new_rows.email IS DISTINCT FROM old_rows.email) AS numbered
            GROUP BY batch
        LOOP
            PERFORM pg_notify('console_sessions_evict', payload);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_publish_deletions
    AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_sessions_publish_user_changes();

CREATE TRIGGER users_publish_changes
    AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION console_sessions_publish_user_changes();
