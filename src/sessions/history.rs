//! What is left of a session once it ended: its device, place, address, times, and why it ended
//! and who ended it. The engine writes one [`EndedSession`] for each signed-in session it ends
//! (sign-out, revoke, staff, expiry, limit, …) to the store's [`SessionHistory`], and its sweeper
//! forgets them after [`SessionConfig::history_retention`](super::SessionConfig::history_retention).
//!
//! A history row has no token hash and no data: nothing in it can be turned back into a session.

use std::net::IpAddr;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::assurance::AuthMethod;
use super::events::{EndCause, EndedBy, Ending};
use super::record::{PublicId, SessionRecord};
use super::retention::AddressAging;
use super::store::StoreError;
use crate::device::ClientHints;
use crate::geo::Place;

/// One ended session, as its history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedSession {
    /// The session's public id (it names nothing live any more).
    pub public_id: PublicId,
    /// The user it was signed in as.
    pub user_id: i64,
    /// The name its owner gave it, if any.
    pub label: Option<String>,
    /// The address last seen.
    pub ip: Option<IpAddr>,
    /// The user agent last seen.
    pub user_agent: Option<String>,
    /// The client hints last sent.
    pub client_hints: Option<ClientHints>,
    /// Where the address last seen is.
    pub place: Place,
    /// The address it signed in from.
    pub first_ip: Option<IpAddr>,
    /// Where it signed in.
    pub first_place: Place,
    /// How it signed in, when that was recorded.
    pub auth_method: Option<AuthMethod>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Its last recorded activity.
    pub last_activity_at: OffsetDateTime,
    /// When it ended: the moment it was ended, or for an expired one the moment it expired.
    pub ended_at: OffsetDateTime,
    /// Why it ended.
    pub reason: EndCause,
    /// Who ended it from elsewhere, if somebody did.
    pub by: Option<EndedBy>,
}

impl EndedSession {
    /// The history of `record` ended for `ending` at `ended_at`; `None` for a session nobody was
    /// signed in to, which leaves no history.
    pub fn of(record: &SessionRecord, ending: &Ending, ended_at: OffsetDateTime) -> Option<Self> {
        Some(Self {
            public_id: record.public_id.clone(),
            user_id: record.user_id?,
            label: record.label.clone(),
            ip: record.ip,
            user_agent: record.user_agent.clone(),
            client_hints: record.client_hints.clone(),
            place: record.place.clone(),
            first_ip: record.first_ip,
            first_place: record.first_place.clone(),
            auth_method: record.assurance.map(|a| a.method),
            created_at: record.created_at,
            last_activity_at: record.last_activity_at,
            ended_at,
            reason: ending.cause,
            by: ending.by.clone(),
        })
    }
}

/// Where a store keeps the history of ended sessions (see [`SessionStore::history`]).
///
/// [`SessionStore::history`]: super::SessionStore::history
#[async_trait]
pub trait SessionHistory: Send + Sync {
    /// Keeps these ended sessions.
    async fn record(&self, ended: &[EndedSession]) -> Result<(), StoreError>;

    /// A user's ended sessions, most recently ended first, at most `limit`.
    async fn ended_for_user(
        &self,
        user_id: i64,
        limit: u32,
    ) -> Result<Vec<EndedSession>, StoreError>;

    /// Forgets every ended session that ended before `before`; answers how many.
    async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Cuts or forgets (`IP_RETENTION`) the addresses of ended sessions seen before `before`:
    /// the last by the session's last activity, the first by its creation; `batch` rows per
    /// statement. Answers how many addresses changed.
    async fn age_addresses(
        &self,
        aging: AddressAging,
        before: OffsetDateTime,
        batch: u32,
    ) -> Result<u64, StoreError>;
}

#[cfg(sql)]
mod db {
    use async_trait::async_trait;
    use sqlx::QueryBuilder;
    use time::OffsetDateTime;

    use super::{EndedSession, SessionHistory};
    use crate::clock::{from_millis, to_millis};
    use crate::db::with_pool;
    use crate::geo::Place;
    use crate::sessions::assurance::AuthMethod;
    use crate::sessions::db_store::DbStore;
    use crate::sessions::events::{EndCause, EndedBy};
    use crate::sessions::record::{ip_key, PublicId};
    use crate::sessions::retention::db::{age_columns, AddressColumn};
    use crate::sessions::retention::{ip_text, parse_stored_ip, AddressAging};
    use crate::sessions::store::StoreError;

    /// The columns of `session_history` a row is read back from.
    pub(crate) const HISTORY_COLUMNS: &str =
        "public_id, user_id, label, ip, user_agent, client_hints, country_code, city, first_ip, \
         first_country_code, first_city, auth_method, created_at, last_activity_at, ended_at, \
         reason, ended_by_session, ended_by_user";

    /// Rows per insert: 18 values each stays well inside SQLite's limit of bound values.
    const INSERT_CHUNK: usize = 500;

    #[derive(sqlx::FromRow)]
    pub(crate) struct HistoryRow {
        public_id: String,
        user_id: i64,
        label: Option<String>,
        ip: Option<String>,
        user_agent: Option<String>,
        client_hints: Option<String>,
        country_code: Option<String>,
        city: Option<String>,
        first_ip: Option<String>,
        first_country_code: Option<String>,
        first_city: Option<String>,
        auth_method: Option<String>,
        created_at: i64,
        last_activity_at: i64,
        ended_at: i64,
        reason: String,
        ended_by_session: Option<String>,
        ended_by_user: Option<i64>,
    }

    impl HistoryRow {
        /// The ended session this row keeps; `None` (skipped) for a row whose id or reason this
        /// version does not read.
        pub(crate) fn into_ended(self) -> Option<EndedSession> {
            let by = match (self.ended_by_session, self.ended_by_user) {
                (Some(session), _) => PublicId::parse(&session).map(EndedBy::Session),
                (None, Some(staff)) => Some(EndedBy::Staff(staff)),
                (None, None) => None,
            };
            Some(EndedSession {
                public_id: PublicId::parse(&self.public_id)?,
                user_id: self.user_id,
                label: self.label,
                ip: self.ip.as_deref().and_then(parse_stored_ip),
                user_agent: self.user_agent,
                client_hints: self
                    .client_hints
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok()),
                place: Place {
                    country_code: self.country_code,
                    city: self.city,
                },
                first_ip: self.first_ip.as_deref().and_then(parse_stored_ip),
                first_place: Place {
                    country_code: self.first_country_code,
                    city: self.first_city,
                },
                auth_method: self.auth_method.as_deref().map(AuthMethod::parse),
                created_at: from_millis(self.created_at),
                last_activity_at: from_millis(self.last_activity_at),
                ended_at: from_millis(self.ended_at),
                reason: EndCause::parse(&self.reason)?,
                by,
            })
        }
    }

    #[async_trait]
    impl SessionHistory for DbStore {
        async fn record(&self, ended: &[EndedSession]) -> Result<(), StoreError> {
            for chunk in ended.chunks(INSERT_CHUNK) {
                with_pool!(self.database(), |pool| {
                    let mut builder = QueryBuilder::new(
                        "INSERT INTO session_history (public_id, user_id, label, ip, ip_key, \
                         user_agent, client_hints, device_category, country_code, city, \
                         first_ip, first_country_code, first_city, auth_method, created_at, \
                         last_activity_at, ended_at, reason, ended_by_session, ended_by_user) ",
                    );
                    builder.push_values(chunk, |mut row, session| {
                        let (by_session, by_user) = match &session.by {
                            Some(EndedBy::Session(id)) => (Some(id.as_str().to_owned()), None),
                            Some(EndedBy::Staff(staff)) => (None, Some(*staff)),
                            None => (None, None),
                        };
                        row.push_bind(session.public_id.as_str().to_owned())
                            .push_bind(session.user_id)
                            .push_bind(session.label.clone())
                            .push_bind(session.ip.map(ip_text))
                            .push_bind(session.ip.map(|ip| ip_key(ip).to_vec()))
                            .push_bind(session.user_agent.clone())
                            .push_bind(
                                session
                                    .client_hints
                                    .as_ref()
                                    .and_then(|hints| serde_json::to_string(hints).ok()),
                            )
                            .push_bind(
                                crate::sessions::db_store::device_category_of(
                                    session.user_agent.as_deref(),
                                    session.client_hints.as_ref(),
                                )
                                .as_str(),
                            )
                            .push_bind(session.place.country_code.clone())
                            .push_bind(session.place.city.clone())
                            .push_bind(session.first_ip.map(ip_text))
                            .push_bind(session.first_place.country_code.clone())
                            .push_bind(session.first_place.city.clone())
                            .push_bind(session.auth_method.map(AuthMethod::as_str))
                            .push_bind(to_millis(session.created_at))
                            .push_bind(to_millis(session.last_activity_at))
                            .push_bind(to_millis(session.ended_at))
                            .push_bind(session.reason.as_str())
                            .push_bind(by_session)
                            .push_bind(by_user);
                    });
                    builder.build().execute(pool).await.map(drop)
                })?;
            }
            Ok(())
        }

        async fn ended_for_user(
            &self,
            user_id: i64,
            limit: u32,
        ) -> Result<Vec<EndedSession>, StoreError> {
            let sql = format!(
                "SELECT {HISTORY_COLUMNS} FROM session_history WHERE user_id = $1 \
                 ORDER BY ended_at DESC, id DESC LIMIT $2"
            );
            let rows: Vec<HistoryRow> = with_pool!(self.database(), |pool| sqlx::query_as(&sql)
                .bind(user_id)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await)?;
            Ok(rows
                .into_iter()
                .filter_map(HistoryRow::into_ended)
                .collect())
        }

        async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
            // In batches, as the expiry sweep deletes: a first purge of a long history never holds
            // a long lock.
            let mut total = 0;
            loop {
                let purged = with_pool!(self.database(), |pool| sqlx::query(
                    "DELETE FROM session_history WHERE id IN \
                     (SELECT id FROM session_history WHERE ended_at < $1 LIMIT 1000)"
                )
                .bind(to_millis(before))
                .execute(pool)
                .await
                .map(|done| done.rows_affected()))?;
                total += purged;
                if purged < 1000 {
                    return Ok(total);
                }
                tokio::task::yield_now().await;
            }
        }

        async fn age_addresses(
            &self,
            aging: AddressAging,
            before: OffsetDateTime,
            batch: u32,
        ) -> Result<u64, StoreError> {
            let columns = [HISTORY_LAST_IP, HISTORY_FIRST_IP];
            Ok(age_columns(self.database(), &columns, aging, before, batch).await?)
        }
    }

    const HISTORY_LAST_IP: AddressColumn = AddressColumn {
        table: "session_history",
        ip: "ip",
        seen: "last_activity_at",
        key: Some("ip_key"),
    };
    const HISTORY_FIRST_IP: AddressColumn = AddressColumn {
        table: "session_history",
        ip: "first_ip",
        seen: "created_at",
        key: None,
    };
}

// For the staff admin's history search (src/admin/history.rs).
#[cfg(all(sql, feature = "admin"))]
pub(crate) use db::{HistoryRow, HISTORY_COLUMNS};
