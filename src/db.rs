//! Connecting to the database named by a URL — SQLite (the embedded default) or PostgreSQL (for several
//! nodes) — and applying that backend's migrations.
//!
//! Both backends share one schema: the same migration file names under `migrations/sqlite/` and
//! `migrations/postgres/`, and the same column types as far as sqlx sees them (`BIGINT` times in Unix
//! milliseconds, `TEXT`, `BLOB`/`BYTEA`, `BOOLEAN`), so one query text serves both wherever the SQL agrees.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Which database engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file: the single-node default.
    Sqlite,
    /// A PostgreSQL server: what several nodes share.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// What can go wrong while opening or migrating a database. Every message is one line a person can act
/// on, and never contains a password from the URL.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is not one this crate understands.
    #[error("DATABASE_URL is malformed: {0}")]
    MalformedUrl(String),
    /// The folder for a SQLite file could not be created.
    #[error("cannot create the folder {path} for the SQLite database: {source}")]
    CreateFolder {
        /// The folder that could not be created.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the {backend} database at {url}: {message}")]
    Connect {
        /// Which engine.
        backend: Backend,
        /// The URL, with any password replaced by `***`.
        url: String,
        /// The driver's reason, on one line.
        message: String,
    },
    /// Applying migrations failed.
    #[error("cannot apply the {backend} migrations: {message}")]
    Migrate {
        /// Which engine.
        backend: Backend,
        /// The migrator's reason, on one line.
        message: String,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// Settings for the connection pool.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections kept open at once.
    pub max_connections: u32,
    /// How long a statement waits for the database before it fails (a 503 in the app): for a
    /// connection from the pool (PostgreSQL down: the pool retries connecting until then), and, on
    /// SQLite, for a lock another process holds (the busy timeout).
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// An open connection pool to SQLite or PostgreSQL.
///
/// Cloning is cheap: the pools are reference counted.
#[derive(Debug, Clone)]
pub enum Database {
    /// An embedded SQLite file in WAL mode.
    Sqlite(SqlitePool),
    /// A PostgreSQL server.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body is compiled once per backend,
/// so one query text and one row type serve both wherever their SQL agrees.
#[macro_export]
#[doc(hidden)]
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Database::Sqlite($pool) => $body,
            $crate::db::Database::Postgres($pool) => $body,
        }
    };
}

impl Database {
    /// Opens the database named by `url` (`sqlite:`/`sqlite://` or `postgres://`/`postgresql://`).
    ///
    /// A SQLite file and its folder are created when missing; the file is put in WAL mode with a busy
    /// timeout, and foreign keys on.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        Self::connect_with(url, &PoolSettings::default()).await
    }

    /// Like [`Database::connect`], with explicit pool settings.
    pub async fn connect_with(url: &str, settings: &PoolSettings) -> Result<Self, DbError> {
        match backend_of(url)? {
            Backend::Sqlite => {
                let options = sqlite_options(url)?.busy_timeout(settings.acquire_timeout);
                if let Some(folder) = options.get_filename().parent() {
                    create_folder(folder)?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(settings.acquire_timeout)
                    // An embedded file cannot drop a connection; pinging it before every query
                    // would double the cost of the session hot path.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .map_err(|e| connect_error(Backend::Sqlite, url, &e))?;
                Ok(Database::Sqlite(pool))
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| DbError::MalformedUrl(one_line(&e.to_string())))?;
                let pool = PgPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(settings.acquire_timeout)
                    .connect_with(options)
                    .await
                    .map_err(|e| connect_error(Backend::Postgres, url, &e))?;
                Ok(Database::Postgres(pool))
            }
        }
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the migrations of this backend that are not applied yet.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let result = match self {
            Database::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Database::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        result.map_err(|e| DbError::Migrate {
            backend: self.backend(),
            message: one_line(&e.to_string()),
        })
    }

    /// Runs a trivial query: `Ok` when the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Whether the database can serve requests now. PostgreSQL must answer a query; SQLite must also
    /// grant its write lock, since a file locked by another process still answers reads while every
    /// write waits out the busy timeout and fails.
    pub async fn check(&self) -> Result<(), DbError> {
        match self {
            Database::Sqlite(pool) => {
                // Dropped unfinished, the transaction is rolled back: nothing is written.
                let transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
                transaction.rollback().await?;
                Ok(())
            }
            Database::Postgres(_) => self.ping().await,
        }
    }

    /// Closes every connection of the pool, waiting for those in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    /// Connections currently open, and how many of them are idle.
    pub fn pool_usage(&self) -> (u32, usize) {
        with_pool!(self, |pool| (pool.size(), pool.num_idle()))
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        with_pool!(self, |pool| pool.options().get_max_connections())
    }
}

/// Tells which backend a URL names, or why it names none.
pub fn backend_of(url: &str) -> Result<Backend, DbError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        _ if !url.contains(':') => Err(DbError::MalformedUrl(format!(
            "{:?} has no scheme; use sqlite://path/to/file.db or postgres://user@host/database",
            redact(url)
        ))),
        other => Err(DbError::MalformedUrl(format!(
            "unsupported scheme {other:?}; use sqlite://path/to/file.db or postgres://user@host/database"
        ))),
    }
}

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, DbError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| DbError::MalformedUrl(one_line(&e.to_string())))?;
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL loses nothing a process crash can reach: a commit is in the WAL before
        // it is acknowledged, and only a power cut can drop the last transactions.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true))
}

fn create_folder(folder: &Path) -> Result<(), DbError> {
    if folder.as_os_str().is_empty() || folder.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(folder).map_err(|source| DbError::CreateFolder {
        path: folder.to_path_buf(),
        source,
    })
}

fn connect_error(backend: Backend, url: &str, error: &sqlx::Error) -> DbError {
    DbError::Connect {
        backend,
        url: redact(url),
        message: one_line(&error.to_string()),
    }
}

/// The URL with any password replaced by `***`, fit for logs and error messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // A URL with a password always has a host, so setting one cannot fail here.
            if parsed.set_password(Some("***")).is_ok() {
                parsed.to_string()
            } else {
                "<url with a password>".to_owned()
            }
        }
        _ => url.to_owned(),
    }
}

/// Whether a query failed on a UNIQUE constraint (same meaning on both backends).
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example/sessions"),
            "postgres://app:***@db.example/sessions"
        );
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn urls_without_a_known_scheme_are_refused() {
        assert!(matches!(
            backend_of("mysql://x"),
            Err(DbError::MalformedUrl(_))
        ));
        assert!(matches!(
            backend_of("data.db"),
            Err(DbError::MalformedUrl(_))
        ));
        assert_eq!(backend_of("sqlite::memory:").ok(), Some(Backend::Sqlite));
        assert_eq!(
            backend_of("postgresql://localhost/x").ok(),
            Some(Backend::Postgres)
        );
    }
}
