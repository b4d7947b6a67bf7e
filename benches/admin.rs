//! The staff changelist over a million sessions and ten thousand users: a filter plus a search must
//! answer in well under 100 ms, on SQLite and on PostgreSQL.
//!
//! Seeding a million rows takes minutes, so the data is kept between runs: a SQLite file under
//! `target/bench-data/` and a PostgreSQL database `cs_bench_admin` (when `TEST_POSTGRES_URL` is set;
//! the server in that URL must let the role create databases). Delete them to seed again.
// `criterion_group!` defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use console_sessions::admin::StateFilter;
use console_sessions::admin::{AdminQuery, SearchTerm, SessionAdmin, SortColumn};
use console_sessions::device::DeviceCategory;
use console_sessions::seed::{seed, SeedPlan};
use console_sessions::{Database, SessionConfig, SessionEngine};
use criterion::{criterion_group, criterion_main, Criterion};

const SESSIONS: u64 = 1_000_000;
const USERS: u64 = 10_000;

async fn seeded(url: &str) -> Database {
    let db = Database::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    let (count,): (i64,) = match &db {
        Database::Sqlite(pool) => sqlx::query_as("SELECT COUNT(*) FROM sessions")
            .fetch_one(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_as("SELECT COUNT(*) FROM sessions")
            .fetch_one(pool)
            .await
            .unwrap(),
    };
    if (count as u64) < SESSIONS {
        eprintln!("seeding {SESSIONS} sessions into {} (once)…", db.backend());
        let plan = SeedPlan {
            users: USERS,
            sessions: SESSIONS - count as u64,
        };
        seed(&db, plan, |done| {
            if done % 100_000 == 0 {
                eprintln!("  {done}");
            }
        })
        .await
        .unwrap();
        if let Database::Postgres(pool) = &db {
            sqlx::query("ANALYZE").execute(pool).await.unwrap();
        }
        if let Database::Sqlite(pool) = &db {
            sqlx::query("ANALYZE").execute(pool).await.unwrap();
        }
    }
    db
}

async fn postgres_url() -> Option<String> {
    let base = std::env::var("TEST_POSTGRES_URL").ok()?;
    let admin = Database::connect(&base).await.ok()?;
    if let Database::Postgres(pool) = &admin {
        let exists: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = 'cs_bench_admin'")
                .fetch_optional(pool)
                .await
                .ok()?;
        if exists.is_none() {
            sqlx::query("CREATE DATABASE cs_bench_admin")
                .execute(pool)
                .await
                .ok()?;
        }
    }
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/')?;
    Some(format!("{prefix}/cs_bench_admin"))
}

fn queries() -> Vec<(&'static str, AdminQuery)> {
    vec![
        (
            "default_page",
            AdminQuery {
                descending: true,
                ..AdminQuery::default()
            },
        ),
        (
            "country_filter_and_username_search",
            AdminQuery {
                country: Some("SE".into()),
                search: SearchTerm::parse("seed-"),
                descending: true,
                ..AdminQuery::default()
            },
        ),
        (
            "device_filter_and_cidr_search",
            AdminQuery {
                category: Some(DeviceCategory::Smartphone),
                search: SearchTerm::parse("10.20.0.0/16"),
                descending: true,
                ..AdminQuery::default()
            },
        ),
        (
            "expired_filter_and_ip_prefix_search",
            AdminQuery {
                state: StateFilter::Expired,
                search: SearchTerm::parse("81.2."),
                descending: true,
                ..AdminQuery::default()
            },
        ),
        (
            "expired_filter_and_broad_prefix_search",
            AdminQuery {
                state: StateFilter::Expired,
                search: SearchTerm::parse("10."),
                descending: true,
                ..AdminQuery::default()
            },
        ),
        (
            "country_filter_and_user_agent_search",
            AdminQuery {
                country: Some("DE".into()),
                search: SearchTerm::parse("ua:iphone"),
                descending: true,
                ..AdminQuery::default()
            },
        ),
        (
            "one_user_sorted_by_last_activity",
            AdminQuery {
                search: SearchTerm::parse("-4242"),
                sort: SortColumn::LastActive,
                descending: true,
                ..AdminQuery::default()
            },
        ),
    ]
}

fn admin(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    std::fs::create_dir_all("target/bench-data").unwrap();
    let mut targets = vec![(
        "sqlite",
        rt.block_on(seeded("sqlite://target/bench-data/admin-1m.db")),
    )];
    if let Some(url) = rt.block_on(postgres_url()) {
        targets.push(("postgres", rt.block_on(seeded(&url))));
    } else {
        eprintln!("TEST_POSTGRES_URL unset or unusable: PostgreSQL skipped in this bench run");
    }
    let mut group = c.benchmark_group("admin_changelist_1m");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for (name, db) in &targets {
        let engine = SessionEngine::new(db.clone(), SessionConfig::default());
        let admin = SessionAdmin::new(engine);
        for (query_name, query) in queries() {
            let page = rt.block_on(admin.search(&query)).unwrap();
            eprintln!(
                "{name}/{query_name}: {} rows on the page, {}{} matching",
                page.rows.len(),
                page.total,
                if page.total_exact { "" } else { "+" }
            );
            group.bench_function(format!("{name}/{query_name}"), |b| {
                b.to_async(&rt)
                    .iter(|| async { admin.search(&query).await.unwrap() })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, admin);
criterion_main!(benches);
