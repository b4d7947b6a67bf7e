//! Several nodes on one PostgreSQL database: every node's `cached_db` cache hears, through
//! `LISTEN`, which sessions the others ended, and drops them at once.
//!
//! The database publishes them itself: triggers on `sessions` (migration
//! `0006_session_evictions.sql`) send `pg_notify` on [`EVICTION_CHANNEL`] for every statement that
//! deletes sessions or replaces a token, so every path — a revoke, a sign-out, a token cycle, a bulk
//! or per-user delete, a deleted user, the expiry sweep, `clearsessions` run from another process,
//! even a statement typed in psql — is covered, and a notification is delivered only if its
//! transaction commits.
//!
//! An [`EvictionListener`] holds one connection of its own (not one of the pool's) listening on that
//! channel. Caching is paused until it is listening; when the connection drops, the node forgets its
//! whole cache and keeps caching paused (every load reads the database) until it is listening again,
//! since it may have missed evictions meanwhile.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tracing::Instrument;

use super::cached_db::CachedDbStore;
use super::db_store::DbStore;
use super::record::TokenHash;
use super::{Directory, UserDirectory};

/// The PostgreSQL channel the database publishes ended sessions on. Payload: token hashes in
/// lowercase hex, comma separated (at most 100 per notification), or `*` for "forget everything",
/// or `users:` and user ids, comma separated, for users changed or deleted (migration
/// `0008_user_evictions.sql`), whose identity a node may remember.
/// Listeners also send `ping:<random>` to themselves there as a heartbeat; others ignore it.
pub const EVICTION_CHANNEL: &str = "console_sessions_evict";

/// The first wait before connecting again after the listening connection failed; it doubles on each
/// failure up to [`RECONNECT_MAX`].
const RECONNECT_MIN: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to connect again.
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How often a listener sends itself a ping through the channel (from the pool, not its own
/// connection). A connection that dies silently (a half-open TCP connection, a failover that keeps
/// the address) never reports an error; one that has not heard its own ping for
/// [`HEARTBEAT_LOST_AFTER`] is treated as lost.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// See [`HEARTBEAT`].
const HEARTBEAT_LOST_AFTER: Duration = Duration::from_secs(30);

/// What a notification asks of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// Drop these sessions.
    Sessions(Vec<TokenHash>),
    /// Drop every session (the table was truncated).
    All,
    /// Forget what is remembered of these users (their activity, staff flag or names changed, or
    /// they were deleted).
    Users(Vec<i64>),
}

impl Eviction {
    /// Reads a notification payload. Entries that are not 64 hex digits are skipped (nothing the
    /// cache could hold has such a hash).
    pub fn parse(payload: &str) -> Self {
        if payload.trim() == "*" {
            return Self::All;
        }
        if let Some(ids) = payload.strip_prefix("users:") {
            return Self::Users(
                ids.split(',')
                    .filter_map(|id| id.trim().parse().ok())
                    .collect(),
            );
        }
        Self::Sessions(payload.split(',').filter_map(parse_hash).collect())
    }
}

fn parse_hash(hex: &str) -> Option<TokenHash> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(TokenHash(bytes))
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The task that keeps one node's cache in step with the others. Stops when dropped or
/// [`EvictionListener::stop`]ped.
#[derive(Debug)]
pub struct EvictionListener {
    task: tokio::task::JoinHandle<()>,
}

impl EvictionListener {
    /// Starts listening for `cache`, on a connection of its own to the database of `pool`.
    ///
    /// Caching is paused at once and resumes as soon as the listener is listening; it is paused
    /// again (the cache emptied) whenever the connection is lost, until it is back.
    ///
    /// The account system registered in `users` (now or later) hears of users changed on other
    /// nodes, and is told to forget everything whenever evictions may have been missed.
    pub(crate) fn spawn(cache: CachedDbStore<DbStore>, pool: &PgPool, users: Directory) -> Self {
        // One connection beside the pool: the listener never takes one requests need, and connects
        // again with the pool's own options (host, credentials, TLS).
        let own = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(RECONNECT_MAX)
            .connect_lazy_with((*pool.connect_options()).clone());
        pause(&cache, &users);
        // Its log lines (and sqlx's, for its statements) belong to no request: they carry this span.
        let task = tokio::spawn(
            listen(cache, users, own, pool.clone())
                .instrument(tracing::info_span!("session_evictions")),
        );
        Self { task }
    }

    /// Stops listening (and leaves caching as it is: paused if the connection was down).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Whether the task has ended (it only does when stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for EvictionListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Stops serving anything from memory that an eviction may have been missed for.
fn pause(cache: &CachedDbStore<DbStore>, users: &Directory) {
    cache.pause_caching();
    if let Some(users) = users.get() {
        users.forget(None);
    }
}

async fn listen(cache: CachedDbStore<DbStore>, users: Directory, pool: PgPool, shared: PgPool) {
    let ping = format!("ping:{:016x}", rand::random::<u64>());
    let mut wait = RECONNECT_MIN;
    let mut first = true;
    loop {
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(
                    %error,
                    retry_in_ms = wait.as_millis() as u64,
                    "session cache: cannot listen for evictions; caching stays paused"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONNECT_MAX);
                continue;
            }
        };
        wait = RECONNECT_MIN;
        cache.resume_caching();
        if first {
            tracing::info!(
                channel = EVICTION_CHANNEL,
                "session cache: listening for evictions from other nodes; caching on"
            );
        } else {
            tracing::warn!(
                channel = EVICTION_CHANNEL,
                "session cache: listening for evictions again; caching resumed"
            );
        }
        first = false;
        let mut heard = tokio::time::Instant::now();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) if notification.payload() == ping => {
                        heard = tokio::time::Instant::now();
                    }
                    Ok(Some(notification)) => {
                        apply(&cache, users.get().map(|users| &**users), notification.payload());
                    }
                    Ok(None) => break "the connection was lost".to_owned(),
                    Err(error) => break error.to_string(),
                },
                _ = heartbeat.tick() => {
                    if heard.elapsed() > HEARTBEAT_LOST_AFTER {
                        // The listener is dropped below, so abandoning its receive is harmless.
                        break format!(
                            "no heartbeat heard for {} s",
                            HEARTBEAT_LOST_AFTER.as_secs()
                        );
                    }
                    let sent = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(EVICTION_CHANNEL)
                        .bind(&ping)
                        .execute(&shared)
                        .await;
                    if let Err(error) = sent {
                        tracing::debug!(%error, "session cache: cannot send the listener's heartbeat");
                    }
                },
            }
        };
        // Evictions may be missed from now on: serve nothing from memory until listening again.
        pause(&cache, &users);
        tracing::error!(
            %reason,
            "session cache: stopped hearing evictions from other nodes; cache cleared and caching \
             paused (every request reads the database) until the listener reconnects"
        );
        drop(listener);
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is ours to handle (pause, reconnect, resume), not the listener's.
    listener.eager_reconnect(false);
    listener.listen(EVICTION_CHANNEL).await?;
    Ok(listener)
}

fn apply(cache: &CachedDbStore<DbStore>, users: Option<&dyn UserDirectory>, payload: &str) {
    match Eviction::parse(payload) {
        Eviction::Users(ids) => {
            tracing::debug!(
                users = ids.len(),
                "users changed elsewhere; forgetting them"
            );
            if let Some(users) = users {
                users.forget(Some(&ids));
            }
        }
        Eviction::All => {
            tracing::info!("session cache: every session ended elsewhere; cache cleared");
            cache.evict_all();
        }
        // A heartbeat of another node, or nothing this node could hold.
        Eviction::Sessions(hashes) if hashes.is_empty() => {}
        Eviction::Sessions(hashes) => {
            if tracing::enabled!(tracing::Level::DEBUG) {
                for hash in &hashes {
                    tracing::debug!(token_hash = ?hash, "session cache: evicting a session ended elsewhere");
                }
            }
            cache.evict_published(&hashes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_sessions_by_hex_hash_and_star_means_all() {
        let a = "ab".repeat(32);
        let b = "0F".repeat(32);
        assert_eq!(
            Eviction::parse(&format!("{a},{b}")),
            Eviction::Sessions(vec![TokenHash([0xab; 32]), TokenHash([0x0f; 32])])
        );
        assert_eq!(Eviction::parse("*"), Eviction::All);
        assert_eq!(
            Eviction::parse("00,zz,"),
            Eviction::Sessions(Vec::new()),
            "malformed entries are skipped"
        );
        assert_eq!(
            Eviction::parse("users:7,12,x"),
            Eviction::Users(vec![7, 12])
        );
        assert_eq!(
            Eviction::parse("ping:00112233aabbccdd"),
            Eviction::Sessions(Vec::new()),
            "another node's heartbeat evicts nothing"
        );
    }
}
