//! The staff sessions admin, as Django's admin for django-qsessions and more: a filtered, searched,
//! sorted changelist over every session with its owner, read-only details, sign-outs that go through
//! the engine (so caches are evicted), and an audit log of every staff action.
//!
//! Reads run their own SQL (sessions joined to users); every deletion goes through
//! [`SessionEngine`], never around it.

use std::sync::LazyLock;

use sqlx::QueryBuilder;

use crate::clock::{now, to_millis};
use crate::db::with_pool;
use crate::db::{escape_like, Database};
use crate::device::DeviceCategory;
use crate::sessions::db_store::{SessionRow, COLUMNS};
use crate::sessions::{ip_key, Ending, PublicId, SessionEngine, StoreError};

mod audit;
mod history;
pub(crate) mod ip_prefix;
pub(crate) mod query;

pub use audit::{Actor, AuditEntry};
pub use history::{HistoryEntry, HistoryPage, HistoryQuery};
pub use query::{AdminPage, AdminQuery, AdminRow, SearchTerm, SortColumn, StateFilter};

use audit::AuditRow;
use ip_prefix::prefix_ranges;
use query::{push_filters, push_search, ResolvedSearch};

/// Rows per changelist page, as Django's `list_per_page`.
pub const PAGE_SIZE: u32 = 100;

/// Counting stops here: past it the page says "more than 10,000", so a count never scans a million
/// rows.
pub const COUNT_LIMIT: u64 = 10_000;

/// Counting stops here instead when the search matches too many sessions to use its index: then
/// every counted row costs a scan, and a thousand is what a person reads anyway.
pub const BROAD_COUNT_LIMIT: u64 = 1_000;

/// Sessions [`SessionAdmin::sign_out_matching`] ends per statement.
pub const MATCHING_BATCH: u32 = 250;

/// How many times in a row a batch of [`SessionAdmin::sign_out_matching`] is tried again after a
/// database error before the job stops.
const MATCHING_RETRIES: u64 = 3;

/// A search whose own index finds at most this many sessions drives the query through that index;
/// a broader one is checked row by row while the order's index is walked, so a page still stops
/// after [`PAGE_SIZE`] matches. (Neither planner knows how wide an address range or a username
/// pattern is, and the wrong choice costs seconds at a million rows.)
const SEARCH_INDEX_LIMIT: i64 = 20_000;

#[derive(sqlx::FromRow)]
struct AdminSqlRow {
    #[sqlx(flatten)]
    session: SessionRow,
    username: Option<String>,
    email: Option<String>,
    device_category: Option<String>,
}

/// The session columns, qualified for a join with `users`.
static SESSION_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
});

impl AdminSqlRow {
    fn into_row(self) -> Result<AdminRow, StoreError> {
        Ok(AdminRow {
            record: self.session.into_record()?,
            username: self.username,
            email: self.email.filter(|e| !e.is_empty()),
            category: self
                .device_category
                .as_deref()
                .and_then(DeviceCategory::from_key)
                .unwrap_or_default(),
        })
    }
}

/// The search box as SQL conditions, before anyone asked how many sessions it finds: an address,
/// network or person search is taken to be narrow (its index drives).
pub(crate) fn resolved(term: &SearchTerm) -> ResolvedSearch {
    match term {
        SearchTerm::Network(net) => ResolvedSearch::Ranges {
            ranges: vec![(
                ip_key(net.network()).to_vec(),
                ip_key(net.broadcast()).to_vec(),
            )],
            use_index: true,
        },
        SearchTerm::IpPrefix(prefix) => match prefix_ranges(prefix) {
            Some(ranges) => ResolvedSearch::Ranges {
                ranges: ranges
                    .into_iter()
                    .map(|(first, last)| (ip_key(first).to_vec(), ip_key(last).to_vec()))
                    .collect(),
                use_index: true,
            },
            None => ResolvedSearch::TextPrefix(format!("{}%", escape_like(prefix))),
        },
        SearchTerm::UserAgent(text) => {
            ResolvedSearch::UserAgent(format!("%{}%", escape_like(text)))
        }
        SearchTerm::Person(text) => ResolvedSearch::People {
            pattern: format!("%{}%", escape_like(text)),
            use_index: true,
        },
    }
}

/// The sessions admin: queries for staff pages, and audited sign-outs.
#[derive(Clone, Debug)]
pub struct SessionAdmin {
    /// `None` for an engine over a store of its own (not a database): there is no table to query.
    db: Option<Database>,
    engine: SessionEngine,
    search_index_limit: i64,
    matching_batch: u32,
}

impl SessionAdmin {
    /// The admin over this engine's database. An engine over another store has no sessions
    /// table to search: its admin answers [`StoreError::Unsupported`].
    pub fn new(engine: SessionEngine) -> Self {
        Self {
            db: engine.db_store().map(|store| store.database().clone()),
            engine,
            search_index_limit: SEARCH_INDEX_LIMIT,
            matching_batch: MATCHING_BATCH,
        }
    }

    /// The same admin, letting a search's own index drive only while it finds at most `sessions`
    /// (default 20,000). Both ways give the same rows; this exists so tests can take the other one.
    pub fn with_search_index_limit(mut self, sessions: u32) -> Self {
        self.search_index_limit = i64::from(sessions);
        self
    }

    /// The same admin, signing out `sessions` per batch in [`SessionAdmin::sign_out_matching`]
    /// (default [`MATCHING_BATCH`], at least 1).
    pub fn with_matching_batch(mut self, sessions: u32) -> Self {
        self.matching_batch = sessions.max(1);
        self
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db
            .as_ref()
            .ok_or(StoreError::Unsupported("search sessions as staff"))
    }

    /// One page of the changelist.
    pub async fn search(&self, query: &AdminQuery) -> Result<AdminPage, StoreError> {
        let now = to_millis(now());
        let offset = i64::from(query.page) * i64::from(PAGE_SIZE);
        let search = match &query.search {
            Some(term) => Some(self.resolve(term).await?),
            None => None,
        };
        let count_limit = match &search {
            Some(resolved) if !resolved.uses_index() => BROAD_COUNT_LIMIT,
            _ => COUNT_LIMIT,
        };
        let (rows, counted): (Vec<AdminSqlRow>, i64) = with_pool!(self.db()?, |pool| {
            let mut page = QueryBuilder::new(format!(
                "SELECT {}, u.username, u.email, s.device_category FROM sessions s \
                 LEFT JOIN users u ON u.id = s.user_id WHERE 1 = 1",
                *SESSION_COLUMNS
            ));
            let mut count =
                QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM sessions s WHERE 1 = 1");
            for builder in [&mut page, &mut count] {
                push_filters(builder, query, search.as_ref(), now);
            }
            let direction = if query.descending { "DESC" } else { "ASC" };
            page.push(" ORDER BY ");
            for column in query.sort.order_by() {
                page.push(format!("{column} {direction}, "));
            }
            page.push(format!("s.id {direction} LIMIT "))
                .push_bind(i64::from(PAGE_SIZE))
                .push(" OFFSET ")
                .push_bind(offset);
            count
                .push(" LIMIT ")
                .push_bind(i64::try_from(count_limit + 1).unwrap_or(i64::MAX))
                .push(") AS bounded");
            let rows = page.build_query_as().fetch_all(pool).await?;
            let counted: (i64,) = count.build_query_as().fetch_one(pool).await?;
            Ok::<_, sqlx::Error>((rows, counted.0))
        })?;
        let counted = u64::try_from(counted).unwrap_or(0);
        Ok(AdminPage {
            rows: rows
                .into_iter()
                .map(AdminSqlRow::into_row)
                .collect::<Result<_, _>>()?,
            total: counted.min(count_limit),
            total_exact: counted <= count_limit,
        })
    }

    /// Turns the search box into SQL conditions, and asks the search's own index how many sessions
    /// it finds (stopping at [`SEARCH_INDEX_LIMIT`]) to know whether that index should drive.
    async fn resolve(&self, term: &SearchTerm) -> Result<ResolvedSearch, StoreError> {
        let resolved = resolved(term);
        if !matches!(
            resolved,
            ResolvedSearch::Ranges { .. } | ResolvedSearch::People { .. }
        ) {
            return Ok(resolved);
        }
        let found: i64 = with_pool!(self.db()?, |pool| {
            let mut probe =
                QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM sessions s WHERE 1 = 1");
            push_search(&mut probe, &resolved);
            probe
                .push(" LIMIT ")
                .push_bind(self.search_index_limit + 1)
                .push(") AS probe");
            let found: (i64,) = probe.build_query_as().fetch_one(pool).await?;
            Ok::<_, sqlx::Error>(found.0)
        })?;
        Ok(resolved.with_index(found <= self.search_index_limit))
    }

    /// One session with its owner, active or not.
    pub async fn get(&self, public_id: &PublicId) -> Result<Option<AdminRow>, StoreError> {
        let sql = format!(
            "SELECT {}, u.username, u.email, s.device_category FROM sessions s \
             LEFT JOIN users u ON u.id = s.user_id WHERE s.public_id = $1",
            *SESSION_COLUMNS
        );
        let row: Option<AdminSqlRow> = with_pool!(self.db()?, |pool| sqlx::query_as(&sql)
            .bind(public_id.as_str())
            .fetch_optional(pool)
            .await)?;
        row.map(AdminSqlRow::into_row).transpose()
    }

    /// The countries sessions were last seen in, for the filter panel.
    pub async fn countries(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = with_pool!(self.db()?, |pool| sqlx::query_as(
            // A skip scan of the country index, one step per country: DISTINCT reads all million
            // index entries on PostgreSQL (130 ms), this reads eight (4 ms).
            "WITH RECURSIVE c(code) AS (\
               SELECT MIN(country_code) FROM sessions \
               UNION ALL \
               SELECT (SELECT MIN(country_code) FROM sessions WHERE country_code > c.code) \
               FROM c WHERE c.code IS NOT NULL) \
             SELECT code FROM c WHERE code IS NOT NULL"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(c,)| c).collect())
    }

    /// Signs out these sessions (cache included) and records it. Ids that match nothing are
    /// skipped; the answer is what actually ended.
    pub async fn sign_out(
        &self,
        actor: &Actor,
        public_ids: &[PublicId],
    ) -> Result<Vec<PublicId>, StoreError> {
        let ended: Vec<PublicId> = self
            .engine
            .delete_many(public_ids, Ending::by_staff(actor.user_id))
            .await?
            .into_iter()
            .map(|d| d.record.public_id)
            .collect();
        self.record(
            actor,
            "sessions.sign_out",
            None,
            None,
            &ended,
            &format!(
                "{} of {} selected sessions ended",
                ended.len(),
                public_ids.len()
            ),
        )
        .await?;
        tracing::info!(
            actor = actor.user_id,
            ended = ended.len(),
            "staff signed out sessions"
        );
        Ok(ended)
    }

    /// Signs out every session of a user (cache included) and records it.
    pub async fn sign_out_user(
        &self,
        actor: &Actor,
        user_id: i64,
        username: &str,
    ) -> Result<Vec<PublicId>, StoreError> {
        let deleted = self
            .engine
            .end_all_of(user_id, Ending::by_staff(actor.user_id))
            .await?;
        let ended: Vec<PublicId> = deleted.into_iter().map(|d| d.record.public_id).collect();
        self.record(
            actor,
            "user.sign_out_all",
            Some(user_id),
            Some(username),
            &ended,
            &format!("all {} sessions of {username} ended", ended.len()),
        )
        .await?;
        tracing::info!(
            actor = actor.user_id,
            user_id,
            ended = ended.len(),
            "staff signed out a user"
        );
        Ok(ended)
    }

    /// How many live sessions `query` matches (its state, order and page aside), counted exactly:
    /// the preview of [`SessionAdmin::sign_out_matching`].
    pub async fn count_matching(&self, query: &AdminQuery) -> Result<u64, StoreError> {
        let query = AdminQuery {
            state: StateFilter::Active,
            ..query.clone()
        };
        let search = match &query.search {
            Some(term) => Some(self.resolve(term).await?),
            None => None,
        };
        let now = to_millis(now());
        let counted: i64 = with_pool!(self.db()?, |pool| {
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM sessions s WHERE 1 = 1");
            push_filters(&mut count, &query, search.as_ref(), now);
            let counted: (i64,) = count.build_query_as().fetch_one(pool).await?;
            Ok::<_, sqlx::Error>(counted.0)
        })?;
        Ok(u64::try_from(counted).unwrap_or(0))
    }

    /// Signs out every live session `query` matches (its state, order and page aside), except
    /// `keep` (the staff member's own), and records it as one action in the audit log. Works in
    /// batches ([`MATCHING_BATCH`] sessions) in row order, each its own short statement through the
    /// engine (caches evicted, history kept), yielding between them, so the table is never held
    /// for long and requests go on meanwhile; `progress` hears the running total after each.
    /// Answers how many ended. A failure midway leaves what ended ended, and is audited so.
    pub async fn sign_out_matching(
        &self,
        actor: &Actor,
        query: &AdminQuery,
        keep: Option<&PublicId>,
        described: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        let query = AdminQuery {
            state: StateFilter::Active,
            ..query.clone()
        };
        let search = match &query.search {
            Some(term) => Some(self.resolve(term).await?),
            None => None,
        };
        let mut last_id = 0_i64;
        let mut ended = 0_u64;
        let mut failures = 0;
        let outcome = loop {
            // One batch: the next matching rows, then their end. `None` once nothing is left.
            let step = async {
                let batch = self.next_matching(&query, search.as_ref(), last_id).await?;
                let Some((last, _)) = batch.last() else {
                    return Ok(None);
                };
                let ids: Vec<PublicId> = batch
                    .iter()
                    .filter_map(|(_, id)| PublicId::parse(id))
                    .filter(|id| Some(id) != keep)
                    .collect();
                let deleted = self
                    .engine
                    .delete_many(&ids, Ending::by_staff(actor.user_id))
                    .await?;
                Ok::<_, StoreError>(Some((*last, batch.len(), deleted.len())))
            }
            .await;
            match step {
                Ok(None) => break Ok(()),
                Ok(Some((last, rows, deleted))) => {
                    failures = 0;
                    last_id = last;
                    ended += deleted as u64;
                    progress(ended);
                    if rows < self.matching_batch as usize {
                        break Ok(());
                    }
                    // Let the requests waiting on the database (and this node's threads) in.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                // A busy database (a lock held by another writer, a pool with no connection free
                // in time) is worth another try or two; the same rows are read again, less those
                // that ended. What keeps failing stops the job.
                Err(error) if failures < MATCHING_RETRIES => {
                    failures += 1;
                    tracing::warn!(%error, failures, "signing out matching sessions: a batch failed, trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(250 * failures)).await;
                }
                Err(error) => break Err(error),
            }
        };
        if let Err(error) = &outcome {
            tracing::error!(%error, ended, "signing out matching sessions stopped");
        }
        let detail = match &outcome {
            Ok(()) => format!("{ended} sessions matching {described} ended"),
            Err(_) => format!("{ended} sessions matching {described} ended before a failure"),
        };
        self.record(
            actor,
            "sessions.sign_out_matching",
            None,
            None,
            &[],
            &detail,
        )
        .await?;
        tracing::info!(
            actor = actor.user_id,
            ended,
            search = described,
            "staff signed out sessions matching a search"
        );
        outcome.map(|()| ended)
    }

    /// The next batch of live sessions `query` matches after row `after`, in row order.
    async fn next_matching(
        &self,
        query: &AdminQuery,
        search: Option<&ResolvedSearch>,
        after: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let now = to_millis(now());
        Ok(with_pool!(self.db()?, |pool| {
            let mut select =
                QueryBuilder::new("SELECT s.id, s.public_id FROM sessions s WHERE s.id > ");
            select.push_bind(after);
            push_filters(&mut select, query, search, now);
            select
                .push(" ORDER BY s.id LIMIT ")
                .push_bind(i64::from(self.matching_batch));
            select.build_query_as().fetch_all(pool).await
        })?)
    }

    /// Adds a line to the audit log.
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target_user_id: Option<i64>,
        target_username: Option<&str>,
        session_ids: &[PublicId],
        detail: &str,
    ) -> Result<(), StoreError> {
        let ids =
            serde_json::to_string(&session_ids.iter().map(PublicId::as_str).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".to_owned());
        let ip = actor.ip.map(|ip| ip.to_string());
        with_pool!(self.db()?, |pool| sqlx::query(
            "INSERT INTO audit_log (at, actor_user_id, actor_username, actor_ip, action, \
             target_user_id, target_username, session_ids, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(to_millis(now()))
        .bind(actor.user_id)
        .bind(&actor.username)
        .bind(&ip)
        .bind(action)
        .bind(target_user_id)
        .bind(target_username)
        .bind(&ids)
        .bind(detail)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The newest audit entries first.
    pub async fn audit_log(&self, limit: u32, offset: u64) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = i64::from(limit.clamp(1, 500));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows: Vec<AuditRow> = with_pool!(self.db()?, |pool| {
            sqlx::query_as(
            "SELECT id, at, actor_user_id, actor_username, actor_ip, action, target_user_id, \
             target_username, session_ids, detail FROM audit_log ORDER BY id DESC LIMIT $1 OFFSET $2"
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|row| AuditEntry {
                id: row.id,
                at: crate::clock::from_millis(row.at),
                actor_user_id: row.actor_user_id,
                actor_username: row.actor_username,
                actor_ip: row.actor_ip,
                action: row.action,
                target_user_id: row.target_user_id,
                target_username: row.target_username,
                session_ids: serde_json::from_str(&row.session_ids).unwrap_or_default(),
                detail: row.detail,
            })
            .collect())
    }
}
