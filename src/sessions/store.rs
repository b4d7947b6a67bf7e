//! The storage interface every backend implements.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::history::SessionHistory;
use super::record::{PublicId, SessionRecord, TokenHash};
use super::retention::AddressAging;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A new session collided with an existing token hash or public id.
    #[error("a session with this key already exists")]
    Duplicate,
    /// A stored row could not be read back (for example corrupt `data` JSON).
    #[error("session {public_id} is unreadable: {reason}")]
    Corrupt {
        /// The public id of the row, safe to log.
        public_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database failed or could not be reached.
    #[cfg(sql)]
    #[error("session storage is unavailable: {0}")]
    Database(#[from] sqlx::Error),
    /// The store keeps sessions by token only, and this operation needs its sessions by user or
    /// by public id (see [`UserSessionStore`]).
    #[error("this session store cannot {0}: it does not keep sessions by user")]
    Unsupported(&'static str),
    /// A store of another kind failed (for stores outside this crate).
    #[error("session storage failed: {0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// A session that was deleted, as it was: its token hash for the cache to evict, whose it was
/// for those who hear it ended, and the rest for its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Deleted {
    /// The deleted session's last stored state.
    pub record: SessionRecord,
}

impl Deleted {
    /// What deleting this stored session deletes.
    pub fn of(record: &SessionRecord) -> Self {
        Self {
            record: record.clone(),
        }
    }

    /// The deleted session's public id.
    pub fn public_id(&self) -> &PublicId {
        &self.record.public_id
    }

    /// The deleted session's token hash.
    pub fn token_hash(&self) -> &TokenHash {
        &self.record.token_hash
    }

    /// The user it was signed in as, if any.
    pub fn user_id(&self) -> Option<i64> {
        self.record.user_id
    }
}

/// A session store: what the engine needs to keep sessions, and no more.
///
/// Stores know sessions only by [`TokenHash`] (and, for [`UserSessionStore`], by [`PublicId`] and
/// user); they never see a token. The library has [`DbStore`](super::DbStore) (SQLite or
/// PostgreSQL), [`MemoryStore`](super::MemoryStore) (one process, nothing kept across restarts)
/// and [`CachedDbStore`](super::CachedDbStore), a cache composed over any of them. Plug another in
/// with [`SessionEngine::with_store`](super::SessionEngine::with_store).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new session; [`StoreError::Duplicate`] if its token hash or public id exists.
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError>;

    /// Loads the session with this token hash, if it exists and has not expired at `now`.
    async fn load(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Writes an existing session whose current token hash is `current_hash` (the record may carry a
    /// new hash: that is how a token is cycled). Returns `false`, writing nothing, when that row no
    /// longer exists — a save never resurrects a session deleted meanwhile.
    async fn save(
        &self,
        record: &SessionRecord,
        current_hash: &TokenHash,
    ) -> Result<bool, StoreError>;

    /// Deletes the session with this token hash; deleting a missing session is fine (`false`).
    async fn delete(&self, token_hash: &TokenHash) -> Result<bool, StoreError>;

    /// Deletes up to `batch` sessions that expired before `now`.
    async fn delete_expired(
        &self,
        now: OffsetDateTime,
        batch: u32,
    ) -> Result<Vec<Deleted>, StoreError>;

    /// This store's per-user operations, when it keeps sessions by user. A store that implements
    /// [`UserSessionStore`] answers `Some(self)`; the default, `None`, leaves the engine's
    /// per-user operations (list, revoke) answering [`StoreError::Unsupported`].
    fn by_user(&self) -> Option<&dyn UserSessionStore> {
        None
    }

    /// Where this store keeps the history of ended sessions, if it keeps one. The default,
    /// `None`, leaves ended sessions without a trace and the engine's history empty.
    fn history(&self) -> Option<&dyn SessionHistory> {
        None
    }
}

/// `store`'s per-user operations, or [`StoreError::Unsupported`] saying `what` needed them.
pub(crate) fn by_user<'a, S: SessionStore + ?Sized>(
    store: &'a S,
    what: &'static str,
) -> Result<&'a dyn UserSessionStore, StoreError> {
    store.by_user().ok_or(StoreError::Unsupported(what))
}

/// What a store that keeps sessions by user and by public id can do besides: what a devices page
/// and an admin need (list a user's sessions, sign out one, the others or all).
#[async_trait]
pub trait UserSessionStore: Send + Sync {
    /// A user's sessions that are active at `now`, most recent activity first.
    async fn list_for_user(
        &self,
        user_id: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// Deletes every session of a user, except the one with public id `keep`.
    async fn delete_for_user(
        &self,
        user_id: i64,
        keep: Option<&PublicId>,
    ) -> Result<Vec<Deleted>, StoreError>;

    /// Deletes the sessions with these public ids, optionally only those of `user_id`.
    async fn delete_by_public_ids(
        &self,
        public_ids: &[PublicId],
        user_id: Option<i64>,
    ) -> Result<Vec<Deleted>, StoreError>;

    /// Names one of a user's sessions (`None` forgets the name); `false` when the user has no
    /// such session. A save never writes the name, so a request holding an older copy of the
    /// session cannot undo it.
    async fn rename(
        &self,
        user_id: i64,
        public_id: &PublicId,
        label: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// Cuts or forgets (`IP_RETENTION`) the client addresses seen before `before`: a session's
    /// last address by its last activity, its first by its creation; `batch` rows per statement.
    /// Answers how many addresses changed.
    async fn age_addresses(
        &self,
        aging: AddressAging,
        before: OffsetDateTime,
        batch: u32,
    ) -> Result<u64, StoreError>;
}
