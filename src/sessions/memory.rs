//! [`MemoryStore`]: sessions in this process's memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::history::{EndedSession, SessionHistory};
use super::record::{PublicId, SessionRecord, TokenHash};
use super::retention::{age_in_place, AddressAging};
use super::store::{Deleted, SessionStore, StoreError, UserSessionStore};

/// Sessions kept in memory: for tests, examples and a single process that may lose every session
/// when it stops. It keeps sessions by user too, so it offers the engine everything
/// [`DbStore`](super::DbStore) does, with the same rules: a save never brings back a deleted
/// session, keys are unique, and the first address and place of a session never change.
///
/// Cheap to clone; clones share the sessions.
///
/// ```
/// use console_sessions::sessions::{MemoryStore, SessionConfig, SessionEngine};
///
/// let store = MemoryStore::new();
/// let engine = SessionEngine::with_store(store.clone(), SessionConfig::default());
/// assert_eq!(store.len(), 0);
/// # drop(engine);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Sessions>>,
}

#[derive(Debug, Default)]
struct Sessions {
    by_hash: HashMap<TokenHash, Stored>,
    by_public_id: HashMap<PublicId, TokenHash>,
    /// Creation order, the tie-break a database's row id gives.
    next: u64,
    /// Ended sessions, oldest first.
    history: Vec<EndedSession>,
}

#[derive(Debug)]
struct Stored {
    order: u64,
    record: SessionRecord,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions are kept, expired ones not yet deleted included.
    pub fn len(&self) -> usize {
        self.sessions().by_hash.len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        // Nothing panics while holding the lock, and the map stays whole if something did: go on.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Sessions {
    fn remove(&mut self, token_hash: &TokenHash) -> Option<Deleted> {
        let stored = self.by_hash.remove(token_hash)?;
        self.by_public_id.remove(&stored.record.public_id);
        Some(Deleted {
            record: stored.record,
        })
    }

    /// Removes every session `matches` picks, in creation order.
    fn remove_where(&mut self, matches: impl Fn(&SessionRecord) -> bool) -> Vec<Deleted> {
        let mut chosen: Vec<(u64, TokenHash)> = self
            .by_hash
            .iter()
            .filter(|(_, stored)| matches(&stored.record))
            .map(|(hash, stored)| (stored.order, *hash))
            .collect();
        chosen.sort_unstable_by_key(|(order, _)| *order);
        chosen
            .into_iter()
            .filter_map(|(_, hash)| self.remove(&hash))
            .collect()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let mut sessions = self.sessions();
        if sessions.by_hash.contains_key(&record.token_hash)
            || sessions.by_public_id.contains_key(&record.public_id)
        {
            return Err(StoreError::Duplicate);
        }
        let order = sessions.next;
        sessions.next += 1;
        sessions
            .by_public_id
            .insert(record.public_id.clone(), record.token_hash);
        sessions.by_hash.insert(
            record.token_hash,
            Stored {
                order,
                record: record.clone(),
            },
        );
        Ok(())
    }

    async fn load(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .sessions()
            .by_hash
            .get(token_hash)
            .filter(|stored| stored.record.is_active_at(now))
            .map(|stored| stored.record.clone()))
    }

    async fn save(
        &self,
        record: &SessionRecord,
        current_hash: &TokenHash,
    ) -> Result<bool, StoreError> {
        let mut sessions = self.sessions();
        let Some(current) = sessions.by_hash.get(current_hash) else {
            return Ok(false);
        };
        if current.record.public_id != record.public_id {
            return Ok(false);
        }
        if record.token_hash != *current_hash && sessions.by_hash.contains_key(&record.token_hash) {
            return Err(StoreError::Duplicate);
        }
        let Some(current) = sessions.by_hash.remove(current_hash) else {
            return Ok(false);
        };
        // What a database row keeps from its creation, whatever the save says.
        let saved = SessionRecord {
            created_at: current.record.created_at,
            first_ip: current.record.first_ip,
            first_place: current.record.first_place,
            label: current.record.label,
            ..record.clone()
        };
        sessions
            .by_public_id
            .insert(saved.public_id.clone(), saved.token_hash);
        sessions.by_hash.insert(
            saved.token_hash,
            Stored {
                order: current.order,
                record: saved,
            },
        );
        Ok(true)
    }

    async fn delete(&self, token_hash: &TokenHash) -> Result<bool, StoreError> {
        Ok(self.sessions().remove(token_hash).is_some())
    }

    async fn delete_expired(
        &self,
        now: OffsetDateTime,
        batch: u32,
    ) -> Result<Vec<Deleted>, StoreError> {
        let mut sessions = self.sessions();
        let mut expired: Vec<(OffsetDateTime, TokenHash)> = sessions
            .by_hash
            .iter()
            .filter(|(_, stored)| stored.record.expires_at <= now)
            .map(|(hash, stored)| (stored.record.expires_at, *hash))
            .collect();
        expired.sort_unstable_by_key(|(expires_at, _)| *expires_at);
        Ok(expired
            .into_iter()
            .take(batch as usize)
            .filter_map(|(_, hash)| sessions.remove(&hash))
            .collect())
    }

    fn by_user(&self) -> Option<&dyn UserSessionStore> {
        Some(self)
    }

    fn history(&self) -> Option<&dyn SessionHistory> {
        Some(self)
    }
}

#[async_trait]
impl SessionHistory for MemoryStore {
    async fn record(&self, ended: &[EndedSession]) -> Result<(), StoreError> {
        self.sessions().history.extend_from_slice(ended);
        Ok(())
    }

    async fn ended_for_user(
        &self,
        user_id: i64,
        limit: u32,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let sessions = self.sessions();
        let mut ended: Vec<&EndedSession> = sessions
            .history
            .iter()
            .filter(|session| session.user_id == user_id)
            .collect();
        // Most recently ended first; among equals, the later recorded first, as a row id orders.
        ended.reverse();
        ended.sort_by_key(|session| std::cmp::Reverse(session.ended_at));
        Ok(ended.into_iter().take(limit as usize).cloned().collect())
    }

    async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut sessions = self.sessions();
        let kept = sessions.history.len();
        sessions
            .history
            .retain(|session| session.ended_at >= before);
        Ok((kept - sessions.history.len()) as u64)
    }

    async fn age_addresses(
        &self,
        aging: AddressAging,
        before: OffsetDateTime,
        _batch: u32,
    ) -> Result<u64, StoreError> {
        let mut changed = 0;
        for ended in &mut self.sessions().history {
            let last = age_in_place(&mut ended.ip, ended.last_activity_at, aging, before);
            let first = age_in_place(&mut ended.first_ip, ended.created_at, aging, before);
            changed += u64::from(last) + u64::from(first);
        }
        Ok(changed)
    }
}

#[async_trait]
impl UserSessionStore for MemoryStore {
    async fn list_for_user(
        &self,
        user_id: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sessions = self.sessions();
        let mut listed: Vec<&Stored> = sessions
            .by_hash
            .values()
            .filter(|stored| stored.record.user_id == Some(user_id))
            .filter(|stored| stored.record.is_active_at(now))
            .collect();
        listed.sort_unstable_by(|a, b| {
            (b.record.last_activity_at, b.order).cmp(&(a.record.last_activity_at, a.order))
        });
        Ok(listed
            .into_iter()
            .map(|stored| stored.record.clone())
            .collect())
    }

    async fn delete_for_user(
        &self,
        user_id: i64,
        keep: Option<&PublicId>,
    ) -> Result<Vec<Deleted>, StoreError> {
        Ok(self.sessions().remove_where(|record| {
            record.user_id == Some(user_id) && Some(&record.public_id) != keep
        }))
    }

    async fn delete_by_public_ids(
        &self,
        public_ids: &[PublicId],
        user_id: Option<i64>,
    ) -> Result<Vec<Deleted>, StoreError> {
        let mut sessions = self.sessions();
        let mut deleted = Vec::new();
        for public_id in public_ids {
            let Some(hash) = sessions.by_public_id.get(public_id).copied() else {
                continue;
            };
            let owned = user_id.is_none()
                || sessions
                    .by_hash
                    .get(&hash)
                    .is_some_and(|stored| stored.record.user_id == user_id);
            if owned {
                deleted.extend(sessions.remove(&hash));
            }
        }
        Ok(deleted)
    }

    async fn rename(
        &self,
        user_id: i64,
        public_id: &PublicId,
        label: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut sessions = self.sessions();
        let Some(hash) = sessions.by_public_id.get(public_id).copied() else {
            return Ok(false);
        };
        match sessions.by_hash.get_mut(&hash) {
            Some(stored) if stored.record.user_id == Some(user_id) => {
                stored.record.label = label.map(str::to_owned);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn age_addresses(
        &self,
        aging: AddressAging,
        before: OffsetDateTime,
        _batch: u32,
    ) -> Result<u64, StoreError> {
        let mut changed = 0;
        for stored in self.sessions().by_hash.values_mut() {
            let record = &mut stored.record;
            let last = age_in_place(&mut record.ip, record.last_activity_at, aging, before);
            let first = age_in_place(&mut record.first_ip, record.created_at, aging, before);
            changed += u64::from(last) + u64::from(first);
        }
        Ok(changed)
    }
}
