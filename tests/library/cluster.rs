//! Two nodes on one PostgreSQL database, each with its own `cached_db` cache: whatever ends a session
//! or replaces its token on one node, the other stops serving from memory within a bounded time. Every
//! deletion path is covered, then a lost listening connection (cache cleared, caching paused, then
//! resumed) and the cache's maximum age.

use std::time::{Duration, Instant};

use sqlx::Connection;

use console_sessions::sessions::{
    now, to_millis, CacheSettings, ClientInfo, CookieAction, EvictionListener, SessionRecord,
    SessionToken, TokenHash,
};
use console_sessions::testing::{sample_record, TestDatabase};
use console_sessions::{Database, SessionBackend, SessionConfig, SessionEngine};

/// How long the other node may take to drop a session ended elsewhere.
const EVICTION_BOUND: Duration = Duration::from_secs(2);

struct Node {
    engine: SessionEngine,
    _listener: Option<EvictionListener>,
}

struct Cluster {
    test_db: TestDatabase,
    a: Node,
    b: Node,
}

fn config(max_age: Duration) -> SessionConfig {
    SessionConfig {
        backend: SessionBackend::CachedDb,
        cache: CacheSettings {
            max_capacity: 10_000,
            max_age,
        },
        ..SessionConfig::default()
    }
}

/// A node over `test_db`; with `listen`, it hears the other nodes' evictions (and is caching
/// before this returns).
async fn node(test_db: &TestDatabase, max_age: Duration, listen: bool) -> Node {
    let engine = SessionEngine::new(test_db.db.clone(), config(max_age));
    let listener = if listen {
        let listener = engine
            .spawn_eviction_listener()
            .expect("cached_db on PostgreSQL listens");
        let cache = engine.cache().unwrap().clone();
        wait_until("the node listens and caches", || cache.is_caching()).await;
        Some(listener)
    } else {
        None
    };
    Node {
        engine,
        _listener: listener,
    }
}

impl Cluster {
    /// Two listening nodes whose caches keep entries for an hour: only an eviction explains a
    /// session leaving them during a test.
    async fn new() -> Self {
        let test_db = TestDatabase::postgres()
            .await
            .unwrap_or_else(|e| panic!("cannot create a PostgreSQL test database: {e}"));
        let a = node(&test_db, Duration::from_secs(3600), true).await;
        let b = node(&test_db, Duration::from_secs(3600), true).await;
        Self { test_db, a, b }
    }

    async fn user(&self, name: &str) -> i64 {
        self.test_db.insert_user(name, false).await.unwrap()
    }

    /// A session stored through node A, then read (and so cached) by both nodes.
    async fn warm_session(&self, user_id: Option<i64>) -> (SessionRecord, SessionToken) {
        let (record, token) = sample_record(user_id);
        self.a.engine.store().create(&record).await.unwrap();
        for node in [&self.a, &self.b] {
            assert!(node.load(&record.token_hash).await.is_some());
            assert!(node.cached(&record.token_hash), "warm after one read");
        }
        (record, token)
    }
}

impl Node {
    async fn load(&self, hash: &TokenHash) -> Option<SessionRecord> {
        self.engine.store().load(hash, now()).await.unwrap()
    }

    fn cached(&self, hash: &TokenHash) -> bool {
        self.engine.cache().unwrap().is_cached(hash)
    }

    /// Polls until this node refuses the session: nothing cached, and its load finds nothing.
    async fn refuses_within_bound(&self, hash: &TokenHash, what: &str) {
        let started = Instant::now();
        loop {
            if !self.cached(hash) && self.load(hash).await.is_none() {
                return;
            }
            assert!(
                started.elapsed() < EVICTION_BOUND,
                "{what}: the other node still serves the session after {EVICTION_BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_session_revoked_on_one_node_is_refused_by_the_other() {
    let cluster = Cluster::new().await;
    let alice = cluster.user("alice").await;
    let (record, _) = cluster.warm_session(Some(alice)).await;
    assert!(cluster
        .a
        .engine
        .revoke(alice, &record.public_id)
        .await
        .unwrap());
    cluster
        .b
        .refuses_within_bound(&record.token_hash, "revoke")
        .await;
}

#[tokio::test]
async fn a_session_signed_out_on_one_node_is_refused_by_the_other() {
    let cluster = Cluster::new().await;
    let (record, token) = cluster.warm_session(None).await;
    // A real sign-out: the request's session is flushed and committed.
    let session = cluster
        .a
        .engine
        .session(Some(token.expose()), ClientInfo::default());
    session.flush().await.unwrap();
    cluster.a.engine.commit(&session).await.unwrap();
    cluster
        .b
        .refuses_within_bound(&record.token_hash, "sign-out")
        .await;
}

#[tokio::test]
async fn sessions_deleted_in_bulk_on_one_node_are_refused_by_the_other() {
    let cluster = Cluster::new().await;
    let mut records = Vec::new();
    for _ in 0..5 {
        records.push(cluster.warm_session(None).await.0);
    }
    // More than one notification's worth too: 250 sessions only node B has read.
    for _ in 0..250 {
        let (record, _) = sample_record(None);
        cluster.a.engine.store().create(&record).await.unwrap();
        assert!(cluster.b.load(&record.token_hash).await.is_some());
        records.push(record);
    }
    let ids: Vec<_> = records.iter().map(|r| r.public_id.clone()).collect();
    let deleted = cluster
        .a
        .engine
        .delete_many(&ids, console_sessions::sessions::EndCause::Revoked)
        .await
        .unwrap();
    assert_eq!(deleted.len(), records.len());
    for record in &records {
        cluster
            .b
            .refuses_within_bound(&record.token_hash, "bulk delete")
            .await;
    }
}

#[tokio::test]
async fn every_session_of_a_user_ended_on_one_node_is_refused_by_the_other() {
    let cluster = Cluster::new().await;
    let alice = cluster.user("alice").await;
    let (first, _) = cluster.warm_session(Some(alice)).await;
    let (second, _) = cluster.warm_session(Some(alice)).await;
    assert_eq!(cluster.a.engine.revoke_all(alice).await.unwrap(), 2);
    for record in [&first, &second] {
        cluster
            .b
            .refuses_within_bound(&record.token_hash, "revoke all")
            .await;
    }
}

#[tokio::test]
async fn sessions_of_a_deleted_user_are_refused_by_the_other_node() {
    let cluster = Cluster::new().await;
    let alice = cluster.user("alice").await;
    let (record, _) = cluster.warm_session(Some(alice)).await;
    let accounts = console_sessions::accounts::Accounts::new(
        cluster.test_db.db.clone(),
        cluster.a.engine.clone(),
        Default::default(),
    );
    assert_eq!(accounts.delete_user(alice).await.unwrap(), 1);
    cluster
        .b
        .refuses_within_bound(&record.token_hash, "user deleted")
        .await;
}

#[tokio::test]
async fn signing_out_the_other_sessions_on_one_node_keeps_only_this_one_on_the_other() {
    let cluster = Cluster::new().await;
    let alice = cluster.user("alice").await;
    let (kept, _) = cluster.warm_session(Some(alice)).await;
    let (other, _) = cluster.warm_session(Some(alice)).await;
    assert_eq!(
        cluster
            .a
            .engine
            .revoke_others(alice, &kept.public_id)
            .await
            .unwrap(),
        1
    );
    cluster
        .b
        .refuses_within_bound(&other.token_hash, "revoke others")
        .await;
    assert!(
        cluster.b.cached(&kept.token_hash),
        "the kept one stays warm"
    );
    assert!(cluster.b.load(&kept.token_hash).await.is_some());
}

#[tokio::test]
async fn a_token_cycled_on_one_node_is_refused_by_the_other_under_its_old_value() {
    let cluster = Cluster::new().await;
    // Signed in: an empty session would be deleted rather than re-keyed.
    let alice = cluster.user("alice").await;
    let (record, token) = cluster.warm_session(Some(alice)).await;
    let session = cluster
        .a
        .engine
        .session(Some(token.expose()), ClientInfo::default());
    session.cycle_key().await.unwrap();
    let CookieAction::Set { token: new, .. } =
        cluster.a.engine.commit(&session).await.unwrap().cookie
    else {
        panic!("a cycled key sets a new cookie");
    };
    cluster
        .b
        .refuses_within_bound(&record.token_hash, "cycle_key")
        .await;
    assert!(
        cluster.b.load(&new.hash()).await.is_some(),
        "the new token works on every node"
    );
}

#[tokio::test]
async fn sessions_swept_as_expired_on_one_node_are_refused_by_the_other() {
    let cluster = Cluster::new().await;
    let (record, _) = cluster.warm_session(None).await;
    // Aged behind the caches' back (a change that keeps the token publishes nothing): node B still
    // serves it from memory, since the copy it holds has not expired.
    let ago = to_millis(now()) - 1000;
    cluster
        .test_db
        .execute(&format!(
            "UPDATE sessions SET expires_at = {ago} WHERE public_id = '{}'",
            record.public_id.as_str()
        ))
        .await
        .unwrap();
    assert!(cluster.b.load(&record.token_hash).await.is_some());
    assert_eq!(cluster.a.engine.clear_expired(100).await.unwrap(), 1);
    cluster
        .b
        .refuses_within_bound(&record.token_hash, "expiry sweep")
        .await;
}

/// The backend pids of the connections listening for evictions.
async fn listener_pids(test_db: &TestDatabase) -> Vec<i32> {
    let Database::Postgres(pool) = &test_db.db else {
        unreachable!("a PostgreSQL test");
    };
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_node_whose_listener_drops_clears_its_cache_stops_caching_and_resumes_once_back() {
    let test_db = TestDatabase::postgres().await.unwrap();
    let a = node(&test_db, Duration::from_secs(3600), false).await;
    let b = node(&test_db, Duration::from_secs(3600), true).await;
    let cache = b.engine.cache().unwrap().clone();
    let (record, _) = sample_record(None);
    a.engine.store().create(&record).await.unwrap();
    assert!(b.load(&record.token_hash).await.is_some());
    assert!(b.cached(&record.token_hash));
    let pids = listener_pids(&test_db).await;
    assert_eq!(pids.len(), 1, "one listening connection: node B's");

    // New connections to the database are refused for a while, so the listener cannot come back
    // at once. The pool the nodes share opens a few connections first and keeps them; the limit is
    // set and lifted from the server's maintenance database.
    let Database::Postgres(pool) = &test_db.db else {
        unreachable!("a PostgreSQL test");
    };
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.acquire().await.unwrap());
    }
    drop(held);
    let mut admin = sqlx::PgConnection::connect(&std::env::var("TEST_POSTGRES_URL").unwrap())
        .await
        .unwrap();
    let name = test_db.url.rsplit('/').next().unwrap().to_owned();
    sqlx::query(&format!("ALTER DATABASE {name} CONNECTION LIMIT 0"))
        .execute(&mut admin)
        .await
        .unwrap();
    test_db
        .execute(&format!("SELECT pg_terminate_backend({})", pids[0]))
        .await
        .unwrap();
    wait_until("node B notices the lost listener", || !cache.is_caching()).await;
    assert!(!b.cached(&record.token_hash), "the whole cache is cleared");
    // Meanwhile every read goes to the database and nothing is kept: a session ended elsewhere is
    // refused at once, though this node cannot hear about it.
    assert!(b.load(&record.token_hash).await.is_some());
    assert!(
        !b.cached(&record.token_hash),
        "nothing is cached while paused"
    );
    assert!(a.engine.store().delete(&record.token_hash).await.unwrap());
    assert!(b.load(&record.token_hash).await.is_none());

    sqlx::query(&format!("ALTER DATABASE {name} CONNECTION LIMIT -1"))
        .execute(&mut admin)
        .await
        .unwrap();
    wait_until("node B listens again and resumes caching", || {
        cache.is_caching()
    })
    .await;
    let (fresh, _) = sample_record(None);
    a.engine.store().create(&fresh).await.unwrap();
    assert!(b.load(&fresh.token_hash).await.is_some());
    assert!(b.cached(&fresh.token_hash), "caching again");
    let pids_now = listener_pids(&test_db).await;
    assert_eq!(pids_now.len(), 1);
    assert_ne!(pids_now[0], pids[0], "on a new connection");
    // And it hears evictions again.
    assert!(a.engine.store().delete(&fresh.token_hash).await.unwrap());
    b.refuses_within_bound(&fresh.token_hash, "after reconnecting")
        .await;
}

#[tokio::test]
async fn a_cached_session_is_read_again_from_the_database_after_the_maximum_age() {
    let test_db = TestDatabase::postgres().await.unwrap();
    let node = node(&test_db, Duration::from_millis(500), true).await;
    let (record, _) = sample_record(None);
    let started = Instant::now();
    node.engine.store().create(&record).await.unwrap();
    // Changed behind the cache's back, in a way no notification announces.
    test_db
        .execute(&format!(
            "UPDATE sessions SET data = '{{\"changed\":true}}' WHERE public_id = '{}'",
            record.public_id.as_str()
        ))
        .await
        .unwrap();
    let first = node.load(&record.token_hash).await.unwrap();
    if started.elapsed() < Duration::from_millis(400) {
        assert!(first.data.is_empty(), "served from memory while young");
    }
    loop {
        let loaded = node.load(&record.token_hash).await.unwrap();
        if loaded.data.contains_key("changed") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still the old copy two seconds later"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "not before the maximum age"
    );
}

#[tokio::test]
async fn sqlite_and_the_db_backend_need_no_listener() {
    let sqlite = TestDatabase::sqlite().await.unwrap();
    let engine = SessionEngine::new(sqlite.db.clone(), config(Duration::from_secs(60)));
    assert!(engine.spawn_eviction_listener().is_none());
    assert!(engine.cache().unwrap().is_caching(), "a single node caches");
    let postgres = TestDatabase::postgres().await.unwrap();
    let engine = SessionEngine::new(
        postgres.db.clone(),
        SessionConfig {
            backend: SessionBackend::Db,
            ..SessionConfig::default()
        },
    );
    assert!(engine.spawn_eviction_listener().is_none());
}

/// A node that also remembers identities: its engine, its accounts (registered with the engine
/// before it listens), and its listener.
async fn node_with_accounts(
    test_db: &TestDatabase,
) -> (
    SessionEngine,
    console_sessions::accounts::Accounts,
    EvictionListener,
) {
    let engine = SessionEngine::new(test_db.db.clone(), config(Duration::from_secs(3600)));
    let accounts = console_sessions::accounts::Accounts::new(
        test_db.db.clone(),
        engine.clone(),
        Default::default(),
    );
    let listener = engine.spawn_eviction_listener().unwrap();
    let cache = engine.cache().unwrap().clone();
    wait_until("the node listens and caches", || cache.is_caching()).await;
    (engine, accounts, listener)
}

/// Forward authentication answers who a user is from memory: a user deactivated, made staff or
/// deleted on one node — or by a statement typed in psql — is forgotten by the other at once,
/// not after the identity cache's 30 seconds.
#[tokio::test]
async fn a_user_changed_on_one_node_is_forgotten_by_the_others_identity_cache() {
    let test_db = TestDatabase::postgres().await.unwrap();
    let (_a, accounts_a, _listening_a) = node_with_accounts(&test_db).await;
    let (_b, accounts_b, _listening_b) = node_with_accounts(&test_db).await;
    let carol = test_db.insert_user("carol", false).await.unwrap();
    let dave = test_db.insert_user("dave", false).await.unwrap();
    let erin = test_db.insert_user("erin", false).await.unwrap();
    for user in [carol, dave, erin] {
        assert!(accounts_b.identity(user).await.unwrap().is_some());
        assert!(accounts_b.cached_identity(user).is_some(), "remembered");
    }
    accounts_a.set_staff(carol, true).await.unwrap();
    test_db
        .execute(&format!(
            "UPDATE users SET is_active = FALSE WHERE id = {dave}"
        ))
        .await
        .unwrap();
    accounts_a.delete_user(erin).await.unwrap();
    for (user, what) in [
        (carol, "made staff"),
        (dave, "deactivated in psql"),
        (erin, "deleted"),
    ] {
        let started = Instant::now();
        while accounts_b.cached_identity(user).is_some() {
            assert!(
                started.elapsed() < EVICTION_BOUND,
                "a user {what} on another node is still remembered"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let carol_now = accounts_b.identity(carol).await.unwrap().unwrap();
    assert!(carol_now.is_staff, "read again, as it is now");
    assert!(accounts_b.identity(dave).await.unwrap().is_none());
    assert!(accounts_b.identity(erin).await.unwrap().is_none());
}
