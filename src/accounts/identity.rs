//! Who a user is, remembered for forward authentication (guarded against reads that race with a
//! change), and what the session engine asks of accounts ([`UserDirectory`]).

use super::*;

/// The identity cache, and a generation bumped by every forgetting: a read of the database that
/// began before a user was changed does not put the old identity back afterwards (the same guard
/// as the session cache's).
pub(super) struct Identities {
    pub(super) cache: quick_cache::sync::Cache<i64, (Arc<Identity>, Instant)>,
    pub(super) generation: std::sync::atomic::AtomicU64,
}

impl Identities {
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets these users (`None`: everyone); any read under way keeps nothing.
    pub(super) fn forget(&self, user_ids: Option<&[i64]>) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match user_ids {
            Some(ids) => {
                for id in ids {
                    self.cache.remove(id);
                }
            }
            None => self.cache.clear(),
        }
    }

    /// Keeps an identity read when the generation was `generation`, unless a user was forgotten
    /// since (it may be this one, read before the change).
    pub(super) fn keep(&self, identity: Arc<Identity>, generation: u64) {
        if self.generation() != generation {
            return;
        }
        let id = identity.id;
        self.cache
            .insert(id, (identity, Instant::now() + IDENTITY_CACHE_TTL));
        // A forgetting that began after the check above has removed it or will; one that began
        // before it is caught here.
        if self.generation() != generation {
            self.cache.remove(&id);
        }
    }
}

/// What the session engine asks of accounts (see [`UserDirectory`]): registered by
/// [`Accounts::new`]. Holds the database and the identity cache, not the service, so the engine
/// and the service do not keep each other alive.
pub(super) struct Directory {
    pub(super) db: Database,
    pub(super) identities: Arc<Identities>,
}

#[async_trait::async_trait]
impl UserDirectory for Directory {
    async fn may_sign_in(&self, user_id: i64) -> Result<bool, StoreError> {
        let active: Option<(bool,)> = with_pool!(&self.db, |pool| sqlx::query_as(
            "SELECT is_active FROM users WHERE id = $1"
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        Ok(active.is_some_and(|(active,)| active))
    }

    fn forget(&self, user_ids: Option<&[i64]>) {
        self.identities.forget(user_ids);
    }
}

/// How long [`Accounts::identity`] may answer from memory. Usernames never change once an account
/// exists, an email change ([`Accounts::confirm_email_change`]) forgets the user (on PostgreSQL, on
/// every node), and deactivating or deleting a user ends their sessions (on every node), so a
/// cached identity can only be behind on the staff flag, and by at most this long.
pub const IDENTITY_CACHE_TTL: Duration = Duration::from_secs(30);

/// The most identities [`Accounts::identity`] keeps in memory.
pub(super) const IDENTITY_CACHE_CAPACITY: usize = 100_000;

/// Who an active user is, as forward authentication tells other services: cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Database id.
    pub id: i64,
    /// The username as chosen.
    pub username: String,
    /// The email address, if one was given.
    pub email: Option<String>,
    /// Whether the user is staff.
    pub is_staff: bool,
}

impl Accounts {
    /// [`Accounts::identity`] when memory can answer it, else `None` (ask that, then). Not async:
    /// a caller on a hot path keeps its future small by awaiting the database only when it must.
    pub fn cached_identity(&self, user_id: i64) -> Option<Arc<Identity>> {
        if !self.remembers_identities() {
            return None;
        }
        let (identity, stale_at) = self.inner.identities.cache.get(&user_id)?;
        // A comparison of two instants, not `elapsed()`: no duration is worked out per request.
        (Instant::now() < stale_at).then_some(identity)
    }

    /// The identity of an active user, answered from memory for up to [`IDENTITY_CACHE_TTL`]:
    /// the question every request through a forward-authenticating proxy asks. `None` for a user
    /// who does not exist or is inactive (those are never cached).
    pub async fn identity(&self, user_id: i64) -> Result<Option<Arc<Identity>>, AccountError> {
        if let Some(identity) = self.cached_identity(user_id) {
            return Ok(Some(identity));
        }
        let generation = self.inner.identities.generation();
        let Some(user) = self.user(user_id).await?.filter(|user| user.is_active) else {
            return Ok(None);
        };
        let identity = Arc::new(Identity {
            id: user.id,
            username: user.username,
            email: user.email,
            is_staff: user.is_staff,
        });
        if self.remembers_identities() {
            self.inner.identities.keep(identity.clone(), generation);
        }
        Ok(Some(identity))
    }
}
