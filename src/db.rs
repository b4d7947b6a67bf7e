//! Connecting to the database named by a URL — SQLite (the embedded default) or PostgreSQL (for several
//! nodes) — and applying that backend's migrations.
//!
//! Both backends share one schema: the same migration file names under `migrations/sqlite/` and
//! `migrations/postgres/`, and the same column types as far as sqlx sees them (`BIGINT` times in Unix
//! milliseconds, `TEXT`, `BLOB`/`BYTEA`, `BOOLEAN`), so one query text serves both wherever the SQL agrees.

#[cfg(feature = "sqlite")]
use std::num::NonZeroUsize;
#[cfg(feature = "sqlite")]
use std::path::Path;
use std::path::PathBuf;
use std::str::FromStr;
#[cfg(feature = "sqlite")]
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::query::QueryAs;
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
#[cfg(feature = "sqlite")]
use sqlx::{Connection, FromRow, Sqlite};

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
    /// The URL names a database this build of the library leaves out.
    #[error("this build has no {0} support: enable the console-sessions cargo feature `{0}`")]
    NotBuilt(Backend),
}

/// Settings for the connection pool.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections kept open at once by the pool. With SQLite, a session store also keeps up
    /// to four read connections of its own beside it (see [`crate::sessions::DbStore`]).
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
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    /// A PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body is compiled once per backend,
/// so one query text and one row type serve both wherever their SQL agrees.
///
/// Not exported: its `cfg` attributes must be read with this crate's features, not a caller's.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            #[cfg(feature = "sqlite")]
            $crate::db::Database::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::Database::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

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
            #[cfg(feature = "sqlite")]
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
            #[cfg(feature = "postgres")]
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
            #[allow(unreachable_patterns)]
            other => Err(DbError::NotBuilt(other)),
        }
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            #[cfg(feature = "sqlite")]
            Database::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the whole schema of this backend — sessions, users, sign-in throttling, the
    /// admin's audit log, the mail outbox — where it is not applied yet: what the `accounts`,
    /// `admin` and `mail` features and the app need. (`migrations/sqlite/`, `migrations/postgres/`,
    /// then the engine's own set, [`Database::migrate_sessions`]: its first step finds the sessions
    /// table made, and the later ones change it for both kinds of database.)
    #[cfg(any(feature = "accounts", feature = "mail"))]
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.apply(match self.backend() {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        })
        .await?;
        self.migrate_sessions().await
    }

    /// Applies only the session engine's table (`migrations/sessions/`): for a service that takes
    /// the engine and keeps its users elsewhere. `user_id` is then a plain column.
    ///
    /// Harmless on a database with the whole schema ([`Database::migrate`]). The other way round
    /// does not work: a database begun with this alone cannot take the whole schema later (its
    /// first step creates the sessions table); start that on a new database.
    pub async fn migrate_sessions(&self) -> Result<(), DbError> {
        self.apply(match self.backend() {
            Backend::Sqlite => sqlx::migrate!("./migrations/sessions/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/sessions/postgres"),
        })
        .await
    }

    /// Runs `migrator`'s migrations that are not applied yet. The whole schema's set and the
    /// sessions-only one share sqlx's bookkeeping table, so each leaves the other's versions alone.
    async fn apply(&self, mut migrator: sqlx::migrate::Migrator) -> Result<(), DbError> {
        migrator.set_ignore_missing(true);
        with_pool!(self, |pool| migrator.run(pool).await).map_err(|e| DbError::Migrate {
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
            #[cfg(feature = "sqlite")]
            Database::Sqlite(pool) => {
                // Dropped unfinished, the transaction is rolled back: nothing is written.
                let transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
                transaction.rollback().await?;
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(_) => self.ping().await,
        }
    }

    /// Closes every connection of the pool, waiting for those in use to be returned. The SQLite read
    /// connections of the session stores over this database close with it, just after.
    pub async fn close(&self) {
        with_pool!(self, |pool| close_pool(pool).await)
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

/// The longest [`Database::close`] keeps closing connections that come back to the pool after it
/// was closed.
const CLOSE_STRAGGLERS_WAIT: Duration = Duration::from_secs(5);

/// Closes `pool` and every connection of it, stragglers included.
///
/// sqlx's `Pool::close` can return with a connection still open: a connection's return to the pool
/// is a spawned task, which can put it in the idle queue after `close` emptied that queue for the
/// last time, and nothing would ever close it (sqlx issue 3217). Closing again closes whatever came
/// back since, so this repeats until the pool is empty.
async fn close_pool<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) {
    pool.close().await;
    let deadline = Instant::now() + CLOSE_STRAGGLERS_WAIT;
    while pool.size() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        pool.close().await;
    }
}

/// A few SQLite connections kept beside the pool, for the one read on every request's path: loading a
/// session by its token.
///
/// A statement through a [`SqlitePool`] pays for the pool twice over: the acquire, and on release a
/// spawned task that pings the connection's worker thread before the connection goes back to the idle
/// queue — a second cross-thread round trip, costing about as much as the query itself. A reader held
/// here skips both; it is still a real connection in WAL mode, so every statement is its own read
/// transaction and sees whatever was committed before it, by this process or another.
///
/// Readers are taken with `try_lock`, never waited for: when all are busy the statement goes through
/// the pool, so concurrent loads never queue behind one another. They open on first use, and close when
/// the pool is closed ([`Database::close`]) or when the last handle is dropped.
#[cfg(feature = "sqlite")]
pub(crate) struct SqliteReaders {
    pool: SqlitePool,
    slots: Box<[tokio::sync::Mutex<Option<SqliteConnection>>]>,
    /// After a reader failed to open, none is tried again before then: every attempt starts a thread
    /// and opens the file, which requests should not pay for over and over while it keeps failing.
    open_paused_until: std::sync::Mutex<Option<Instant>>,
    watch_close: Once,
    /// Tells the task waiting for the pool to close that there is nothing left to close.
    dropped: Arc<tokio::sync::Notify>,
}

#[cfg(feature = "sqlite")]
impl Drop for SqliteReaders {
    fn drop(&mut self) {
        self.dropped.notify_one();
    }
}

/// How long reads go through the pool alone after a reader failed to open.
#[cfg(feature = "sqlite")]
const READER_OPEN_PAUSE: Duration = Duration::from_secs(5);

#[cfg(feature = "sqlite")]
impl std::fmt::Debug for SqliteReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReaders")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "sqlite")]
impl SqliteReaders {
    /// Readers beside `pool`: one per core, at most four; none is opened yet.
    pub(crate) fn new(pool: SqlitePool) -> Arc<Self> {
        let count = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Arc::new(Self {
            pool,
            slots: (0..count.min(4))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            open_paused_until: std::sync::Mutex::new(None),
            watch_close: Once::new(),
            dropped: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Runs a single-row read on a free reader, or through the pool when none is free (or the pool is
    /// closed, which then gives the pool's error).
    pub(crate) async fn fetch_optional<'q, O>(
        self: &Arc<Self>,
        query: QueryAs<'q, Sqlite, O, SqliteArguments<'q>>,
    ) -> Result<Option<O>, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, SqliteRow>,
    {
        for slot in self.slots.iter() {
            let Ok(mut reader) = slot.try_lock() else {
                continue;
            };
            // Checked under the slot's lock, which the closing task also takes, so no reader is
            // opened after the pool has closed.
            if self.pool.is_closed() {
                break;
            }
            if reader.is_none() {
                *reader = self.open().await;
            }
            let Some(connection) = reader.as_mut() else {
                break;
            };
            // If this future is dropped mid-statement, the worker thread still finishes and resets
            // the statement before taking the next command, so the reader stays usable.
            let result = query.fetch_optional(connection).await;
            if result.is_err() {
                // Not trusted again: a later read opens a fresh one.
                *reader = None;
            }
            return result;
        }
        query.fetch_optional(&self.pool).await
    }

    async fn open(self: &Arc<Self>) -> Option<SqliteConnection> {
        if self.open_paused() {
            return None;
        }
        // Readers only ever run SELECTs; query_only makes a write sent to one by mistake fail loudly.
        let options = (*self.pool.connect_options())
            .clone()
            .pragma("query_only", "ON");
        match SqliteConnection::connect_with(&options).await {
            Ok(connection) => {
                self.watch_close.call_once(|| self.close_with_pool());
                Some(connection)
            }
            Err(error) => {
                // The pool takes the read, and reports the same trouble if it is real.
                tracing::warn!(%error, "cannot open a SQLite reader; reading through the pool");
                if let Ok(mut until) = self.open_paused_until.lock() {
                    *until = Some(Instant::now() + READER_OPEN_PAUSE);
                }
                None
            }
        }
    }

    fn open_paused(&self) -> bool {
        self.open_paused_until
            .lock()
            .map(|until| until.is_some_and(|until| Instant::now() < until))
            .unwrap_or(false)
    }

    /// Closes the readers once the pool is closed. The task holds the readers weakly, so dropping
    /// every handle still drops them (and closes their connections) with an open pool, and ends
    /// the task.
    fn close_with_pool(self: &Arc<Self>) {
        let closed = self.pool.close_event();
        let dropped = Arc::clone(&self.dropped);
        let readers = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::select! {
                () = closed => {}
                () = dropped.notified() => return,
            }
            let Some(readers) = readers.upgrade() else {
                return;
            };
            for slot in readers.slots.iter() {
                if let Some(connection) = slot.lock().await.take() {
                    // Nothing to do about a connection that fails to close while shutting down.
                    let _ = connection.close().await;
                }
            }
        });
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

#[cfg(feature = "sqlite")]
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

#[cfg(feature = "sqlite")]
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

/// The URL with every password replaced by `***`, fit for logs and error messages: the one in the
/// user information (`postgres://u:secret@h/db`, `smtp://u:secret@h`) and any query parameter
/// whose name holds "password" (`?password=secret`, `?sslpassword=secret`, which PostgreSQL URLs
/// accept too). A URL that cannot be read is shown whole only when it cannot hold a password (no
/// `@` and no "password" in it). `DATABASE_URL` and `MAIL_URL` are both shown through it.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        let lower = url.to_ascii_lowercase();
        return if url.contains('@') || lower.contains("password") {
            "<unreadable URL>".to_owned()
        } else {
            url.to_owned()
        };
    };
    let secret = |name: &str| name.to_ascii_lowercase().contains("password");
    let in_query = parsed.query_pairs().any(|(name, _)| secret(&name));
    if parsed.password().is_none() && !in_query {
        return url.to_owned();
    }
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        // A URL with a password always has a host, so this cannot happen; if it did, show nothing.
        return "<URL with a password>".to_owned();
    }
    if in_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) { "***".into() } else { value };
                (name.into_owned(), value.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Whether a query failed on a UNIQUE constraint (same meaning on both backends).
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a `LIKE … ESCAPE '\'` pattern.
#[cfg(feature = "accounts")]
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
    fn passwords_in_the_query_are_redacted_too() {
        assert_eq!(
            redact("postgres://app@db.example/sessions?password=s3cret&sslmode=require"),
            "postgres://app@db.example/sessions?password=***&sslmode=require"
        );
        assert_eq!(
            redact("postgres://app:one@db.example/s?sslpassword=two&PASSWORD=three"),
            "postgres://app:***@db.example/s?sslpassword=***&PASSWORD=***"
        );
        assert_eq!(
            redact("postgres://db.example/s?sslmode=require&application_name=console"),
            "postgres://db.example/s?sslmode=require&application_name=console"
        );
        assert_eq!(
            redact("sqlite://data/x.db?mode=rwc"),
            "sqlite://data/x.db?mode=rwc"
        );
        // Unreadable, and possibly holding a password: not shown.
        for unreadable in ["postgres://u:s3cret@[db/x", "host=db password=s3cret"] {
            let shown = redact(unreadable);
            assert!(!shown.contains("s3cret"), "{unreadable} -> {shown}");
        }
        assert_eq!(redact("data.db"), "data.db");
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
