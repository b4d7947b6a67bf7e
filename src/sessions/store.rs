//! The storage interface every backend implements.

use async_trait::async_trait;
use ipnet::IpNet;
use time::OffsetDateTime;

use super::record::{PublicId, SessionRecord, TokenHash};

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
    #[error("session storage is unavailable: {0}")]
    Database(#[from] sqlx::Error),
}

/// A session that was deleted: its token hash for the cache to evict, and whose it was for those
/// who hear it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The deleted session's public id.
    pub public_id: PublicId,
    /// The deleted session's token hash.
    pub token_hash: TokenHash,
    /// The user it was signed in as, if any.
    pub user_id: Option<i64>,
}

impl Deleted {
    /// What deleting this stored session deletes.
    pub fn of(record: &SessionRecord) -> Self {
        Self {
            public_id: record.public_id.clone(),
            token_hash: record.token_hash,
            user_id: record.user_id,
        }
    }
}

/// Which sessions a staff search returns, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    /// Sessions that have not expired.
    #[default]
    Active,
    /// Sessions past their expiry, not yet swept.
    Expired,
    /// Both.
    All,
}

/// A filtered, paginated search over every session, for staff.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    /// Only this user's sessions.
    pub user_id: Option<i64>,
    /// Active, expired or all.
    pub state: StateFilter,
    /// Only addresses inside this network (a single address is a /32 or /128).
    pub network: Option<IpNet>,
    /// Only user agents containing this text, ignoring ASCII case.
    pub user_agent_contains: Option<String>,
    /// Page size (capped at 500).
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
}

/// One page of a search.
#[derive(Debug, Clone)]
pub struct SessionPage {
    /// The sessions of this page, newest expiry first.
    pub sessions: Vec<SessionRecord>,
    /// How many sessions match in all.
    pub total: u64,
}

/// A session store: the database, or a cache in front of it.
///
/// Stores know sessions only by [`TokenHash`] and [`PublicId`]; they never see a token.
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

    /// Deletes the sessions with these public ids, optionally only those of `user_id`.
    async fn delete_by_public_ids(
        &self,
        public_ids: &[PublicId],
        user_id: Option<i64>,
    ) -> Result<Vec<Deleted>, StoreError>;

    /// Deletes every session of a user, except the one with public id `keep`.
    async fn delete_for_user(
        &self,
        user_id: i64,
        keep: Option<&PublicId>,
    ) -> Result<Vec<Deleted>, StoreError>;

    /// Deletes the user and, with them, all their sessions.
    async fn delete_user(&self, user_id: i64) -> Result<Vec<Deleted>, StoreError>;

    /// Deletes up to `batch` sessions that expired before `now`.
    async fn delete_expired(
        &self,
        now: OffsetDateTime,
        batch: u32,
    ) -> Result<Vec<Deleted>, StoreError>;

    /// A user's sessions that are active at `now`, most recent activity first.
    async fn list_for_user(
        &self,
        user_id: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// One session by public id, active or not.
    async fn get_by_public_id(
        &self,
        public_id: &PublicId,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// A staff search.
    async fn search(
        &self,
        query: &SessionQuery,
        now: OffsetDateTime,
    ) -> Result<SessionPage, StoreError>;
}
