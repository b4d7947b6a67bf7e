-- PostgreSQL publishes every session deletion and token change to the other nodes' caches (see
-- migrations/postgres/0006_session_evictions.sql). SQLite serves a single node, whose cache evicts what
-- it deletes itself: nothing to add. The file keeps the two migration lists alike.
SELECT 1;
