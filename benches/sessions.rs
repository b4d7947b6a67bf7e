//! Hot-path benchmarks of the session engine on a real SQLite file:
//! load on a cache hit, load from SQLite, save, create, and a whole request's session work.
// `criterion_group!` defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use console_sessions::sessions::{
    now, CacheSettings, ClientInfo, ProxyHeader, SessionRecord, SessionStore, SessionToken,
};
use console_sessions::testing::{sample_record, TestDatabase};
use console_sessions::{SessionBackend, SessionConfig, SessionEngine};
use criterion::{criterion_group, criterion_main, Criterion};

fn record() -> (SessionRecord, SessionToken) {
    let (mut record, token) = sample_record(None);
    record.data.insert(
        "csrf".into(),
        serde_json::json!("0123456789abcdef0123456789abcdef"),
    );
    record
        .data
        .insert("theme".into(), serde_json::json!("dark"));
    (record, token)
}

/// The client a stored session records: its requests change nothing about the row.
fn client_of(record: &SessionRecord) -> ClientInfo {
    ClientInfo {
        ip: record.ip,
        user_agent: record.user_agent.clone(),
        ..Default::default()
    }
}

fn sessions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Pool connections return themselves on drop through the runtime, so keep it entered until the
    // end (the held connection below is dropped when this function returns).
    let _runtime = rt.enter();
    let test_db = rt.block_on(TestDatabase::sqlite()).unwrap();
    let config = SessionConfig {
        backend: SessionBackend::CachedDb,
        cache: CacheSettings::default(),
        ..SessionConfig::default()
    };
    let engine = SessionEngine::new(test_db.db.clone(), config);
    let db_store = engine
        .db_store()
        .expect("an engine over a database")
        .clone();
    // A table with some rows, so lookups go through a real index.
    rt.block_on(async {
        for _ in 0..10_000 {
            db_store.create(&record().0).await.unwrap();
        }
    });
    let (stored, token) = record();
    rt.block_on(engine.store().create(&stored)).unwrap();
    let hash = token.hash();

    let mut group = c.benchmark_group("sessions");
    group.bench_function("load_cache_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { engine.store().load(&hash, now()).await.unwrap().unwrap() })
    });
    group.bench_function("load_sqlite", |b| {
        b.to_async(&rt)
            .iter(|| async { db_store.load(&hash, now()).await.unwrap().unwrap() })
    });
    // Eight requests loading at once, more than there are SQLite readers (one per core, at most
    // four): the rest go through the pool.
    group.bench_function("load_sqlite_8_at_once", |b| {
        b.to_async(&rt).iter(|| async {
            let mut loads = tokio::task::JoinSet::new();
            for _ in 0..8 {
                let db_store = db_store.clone();
                loads.spawn(async move { db_store.load(&hash, now()).await });
            }
            while let Some(loaded) = loads.join_next().await {
                assert!(loaded.unwrap().unwrap().is_some());
            }
        })
    });
    // The floor under every SQLite statement through the pool: for comparison with load_sqlite.
    if let console_sessions::Database::Sqlite(pool) = &test_db.db {
        group.bench_function("select_1_sqlite_pool", |b| {
            b.to_async(&rt).iter(|| async {
                sqlx::query("SELECT 1").execute(pool).await.unwrap();
            })
        });
        let conn = tokio::sync::Mutex::new(rt.block_on(pool.acquire()).unwrap());
        group.bench_function("select_1_sqlite_held", |b| {
            b.to_async(&rt).iter(|| async {
                let mut conn = conn.lock().await;
                sqlx::query("SELECT 1").execute(&mut **conn).await.unwrap();
            })
        });
    }
    group.bench_function("save_sqlite", |b| {
        b.to_async(&rt).iter(|| async {
            let mut changed = stored.clone();
            changed.updated_at = now();
            assert!(db_store.save(&changed, &hash).await.unwrap());
        })
    });
    group.bench_function("create_sqlite", |b| {
        b.to_async(&rt).iter(|| async {
            db_store.create(&record().0).await.unwrap();
        })
    });
    let client = client_of(&stored);
    group.bench_function("request_read_cache_hit", |b| {
        b.to_async(&rt).iter(|| async {
            let session = engine.session(Some(token.expose()), client.clone());
            let theme: Option<String> = session.get("theme").await.unwrap();
            assert!(theme.is_some());
            engine.commit(&session).await.unwrap();
        })
    });
    // Forward authentication's question, answered from memory: the session (`cached_user`), then
    // its user (`identity`).
    let accounts = console_sessions::accounts::Accounts::new(
        test_db.db.clone(),
        engine.clone(),
        Default::default(),
    );
    let user = rt
        .block_on(accounts.create_user(console_sessions::accounts::NewUser {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            password: "correct horse battery staple".into(),
            is_staff: false,
        }))
        .unwrap();
    let (mut signed_in, signed_in_token) = record();
    signed_in.user_id = Some(user.id);
    rt.block_on(engine.store().create(&signed_in)).unwrap();
    let signed_in_client = client_of(&signed_in);
    group.bench_function("cached_user", |b| {
        b.iter(|| {
            let user_id = engine.cached_user(signed_in_token.expose(), &signed_in_client);
            assert_eq!(user_id, Some(user.id));
        })
    });
    rt.block_on(accounts.identity(user.id)).unwrap();
    group.bench_function("cached_user_and_identity", |b| {
        b.iter(|| {
            let user_id = engine
                .cached_user(signed_in_token.expose(), &signed_in_client)
                .unwrap();
            accounts.cached_identity(user_id).unwrap()
        })
    });
    // What forward authentication reads of each request before any lookup.
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("host", "127.0.0.1:3000".parse().unwrap());
    headers.insert(
        "cookie",
        format!("session={}", signed_in_token.expose())
            .parse()
            .unwrap(),
    );
    let peer: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
    group.bench_function("client_info_from_headers", |b| {
        b.iter(|| ClientInfo::from_headers(&headers, Some(peer), &[], ProxyHeader::default()))
    });
    group.bench_function("cookie_value_and_hash", |b| {
        b.iter(|| {
            let value = console_sessions::sessions::cookie_value(&headers, "session").unwrap();
            SessionToken::hash_of(value).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, sessions);
criterion_main!(benches);
