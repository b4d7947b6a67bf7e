//! [`CachedDbStore`]: an in-process moka cache in front of any store — Django's `cached_db` when
//! the store is a [`DbStore`](super::DbStore).
//!
//! Reads try the cache first and fill it on a miss; writes go to the store first, then the cache; every
//! delete evicts what it deleted. The cache holds nothing the store does not, so losing it loses nothing.
//!
//! Several nodes on one PostgreSQL database each have a cache of their own; each learns of the
//! sessions the others end from an [`EvictionListener`](super::EvictionListener), which calls
//! [`CachedDbStore::evict_published`] and, while it is not connected, pauses caching
//! ([`CachedDbStore::pause_caching`]): a node that may miss an eviction serves nothing from memory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;
use time::OffsetDateTime;

use super::history::SessionHistory;
use super::record::{PublicId, SessionRecord, TokenHash};
use super::retention::AddressAging;
use super::store::{by_user, Deleted, SessionStore, StoreError, UserSessionStore};

/// Cache sizing.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Most sessions kept in memory.
    pub max_capacity: u64,
    /// The longest an entry is served from memory before it is read again from the store: the last
    /// guard against a change the cache missed.
    pub max_age: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_capacity: 100_000,
            max_age: Duration::from_secs(60),
        }
    }
}

/// Hashes the cache's keys. They are SHA-256 digests of 256-bit random tokens, uniform already,
/// and only the application inserts them (a lookup with a key of an attacker's choosing probes
/// the table but adds nothing to it), so SipHash's resistance to chosen keys buys nothing; a
/// seeded fast hash spares every lookup most of the cost of hashing.
type KeyHasher = foldhash::fast::RandomState;

/// A cache in front of the store `S`.
#[derive(Clone)]
pub struct CachedDbStore<S> {
    inner: S,
    cache: Cache<TokenHash, Arc<SessionRecord>, KeyHasher>,
    hits: Arc<AtomicU64>,
    misses: Arc<AtomicU64>,
    /// Whether entries are served and stored (off while a cluster node cannot hear evictions).
    caching: Arc<AtomicBool>,
    /// Bumped by every eviction (a delete made here, one published by another node, a re-keyed
    /// session) and by every pause. A load that read the store keeps its row only if no eviction
    /// happened meanwhile: the row may predate a delete that committed between the read and the
    /// insert, and evicting before that delete cannot help (the load puts the row back after).
    generation: Arc<AtomicU64>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for CachedDbStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedDbStore")
            .field("inner", &self.inner)
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl<S: SessionStore> CachedDbStore<S> {
    /// A cache with these settings in front of `inner`.
    pub fn new(inner: S, settings: &CacheSettings) -> Self {
        Self {
            inner,
            cache: Cache::builder()
                .max_capacity(settings.max_capacity)
                .time_to_live(settings.max_age)
                .build_with_hasher(KeyHasher::default()),
            hits: Arc::new(AtomicU64::new(0)),
            misses: Arc::new(AtomicU64::new(0)),
            caching: Arc::new(AtomicBool::new(true)),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Cache hits and misses of `load` so far.
    pub fn hit_miss(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Whether a session is in the cache now (for tests and diagnostics).
    pub fn is_cached(&self, token_hash: &TokenHash) -> bool {
        self.cache.contains_key(token_hash)
    }

    /// Drops one entry.
    pub fn evict(&self, token_hash: &TokenHash) {
        self.cache.invalidate(token_hash);
    }

    /// Drops every entry.
    pub fn evict_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }

    /// Drops sessions another node ended or re-keyed (published by the database). A load reading
    /// the store at the same moment does not put the old row back.
    pub fn evict_published(&self, token_hashes: &[TokenHash]) {
        self.evict_ended(token_hashes);
    }

    /// Drops sessions that ended or were re-keyed, here or on another node, and moves the
    /// generation first, so that a load which read one of them before the change does not put it
    /// back (see `generation`). Every eviction of an ended session goes through here.
    fn evict_ended<'a>(&self, token_hashes: impl IntoIterator<Item = &'a TokenHash>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for token_hash in token_hashes {
            self.cache.invalidate(token_hash);
        }
    }

    /// Stops caching: drops every entry, and until [`CachedDbStore::resume_caching`] every load
    /// reads the store and nothing is kept. For a node that can no longer hear the others'
    /// evictions.
    pub fn pause_caching(&self) {
        self.caching.store(false, Ordering::SeqCst);
        self.evict_all();
    }

    /// Serves and keeps entries again (after [`CachedDbStore::pause_caching`]), starting empty.
    pub fn resume_caching(&self) {
        // Anything a write racing with the pause managed to put in is dropped too.
        self.evict_all();
        self.caching.store(true, Ordering::SeqCst);
    }

    /// Whether entries are served and kept now (`false` while paused).
    pub fn is_caching(&self) -> bool {
        self.caching.load(Ordering::SeqCst)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps `record`, read or written when the generation was `generation`, unless caching is
    /// paused or an eviction (or pause) has happened since: the record may be what it removed.
    fn keep(&self, record: &SessionRecord, generation: u64) {
        if !self.is_caching() || self.generation() != generation {
            return;
        }
        self.cache
            .insert(record.token_hash, Arc::new(record.clone()));
        // An eviction that began after the check above either has dropped this entry already or
        // will (it bumps the generation before it evicts); one that began before it is caught here.
        if self.generation() != generation || !self.is_caching() {
            self.cache.invalidate(&record.token_hash);
        }
    }

    /// The cached row of a session live at `now_unix_nanos` (the moment as Unix nanoseconds),
    /// shared rather than copied; `None` when it is not in memory (or caching is paused, or it has
    /// expired). Never reads the store: for a caller with a full path of its own to fall back on.
    pub fn peek(&self, token_hash: &TokenHash, now_unix_nanos: i128) -> Option<Arc<SessionRecord>> {
        if !self.is_caching() {
            return None;
        }
        let record = self.cache.get(token_hash)?;
        if !record.is_active_at_unix_nanos(now_unix_nanos) {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        crate::metrics::cache_hit();
        Some(record)
    }

    /// After a delete made through this cache: drops what it deleted, and stops any load that
    /// read those rows before the delete committed from keeping them. Also called when the
    /// delete failed (it may still have committed): the generation moves either way.
    fn evict_deleted(&self, deleted: &[Deleted]) {
        self.evict_ended(deleted.iter().map(Deleted::token_hash));
    }

    /// [`CachedDbStore::evict_deleted`] for the outcome of a bulk delete.
    fn after_delete(
        &self,
        result: Result<Vec<Deleted>, StoreError>,
    ) -> Result<Vec<Deleted>, StoreError> {
        match &result {
            Ok(deleted) => self.evict_deleted(deleted),
            Err(_) => self.evict_deleted(&[]),
        }
        result
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for CachedDbStore<S> {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let generation = self.generation();
        self.inner.create(record).await?;
        self.keep(record, generation);
        Ok(())
    }

    async fn load(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        if !self.is_caching() {
            self.misses.fetch_add(1, Ordering::Relaxed);
            crate::metrics::cache_miss();
            return self.inner.load(token_hash, now).await;
        }
        if let Some(record) = self.cache.get(token_hash) {
            if record.is_active_at(now) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::cache_hit();
                return Ok(Some((*record).clone()));
            }
            self.cache.invalidate(token_hash);
            return Ok(None);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        crate::metrics::cache_miss();
        let generation = self.generation();
        let record = self.inner.load(token_hash, now).await?;
        if let Some(record) = &record {
            self.keep(record, generation);
        }
        Ok(record)
    }

    async fn save(
        &self,
        record: &SessionRecord,
        current_hash: &TokenHash,
    ) -> Result<bool, StoreError> {
        // Evict first: whatever happens below, the cache must not keep serving the old state.
        self.cache.invalidate(current_hash);
        let generation = self.generation();
        let saved = self.inner.save(record, current_hash).await;
        if record.token_hash != *current_hash {
            // A new token (sign-in): the old one is dead, and a load that read the row under it
            // before the save must not put it back. The new row is then read on its next use.
            self.evict_ended([current_hash]);
        }
        if saved? {
            self.keep(record, generation);
            return Ok(true);
        }
        Ok(false)
    }

    async fn delete(&self, token_hash: &TokenHash) -> Result<bool, StoreError> {
        // Stop serving it at once, and again once the row is gone (see `evict_ended`).
        self.cache.invalidate(token_hash);
        let deleted = self.inner.delete(token_hash).await;
        self.evict_ended([token_hash]);
        deleted
    }

    async fn delete_expired(
        &self,
        now: OffsetDateTime,
        batch: u32,
    ) -> Result<Vec<Deleted>, StoreError> {
        self.after_delete(self.inner.delete_expired(now, batch).await)
    }

    fn by_user(&self) -> Option<&dyn UserSessionStore> {
        // Per user only when the store underneath is: the cache adds eviction, not an index.
        self.inner.by_user().map(|_| self as &dyn UserSessionStore)
    }

    fn history(&self) -> Option<&dyn SessionHistory> {
        // Ended sessions are never cached: the history is the store's underneath.
        self.inner.history()
    }
}

/// The per-user operations of the store underneath, each delete evicting what it deleted.
#[async_trait]
impl<S: SessionStore> UserSessionStore for CachedDbStore<S> {
    async fn list_for_user(
        &self,
        user_id: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        by_user(&self.inner, "list a user's sessions")?
            .list_for_user(user_id, now)
            .await
    }

    async fn delete_for_user(
        &self,
        user_id: i64,
        keep: Option<&PublicId>,
    ) -> Result<Vec<Deleted>, StoreError> {
        let inner = by_user(&self.inner, "end a user's sessions")?;
        self.after_delete(inner.delete_for_user(user_id, keep).await)
    }

    async fn delete_by_public_ids(
        &self,
        public_ids: &[PublicId],
        user_id: Option<i64>,
    ) -> Result<Vec<Deleted>, StoreError> {
        let inner = by_user(&self.inner, "end sessions by public id")?;
        self.after_delete(inner.delete_by_public_ids(public_ids, user_id).await)
    }

    async fn rename(
        &self,
        user_id: i64,
        public_id: &PublicId,
        label: Option<&str>,
    ) -> Result<bool, StoreError> {
        // A cached copy may keep the old name: harmless, since lists are read from the store
        // underneath and a save never writes the name.
        by_user(&self.inner, "rename a session")?
            .rename(user_id, public_id, label)
            .await
    }

    async fn age_addresses(
        &self,
        aging: AddressAging,
        before: OffsetDateTime,
        batch: u32,
    ) -> Result<u64, StoreError> {
        // Cached copies are left: a session idle that long was dropped from the cache long ago
        // (`CacheSettings::max_age`), and one used since is seen afresh.
        by_user(&self.inner, "cut old addresses")?
            .age_addresses(aging, before, batch)
            .await
    }
}
