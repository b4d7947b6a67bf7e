//! Staff's search of ended sessions ("what happened to this account last Tuesday"): the history
//! the engine keeps ([`EndedSession`]), filtered like the live changelist — person, address or
//! network, `ua:`, country, kind of device — and by reason and when it ended.

use sqlx::QueryBuilder;
use time::OffsetDateTime;

use super::query::{push_search, SearchTerm};
use super::{resolved, SessionAdmin, COUNT_LIMIT, PAGE_SIZE};
use crate::clock::to_millis;
use crate::db::with_pool;
use crate::device::DeviceCategory;
use crate::sessions::history::{HistoryRow, HISTORY_COLUMNS};
use crate::sessions::{EndCause, EndedSession, StoreError};

/// What a history search asks for; every filter optional. Newest ended first.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only this user's ended sessions.
    pub user_id: Option<i64>,
    /// Only those last seen in this country (ISO code).
    pub country: Option<String>,
    /// Only this kind of device.
    pub category: Option<DeviceCategory>,
    /// Only those that ended for this reason.
    pub reason: Option<EndCause>,
    /// Only those that ended at or after this moment.
    pub ended_since: Option<OffsetDateTime>,
    /// Only those that ended before this moment.
    pub ended_before: Option<OffsetDateTime>,
    /// The search box, as on the changelist.
    pub search: Option<SearchTerm>,
    /// Zero-based page of [`PAGE_SIZE`] rows.
    pub page: u32,
}

/// An ended session with its owner.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The ended session.
    pub ended: EndedSession,
    /// The owner's username (`None` once the user is gone).
    pub username: Option<String>,
    /// The owner's email, if any.
    pub email: Option<String>,
    /// The kind of device, as stored with the user agent.
    pub category: DeviceCategory,
}

/// One page of a history search.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// Up to [`PAGE_SIZE`] entries, most recently ended first.
    pub rows: Vec<HistoryEntry>,
    /// Matching entries, counted up to [`COUNT_LIMIT`].
    pub total: u64,
    /// `false` when there are more than [`COUNT_LIMIT`].
    pub total_exact: bool,
}

#[derive(sqlx::FromRow)]
struct HistorySqlRow {
    #[sqlx(flatten)]
    ended: HistoryRow,
    username: Option<String>,
    email: Option<String>,
    device_category: Option<String>,
}

impl SessionAdmin {
    /// One page of ended sessions matching `query`.
    pub async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        let search = query.search.as_ref().map(resolved);
        let columns = HISTORY_COLUMNS
            .split(',')
            .map(|c| format!("s.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let offset = i64::from(query.page) * i64::from(PAGE_SIZE);
        let (rows, counted): (Vec<HistorySqlRow>, i64) = with_pool!(self.db()?, |pool| {
            let mut page = QueryBuilder::new(format!(
                "SELECT {columns}, u.username, u.email, s.device_category \
                 FROM session_history s LEFT JOIN users u ON u.id = s.user_id WHERE 1 = 1"
            ));
            let mut count = QueryBuilder::new(
                "SELECT COUNT(*) FROM (SELECT 1 FROM session_history s WHERE 1 = 1",
            );
            for builder in [&mut page, &mut count] {
                if let Some(user_id) = query.user_id {
                    builder.push(" AND s.user_id = ").push_bind(user_id);
                }
                if let Some(code) = &query.country {
                    builder
                        .push(" AND s.country_code = ")
                        .push_bind(code.to_ascii_uppercase());
                }
                if let Some(kind) = query.category {
                    builder
                        .push(" AND s.device_category = ")
                        .push_bind(kind.as_str());
                }
                if let Some(reason) = query.reason {
                    builder.push(" AND s.reason = ").push_bind(reason.as_str());
                }
                if let Some(since) = query.ended_since {
                    builder
                        .push(" AND s.ended_at >= ")
                        .push_bind(to_millis(since));
                }
                if let Some(before) = query.ended_before {
                    builder
                        .push(" AND s.ended_at < ")
                        .push_bind(to_millis(before));
                }
                if let Some(search) = &search {
                    push_search(builder, search);
                }
            }
            page.push(" ORDER BY s.ended_at DESC, s.id DESC LIMIT ")
                .push_bind(i64::from(PAGE_SIZE))
                .push(" OFFSET ")
                .push_bind(offset);
            count
                .push(" LIMIT ")
                .push_bind(i64::try_from(COUNT_LIMIT + 1).unwrap_or(i64::MAX))
                .push(") AS bounded");
            let rows = page.build_query_as().fetch_all(pool).await?;
            let counted: (i64,) = count.build_query_as().fetch_one(pool).await?;
            Ok::<_, sqlx::Error>((rows, counted.0))
        })?;
        let counted = u64::try_from(counted).unwrap_or(0);
        Ok(HistoryPage {
            rows: rows
                .into_iter()
                .filter_map(|row| {
                    Some(HistoryEntry {
                        category: row
                            .device_category
                            .as_deref()
                            .and_then(DeviceCategory::from_key)
                            .unwrap_or_default(),
                        username: row.username,
                        email: row.email.filter(|e| !e.is_empty()),
                        ended: row.ended.into_ended()?,
                    })
                })
                .collect(),
            total: counted.min(COUNT_LIMIT),
            total_exact: counted <= COUNT_LIMIT,
        })
    }
}
