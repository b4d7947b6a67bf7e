//! Two nodes on one PostgreSQL database (`TEST_POSTGRES_URL`): how long after a session is ended on
//! node A does node B stop serving it from its cache? Each revocation: a session created through A,
//! read (so cached) through B, deleted through A; then B's cache is watched until the entry is gone.
//!
//! Before criterion's own measurement, 300 revocations are timed one by one and their percentiles
//! printed, from the start of the delete (its round trip included) and from its return (the commit:
//! NOTIFY delivery and eviction alone).
// `criterion_group!` defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use console_sessions::sessions::{now, CacheSettings, EvictionListener};
use console_sessions::testing::{sample_record, TestDatabase};
use console_sessions::{SessionBackend, SessionConfig, SessionEngine};
use criterion::{criterion_group, criterion_main, Criterion};

const REVOCATIONS: usize = 300;

struct Node {
    engine: SessionEngine,
    _listener: EvictionListener,
}

async fn node(test_db: &TestDatabase) -> Node {
    let config = SessionConfig {
        backend: SessionBackend::CachedDb,
        cache: CacheSettings {
            max_capacity: 100_000,
            max_age: Duration::from_secs(3600),
        },
        ..SessionConfig::default()
    };
    let engine = SessionEngine::new(test_db.db.clone(), config);
    let listener = engine.spawn_eviction_listener().expect("PostgreSQL");
    let cache = engine.cache().unwrap().clone();
    let started = Instant::now();
    while !cache.is_caching() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never listened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Node {
        engine,
        _listener: listener,
    }
}

/// One revocation: (from the start of the delete, from its return) to B's eviction.
async fn revoke_once(a: &Node, b: &Node) -> (Duration, Duration) {
    let (record, _) = sample_record(None);
    a.engine.store().create(&record).await.unwrap();
    assert!(b
        .engine
        .store()
        .load(&record.token_hash, now())
        .await
        .unwrap()
        .is_some());
    let cache = b.engine.cache().unwrap();
    assert!(cache.is_cached(&record.token_hash));
    let start = Instant::now();
    assert!(a.engine.store().delete(&record.token_hash).await.unwrap());
    let committed = Instant::now();
    while cache.is_cached(&record.token_hash) {
        assert!(start.elapsed() < Duration::from_secs(5), "never evicted");
        tokio::task::yield_now().await;
    }
    let evicted = Instant::now();
    (evicted - start, evicted - committed)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(label: &str, mut delays: Vec<Duration>) {
    delays.sort();
    println!(
        "{label}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        delays.len(),
        percentile(&delays, 0.50).as_secs_f64() * 1000.0,
        percentile(&delays, 0.90).as_secs_f64() * 1000.0,
        percentile(&delays, 0.99).as_secs_f64() * 1000.0,
        delays[delays.len() - 1].as_secs_f64() * 1000.0,
    );
}

fn cluster(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let test_db = rt
        .block_on(TestDatabase::postgres())
        .expect("a PostgreSQL test database (set TEST_POSTGRES_URL)");
    let (a, b) = rt.block_on(async { (node(&test_db).await, node(&test_db).await) });

    let (from_start, from_commit): (Vec<_>, Vec<_>) = rt.block_on(async {
        let mut delays = Vec::with_capacity(REVOCATIONS);
        for _ in 0..REVOCATIONS {
            delays.push(revoke_once(&a, &b).await);
        }
        delays.into_iter().unzip()
    });
    report(
        "revocation to eviction on the other node, from the delete's start",
        from_start,
    );
    report(
        "revocation to eviction on the other node, from the commit",
        from_commit,
    );

    let mut group = c.benchmark_group("cluster");
    group.sample_size(20);
    group.bench_function("revoke_to_eviction_on_other_node", |bench| {
        bench.to_async(&rt).iter_custom(|iters| {
            let (a, b) = (&a, &b);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += revoke_once(a, b).await.0;
                }
                total
            }
        })
    });
    group.finish();
}

criterion_group!(benches, cluster);
criterion_main!(benches);
