//! The staff sessions admin, as Django's admin for django-qsessions and more: a filtered, searched,
//! sorted changelist over every session with its owner, read-only details, sign-outs that go through
//! the engine (so caches are evicted), and an audit log of every staff action.
//!
//! Reads run their own SQL (sessions joined to users); every deletion goes through
//! [`SessionEngine`], never around it.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::LazyLock;

use ipnet::IpNet;
use sqlx::QueryBuilder;
use time::OffsetDateTime;

use crate::clock::{now, to_millis};
use crate::db::{escape_like, Database};
use crate::device::DeviceCategory;
use crate::sessions::db_store::{SessionRow, COLUMNS};
use crate::sessions::{ip_key, PublicId, SessionEngine, SessionRecord, StateFilter, StoreError};
use crate::with_pool;

/// Rows per changelist page, as Django's `list_per_page`.
pub const PAGE_SIZE: u32 = 100;

/// Counting stops here: past it the page says "more than 10,000", so a count never scans a million
/// rows.
pub const COUNT_LIMIT: u64 = 10_000;

/// Counting stops here instead when the search matches too many sessions to use its index: then
/// every counted row costs a scan, and a thousand is what a person reads anyway.
pub const BROAD_COUNT_LIMIT: u64 = 1_000;

/// A search whose own index finds at most this many sessions drives the query through that index;
/// a broader one is checked row by row while the order's index is walked, so a page still stops
/// after [`PAGE_SIZE`] matches. (Neither planner knows how wide an address range or a username
/// pattern is, and the wrong choice costs seconds at a million rows.)
const SEARCH_INDEX_LIMIT: i64 = 20_000;

/// The columns a changelist can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    /// The owner's username.
    User,
    /// The last address.
    Ip,
    /// Country, then city.
    Location,
    /// Device category, then user agent.
    Device,
    /// When the session was created.
    SignedIn,
    /// Last activity.
    LastActive,
    /// Expiry (the default, newest first).
    #[default]
    Expires,
}

impl SortColumn {
    /// Every column, in display order.
    pub const ALL: [SortColumn; 7] = [
        SortColumn::User,
        SortColumn::Ip,
        SortColumn::Location,
        SortColumn::Device,
        SortColumn::SignedIn,
        SortColumn::LastActive,
        SortColumn::Expires,
    ];

    /// The key used in URLs: `user`, `ip`, `location`, `device`, `signed_in`, `last_active`,
    /// `expires`.
    pub fn key(self) -> &'static str {
        match self {
            SortColumn::User => "user",
            SortColumn::Ip => "ip",
            SortColumn::Location => "location",
            SortColumn::Device => "device",
            SortColumn::SignedIn => "signed_in",
            SortColumn::LastActive => "last_active",
            SortColumn::Expires => "expires",
        }
    }

    /// The column whose [`key`](Self::key) this is.
    pub fn from_key(key: &str) -> Option<SortColumn> {
        Self::ALL.into_iter().find(|c| c.key() == key)
    }

    fn order_by(self) -> &'static [&'static str] {
        match self {
            SortColumn::User => &["u.username_key"],
            SortColumn::Ip => &["s.ip_key"],
            SortColumn::Location => &["s.country_code", "s.city"],
            SortColumn::Device => &["s.device_category", "s.user_agent"],
            SortColumn::SignedIn => &["s.created_at"],
            SortColumn::LastActive => &["s.last_activity_at"],
            SortColumn::Expires => &["s.expires_at"],
        }
    }
}

/// What the search box asked for. Addresses are recognised; `ua:` searches user agents; anything
/// else is a username or email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchTerm {
    /// An address (`10.1.2.3`) or a network (`10.1.0.0/16`): a range scan of the address index.
    Network(IpNet),
    /// The start of an address, such as `10.1.` or `2001:db8:`.
    IpPrefix(String),
    /// `ua:Firefox`: user agents containing the text, ignoring case.
    UserAgent(String),
    /// Usernames or emails containing the text, ignoring case.
    Person(String),
}

impl SearchTerm {
    /// Reads a search box; `None` when it is blank.
    pub fn parse(text: &str) -> Option<SearchTerm> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Some(rest) = text.strip_prefix("ua:") {
            let rest = rest.trim();
            return (!rest.is_empty()).then(|| SearchTerm::UserAgent(rest.to_lowercase()));
        }
        if let Ok(net) = IpNet::from_str(text) {
            return Some(SearchTerm::Network(net.trunc()));
        }
        if let Ok(ip) = IpAddr::from_str(text) {
            return Some(SearchTerm::Network(IpNet::from(ip)));
        }
        let looks_like_prefix = (text.contains('.') || text.contains(':'))
            && text
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':')
            && text.chars().next().is_some_and(|c| c.is_ascii_hexdigit());
        if looks_like_prefix {
            return Some(SearchTerm::IpPrefix(text.to_ascii_lowercase()));
        }
        Some(SearchTerm::Person(text.to_lowercase()))
    }
}

/// The changelist's filters, search, order and page.
#[derive(Debug, Clone, Default)]
pub struct AdminQuery {
    /// Active (default), expired or all.
    pub state: StateFilter,
    /// Only this user's sessions ("mine", or a user's view).
    pub user_id: Option<i64>,
    /// Only sessions last seen in this country (ISO code).
    pub country: Option<String>,
    /// Only this kind of device.
    pub category: Option<DeviceCategory>,
    /// Only sessions created at or after this moment ("today", "past 7 days", "this month").
    pub created_since: Option<OffsetDateTime>,
    /// The search box.
    pub search: Option<SearchTerm>,
    /// Sort column.
    pub sort: SortColumn,
    /// Descending order (the default for expiry).
    pub descending: bool,
    /// Zero-based page of [`PAGE_SIZE`] rows.
    pub page: u32,
}

/// A session in the changelist, with its owner.
#[derive(Debug, Clone)]
pub struct AdminRow {
    /// The session.
    pub record: SessionRecord,
    /// The owner's username, if the session has a user.
    pub username: Option<String>,
    /// The owner's email, if any.
    pub email: Option<String>,
    /// The kind of device, as stored with the user agent.
    pub category: DeviceCategory,
}

/// One page of the changelist.
#[derive(Debug, Clone)]
pub struct AdminPage {
    /// Up to [`PAGE_SIZE`] rows.
    pub rows: Vec<AdminRow>,
    /// Matching sessions, counted up to [`COUNT_LIMIT`].
    pub total: u64,
    /// `false` when there are more than [`COUNT_LIMIT`] (then `total` is the limit).
    pub total_exact: bool,
}

/// Who did an admin action, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The staff user's id.
    pub user_id: i64,
    /// Their username at the time.
    pub username: String,
    /// The address they acted from.
    pub ip: Option<IpAddr>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id, increasing.
    pub id: i64,
    /// When.
    pub at: OffsetDateTime,
    /// The staff user's id (they may since have been deleted).
    pub actor_user_id: Option<i64>,
    /// The staff user's username at the time.
    pub actor_username: String,
    /// Where they acted from.
    pub actor_ip: Option<String>,
    /// `sessions.sign_out`, `user.sign_out_all`, `user.deactivate` or `user.activate`.
    pub action: String,
    /// The user acted on, if any.
    pub target_user_id: Option<i64>,
    /// Their username at the time.
    pub target_username: Option<String>,
    /// Public ids of the sessions ended.
    pub session_ids: Vec<String>,
    /// Free text, for people.
    pub detail: String,
}

#[derive(sqlx::FromRow)]
struct AdminSqlRow {
    #[sqlx(flatten)]
    session: SessionRow,
    username: Option<String>,
    email: Option<String>,
    device_category: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor_user_id: Option<i64>,
    actor_username: String,
    actor_ip: Option<String>,
    action: String,
    target_user_id: Option<i64>,
    target_username: Option<String>,
    session_ids: String,
    detail: String,
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

/// The sessions admin: queries for staff pages, and audited sign-outs.
#[derive(Clone, Debug)]
pub struct SessionAdmin {
    db: Database,
    engine: SessionEngine,
    search_index_limit: i64,
}

impl SessionAdmin {
    /// The admin over this engine's database.
    pub fn new(engine: SessionEngine) -> Self {
        Self {
            db: engine.db_store().database().clone(),
            engine,
            search_index_limit: SEARCH_INDEX_LIMIT,
        }
    }

    /// The same admin, letting a search's own index drive only while it finds at most `sessions`
    /// (default 20,000). Both ways give the same rows; this exists so tests can take the other one.
    pub fn with_search_index_limit(mut self, sessions: u32) -> Self {
        self.search_index_limit = i64::from(sessions);
        self
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
        let (rows, counted): (Vec<AdminSqlRow>, i64) = with_pool!(&self.db, |pool| {
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
        let resolved = match term {
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
                return Ok(ResolvedSearch::UserAgent(format!(
                    "%{}%",
                    escape_like(text)
                )));
            }
            SearchTerm::Person(text) => ResolvedSearch::People {
                pattern: format!("%{}%", escape_like(text)),
                use_index: true,
            },
        };
        if !matches!(
            resolved,
            ResolvedSearch::Ranges { .. } | ResolvedSearch::People { .. }
        ) {
            return Ok(resolved);
        }
        let found: i64 = with_pool!(&self.db, |pool| {
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
        let row: Option<AdminSqlRow> = with_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(public_id.as_str())
            .fetch_optional(pool)
            .await)?;
        row.map(AdminSqlRow::into_row).transpose()
    }

    /// The countries sessions were last seen in, for the filter panel.
    pub async fn countries(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = with_pool!(&self.db, |pool| sqlx::query_as(
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
            .delete_many(public_ids)
            .await?
            .into_iter()
            .map(|d| d.public_id)
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
        let deleted = self.engine.revoke_all_listed(user_id).await?;
        let ended: Vec<PublicId> = deleted.into_iter().map(|d| d.public_id).collect();
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
        with_pool!(&self.db, |pool| sqlx::query(
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
        let rows: Vec<AuditRow> = with_pool!(&self.db, |pool| {
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

fn push_filters<'q, DB>(
    builder: &mut QueryBuilder<'q, DB>,
    query: &'q AdminQuery,
    search: Option<&'q ResolvedSearch>,
    now: i64,
) where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    // When the search is narrow enough to drive, the filters are written so that no index serves
    // them (`+ 0`, `|| ''`): otherwise SQLite's planner, which cannot tell how narrow an address
    // range is, walks a filter's index through a third of the table instead. The owner filter keeps
    // its index; one user's sessions are always few.
    let search_drives = search.is_some_and(ResolvedSearch::uses_index);
    let (expires, country, category, created) = if search_drives {
        (
            "(s.expires_at + 0)",
            "(s.country_code || '')",
            "(s.device_category || '')",
            "(s.created_at + 0)",
        )
    } else {
        (
            "s.expires_at",
            "s.country_code",
            "s.device_category",
            "s.created_at",
        )
    };
    match query.state {
        StateFilter::Active => {
            builder.push(format!(" AND {expires} > ")).push_bind(now);
        }
        StateFilter::Expired => {
            builder.push(format!(" AND {expires} <= ")).push_bind(now);
        }
        StateFilter::All => {}
    }
    if let Some(user_id) = query.user_id {
        builder.push(" AND s.user_id = ").push_bind(user_id);
    }
    if let Some(code) = &query.country {
        builder
            .push(format!(" AND {country} = "))
            .push_bind(code.to_ascii_uppercase());
    }
    if let Some(kind) = query.category {
        builder
            .push(format!(" AND {category} = "))
            .push_bind(kind.as_str());
    }
    if let Some(since) = query.created_since {
        builder
            .push(format!(" AND {created} >= "))
            .push_bind(to_millis(since));
    }
    if let Some(search) = search {
        push_search(builder, search);
    }
}

/// The search box as SQL, ready to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResolvedSearch {
    /// Address ranges, as `ip_key` bounds.
    Ranges {
        ranges: Vec<(Vec<u8>, Vec<u8>)>,
        use_index: bool,
    },
    /// A `LIKE` pattern on the written address, for prefixes that are not ranges (`2001:db8::`).
    TextPrefix(String),
    /// A `LIKE` pattern on the lower-cased user agent.
    UserAgent(String),
    /// A `LIKE` pattern on usernames and emails.
    People { pattern: String, use_index: bool },
}

impl ResolvedSearch {
    fn uses_index(&self) -> bool {
        match self {
            ResolvedSearch::Ranges { use_index, .. } | ResolvedSearch::People { use_index, .. } => {
                *use_index
            }
            ResolvedSearch::TextPrefix(_) | ResolvedSearch::UserAgent(_) => false,
        }
    }

    fn with_index(self, use_index: bool) -> Self {
        match self {
            ResolvedSearch::Ranges { ranges, .. } => ResolvedSearch::Ranges { ranges, use_index },
            ResolvedSearch::People { pattern, .. } => ResolvedSearch::People { pattern, use_index },
            other => other,
        }
    }
}

fn push_search<'q, DB>(builder: &mut QueryBuilder<'q, DB>, search: &'q ResolvedSearch)
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match search {
        ResolvedSearch::Ranges { ranges, use_index } => {
            // The same value through an expression no index is built on, so neither planner can
            // choose the address index for a range that covers much of the table.
            let column = if *use_index {
                "s.ip_key"
            } else {
                "COALESCE(s.ip_key, s.ip_key)"
            };
            // No constant `OR` arm: SQLite then stops treating a single range as one.
            if ranges.is_empty() {
                builder.push(" AND 1 = 0");
            }
            for (index, (first, last)) in ranges.iter().enumerate() {
                let joiner = match index {
                    0 if ranges.len() == 1 => " AND ",
                    0 => " AND (",
                    _ => " OR ",
                };
                builder
                    .push(format!("{joiner}{column} BETWEEN "))
                    .push_bind(first.clone())
                    .push(" AND ")
                    .push_bind(last.clone());
            }
            if ranges.len() > 1 {
                builder.push(")");
            }
        }
        ResolvedSearch::TextPrefix(pattern) => {
            builder
                .push(" AND s.ip LIKE ")
                .push_bind(pattern.as_str())
                .push(" ESCAPE '\\'");
        }
        ResolvedSearch::UserAgent(pattern) => {
            builder
                .push(" AND lower(s.user_agent) LIKE ")
                .push_bind(pattern.as_str())
                .push(" ESCAPE '\\'");
        }
        ResolvedSearch::People { pattern, use_index } => {
            let column = if *use_index {
                "s.user_id"
            } else {
                "(s.user_id + 0)"
            };
            builder
                .push(format!(
                    " AND {column} IN (SELECT id FROM users WHERE username_key LIKE "
                ))
                .push_bind(pattern.as_str())
                .push(" ESCAPE '\\' OR lower(email) LIKE ")
                .push_bind(pattern.as_str())
                .push(" ESCAPE '\\')");
        }
    }
}

/// The address ranges whose usual written form starts with `prefix`: `81.2.` is 81.2.0.0/16,
/// `81.2` is also 81.20–29 and 81.200–255, `2001:db8:` is 2001:db8::/32. `None` when the prefix
/// cannot be read that way (`::` in it, or an embedded IPv4 address); an impossible prefix such as
/// `300.` gives no ranges.
fn prefix_ranges(prefix: &str) -> Option<Vec<(IpAddr, IpAddr)>> {
    if prefix.contains(':') {
        if prefix.contains("::") || prefix.contains('.') {
            return None;
        }
        let parts: Vec<&str> = prefix.split(':').collect();
        let (partial, complete) = parts.split_last()?;
        if parts.len() > 8 {
            return Some(Vec::new());
        }
        let mut base: u128 = 0;
        for (index, group) in complete.iter().enumerate() {
            let Some(value) = (group.len() <= 4)
                .then(|| u16::from_str_radix(group, 16).ok())
                .flatten()
            else {
                return Some(Vec::new());
            };
            base |= u128::from(value) << (16 * (7 - index));
        }
        let position = complete.len();
        let groups = digit_ranges(partial, 16, 0xffff)?;
        return Some(
            groups
                .into_iter()
                .map(|(low, high)| {
                    let shift = 16 * (7 - position as u32);
                    let rest = if shift == 0 { 0 } else { (1u128 << shift) - 1 };
                    let first = base | (u128::from(low) << shift);
                    let last = base | (u128::from(high) << shift) | rest;
                    (
                        IpAddr::from(std::net::Ipv6Addr::from(first)),
                        IpAddr::from(std::net::Ipv6Addr::from(last)),
                    )
                })
                .collect(),
        );
    }
    let parts: Vec<&str> = prefix.split('.').collect();
    let (partial, complete) = parts.split_last()?;
    if parts.len() > 4 {
        return Some(Vec::new());
    }
    let mut base: u32 = 0;
    for (index, octet) in complete.iter().enumerate() {
        let Some(value) = (octet.len() <= 3 && octet.bytes().all(|b| b.is_ascii_digit()))
            .then(|| octet.parse::<u8>().ok())
            .flatten()
        else {
            return Some(Vec::new());
        };
        base |= u32::from(value) << (8 * (3 - index));
    }
    let shift = 8 * (3 - complete.len() as u32);
    let rest = if shift == 0 { 0 } else { (1u32 << shift) - 1 };
    let octets = digit_ranges(partial, 10, 0xff)?;
    Some(
        octets
            .into_iter()
            .map(|(low, high)| {
                let first = base | (low << shift);
                let last = base | (high << shift) | rest;
                (
                    IpAddr::from(std::net::Ipv4Addr::from(first)),
                    IpAddr::from(std::net::Ipv4Addr::from(last)),
                )
            })
            .collect(),
    )
}

/// The values up to `max` whose digits in `radix` (no leading zeros) start with `digits`; all of
/// them when `digits` is empty. A leading zero (`0d` in IPv6) is read as the padded form, `0d00`–
/// `0dff`. `None` when `digits` is not a number in that radix.
fn digit_ranges(digits: &str, radix: u32, max: u32) -> Option<Vec<(u32, u32)>> {
    if digits.is_empty() {
        return Some(vec![(0, max)]);
    }
    let width = if radix == 16 { 4 } else { 3 };
    if digits.len() > width {
        return Some(Vec::new());
    }
    let value = u32::from_str_radix(digits, radix).ok()?;
    if digits.len() > 1 && digits.starts_with('0') {
        let scale = radix.pow((width - digits.len()) as u32);
        let low = value * scale;
        return Some(if low > max {
            Vec::new()
        } else {
            vec![(low, (low + scale - 1).min(max))]
        });
    }
    if value == 0 {
        return Some(vec![(0, 0)]);
    }
    let mut ranges = Vec::new();
    let mut scale = 1;
    for _ in digits.len()..=width {
        let low = value * scale;
        if low > max {
            break;
        }
        ranges.push((low, (low + scale - 1).min(max)));
        scale *= radix;
    }
    Some(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_box_recognises_addresses_networks_and_user_agents() {
        let net = |s: &str| Some(SearchTerm::Network(IpNet::from_str(s).unwrap()));
        assert_eq!(SearchTerm::parse("10.1.0.0/16"), net("10.1.0.0/16"));
        assert_eq!(SearchTerm::parse(" 10.1.2.3/16 "), net("10.1.0.0/16"));
        assert_eq!(SearchTerm::parse("10.1.2.3"), net("10.1.2.3/32"));
        assert_eq!(SearchTerm::parse("2001:db8::/32"), net("2001:db8::/32"));
        assert_eq!(
            SearchTerm::parse("10.1."),
            Some(SearchTerm::IpPrefix("10.1.".into()))
        );
        assert_eq!(
            SearchTerm::parse("ua: Firefox"),
            Some(SearchTerm::UserAgent("firefox".into()))
        );
        assert_eq!(
            SearchTerm::parse("Ada"),
            Some(SearchTerm::Person("ada".into()))
        );
        assert_eq!(
            SearchTerm::parse("ada@example.com"),
            Some(SearchTerm::Person("ada@example.com".into()))
        );
        assert_eq!(SearchTerm::parse("  "), None);
        assert_eq!(SearchTerm::parse("ua:"), None);
    }

    fn v4(first: &str, last: &str) -> (IpAddr, IpAddr) {
        (first.parse().unwrap(), last.parse().unwrap())
    }

    #[test]
    fn address_prefixes_become_the_ranges_they_are_written_as() {
        assert_eq!(
            prefix_ranges("81.2."),
            Some(vec![v4("81.2.0.0", "81.2.255.255")])
        );
        assert_eq!(
            prefix_ranges("81.2"),
            Some(vec![
                v4("81.2.0.0", "81.2.255.255"),
                v4("81.20.0.0", "81.29.255.255"),
                v4("81.200.0.0", "81.255.255.255"),
            ])
        );
        assert_eq!(
            prefix_ranges("10.1.2.25"),
            Some(vec![
                v4("10.1.2.25", "10.1.2.25"),
                v4("10.1.2.250", "10.1.2.255")
            ])
        );
        assert_eq!(
            prefix_ranges("10.0"),
            Some(vec![v4("10.0.0.0", "10.0.255.255")])
        );
        assert_eq!(prefix_ranges("10.1.2.3."), Some(vec![]));
        assert_eq!(prefix_ranges("300."), Some(vec![]));
        assert_eq!(
            prefix_ranges("10.3"),
            Some(vec![
                v4("10.3.0.0", "10.3.255.255"),
                v4("10.30.0.0", "10.39.255.255"),
            ])
        );
        assert_eq!(
            prefix_ranges("2001:db8:"),
            Some(vec![v4(
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
            )])
        );
        assert_eq!(
            prefix_ranges("2001:db"),
            Some(vec![
                v4("2001:db::", "2001:db:ffff:ffff:ffff:ffff:ffff:ffff"),
                v4("2001:db0::", "2001:dbf:ffff:ffff:ffff:ffff:ffff:ffff"),
                v4("2001:db00::", "2001:dbff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ])
        );
        assert_eq!(
            prefix_ranges("fe80:0d"),
            Some(vec![v4(
                "fe80:d00::",
                "fe80:dff:ffff:ffff:ffff:ffff:ffff:ffff"
            )])
        );
        assert_eq!(prefix_ranges("2001:db8::"), None);
        assert_eq!(prefix_ranges("::ffff:1.2"), None);
    }

    #[test]
    fn sort_keys_round_trip() {
        for column in SortColumn::ALL {
            assert_eq!(SortColumn::from_key(column.key()), Some(column));
        }
        assert_eq!(SortColumn::from_key("password"), None);
    }
}
