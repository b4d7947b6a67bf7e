//! Throwaway databases for tests and benchmarks: a fresh SQLite file, or a fresh PostgreSQL database
//! created on the server named by `TEST_POSTGRES_URL`. Both come migrated (see [`TestDatabase::new`]
//! and [`TestDatabase::sessions_only`]).
//!
//! PostgreSQL tests never skip silently: without `TEST_POSTGRES_URL`, or with a server that does not
//! answer, [`TestDatabase::new`] returns an error saying so (`make test` starts a server and sets it).

use std::path::PathBuf;

#[cfg(feature = "accounts")]
mod passkey;
#[cfg(feature = "accounts")]
pub use passkey::{SoftPasskey, SoftPasskeyError};

use rand::RngCore;

use crate::clock::now;
use crate::db::{Backend, Database, DbError};
use crate::sessions::{Assurance, AuthMethod, Expiry, PublicId, SessionRecord, SessionToken};

/// A stored-session record as a client at 192.0.2.1 with Firefox would leave it, valid for an hour,
/// with its token — for tests and benches that go to a store directly.
pub fn sample_record(user_id: Option<i64>) -> (SessionRecord, SessionToken) {
    let token = SessionToken::generate();
    let now = now();
    let record = SessionRecord {
        public_id: PublicId::generate(),
        token_hash: token.hash(),
        user_id,
        label: None,
        assurance: user_id.map(|_| Assurance::signed_in(AuthMethod::Password, now)),
        data: serde_json::Map::new(),
        ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".to_owned(),
        ),
        client_hints: None,
        place: Default::default(),
        first_ip: None,
        first_place: Default::default(),
        expiry: Expiry::Default,
        created_at: now,
        updated_at: now,
        last_activity_at: now,
        expires_at: now + time::Duration::hours(1),
    };
    (record, token)
}

/// A migrated database that exists only for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// The open pool.
    pub db: Database,
    /// Its URL (for starting a server process on it).
    pub url: String,
    folder: Option<PathBuf>,
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TestDatabase {
    /// A fresh database of this backend, with the whole schema (the sessions table alone without
    /// the `accounts` and `mail` features).
    pub async fn new(backend: Backend) -> Result<Self, DbError> {
        let test_db = Self::empty(backend).await?;
        #[cfg(any(feature = "accounts", feature = "mail"))]
        test_db.db.migrate().await?;
        #[cfg(not(any(feature = "accounts", feature = "mail")))]
        test_db.db.migrate_sessions().await?;
        Ok(test_db)
    }

    /// A fresh database of this backend with the session engine's table alone
    /// ([`Database::migrate_sessions`]).
    pub async fn sessions_only(backend: Backend) -> Result<Self, DbError> {
        let test_db = Self::empty(backend).await?;
        test_db.db.migrate_sessions().await?;
        Ok(test_db)
    }

    /// A fresh SQLite file, migrated as by [`TestDatabase::new`].
    pub async fn sqlite() -> Result<Self, DbError> {
        Self::new(Backend::Sqlite).await
    }

    /// A fresh PostgreSQL database, migrated as by [`TestDatabase::new`].
    pub async fn postgres() -> Result<Self, DbError> {
        Self::new(Backend::Postgres).await
    }

    async fn empty(backend: Backend) -> Result<Self, DbError> {
        match backend {
            Backend::Sqlite => Self::empty_sqlite().await,
            Backend::Postgres => Self::empty_postgres().await,
        }
    }

    /// A fresh SQLite file in its own temporary folder (removed on drop).
    async fn empty_sqlite() -> Result<Self, DbError> {
        let folder =
            std::env::temp_dir().join(format!("console-sessions-test-{}", random_suffix()));
        let url = format!("sqlite://{}/test.db", folder.display());
        let db = Database::connect(&url).await?;
        Ok(Self {
            db,
            url,
            folder: Some(folder),
        })
    }

    /// A fresh PostgreSQL database `cs_test_<random>` on the `TEST_POSTGRES_URL` server.
    async fn empty_postgres() -> Result<Self, DbError> {
        let admin_url = std::env::var("TEST_POSTGRES_URL").map_err(|_| {
            DbError::MalformedUrl(
                "TEST_POSTGRES_URL is not set: PostgreSQL tests need a server (run them with `make test`, \
                 which starts one)"
                    .to_owned(),
            )
        })?;
        let admin = Database::connect(&admin_url).await?;
        let name = format!("cs_test_{}", random_suffix());
        crate::db::with_pool!(&admin, |pool| sqlx::query(&format!(
            "CREATE DATABASE {name}"
        ))
        .execute(pool)
        .await
        .map(drop))?;
        admin.close().await;
        let mut url = url::Url::parse(&admin_url)
            .map_err(|e| DbError::MalformedUrl(format!("TEST_POSTGRES_URL: {e}")))?;
        url.set_path(&name);
        let url = url.to_string();
        let db = Database::connect(&url).await?;
        Ok(Self {
            db,
            url,
            folder: None,
        })
    }

    /// Inserts a user directly (password hash is a placeholder that matches no password) and returns
    /// its id.
    #[cfg(feature = "accounts")]
    pub async fn insert_user(&self, username: &str, is_staff: bool) -> Result<i64, DbError> {
        let now = crate::clock::to_millis(now());
        let sql = "INSERT INTO users (username, username_key, email, password_hash, is_staff, created_at) \
                   VALUES ($1, $2, $3, '!', $4, $5) RETURNING id";
        let key = username.to_lowercase();
        let email = format!("{key}@example.test");
        let (id,): (i64,) = crate::db::with_pool!(&self.db, |pool| sqlx::query_as(sql)
            .bind(username)
            .bind(&key)
            .bind(&email)
            .bind(is_staff)
            .bind(now)
            .fetch_one(pool)
            .await)?;
        Ok(id)
    }

    /// Counts the rows of `sessions`.
    pub async fn session_rows(&self) -> Result<i64, DbError> {
        let (count,): (i64,) = crate::db::with_pool!(&self.db, |pool| sqlx::query_as(
            "SELECT COUNT(*) FROM sessions"
        )
        .fetch_one(pool)
        .await)?;
        Ok(count)
    }

    /// Runs a statement (test set-up only: corrupting a row, ageing a session).
    pub async fn execute(&self, sql: &str) -> Result<u64, DbError> {
        let done = crate::db::with_pool!(&self.db, |pool| sqlx::query(sql)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done)
    }

    /// How the database would read the rows the `IP_RETENTION` sweep ages in `table`'s `ip`
    /// column, last seen by `seen`: its query plan, one line per step, for the whole addresses
    /// (`whole`) or the cut ones. With sequential scans discouraged on PostgreSQL, whose
    /// planner would scan a test's few rows rather than use any index.
    pub async fn address_sweep_plan(
        &self,
        table: &'static str,
        ip: &'static str,
        seen: &'static str,
        whole: bool,
    ) -> Result<Vec<String>, DbError> {
        let column = crate::sessions::retention::db::AddressColumn {
            table,
            ip,
            seen,
            key: None,
        };
        let select = crate::sessions::retention::db::select_sql(&column, whole);
        let plan = match &self.db {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(pool) => {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {select}"))
                        .bind(0_i64)
                        .bind(10_i64)
                        .fetch_all(pool)
                        .await?;
                rows.into_iter().map(|row| row.3).collect()
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SET LOCAL enable_seqscan = off")
                    .execute(&mut *tx)
                    .await?;
                let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {select}"))
                    .bind(0_i64)
                    .bind(10_i64)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.rollback().await?;
                plan
            }
        };
        Ok(plan)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(folder) = &self.folder {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}
