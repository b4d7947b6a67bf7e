//! The session engine against every backend: {SQLite, PostgreSQL} × {db, cached_db}.
//! The cases follow django-qsessions' and Django's own session tests.

use std::net::IpAddr;
use std::time::Duration;

use console_sessions::device::{ClientHints, DeviceSummary};
use console_sessions::geo::GeoIp;
use console_sessions::sessions::{
    now, to_millis, Aal, AuthMethod, CacheSettings, CachedDbStore, ClientInfo, CookieAction,
    DbStore, EndCause, EndedBy, Ending, Expiry, IpRetention, MemoryStore, PublicId, SessionRecord,
    SessionToken, StoreError, TokenHash, UserSessionStore, MAX_LABEL_CHARS,
};
use console_sessions::testing::TestDatabase;
use console_sessions::{
    Backend, Session, SessionBackend, SessionConfig, SessionEngine, SessionStore,
};

use crate::{geo_fixture, Stores};

/// Random sequences against a model (proptest).
mod model;

struct Ctx {
    engine: SessionEngine,
    kept: Kept,
    /// The user ids of a case with no users table.
    next_user: std::sync::atomic::AtomicI64,
    _geo_dir: tempfile::TempDir,
}

/// Where a case keeps its sessions.
enum Kept {
    /// A database, through the engine's own store; `users_table` when it has the whole schema
    /// (else user ids are made up: `Ctx::next_user`).
    Database {
        test_db: TestDatabase,
        users_table: bool,
    },
    /// A memory store, and the cache in front of it in `memory_cached`.
    Memory {
        store: MemoryStore,
        cache: Option<CachedDbStore<MemoryStore>>,
    },
}

fn client(ip: &str, user_agent: &str) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.parse().unwrap()),
        user_agent: Some(user_agent.to_owned()),
        ..Default::default()
    }
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

impl Ctx {
    async fn new(backend: Backend, session_backend: SessionBackend) -> Self {
        Self::on(Stores::Database(backend, session_backend)).await
    }

    async fn on(stores: Stores) -> Self {
        let session_backend = match stores {
            Stores::Database(_, session_backend)
            | Stores::SessionsOnly(_, session_backend)
            | Stores::Memory(session_backend) => session_backend,
        };
        let config = SessionConfig {
            backend: session_backend,
            ..SessionConfig::default()
        };
        match stores {
            Stores::Database(backend, _) => Self::with_config(backend, config).await,
            Stores::SessionsOnly(backend, _) => {
                let test_db = TestDatabase::sessions_only(backend).await.unwrap();
                Self::over(test_db, config, false)
            }
            Stores::Memory(_) => {
                let (geo_dir, geoip) = geo_database();
                let store = MemoryStore::new();
                let cache = (session_backend == SessionBackend::CachedDb)
                    .then(|| CachedDbStore::new(store.clone(), &config.cache));
                let engine = match &cache {
                    Some(cache) => {
                        SessionEngine::with_store_and_geoip(cache.clone(), config, geoip)
                    }
                    None => SessionEngine::with_store_and_geoip(store.clone(), config, geoip),
                };
                Self {
                    engine,
                    kept: Kept::Memory { store, cache },
                    next_user: 1.into(),
                    _geo_dir: geo_dir,
                }
            }
        }
    }

    async fn with_config(backend: Backend, config: SessionConfig) -> Self {
        let test_db = TestDatabase::new(backend)
            .await
            .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"));
        Self::over(test_db, config, true)
    }

    fn over(test_db: TestDatabase, config: SessionConfig, users_table: bool) -> Self {
        let (geo_dir, geoip) = geo_database();
        let engine = SessionEngine::with_geoip(test_db.db.clone(), config, geoip);
        Self {
            engine,
            kept: Kept::Database {
                test_db,
                users_table,
            },
            next_user: 1.into(),
            _geo_dir: geo_dir,
        }
    }

    /// The database of a database case.
    fn db(&self) -> &TestDatabase {
        match &self.kept {
            Kept::Database { test_db, .. } => test_db,
            Kept::Memory { .. } => panic!("a case with a database"),
        }
    }

    /// The engine's database store.
    fn db_store(&self) -> &DbStore {
        self.engine.db_store().expect("an engine over a database")
    }

    /// A fresh engine of the same configuration over the same sessions (another request's view,
    /// with a cold cache).
    fn cold_engine(&self) -> SessionEngine {
        self.engine_with(self.engine.config().clone())
    }

    /// A fresh engine of this configuration over the same sessions.
    fn engine_with(&self, config: SessionConfig) -> SessionEngine {
        let geoip = self.engine.geoip().clone();
        match &self.kept {
            Kept::Database { test_db, .. } => {
                SessionEngine::with_geoip(test_db.db.clone(), config, geoip)
            }
            Kept::Memory { store, cache: None } => {
                SessionEngine::with_store_and_geoip(store.clone(), config, geoip)
            }
            Kept::Memory {
                store,
                cache: Some(_),
            } => {
                let cache = CachedDbStore::new(store.clone(), &config.cache);
                SessionEngine::with_store_and_geoip(cache, config, geoip)
            }
        }
    }

    /// Changes a stored session behind the engine's back, as another process would (no cache of
    /// this case sees it).
    async fn rewrite(&self, token: &SessionToken, change: impl FnOnce(&mut SessionRecord)) {
        let store: Box<dyn SessionStore> = match &self.kept {
            Kept::Database { test_db, .. } => Box::new(DbStore::new(test_db.db.clone())),
            Kept::Memory { store, .. } => Box::new(store.clone()),
        };
        let hash = token.hash();
        let mut record = store.load(&hash, now()).await.unwrap().unwrap();
        change(&mut record);
        assert!(store.save(&record, &hash).await.unwrap());
    }

    /// How many sessions are stored (rows, or entries of the memory store).
    async fn session_rows(&self) -> i64 {
        match &self.kept {
            Kept::Database { test_db, .. } => test_db.session_rows().await.unwrap(),
            Kept::Memory { store, .. } => i64::try_from(store.len()).unwrap(),
        }
    }

    fn request(&self, cookie: Option<&str>) -> Session {
        self.engine.session(cookie, client("203.0.113.5", FIREFOX))
    }

    fn request_from(&self, cookie: Option<&str>, client: ClientInfo) -> Session {
        self.engine.session(cookie, client)
    }

    async fn finish(&self, session: &Session) -> CookieAction {
        self.engine.commit(session).await.unwrap().cookie
    }

    /// Stores `key = value` in a new session; returns the cookie token.
    async fn new_session(&self, user_id: Option<i64>) -> SessionToken {
        let session = self.request(None);
        session.insert("hello", "world").await.unwrap();
        session.set_user_id(user_id).await.unwrap();
        match self.finish(&session).await {
            CookieAction::Set { token, .. } => token,
            other => panic!("expected a cookie, got {other:?}"),
        }
    }

    async fn user(&self, name: &str) -> i64 {
        match &self.kept {
            Kept::Database {
                test_db,
                users_table: true,
            } => test_db.insert_user(name, false).await.unwrap(),
            _ => self
                .next_user
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Whether the session is in the case's cache (`None` without one).
    fn is_cached(&self, hash: &TokenHash) -> Option<bool> {
        match &self.kept {
            Kept::Memory { cache, .. } => cache.as_ref().map(|cache| cache.is_cached(hash)),
            Kept::Database { .. } => self.engine.cache().map(|cache| cache.is_cached(hash)),
        }
    }

    async fn stored(&self, token: &SessionToken) -> Option<SessionRecord> {
        self.cold_engine()
            .store()
            .load(&token.hash(), now())
            .await
            .unwrap()
    }
}

/// A real (small) GeoIP database, built for the test, and the folder that holds it.
fn geo_database() -> (tempfile::TempDir, GeoIp) {
    let geo_dir = tempfile::tempdir().unwrap();
    let geo_path = geo_dir.path().join("GeoLite2-City.mmdb");
    geo_fixture::write_city(&geo_path);
    let geoip = GeoIp::open(&geo_path).unwrap();
    (geo_dir, geoip)
}

fn record(user_id: Option<i64>) -> (SessionRecord, SessionToken) {
    console_sessions::testing::sample_record(user_id)
}

// ---- Django / qsessions cases ----

async fn untouched_session_writes_nothing_and_sets_no_cookie(ctx: Ctx) {
    let session = ctx.request(None);
    assert_eq!(ctx.finish(&session).await, CookieAction::Keep);
    let session = ctx.request(None);
    assert!(session.is_empty().await.unwrap());
    assert_eq!(ctx.finish(&session).await, CookieAction::Keep);
    assert_eq!(ctx.session_rows().await, 0);
}

async fn storing_a_value_creates_one_row_and_a_cookie_that_loads_it_back(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    assert_eq!(ctx.session_rows().await, 1);
    let session = ctx.request(Some(token.expose()));
    assert_eq!(
        session.get::<String>("hello").await.unwrap().as_deref(),
        Some("world")
    );
    assert_eq!(ctx.finish(&session).await, CookieAction::Keep);
}

async fn store_and_pop_set_the_modified_and_accessed_flags(ctx: Ctx) {
    let session = ctx.request(None);
    assert!(!session.is_modified().await && !session.is_accessed().await);
    session.insert("cat", "dog").await.unwrap();
    assert!(session.is_modified().await && session.is_accessed().await);
    let token = match ctx.finish(&session).await {
        CookieAction::Set { token, .. } => token,
        other => panic!("{other:?}"),
    };

    let session = ctx.request(Some(token.expose()));
    assert_eq!(session.remove::<String>("missing").await.unwrap(), None);
    assert!(session.is_accessed().await && !session.is_modified().await);
    assert_eq!(
        session.remove::<String>("cat").await.unwrap().as_deref(),
        Some("dog")
    );
    assert!(session.is_modified().await);
}

async fn reading_the_user_does_not_modify_the_session(ctx: Ctx) {
    let user = ctx.user("alice").await;
    let token = ctx.new_session(Some(user)).await;
    let session = ctx.request(Some(token.expose()));
    assert_eq!(session.user_id().await.unwrap(), Some(user));
    assert!(session.is_accessed().await);
    assert!(!session.is_modified().await);
    assert_eq!(ctx.finish(&session).await, CookieAction::Keep);
}

async fn save_records_user_agent_ip_user_and_update_time(ctx: Ctx) {
    let user = ctx.user("bob").await;
    let before = now();
    let token = ctx.new_session(Some(user)).await;
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!(stored.user_id, Some(user));
    assert_eq!(stored.ip, Some("203.0.113.5".parse::<IpAddr>().unwrap()));
    assert_eq!(stored.user_agent.as_deref(), Some(FIREFOX));
    assert!(stored.updated_at >= before && stored.created_at >= before);
    assert_eq!(stored.data.get("hello"), Some(&serde_json::json!("world")));
}

async fn unchanged_ip_and_user_agent_do_not_modify_the_session(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let first = ctx.stored(&token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let session = ctx.request(Some(token.expose()));
    session.load().await.unwrap();
    assert_eq!(ctx.finish(&session).await, CookieAction::Keep);
    assert_eq!(
        ctx.stored(&token).await.unwrap().updated_at,
        first.updated_at
    );
}

async fn changed_ip_or_user_agent_is_saved(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let session = ctx.request_from(Some(token.expose()), client("198.51.100.77", FIREFOX));
    session.load().await.unwrap();
    ctx.finish(&session).await;
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!(stored.ip, Some("198.51.100.77".parse::<IpAddr>().unwrap()));

    let session = ctx.request_from(Some(token.expose()), client("198.51.100.77", CHROME));
    session.load().await.unwrap();
    ctx.finish(&session).await;
    assert_eq!(
        ctx.stored(&token).await.unwrap().user_agent.as_deref(),
        Some(CHROME)
    );
}

async fn creating_a_duplicate_key_is_refused(ctx: Ctx) {
    let (first, _) = record(None);
    ctx.engine.store().create(&first).await.unwrap();
    let mut second = first.clone();
    second.public_id = PublicId::generate();
    assert!(matches!(
        ctx.engine.store().create(&second).await,
        Err(StoreError::Duplicate)
    ));
}

async fn deleting_a_missing_session_is_fine(ctx: Ctx) {
    let token = SessionToken::generate();
    assert!(!ctx.engine.store().delete(&token.hash()).await.unwrap());
}

async fn clear_then_save_leaves_no_user(ctx: Ctx) {
    let user = ctx.user("carol").await;
    let (mut rec, token) = record(Some(user));
    rec.data.insert("k".into(), serde_json::json!(1));
    ctx.engine.store().create(&rec).await.unwrap();
    rec.data.clear();
    rec.user_id = None;
    assert!(ctx
        .engine
        .store()
        .save(&rec, &rec.token_hash)
        .await
        .unwrap());
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!(stored.user_id, None);
    assert!(stored.data.is_empty());
}

async fn clearing_a_stored_session_deletes_it_and_the_cookie(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let session = ctx.request(Some(token.expose()));
    session.clear().await.unwrap();
    assert_eq!(ctx.finish(&session).await, CookieAction::Remove);
    assert_eq!(ctx.session_rows().await, 0);
}

async fn long_user_agents_are_truncated(ctx: Ctx) {
    let long = format!("Mozilla/5.0 {}", "é".repeat(700));
    let session = ctx.request_from(
        None,
        ClientInfo {
            ip: None,
            user_agent: Some(console_sessions::sessions::truncate_user_agent(&long)),
            ..Default::default()
        },
    );
    session.insert("a", 1).await.unwrap();
    let CookieAction::Set { token, .. } = ctx.finish(&session).await else {
        panic!("no cookie")
    };
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!(stored.user_agent.unwrap().chars().count(), 512);
}

async fn delete_removes_from_database_and_cache(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    // Warm the cache.
    ctx.engine.store().load(&token.hash(), now()).await.unwrap();
    if let Some(cached) = ctx.is_cached(&token.hash()) {
        assert!(cached);
    }
    assert!(ctx.engine.store().delete(&token.hash()).await.unwrap());
    assert!(!ctx.is_cached(&token.hash()).unwrap_or(false));
    assert!(ctx
        .engine
        .store()
        .load(&token.hash(), now())
        .await
        .unwrap()
        .is_none());
    assert_eq!(ctx.session_rows().await, 0);
}

async fn bulk_delete_removes_from_database_and_cache(ctx: Ctx) {
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(ctx.new_session(None).await);
    }
    let mut ids = Vec::new();
    for token in &tokens {
        let rec = ctx
            .engine
            .store()
            .load(&token.hash(), now())
            .await
            .unwrap()
            .unwrap();
        ids.push(rec.public_id);
    }
    let deleted = ctx
        .engine
        .delete_many(&ids[..2], EndCause::Revoked)
        .await
        .unwrap();
    assert_eq!(deleted.len(), 2);
    for token in &tokens[..2] {
        assert!(!ctx.is_cached(&token.hash()).unwrap_or(false));
        assert!(ctx
            .engine
            .store()
            .load(&token.hash(), now())
            .await
            .unwrap()
            .is_none());
    }
    assert!(ctx
        .engine
        .store()
        .load(&tokens[2].hash(), now())
        .await
        .unwrap()
        .is_some());
    assert_eq!(ctx.session_rows().await, 1);
}

async fn clearsessions_keeps_live_sessions_and_drops_expired_ones(ctx: Ctx) {
    let live = ctx.new_session(None).await;
    let mut expired = Vec::new();
    for _ in 0..5 {
        let (mut rec, token) = record(None);
        rec.expires_at = now() - Duration::from_secs(1);
        ctx.engine.store().create(&rec).await.unwrap();
        expired.push(token);
    }
    // Warm the cache with the live one.
    ctx.engine.store().load(&live.hash(), now()).await.unwrap();
    assert_eq!(ctx.engine.clear_expired(2).await.unwrap(), 5);
    assert_eq!(ctx.session_rows().await, 1);
    assert!(ctx
        .engine
        .store()
        .load(&live.hash(), now())
        .await
        .unwrap()
        .is_some());
    for token in &expired {
        assert!(!ctx.is_cached(&token.hash()).unwrap_or(false));
    }
}

async fn malformed_cookies_are_never_accepted_and_create_no_row(ctx: Ctx) {
    for bad in [
        "",
        "nonsense",
        &"a".repeat(43),
        &"x".repeat(5000),
        "../../etc",
        "é",
    ] {
        let session = ctx.request(Some(bad));
        assert!(session.is_empty().await.unwrap(), "{bad:?}");
        assert_eq!(ctx.finish(&session).await, CookieAction::Remove, "{bad:?}");
    }
    assert_eq!(ctx.session_rows().await, 0);
}

async fn loading_an_unknown_token_does_not_create_a_record(ctx: Ctx) {
    let unknown = SessionToken::generate();
    let session = ctx.request(Some(unknown.expose()));
    assert_eq!(session.get::<String>("x").await.unwrap(), None);
    assert_eq!(ctx.finish(&session).await, CookieAction::Remove);
    assert_eq!(ctx.session_rows().await, 0);

    // Storing something gives a new token, never the one the client offered.
    let session = ctx.request(Some(unknown.expose()));
    session.insert("x", "y").await.unwrap();
    match ctx.finish(&session).await {
        CookieAction::Set { token, .. } => assert_ne!(token, unknown),
        other => panic!("{other:?}"),
    }
}

async fn save_does_not_resurrect_a_session_deleted_meanwhile(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let session = ctx.request(Some(token.expose()));
    session.insert("late", true).await.unwrap();
    // Revoked elsewhere while this request runs.
    ctx.cold_engine()
        .store()
        .delete(&token.hash())
        .await
        .unwrap();
    ctx.engine.store().delete(&token.hash()).await.unwrap();
    assert_eq!(ctx.finish(&session).await, CookieAction::Keep);
    assert_eq!(ctx.session_rows().await, 0);
}

async fn cycle_key_keeps_data_and_row_and_kills_the_old_token(ctx: Ctx) {
    let user = ctx.user("dave").await;
    let old = ctx.new_session(Some(user)).await;
    let before = ctx.stored(&old).await.unwrap();
    let session = ctx.request(Some(old.expose()));
    session.cycle_key().await.unwrap();
    let CookieAction::Set { token: new, .. } = ctx.finish(&session).await else {
        panic!("cycle must set a cookie")
    };
    assert_ne!(new, old);
    assert!(ctx
        .engine
        .store()
        .load(&old.hash(), now())
        .await
        .unwrap()
        .is_none());
    assert!(ctx.stored(&old).await.is_none());
    let after = ctx.stored(&new).await.unwrap();
    assert_eq!(after.public_id, before.public_id);
    assert_eq!(after.user_id, Some(user));
    assert_eq!(after.data, before.data);
    assert_eq!(ctx.session_rows().await, 1);
}

async fn a_sign_in_stores_its_method_level_and_time_and_confirming_access_renews_them(ctx: Ctx) {
    let user = ctx.user("erin").await;
    let session = ctx.request(None);
    session.sign_in(user, AuthMethod::Password).await.unwrap();
    let CookieAction::Set { token, .. } = ctx.finish(&session).await else {
        panic!("a sign-in sets a cookie")
    };
    let signed_in = ctx.stored(&token).await.unwrap().assurance.unwrap();
    assert_eq!(signed_in.method, AuthMethod::Password);
    assert_eq!(signed_in.level, Aal::Aal1);
    assert!((now() - signed_in.authenticated_at).abs() < time::Duration::seconds(5));

    let later = ctx.request(Some(token.expose()));
    assert!(later
        .confirmed_within(std::time::Duration::from_secs(60))
        .await
        .unwrap());
    // A window shorter than the time since the sign-in (times are kept to the millisecond).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let old = ctx.request(Some(token.expose()));
    assert!(!old
        .confirmed_within(std::time::Duration::from_millis(5))
        .await
        .unwrap());
    assert!(old.confirm_access(AuthMethod::PasswordTotp).await.unwrap());
    let CookieAction::Set { token: renewed, .. } = ctx.finish(&old).await else {
        panic!("confirming access gives a new token")
    };
    assert!(ctx.stored(&token).await.is_none(), "the old token is void");
    let confirmed = ctx.stored(&renewed).await.unwrap().assurance.unwrap();
    assert_eq!(
        confirmed.method,
        AuthMethod::Password,
        "the sign-in method stays"
    );
    assert_eq!(
        confirmed.level,
        Aal::Aal2,
        "a second factor raises the level"
    );
    assert!((now() - confirmed.authenticated_at).abs() < time::Duration::seconds(5));
    let fresh = ctx.request(Some(renewed.expose()));
    assert!(fresh
        .confirmed_within(std::time::Duration::from_secs(600))
        .await
        .unwrap());

    // Signing out forgets it; a session with no user cannot confirm anything.
    fresh.sign_out().await.unwrap();
    assert_eq!(fresh.assurance().await.unwrap(), None);
    assert!(!fresh.confirm_access(AuthMethod::Password).await.unwrap());
}

async fn a_user_set_directly_is_recorded_as_signed_in_some_other_way(ctx: Ctx) {
    let user = ctx.user("frank").await;
    let token = ctx.new_session(Some(user)).await;
    let assurance = ctx.stored(&token).await.unwrap().assurance.unwrap();
    assert_eq!(assurance.method, AuthMethod::Other);
    assert_eq!(assurance.level, Aal::Aal1);
    let anonymous = ctx.new_session(None).await;
    assert_eq!(ctx.stored(&anonymous).await.unwrap().assurance, None);
}

async fn flush_deletes_the_row_and_starts_an_empty_session(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let session = ctx.request(Some(token.expose()));
    session.flush().await.unwrap();
    assert!(session.is_empty().await.unwrap());
    assert_eq!(ctx.finish(&session).await, CookieAction::Remove);
    assert_eq!(ctx.session_rows().await, 0);
    assert!(!ctx.is_cached(&token.hash()).unwrap_or(false));

    // Flush then store: the old row is gone, a new one with a new token exists.
    let token = ctx.new_session(None).await;
    let session = ctx.request(Some(token.expose()));
    session.flush().await.unwrap();
    session.insert("fresh", 1).await.unwrap();
    let CookieAction::Set { token: fresh, .. } = ctx.finish(&session).await else {
        panic!("expected a new cookie")
    };
    assert_ne!(fresh, token);
    assert!(ctx.stored(&token).await.is_none());
    assert_eq!(ctx.session_rows().await, 1);
}

async fn expired_sessions_are_not_loaded(ctx: Ctx) {
    let (mut rec, token) = record(None);
    rec.data.insert("x".into(), serde_json::json!(1));
    rec.expires_at = now() - Duration::from_secs(1);
    ctx.engine.store().create(&rec).await.unwrap();
    let session = ctx.request(Some(token.expose()));
    assert!(session.is_empty().await.unwrap());
    // A stale entry in the cache is not served either.
    assert!(ctx
        .engine
        .store()
        .load(&token.hash(), now())
        .await
        .unwrap()
        .is_none());
}

async fn expiry_policies_set_the_expiry_and_the_cookie(ctx: Ctx) {
    let session = ctx.request(None);
    session.insert("x", 1).await.unwrap();
    session.set_expiry(Expiry::IdleSeconds(600)).await.unwrap();
    let age = session.expiry_age().await.unwrap();
    assert!((598..=600).contains(&age), "{age}");
    let CookieAction::Set { max_age, token } = ctx.finish(&session).await else {
        panic!()
    };
    let max_age = max_age.unwrap().whole_seconds();
    assert!((598..=600).contains(&max_age), "{max_age}");
    assert_eq!(
        ctx.stored(&token).await.unwrap().expiry,
        Expiry::IdleSeconds(600)
    );

    let session = ctx.request(None);
    session.insert("x", 1).await.unwrap();
    session.set_expiry(Expiry::BrowserClose).await.unwrap();
    assert!(session.expires_at_browser_close().await.unwrap());
    // The cookie ends with the browser; the server, after the shorter browser idle timeout.
    let browser_idle = ctx.engine.config().browser_idle_timeout.as_secs();
    assert!(browser_idle < ctx.engine.config().idle_timeout.as_secs());
    let age = u64::try_from(session.expiry_age().await.unwrap()).unwrap();
    assert!((browser_idle - 2..=browser_idle).contains(&age), "{age}");
    let CookieAction::Set { max_age, token } = ctx.finish(&session).await else {
        panic!()
    };
    assert_eq!(max_age, None);
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!(stored.expiry, Expiry::BrowserClose);
    let left = (stored.expires_at - now()).whole_seconds();
    assert!(
        (i64::try_from(browser_idle).unwrap() - 2..=i64::try_from(browser_idle).unwrap())
            .contains(&left),
        "{left}"
    );

    let at = now() + Duration::from_secs(120);
    let session = ctx.request(None);
    session.insert("x", 1).await.unwrap();
    session
        .set_expiry(Expiry::AtMillis(to_millis(at)))
        .await
        .unwrap();
    assert_eq!(session.expires_at().await.unwrap(), at);
}

async fn absolute_lifetime_caps_every_expiry(ctx: Ctx) {
    let engine = &ctx.engine;
    let created = now();
    let far = created + Duration::from_secs(365 * 24 * 3600);
    let capped = engine.expires_at(Expiry::AtMillis(to_millis(far)), created, created);
    assert_eq!(capped, created + engine.config().absolute_lifetime);
    let idle = engine.expires_at(Expiry::Default, created, created);
    assert_eq!(idle, created + engine.config().idle_timeout);
}

async fn a_limited_session_has_its_own_shorter_lifetimes(ctx: Ctx) {
    let engine = &ctx.engine;
    let created = now();
    let limited = Expiry::Limited {
        idle_seconds: 1800,
        absolute_seconds: 12 * 3600,
        browser: false,
    };
    assert_eq!(
        engine.expires_at(limited, created, created),
        created + Duration::from_secs(1800)
    );
    // Active all along, it still ends 12 hours after its creation.
    let later = created + Duration::from_secs(12 * 3600 - 60);
    assert_eq!(
        engine.expires_at(limited, created, later),
        created + Duration::from_secs(12 * 3600)
    );
    // Never past the configured ones.
    let generous = Expiry::Limited {
        idle_seconds: 10 * 365 * 24 * 3600,
        absolute_seconds: 10 * 365 * 24 * 3600,
        browser: false,
    };
    assert_eq!(
        engine.expires_at(generous, created, created),
        created + engine.config().idle_timeout
    );

    // Stored: the cookie lasts as the session does, or ends with the browser.
    let user = ctx.user("max").await;
    for browser in [false, true] {
        let session = ctx.request(None);
        session.set_user_id(Some(user)).await.unwrap();
        session
            .set_expiry(Expiry::Limited {
                idle_seconds: 1800,
                absolute_seconds: 3600,
                browser,
            })
            .await
            .unwrap();
        match ctx.finish(&session).await {
            CookieAction::Set { token, max_age } => {
                assert_eq!(max_age.is_none(), browser);
                if let Some(age) = max_age {
                    assert!(
                        age <= time::Duration::seconds(1800) && age > time::Duration::seconds(1790)
                    );
                }
                let stored = ctx.stored(&token).await.unwrap();
                assert_eq!(
                    stored.expiry,
                    Expiry::Limited {
                        idle_seconds: 1800,
                        absolute_seconds: 3600,
                        browser
                    }
                );
                assert!(
                    ctx.request(Some(token.expose()))
                        .expires_at_browser_close()
                        .await
                        .unwrap()
                        == browser
                );
            }
            other => panic!("{other:?}"),
        }
    }

    // Swept at the end of its own absolute lifetime: told apart from an idle timeout.
    let session = ctx.request(None);
    session.set_user_id(Some(user)).await.unwrap();
    session
        .set_expiry(Expiry::Limited {
            idle_seconds: 3600,
            absolute_seconds: 1,
            browser: false,
        })
        .await
        .unwrap();
    ctx.finish(&session).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(ctx.engine.clear_expired(100).await.unwrap() >= 1);
    let ended = ctx.engine.ended_sessions(user, 1).await.unwrap();
    assert_eq!(ended[0].reason, EndCause::AbsoluteLifetime);
}

async fn activity_is_written_at_most_once_per_interval(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let first = ctx.stored(&token).await.unwrap();
    // Within the interval: nothing written.
    let session = ctx.request(Some(token.expose()));
    session.load().await.unwrap();
    assert_eq!(ctx.finish(&session).await, CookieAction::Keep);
    assert_eq!(ctx.stored(&token).await.unwrap(), first);

    // Pretend the last write was two minutes ago (past the 60 s interval): its activity and the
    // expiry it set. (Moving the activity alone left the expiry as written a moment ago; on a
    // store as fast as memory, within the same millisecond, so nothing was renewed.)
    let old = to_millis(now()) - 120_000;
    ctx.rewrite(&token, |record| {
        record.last_activity_at = console_sessions::sessions::from_millis(old);
        record.expires_at -= time::Duration::minutes(2);
    })
    .await;
    let engine = ctx.cold_engine();
    let session = engine.session(Some(token.expose()), client("203.0.113.5", FIREFOX));
    session.load().await.unwrap();
    let commit = engine.commit(&session).await.unwrap();
    // The renewed expiry is sent with the same token.
    assert!(matches!(commit.cookie, CookieAction::Set { token: ref t, .. } if *t == token));
    let after = ctx.stored(&token).await.unwrap();
    assert!(to_millis(after.last_activity_at) > old);
    assert!(after.expires_at >= first.expires_at);
}

async fn revoking_is_scoped_to_the_owner(ctx: Ctx) {
    let alice = ctx.user("alice").await;
    let mallory = ctx.user("mallory").await;
    let token = ctx.new_session(Some(alice)).await;
    let id = ctx.stored(&token).await.unwrap().public_id;
    assert!(!ctx.engine.revoke(mallory, &id).await.unwrap());
    assert!(ctx.stored(&token).await.is_some());
    assert!(ctx.engine.revoke(alice, &id).await.unwrap());
    assert!(ctx
        .engine
        .store()
        .load(&token.hash(), now())
        .await
        .unwrap()
        .is_none());
}

async fn revoking_the_others_keeps_the_current_session(ctx: Ctx) {
    let user = ctx.user("erin").await;
    let other_user = ctx.user("frank").await;
    let current = ctx.new_session(Some(user)).await;
    let a = ctx.new_session(Some(user)).await;
    let b = ctx.new_session(Some(user)).await;
    let foreign = ctx.new_session(Some(other_user)).await;
    for token in [&a, &b] {
        ctx.engine.store().load(&token.hash(), now()).await.unwrap();
    }
    let keep = ctx.stored(&current).await.unwrap().public_id;
    assert_eq!(ctx.engine.revoke_others(user, &keep).await.unwrap(), 2);
    assert!(ctx
        .engine
        .store()
        .load(&current.hash(), now())
        .await
        .unwrap()
        .is_some());
    assert!(ctx
        .engine
        .store()
        .load(&foreign.hash(), now())
        .await
        .unwrap()
        .is_some());
    for token in [&a, &b] {
        assert!(ctx
            .engine
            .store()
            .load(&token.hash(), now())
            .await
            .unwrap()
            .is_none());
    }
}

async fn a_session_limit_ends_the_least_recently_active_others(ctx: Ctx) {
    use console_sessions::sessions::{EndCause, SessionEvent};
    let user = ctx.user("hana").await;
    let other_user = ctx.user("ivo").await;
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(ctx.new_session(Some(user)).await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let foreign = ctx.new_session(Some(other_user)).await;
    let newest = ctx.stored(&tokens[3]).await.unwrap().public_id;
    let mut events = ctx.engine.subscribe();
    // No limit: nothing ends.
    assert!(ctx
        .engine
        .enforce_session_limit(user, Some(&newest), 0)
        .await
        .unwrap()
        .is_empty());
    // Two at most: the newest is kept with the next most recent; the two oldest end.
    let ended = ctx
        .engine
        .enforce_session_limit(user, Some(&newest), 2)
        .await
        .unwrap();
    assert_eq!(ended.len(), 2);
    for (token, alive) in [
        (&tokens[0], false),
        (&tokens[1], false),
        (&tokens[2], true),
        (&tokens[3], true),
        (&foreign, true),
    ] {
        let loaded = ctx.engine.store().load(&token.hash(), now()).await.unwrap();
        assert_eq!(loaded.is_some(), alive);
    }
    for _ in 0..2 {
        match events.recv().await.unwrap() {
            SessionEvent::Ended(ended) => {
                assert_eq!(ended.reason, EndCause::SessionLimit);
                assert_eq!(ended.user_id, Some(user));
            }
            other => panic!("expected an end, got {other:?}"),
        }
    }
    // Within the limit: nothing more ends.
    assert!(ctx
        .engine
        .enforce_session_limit(user, Some(&newest), 2)
        .await
        .unwrap()
        .is_empty());
}

async fn a_users_sessions_are_listed_newest_activity_first(ctx: Ctx) {
    let user = ctx.user("grace").await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(ctx.new_session(Some(user)).await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let listed = ctx.engine.list_for_user(user).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].token_hash, tokens[2].hash());
    assert_eq!(listed[2].token_hash, tokens[0].hash());
}

async fn corrupt_session_data_gives_a_new_session_and_keeps_the_row(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    ctx.db()
        .execute("UPDATE sessions SET data = '{not json'")
        .await
        .unwrap();
    let engine = ctx.cold_engine();
    let session = engine.session(Some(token.expose()), client("203.0.113.5", FIREFOX));
    assert!(session.is_empty().await.unwrap());
    assert_eq!(
        engine.commit(&session).await.unwrap().cookie,
        CookieAction::Remove
    );
    assert_eq!(ctx.session_rows().await, 1);
}

async fn ending_all_of_a_users_sessions_ends_them_in_store_and_cache(ctx: Ctx) {
    let user = ctx.user("heidi").await;
    let token = ctx.new_session(Some(user)).await;
    ctx.engine.store().load(&token.hash(), now()).await.unwrap();
    let ended = ctx
        .engine
        .end_all_of(user, EndCause::UserDeleted)
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].user_id(), Some(user));
    assert!(!ctx.is_cached(&token.hash()).unwrap_or(false));
    assert!(ctx
        .engine
        .store()
        .load(&token.hash(), now())
        .await
        .unwrap()
        .is_none());
    assert_eq!(ctx.session_rows().await, 0);
}

async fn a_cache_hit_does_not_touch_the_database(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let engine = ctx.cold_engine();
    engine.store().load(&token.hash(), now()).await.unwrap();
    let before = engine.db_store().unwrap().query_count();
    for _ in 0..10 {
        let loaded = engine.store().load(&token.hash(), now()).await.unwrap();
        assert!(loaded.is_some());
    }
    let queries = engine.db_store().unwrap().query_count() - before;
    match engine.config().backend {
        SessionBackend::CachedDb => {
            assert_eq!(queries, 0, "cached_db hits must not query");
            assert_eq!(engine.cache().unwrap().hit_miss(), (10, 1));
        }
        SessionBackend::Db => assert_eq!(queries, 10, "db loads query every time"),
    }
}

async fn cached_user_answers_only_for_a_quiet_cached_session_of_a_user(ctx: Ctx) {
    let alice = ctx.user("alice").await;
    let token = ctx.new_session(Some(alice)).await;
    let anonymous = ctx.new_session(None).await;
    let same = client("203.0.113.5", FIREFOX);
    let engine = &ctx.engine;
    match engine.config().backend {
        SessionBackend::Db => {
            assert_eq!(engine.cached_user(token.expose(), &same), None, "no cache");
            return;
        }
        SessionBackend::CachedDb => {}
    }
    assert_eq!(engine.cached_user(token.expose(), &same), Some(alice));
    // Anything that needs the full way is None: no user, another client, a malformed or
    // unknown cookie, a session not in memory, a session ended.
    assert_eq!(engine.cached_user(anonymous.expose(), &same), None);
    let elsewhere = client("198.51.100.7", FIREFOX);
    assert_eq!(engine.cached_user(token.expose(), &elsewhere), None);
    assert_eq!(engine.cached_user("not a token", &same), None);
    let (_, unknown) = record(Some(alice));
    assert_eq!(engine.cached_user(unknown.expose(), &same), None);
    assert_eq!(ctx.cold_engine().cached_user(token.expose(), &same), None);
    engine.revoke_all(alice).await.unwrap();
    assert_eq!(engine.cached_user(token.expose(), &same), None);
}

async fn cached_user_leaves_a_due_activity_touch_to_the_full_way(ctx: Ctx) {
    if ctx.engine.config().backend == SessionBackend::Db {
        return;
    }
    let alice = ctx.user("alice").await;
    let session = ctx.request(None);
    session.set_user_id(Some(alice)).await.unwrap();
    let CookieAction::Set { token, .. } = ctx.finish(&session).await else {
        panic!("expected a cookie");
    };
    let same = client("203.0.113.5", FIREFOX);
    let mut record = ctx.stored(&token).await.unwrap();
    // As if the last activity were longer ago than the interval.
    record.last_activity_at -=
        ctx.engine.config().activity_interval + std::time::Duration::from_secs(1);
    assert!(ctx
        .engine
        .store()
        .save(&record, &token.hash())
        .await
        .unwrap());
    assert_eq!(ctx.engine.cached_user(token.expose(), &same), None);
}

async fn a_load_sees_what_another_connection_wrote_at_once(ctx: Ctx) {
    let store = ctx.db_store();
    // A first load opens whatever the store reads through before the other side writes.
    let (record, token) = record(None);
    assert!(store.load(&token.hash(), now()).await.unwrap().is_none());

    let other_db = console_sessions::Database::connect(&ctx.db().url)
        .await
        .unwrap();
    let other = console_sessions::sessions::DbStore::new(other_db.clone());
    other.create(&record).await.unwrap();
    let loaded = store.load(&token.hash(), now()).await.unwrap().unwrap();
    assert_eq!(loaded.public_id, record.public_id);

    let mut changed = record.clone();
    changed.data.insert("seen".into(), serde_json::json!(true));
    assert!(other.save(&changed, &token.hash()).await.unwrap());
    let loaded = store.load(&token.hash(), now()).await.unwrap().unwrap();
    assert_eq!(loaded.data.get("seen"), Some(&serde_json::json!(true)));

    assert!(other.delete(&token.hash()).await.unwrap());
    assert!(store.load(&token.hash(), now()).await.unwrap().is_none());
    other_db.close().await;
}

async fn every_db_load_is_one_query_even_when_loads_overlap(ctx: Ctx) {
    let (record, token) = record(None);
    ctx.db_store().create(&record).await.unwrap();
    let store = ctx.db_store().clone();
    let before = store.query_count();
    let mut loads = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let store = store.clone();
        let hash = token.hash();
        loads.spawn(async move { store.load(&hash, now()).await });
    }
    while let Some(loaded) = loads.join_next().await {
        assert_eq!(
            loaded.unwrap().unwrap().unwrap().public_id,
            record.public_id
        );
    }
    assert_eq!(store.query_count() - before, 24);
}

async fn a_load_abandoned_midway_leaves_the_store_working(ctx: Ctx) {
    let (record, token) = record(None);
    let store = ctx.db_store();
    store.create(&record).await.unwrap();
    for _ in 0..5 {
        // Polled once, then dropped with its statement in flight.
        let abandoned =
            tokio::time::timeout(Duration::ZERO, store.load(&token.hash(), now())).await;
        if let Ok(loaded) = abandoned {
            assert!(loaded.unwrap().is_some());
        }
        let loaded = store.load(&token.hash(), now()).await.unwrap().unwrap();
        assert_eq!(loaded.public_id, record.public_id);
        let missing = SessionToken::generate().hash();
        assert!(store.load(&missing, now()).await.unwrap().is_none());
    }
}

async fn loads_fail_once_the_database_is_closed(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let store = ctx.db_store();
    assert!(store.load(&token.hash(), now()).await.unwrap().is_some());
    ctx.db().db.close().await;
    assert!(matches!(
        store.load(&token.hash(), now()).await,
        Err(StoreError::Database(_))
    ));
}

async fn the_same_session_data_is_seen_through_every_type(ctx: Ctx) {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Cart {
        items: Vec<String>,
        total_cents: u64,
    }
    let session = ctx.request(None);
    let cart = Cart {
        items: vec!["book".into(), "pen".into()],
        total_cents: 1299,
    };
    session.insert("cart", &cart).await.unwrap();
    let CookieAction::Set { token, .. } = ctx.finish(&session).await else {
        panic!()
    };
    let session = ctx.request(Some(token.expose()));
    assert_eq!(session.get::<Cart>("cart").await.unwrap(), Some(cart));
    assert!(session.get::<u64>("cart").await.is_err());
}

async fn location_is_recorded_at_sign_in_and_follows_the_address(ctx: Ctx) {
    let session = ctx.request_from(None, client("81.2.69.142", FIREFOX));
    session.insert("x", 1).await.unwrap();
    let CookieAction::Set { token, .. } = ctx.finish(&session).await else {
        panic!()
    };
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!(stored.place.country_code.as_deref(), Some("GB"));
    assert_eq!(stored.place.city.as_deref(), Some("London"));
    assert_eq!(stored.first_place, stored.place);
    assert_eq!(stored.first_ip, Some("81.2.69.142".parse().unwrap()));

    // Seen from Berlin (IPv6): the last-seen place changes, the sign-in place stays.
    let session = ctx.request_from(Some(token.expose()), client("2a02:8108::1", FIREFOX));
    session.load().await.unwrap();
    ctx.finish(&session).await;
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!(stored.place.country_code.as_deref(), Some("DE"));
    assert_eq!(stored.place.city.as_deref(), Some("Berlin"));
    assert_eq!(stored.first_place.city.as_deref(), Some("London"));

    // A private address has no place.
    let session = ctx.request_from(Some(token.expose()), client("192.168.1.20", FIREFOX));
    session.load().await.unwrap();
    ctx.finish(&session).await;
    assert!(ctx.stored(&token).await.unwrap().place.is_empty());
}

async fn client_hints_are_stored_and_make_reduced_user_agents_readable(ctx: Ctx) {
    let hints = ClientHints::from_header_values(
        Some(r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#),
        Some(r#""Windows""#),
        Some(r#""15.0.0""#),
        Some("?0"),
    );
    let session = ctx.request_from(
        None,
        ClientInfo {
            hints: hints.clone(),
            ..client("203.0.113.9", CHROME)
        },
    );
    session.insert("x", 1).await.unwrap();
    let CookieAction::Set { token, .. } = ctx.finish(&session).await else {
        panic!()
    };
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!(stored.client_hints.as_ref(), Some(&hints));
    let device = DeviceSummary::from_request(stored.user_agent.as_deref(), &hints);
    assert_eq!(device.summary, "Chrome 131 on Windows 11");
}

suite!(on_every_store:
    untouched_session_writes_nothing_and_sets_no_cookie,
    storing_a_value_creates_one_row_and_a_cookie_that_loads_it_back,
    store_and_pop_set_the_modified_and_accessed_flags,
    reading_the_user_does_not_modify_the_session,
    save_records_user_agent_ip_user_and_update_time,
    unchanged_ip_and_user_agent_do_not_modify_the_session,
    changed_ip_or_user_agent_is_saved,
    creating_a_duplicate_key_is_refused,
    deleting_a_missing_session_is_fine,
    clear_then_save_leaves_no_user,
    clearing_a_stored_session_deletes_it_and_the_cookie,
    long_user_agents_are_truncated,
    delete_removes_from_database_and_cache,
    bulk_delete_removes_from_database_and_cache,
    clearsessions_keeps_live_sessions_and_drops_expired_ones,
    malformed_cookies_are_never_accepted_and_create_no_row,
    loading_an_unknown_token_does_not_create_a_record,
    save_does_not_resurrect_a_session_deleted_meanwhile,
    cycle_key_keeps_data_and_row_and_kills_the_old_token,
    a_sign_in_stores_its_method_level_and_time_and_confirming_access_renews_them,
    a_user_set_directly_is_recorded_as_signed_in_some_other_way,
    flush_deletes_the_row_and_starts_an_empty_session,
    expired_sessions_are_not_loaded,
    expiry_policies_set_the_expiry_and_the_cookie,
    absolute_lifetime_caps_every_expiry,
    a_limited_session_has_its_own_shorter_lifetimes,
    activity_is_written_at_most_once_per_interval,
    revoking_is_scoped_to_the_owner,
    revoking_the_others_keeps_the_current_session,
    a_users_sessions_are_listed_newest_activity_first,
    a_session_limit_ends_the_least_recently_active_others,
    ending_all_of_a_users_sessions_ends_them_in_store_and_cache,
    every_way_the_engine_ends_a_session_is_kept_in_its_history,
    sessions_nobody_signed_in_to_leave_no_history,
    history_is_forgotten_after_its_retention_and_not_kept_with_none,
    a_session_keeps_its_name_through_saves_and_into_its_history,
    addresses_are_cut_to_their_network_once_old_and_seen_whole_again_when_used,
    under_ip_retention_none_no_address_is_written_and_the_sweep_forgets_the_old_ones,
    the_same_session_data_is_seen_through_every_type,
    location_is_recorded_at_sign_in_and_follows_the_address,
    client_hints_are_stored_and_make_reduced_user_agents_readable,
);

// ---- History and names ----

/// A user's history as (reason, who) pairs, most recently ended first.
async fn history_of(engine: &SessionEngine, user: i64) -> Vec<(EndCause, Option<EndedBy>)> {
    engine
        .ended_sessions(user, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|ended| (ended.reason, ended.by))
        .collect()
}

async fn every_way_the_engine_ends_a_session_is_kept_in_its_history(ctx: Ctx) {
    let user = ctx.user("hana").await;
    let staff = ctx.user("staff").await;
    let ctx = &ctx;
    let public_id =
        |token: SessionToken| async move { ctx.stored(&token).await.unwrap().public_id };

    // Signed out from itself; what it was is kept, its token is not.
    let token = ctx.new_session(Some(user)).await;
    let before = ctx.stored(&token).await.unwrap();
    let session = ctx.request(Some(token.expose()));
    session.sign_out().await.unwrap();
    ctx.finish(&session).await;
    let ended = ctx.engine.ended_sessions(user, 10).await.unwrap();
    assert_eq!(ended.len(), 1);
    let signed_out = &ended[0];
    assert_eq!(signed_out.reason, EndCause::SignedOut);
    assert_eq!(signed_out.by, None);
    assert_eq!(signed_out.public_id, before.public_id);
    assert_eq!(signed_out.ip, Some("203.0.113.5".parse().unwrap()));
    assert_eq!(signed_out.user_agent.as_deref(), Some(FIREFOX));
    assert_eq!(signed_out.created_at, before.created_at);
    assert_eq!(signed_out.auth_method, before.assurance.map(|a| a.method));
    assert!(signed_out.ended_at >= before.last_activity_at);

    // Signed out from another of the user's sessions, one and then the others: each says which.
    let current = public_id(ctx.new_session(Some(user)).await).await;
    let one = public_id(ctx.new_session(Some(user)).await).await;
    assert!(ctx
        .engine
        .end_session(user, &one, Ending::from_session(&current))
        .await
        .unwrap());
    ctx.new_session(Some(user)).await;
    assert_eq!(ctx.engine.revoke_others(user, &current).await.unwrap(), 1);
    let by_current = Some(EndedBy::Session(current.clone()));
    assert_eq!(
        history_of(&ctx.engine, user).await[..2],
        [
            (EndCause::Revoked, by_current.clone()),
            (EndCause::Revoked, by_current.clone()),
        ]
    );

    // A sign-in beyond the limit ends the least recently active.
    ctx.new_session(Some(user)).await;
    assert_eq!(
        ctx.engine
            .enforce_session_limit(user, Some(&current), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        history_of(&ctx.engine, user).await[0],
        (EndCause::SessionLimit, None)
    );

    // Staff, by id, and all of a user's at once for a reason.
    let one = public_id(ctx.new_session(Some(user)).await).await;
    ctx.engine
        .delete_many(std::slice::from_ref(&one), Ending::by_staff(staff))
        .await
        .unwrap();
    assert_eq!(
        history_of(&ctx.engine, user).await[0],
        (EndCause::Staff, Some(EndedBy::Staff(staff)))
    );
    assert_eq!(
        ctx.engine
            .end_all_of(user, EndCause::Deactivated)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        history_of(&ctx.engine, user).await[0],
        (EndCause::Deactivated, None)
    );

    // Expired: unused past its idle timeout, or at the end of its absolute lifetime, each told
    // apart when swept, and dated when it expired rather than when it was found.
    let short = ctx.engine_with(SessionConfig {
        absolute_lifetime: Duration::from_secs(1),
        ..ctx.engine.config().clone()
    });
    let idle = short.session(None, client("203.0.113.5", FIREFOX));
    idle.set_user_id(Some(user)).await.unwrap();
    idle.set_expiry(Expiry::IdleSeconds(0)).await.unwrap();
    short.commit(&idle).await.unwrap();
    let lifetime = short.session(None, client("203.0.113.5", FIREFOX));
    lifetime.set_user_id(Some(user)).await.unwrap();
    short.commit(&lifetime).await.unwrap();
    let expires_at = short
        .list_for_user(user)
        .await
        .unwrap()
        .iter()
        .map(|s| s.expires_at)
        .max()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(short.clear_expired(100).await.unwrap(), 2);
    let ended = short.ended_sessions(user, 2).await.unwrap();
    let mut reasons: Vec<EndCause> = ended.iter().map(|e| e.reason).collect();
    reasons.sort_by_key(|r| r.as_str());
    assert_eq!(reasons, [EndCause::AbsoluteLifetime, EndCause::IdleTimeout]);
    let absolute = ended
        .iter()
        .find(|e| e.reason == EndCause::AbsoluteLifetime)
        .unwrap();
    assert_eq!(absolute.ended_at, expires_at);

    // All of it, read back through a fresh engine (another node's view).
    assert_eq!(history_of(&ctx.cold_engine(), user).await.len(), 8);
    assert!(history_of(&ctx.engine, staff).await.is_empty());
}

async fn sessions_nobody_signed_in_to_leave_no_history(ctx: Ctx) {
    let token = ctx.new_session(None).await;
    let session = ctx.request(Some(token.expose()));
    session.flush().await.unwrap();
    ctx.finish(&session).await;
    assert_eq!(ctx.session_rows().await, 0);
    let user = ctx.user("ivy").await;
    assert!(ctx
        .engine
        .ended_sessions(user, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn history_is_forgotten_after_its_retention_and_not_kept_with_none(ctx: Ctx) {
    let user = ctx.user("jon").await;
    let brief = ctx.engine_with(SessionConfig {
        history_retention: Duration::from_millis(500),
        ..ctx.engine.config().clone()
    });
    ctx.new_session(Some(user)).await;
    brief.revoke_all(user).await.unwrap();
    assert_eq!(brief.ended_sessions(user, 10).await.unwrap().len(), 1);
    assert_eq!(brief.purge_history().await.unwrap(), 0, "not old yet");
    tokio::time::sleep(Duration::from_millis(600)).await;
    ctx.new_session(Some(user)).await;
    brief.revoke_all(user).await.unwrap();
    assert_eq!(brief.purge_history().await.unwrap(), 1, "only the old one");
    assert_eq!(brief.ended_sessions(user, 10).await.unwrap().len(), 1);

    let none = ctx.engine_with(SessionConfig {
        history_retention: Duration::ZERO,
        ..ctx.engine.config().clone()
    });
    ctx.new_session(Some(user)).await;
    assert_eq!(none.revoke_all(user).await.unwrap(), 1);
    assert_eq!(
        none.ended_sessions(user, 10).await.unwrap().len(),
        1,
        "nothing added"
    );
}

async fn a_session_keeps_its_name_through_saves_and_into_its_history(ctx: Ctx) {
    let user = ctx.user("kim").await;
    let other = ctx.user("lou").await;
    let token = ctx.new_session(Some(user)).await;
    let id = ctx.stored(&token).await.unwrap().public_id;
    // Somebody else's session is not found; a name is tidied and cut.
    assert!(!ctx.engine.rename(other, &id, "Mine now").await.unwrap());
    let long = format!("  Work\u{7}laptop {}  ", "x".repeat(100));
    assert!(ctx.engine.rename(user, &id, &long).await.unwrap());
    let named = ctx.engine.list_for_user(user).await.unwrap()[0]
        .label
        .clone()
        .unwrap();
    assert!(named.starts_with("Worklaptop xx"));
    assert_eq!(named.chars().count(), MAX_LABEL_CHARS);
    assert!(ctx.engine.rename(user, &id, "Work laptop").await.unwrap());

    // A request that loaded the session before the rename writes it back without undoing it.
    let session = ctx.request(Some(token.expose()));
    session.load().await.unwrap();
    session.insert("seen", true).await.unwrap();
    ctx.finish(&session).await;
    let listed = ctx.engine.list_for_user(user).await.unwrap();
    assert_eq!(listed[0].label.as_deref(), Some("Work laptop"));

    ctx.engine.revoke_all(user).await.unwrap();
    let ended = ctx.engine.ended_sessions(user, 1).await.unwrap();
    assert_eq!(ended[0].label.as_deref(), Some("Work laptop"));
    // An empty name forgets it.
    let token = ctx.new_session(Some(user)).await;
    let id = ctx.stored(&token).await.unwrap().public_id;
    assert!(ctx.engine.rename(user, &id, "Phone").await.unwrap());
    assert!(ctx.engine.rename(user, &id, "   ").await.unwrap());
    assert_eq!(ctx.engine.list_for_user(user).await.unwrap()[0].label, None);
}

// ---- IP_RETENTION ----

/// A session of `user` made through `engine` from `ip`; its cookie token.
async fn session_from(engine: &SessionEngine, user: i64, ip: &str) -> SessionToken {
    let session = engine.session(None, client(ip, FIREFOX));
    session.set_user_id(Some(user)).await.unwrap();
    match engine.commit(&session).await.unwrap().cookie {
        CookieAction::Set { token, .. } => token,
        other => panic!("expected a cookie, got {other:?}"),
    }
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

async fn addresses_are_cut_to_their_network_once_old_and_seen_whole_again_when_used(ctx: Ctx) {
    let user = ctx.user("nia").await;
    let cutting = ctx.engine_with(SessionConfig {
        ip_retention: IpRetention::Truncate {
            after: Duration::from_secs(2),
        },
        ..ctx.engine.config().clone()
    });
    let old = session_from(&ctx.engine, user, "81.2.69.142").await;
    let old_v6 = session_from(&ctx.engine, user, "2a02:8108:1234:5678::1").await;
    let ended = ctx
        .stored(&session_from(&ctx.engine, user, "198.51.100.77").await)
        .await
        .unwrap()
        .public_id;
    assert!(ctx
        .engine
        .end_session(user, &ended, EndCause::Revoked)
        .await
        .unwrap());
    assert_eq!(cutting.age_addresses(100).await.unwrap(), 0, "not old yet");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let fresh = session_from(&ctx.engine, user, "198.51.100.23").await;

    // Last and first addresses of both live sessions and of the ended one; a few at a time.
    assert_eq!(cutting.age_addresses(2).await.unwrap(), 6);
    assert_eq!(cutting.age_addresses(2).await.unwrap(), 0, "cut once");
    let old_record = ctx.stored(&old).await.unwrap();
    assert_eq!(old_record.ip, ip("81.2.69.0"));
    assert_eq!(old_record.first_ip, ip("81.2.69.0"));
    assert_eq!(
        old_record.place.city.as_deref(),
        Some("London"),
        "the place stays"
    );
    let v6 = ctx.stored(&old_v6).await.unwrap();
    assert_eq!(v6.ip, ip("2a02:8108:1234::"));
    assert_eq!(v6.place.city.as_deref(), Some("Berlin"));
    assert_eq!(ctx.stored(&fresh).await.unwrap().ip, ip("198.51.100.23"));
    let history = cutting.ended_sessions(user, 10).await.unwrap();
    assert_eq!(history[0].ip, ip("198.51.100.0"));
    assert_eq!(history[0].first_ip, ip("198.51.100.0"));
    // Shown with its prefix, so nobody takes the network for a host.
    let policy = cutting.config().ip_retention;
    assert_eq!(
        policy.shown(old_record.ip.unwrap(), old_record.last_activity_at, now()),
        Some("81.2.69.0/24".to_owned())
    );
    assert_eq!(
        policy.shown(v6.ip.unwrap(), v6.last_activity_at, now()),
        Some("2a02:8108:1234::/48".to_owned())
    );
    assert_eq!(
        policy.shown(ip("198.51.100.23").unwrap(), now(), now()),
        Some("198.51.100.23".to_owned())
    );

    // Used again, the session is seen afresh: its last address whole, its first still cut.
    let again = cutting.session(Some(old.expose()), client("81.2.69.142", FIREFOX));
    again.load().await.unwrap();
    cutting.commit(&again).await.unwrap();
    let used = ctx.stored(&old).await.unwrap();
    assert_eq!(used.ip, ip("81.2.69.142"));
    assert_eq!(used.first_ip, ip("81.2.69.0"));

    // Zero days: cut before it is written.
    let at_once = ctx.engine_with(SessionConfig {
        ip_retention: IpRetention::Truncate {
            after: Duration::ZERO,
        },
        ..ctx.engine.config().clone()
    });
    let cut = session_from(&at_once, user, "81.2.69.142").await;
    let cut = ctx.stored(&cut).await.unwrap();
    assert_eq!((cut.ip, cut.first_ip), (ip("81.2.69.0"), ip("81.2.69.0")));
    assert_eq!(cut.place.city.as_deref(), Some("London"));
}

async fn under_ip_retention_none_no_address_is_written_and_the_sweep_forgets_the_old_ones(
    ctx: Ctx,
) {
    let user = ctx.user("oto").await;
    // Written under a looser policy: one whole, one ended, then all cut.
    let whole = session_from(&ctx.engine, user, "81.2.69.142").await;
    let ended = ctx.stored(&whole).await.unwrap().public_id;
    let kept = session_from(&ctx.engine, user, "198.51.100.7").await;
    assert!(ctx
        .engine
        .end_session(user, &ended, EndCause::SignedOut)
        .await
        .unwrap());
    let cut_all = ctx.engine_with(SessionConfig {
        ip_retention: IpRetention::Truncate {
            after: Duration::ZERO,
        },
        ..ctx.engine.config().clone()
    });
    // The sweep takes what was seen before the moment it runs (times are in milliseconds).
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(cut_all.age_addresses(100).await.unwrap(), 4);

    let none = ctx.engine_with(SessionConfig {
        ip_retention: IpRetention::Discard,
        ..ctx.engine.config().clone()
    });
    let token = session_from(&none, user, "81.2.69.142").await;
    let stored = ctx.stored(&token).await.unwrap();
    assert_eq!((stored.ip, stored.first_ip), (None, None));
    assert_eq!(
        stored.place.city.as_deref(),
        Some("London"),
        "the place is kept"
    );
    assert_eq!(stored.first_place.city.as_deref(), Some("London"));
    // Used again from elsewhere within the activity interval: a row without an address is not
    // out of date, so nothing is written for it.
    let again = none.session(Some(token.expose()), client("81.2.69.143", FIREFOX));
    again.load().await.unwrap();
    none.commit(&again).await.unwrap();
    assert_eq!(
        ctx.stored(&token).await.unwrap().updated_at,
        stored.updated_at
    );

    // The sweep forgets what was written before, cut or whole.
    let another = session_from(&ctx.engine, user, "198.51.100.9").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(none.age_addresses(1).await.unwrap(), 2 + 2 + 2);
    assert_eq!(none.age_addresses(100).await.unwrap(), 0);
    for token in [&kept, &another, &token] {
        let record = ctx.stored(token).await.unwrap();
        assert_eq!((record.ip, record.first_ip), (None, None));
    }
    let history = none.ended_sessions(user, 10).await.unwrap();
    assert_eq!((history[0].ip, history[0].first_ip), (None, None));
    assert_eq!(
        history[0].place.city.as_deref(),
        Some("London"),
        "the place is kept"
    );
}

async fn a_cut_address_is_stored_with_its_prefix_and_the_sweep_reads_only_what_it_changes(
    ctx: Ctx,
) {
    use console_sessions::sessions::ip_key;
    use console_sessions::Database;
    let user = ctx.user("pia").await;
    let ended = session_from(&ctx.engine, user, "81.2.69.142").await;
    let ended = ctx.stored(&ended).await.unwrap().public_id;
    ctx.engine
        .end_session(user, &ended, EndCause::SignedOut)
        .await
        .unwrap();
    session_from(&ctx.engine, user, "2a02:8108:1234:5678::1").await;
    // Forty days on, with addresses kept whole for thirty.
    let forty_days = 40 * 24 * 3600 * 1000_i64;
    for table in ["sessions", "session_history"] {
        ctx.db()
            .execute(&format!(
                "UPDATE {table} SET last_activity_at = last_activity_at - {forty_days}, \
                 created_at = created_at - {forty_days}"
            ))
            .await
            .unwrap();
    }
    let cutting = ctx.engine_with(SessionConfig {
        ip_retention: IpRetention::Truncate {
            after: Duration::from_secs(30 * 24 * 3600),
        },
        ..ctx.engine.config().clone()
    });
    assert_eq!(cutting.age_addresses(500).await.unwrap(), 4);
    // Cut at once (zero days), a new session is written with the mark: nothing left to sweep.
    let at_once = ctx.engine_with(SessionConfig {
        ip_retention: IpRetention::Truncate {
            after: Duration::ZERO,
        },
        ..ctx.engine.config().clone()
    });
    let cut_token = session_from(&at_once, user, "198.51.100.200").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(at_once.age_addresses(500).await.unwrap(), 0);
    assert_eq!(ctx.stored(&cut_token).await.unwrap().ip, ip("198.51.100.0"));
    // It ends: its history keeps the mark too.
    let cut_id = ctx.stored(&cut_token).await.unwrap().public_id;
    assert!(at_once
        .end_session(user, &cut_id, EndCause::SignedOut)
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(at_once.age_addresses(500).await.unwrap(), 0);

    type Row = (Option<String>, Option<Vec<u8>>, Option<String>);
    let sql = |table: &str| format!("SELECT ip, ip_key, first_ip FROM {table}");
    let (live, history): (Vec<Row>, Vec<Row>) = match &ctx.db().db {
        Database::Sqlite(pool) => (
            sqlx::query_as(&sql("sessions"))
                .fetch_all(pool)
                .await
                .unwrap(),
            sqlx::query_as(&sql("session_history"))
                .fetch_all(pool)
                .await
                .unwrap(),
        ),
        Database::Postgres(pool) => (
            sqlx::query_as(&sql("sessions"))
                .fetch_all(pool)
                .await
                .unwrap(),
            sqlx::query_as(&sql("session_history"))
                .fetch_all(pool)
                .await
                .unwrap(),
        ),
    };
    let network = |text: &str| ip_key(text.parse().unwrap()).to_vec();
    let live: Vec<Row> = live
        .into_iter()
        .filter(|row| row.0.as_deref() != Some("198.51.100.0/24"))
        .collect();
    assert_eq!(
        history
            .iter()
            .filter(|row| row.0.as_deref() == Some("198.51.100.0/24"))
            .count(),
        1
    );
    let history: Vec<Row> = history
        .into_iter()
        .filter(|row| row.0.as_deref() != Some("198.51.100.0/24"))
        .collect();
    assert_eq!(
        live,
        [(
            Some("2a02:8108:1234::/48".to_owned()),
            Some(network("2a02:8108:1234::")),
            Some("2a02:8108:1234::/48".to_owned())
        )]
    );
    // The key moves to the network, so a search for the network still finds the row.
    assert_eq!(
        history,
        [(
            Some("81.2.69.0/24".to_owned()),
            Some(network("81.2.69.0")),
            Some("81.2.69.0/24".to_owned())
        )]
    );

    // Each of the sweep's reads goes through the partial index made for it.
    for (table, ip, seen) in [
        ("sessions", "ip", "last_activity_at"),
        ("sessions", "first_ip", "created_at"),
        ("session_history", "ip", "last_activity_at"),
        ("session_history", "first_ip", "created_at"),
    ] {
        for whole in [true, false] {
            let index = format!(
                "{table}_{}_{}",
                if whole { "whole" } else { "cut" },
                if ip == "ip" { "ip" } else { "first_ip" }
            );
            let plan = ctx
                .db()
                .address_sweep_plan(table, ip, seen, whole)
                .await
                .unwrap();
            assert!(
                plan.iter().any(|line| line.contains(&index)),
                "{index} not used: {plan:?}"
            );
        }
    }
}

// What only a database store has: rows another connection sees, a query counter, the engine's own
// cache that forward authentication reads without waiting.
mod database {
    use super::*;

    suite!(on_every_database_and_store:
        corrupt_session_data_gives_a_new_session_and_keeps_the_row,
        a_cache_hit_does_not_touch_the_database,
        cached_user_answers_only_for_a_quiet_cached_session_of_a_user,
        cached_user_leaves_a_due_activity_touch_to_the_full_way,
        a_load_sees_what_another_connection_wrote_at_once,
        every_db_load_is_one_query_even_when_loads_overlap,
        a_load_abandoned_midway_leaves_the_store_working,
        loads_fail_once_the_database_is_closed,
        a_cut_address_is_stored_with_its_prefix_and_the_sweep_reads_only_what_it_changes,
    );
}

/// Closing the database releases the file: once the pool and the readers beside it are closed, no
/// file descriptor of this process refers to the database, its write-ahead log or its shared memory.
///
/// Counted through `/proc/self/fd` rather than by waiting for SQLite to delete the write-ahead log:
/// SQLite deletes it only when a closing connection gets the file's exclusive lock, which two
/// connections closing at the same moment can both miss, leaving the file behind with nothing open.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn closing_a_sqlite_database_closes_every_connection_to_it() {
    let test_db = TestDatabase::sqlite().await.unwrap();
    let engine = SessionEngine::new(
        test_db.db.clone(),
        SessionConfig {
            backend: SessionBackend::Db,
            ..SessionConfig::default()
        },
    );
    let (record, token) = record(None);
    engine.db_store().unwrap().create(&record).await.unwrap();
    assert!(engine
        .db_store()
        .unwrap()
        .load(&token.hash(), now())
        .await
        .unwrap()
        .is_some());
    let file = std::fs::canonicalize(test_db.url.trim_start_matches("sqlite://")).unwrap();
    assert!(open_descriptors_to(&file) > 0);
    test_db.db.close().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while open_descriptors_to(&file) > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        open_descriptors_to(&file),
        0,
        "a connection to {} is still open",
        file.display()
    );
}

/// How many of this process's file descriptors refer to the SQLite database `file` or to the
/// `-wal` and `-shm` files beside it.
#[cfg(target_os = "linux")]
fn open_descriptors_to(file: &std::path::Path) -> usize {
    let names = ["", "-wal", "-shm"].map(|suffix| {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    });
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| names.contains(target))
        .count()
}

/// A store that, once armed, stops every `load` right after it has read the database: it says so
/// on `read`, then waits on `resume`. It lets a test put a delete exactly between a cache miss's
/// read and its insert into the cache.
#[derive(Clone)]
struct PausingStore {
    inner: console_sessions::sessions::DbStore,
    pause: std::sync::Arc<std::sync::Mutex<Option<Pause>>>,
}

#[derive(Clone)]
struct Pause {
    read: std::sync::Arc<tokio::sync::Barrier>,
    resume: std::sync::Arc<tokio::sync::Barrier>,
}

impl PausingStore {
    /// The next load pauses after reading; the returned handle meets it there and lets it go.
    fn arm(&self) -> Pause {
        let pause = Pause {
            read: std::sync::Arc::new(tokio::sync::Barrier::new(2)),
            resume: std::sync::Arc::new(tokio::sync::Barrier::new(2)),
        };
        *self.pause.lock().unwrap() = Some(pause.clone());
        pause
    }
}

#[async_trait::async_trait]
impl SessionStore for PausingStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
    async fn load(
        &self,
        token_hash: &TokenHash,
        now: time::OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let loaded = self.inner.load(token_hash, now).await;
        let pause = self.pause.lock().unwrap().take();
        if let Some(pause) = pause {
            pause.read.wait().await;
            pause.resume.wait().await;
        }
        loaded
    }
    async fn save(&self, record: &SessionRecord, current: &TokenHash) -> Result<bool, StoreError> {
        self.inner.save(record, current).await
    }
    async fn delete(&self, token_hash: &TokenHash) -> Result<bool, StoreError> {
        self.inner.delete(token_hash).await
    }
    async fn delete_expired(
        &self,
        now: time::OffsetDateTime,
        batch: u32,
    ) -> Result<Vec<console_sessions::sessions::Deleted>, StoreError> {
        self.inner.delete_expired(now, batch).await
    }
    fn by_user(&self) -> Option<&dyn UserSessionStore> {
        Some(&self.inner)
    }
}

/// Every way a node ends sessions itself, each given the session's record and its user.
#[derive(Debug, Clone, Copy)]
enum LocalDelete {
    SignOut,
    Revoke,
    RevokeOthers,
    RevokeAll,
    Bulk,
    DeleteUser,
    Sweep,
    NewToken,
}

/// A cache miss reads a session, the session is ended while that read is on its way back, and
/// then the read finishes: whatever the kind of delete, nothing is left in the cache, and the
/// session is not served again.
async fn a_load_racing_with_a_delete_caches_nothing(backend: Backend) {
    let test_db = TestDatabase::new(backend).await.unwrap();
    let paused = PausingStore {
        inner: DbStore::new(test_db.db.clone()),
        pause: Default::default(),
    };
    let cache = CachedDbStore::new(paused.clone(), &CacheSettings::default());
    for (n, how) in [
        LocalDelete::SignOut,
        LocalDelete::Revoke,
        LocalDelete::RevokeOthers,
        LocalDelete::RevokeAll,
        LocalDelete::Bulk,
        LocalDelete::DeleteUser,
        LocalDelete::Sweep,
        LocalDelete::NewToken,
    ]
    .into_iter()
    .enumerate()
    {
        let user = test_db
            .insert_user(&format!("racer{n}"), false)
            .await
            .unwrap();
        let (mut record, token) = record(Some(user));
        if matches!(how, LocalDelete::Sweep) {
            record.expires_at = now() + time::Duration::seconds(1);
        }
        paused.inner.create(&record).await.unwrap();
        let other = PublicId::generate();
        // The load reads the row (live at `read_at`), then waits.
        let read_at = now();
        let pause = paused.arm();
        let loading = {
            let cache = cache.clone();
            let hash = token.hash();
            tokio::spawn(async move { cache.load(&hash, read_at).await })
        };
        pause.read.wait().await;
        let hash = token.hash();
        match how {
            LocalDelete::SignOut => assert!(cache.delete(&hash).await.unwrap()),
            LocalDelete::Revoke => {
                let ids = [record.public_id.clone()];
                assert_eq!(
                    cache
                        .delete_by_public_ids(&ids, Some(user))
                        .await
                        .unwrap()
                        .len(),
                    1
                );
            }
            LocalDelete::RevokeOthers => {
                assert_eq!(
                    cache
                        .delete_for_user(user, Some(&other))
                        .await
                        .unwrap()
                        .len(),
                    1
                );
            }
            LocalDelete::RevokeAll => {
                assert_eq!(cache.delete_for_user(user, None).await.unwrap().len(), 1);
            }
            LocalDelete::Bulk => {
                let ids = [record.public_id.clone()];
                assert_eq!(
                    cache.delete_by_public_ids(&ids, None).await.unwrap().len(),
                    1
                );
            }
            LocalDelete::DeleteUser => {
                // What `Accounts::delete_user` asks of the engine: every session of the user.
                assert_eq!(cache.delete_for_user(user, None).await.unwrap().len(), 1);
            }
            LocalDelete::Sweep => {
                let later = now() + time::Duration::seconds(5);
                assert_eq!(cache.delete_expired(later, 100).await.unwrap().len(), 1);
            }
            LocalDelete::NewToken => {
                let mut cycled = record.clone();
                cycled.token_hash = SessionToken::generate().hash();
                assert!(cache.save(&cycled, &hash).await.unwrap());
            }
        }
        pause.resume.wait().await;
        let loaded = loading.await.unwrap().unwrap();
        assert!(
            loaded.is_some(),
            "{how:?}: the load read the row before it ended"
        );
        assert!(
            !cache.is_cached(&hash),
            "{how:?}: the ended session is back in the cache"
        );
        assert!(
            cache.load(&hash, read_at).await.unwrap().is_none(),
            "{how:?}: the ended session is served again"
        );
    }
}

mod a_load_racing_with_a_delete {
    use super::*;

    #[tokio::test]
    async fn caches_nothing_on_sqlite() {
        a_load_racing_with_a_delete_caches_nothing(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn caches_nothing_on_postgres() {
        a_load_racing_with_a_delete_caches_nothing(Backend::Postgres).await;
    }
}

/// The two schemas: the session engine's table alone (`migrate_sessions`), and the whole one.
mod schema {
    use console_sessions::{Backend, Database};

    async fn tables(db: &Database) -> Vec<String> {
        match db {
            Database::Sqlite(pool) => sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
            Database::Postgres(pool) => sqlx::query_scalar(
                "SELECT table_name::TEXT FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' \
                 ORDER BY table_name",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        }
    }

    async fn session_columns(db: &Database) -> Vec<String> {
        match db {
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT name FROM pragma_table_info('sessions') ORDER BY name")
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
            Database::Postgres(pool) => sqlx::query_scalar(
                "SELECT column_name::TEXT FROM information_schema.columns \
                 WHERE table_name = 'sessions' ORDER BY column_name",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        }
    }

    /// The engine alone gets its two tables (sessions and their history), the sessions table
    /// with every column the whole schema's has (so the two cannot drift apart); applying it
    /// again, or over the whole schema, changes nothing and fails nothing.
    async fn the_engine_alone_gets_its_own_tables_and_nothing_else(backend: Backend) {
        let alone = console_sessions::testing::TestDatabase::sessions_only(backend)
            .await
            .unwrap();
        assert_eq!(tables(&alone.db).await, ["session_history", "sessions"]);
        alone.db.migrate_sessions().await.unwrap();
        assert_eq!(tables(&alone.db).await, ["session_history", "sessions"]);

        let whole = console_sessions::testing::TestDatabase::new(backend)
            .await
            .unwrap();
        let whole_tables = tables(&whole.db).await;
        assert!(whole_tables.len() > 1, "{whole_tables:?}");
        assert!(whole_tables.contains(&"users".to_owned()));
        assert_eq!(
            session_columns(&alone.db).await,
            session_columns(&whole.db).await
        );
        whole.db.migrate_sessions().await.unwrap();
        whole.db.migrate().await.unwrap();
        assert_eq!(tables(&whole.db).await, whole_tables);
    }

    #[tokio::test]
    async fn on_sqlite_the_engine_alone_gets_its_own_tables_and_nothing_else() {
        the_engine_alone_gets_its_own_tables_and_nothing_else(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn on_postgres_the_engine_alone_gets_its_own_tables_and_nothing_else() {
        the_engine_alone_gets_its_own_tables_and_nothing_else(Backend::Postgres).await;
    }
}
