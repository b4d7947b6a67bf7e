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

use crate::db::{escape_like, Database};
use crate::device::DeviceCategory;
use crate::sessions::db_store::{SessionRow, COLUMNS};
use crate::sessions::{
    ip_key, now, to_millis, PublicId, SessionEngine, SessionRecord, StateFilter, StoreError,
};
use crate::with_pool;

/// Rows per changelist page, as Django's `list_per_page`.
pub const PAGE_SIZE: u32 = 100;

/// Counting stops here: past it the page says "more than 10,000", so a count never scans a million
/// rows.
pub const COUNT_LIMIT: u64 = 10_000;

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
}

impl SessionAdmin {
    /// The admin over this engine's database.
    pub fn new(engine: SessionEngine) -> Self {
        Self {
            db: engine.db_store().database().clone(),
            engine,
        }
    }

    /// One page of the changelist.
    pub async fn search(&self, query: &AdminQuery) -> Result<AdminPage, StoreError> {
        let now = to_millis(now());
        let offset = i64::from(query.page) * i64::from(PAGE_SIZE);
        let (rows, counted): (Vec<AdminSqlRow>, i64) = with_pool!(&self.db, |pool| {
            let mut page = QueryBuilder::new(format!(
                "SELECT {}, u.username, u.email, s.device_category FROM sessions s \
                 LEFT JOIN users u ON u.id = s.user_id WHERE 1 = 1",
                *SESSION_COLUMNS
            ));
            let mut count =
                QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM sessions s WHERE 1 = 1");
            for builder in [&mut page, &mut count] {
                push_filters(builder, query, now);
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
                .push_bind(i64::try_from(COUNT_LIMIT + 1).unwrap_or(i64::MAX))
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
            total: counted.min(COUNT_LIMIT),
            total_exact: counted <= COUNT_LIMIT,
        })
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
            "SELECT DISTINCT country_code FROM sessions WHERE country_code IS NOT NULL \
             ORDER BY country_code"
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
        let deleted = self.engine.store().delete_for_user(user_id, None).await?;
        crate::metrics::sessions_ended_list(crate::metrics::EndReason::Revoked, &deleted);
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
                at: crate::sessions::from_millis(row.at),
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

fn push_filters<'q, DB>(builder: &mut QueryBuilder<'q, DB>, query: &'q AdminQuery, now: i64)
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match query.state {
        StateFilter::Active => {
            builder.push(" AND s.expires_at > ").push_bind(now);
        }
        StateFilter::Expired => {
            builder.push(" AND s.expires_at <= ").push_bind(now);
        }
        StateFilter::All => {}
    }
    if let Some(user_id) = query.user_id {
        builder.push(" AND s.user_id = ").push_bind(user_id);
    }
    if let Some(country) = &query.country {
        builder
            .push(" AND s.country_code = ")
            .push_bind(country.to_ascii_uppercase());
    }
    if let Some(category) = query.category {
        builder
            .push(" AND s.device_category = ")
            .push_bind(category.as_str());
    }
    if let Some(since) = query.created_since {
        builder
            .push(" AND s.created_at >= ")
            .push_bind(to_millis(since));
    }
    match &query.search {
        None => {}
        Some(SearchTerm::Network(net)) => {
            builder
                .push(" AND s.ip_key BETWEEN ")
                .push_bind(ip_key(net.network()).to_vec())
                .push(" AND ")
                .push_bind(ip_key(net.broadcast()).to_vec());
        }
        Some(SearchTerm::IpPrefix(prefix)) => {
            builder
                .push(" AND s.ip LIKE ")
                .push_bind(format!("{}%", escape_like(prefix)))
                .push(" ESCAPE '\\'");
        }
        Some(SearchTerm::UserAgent(text)) => {
            builder
                .push(" AND lower(s.user_agent) LIKE ")
                .push_bind(format!("%{}%", escape_like(text)))
                .push(" ESCAPE '\\'");
        }
        Some(SearchTerm::Person(text)) => {
            let pattern = format!("%{}%", escape_like(text));
            builder
                .push(" AND s.user_id IN (SELECT id FROM users WHERE username_key LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR lower(email) LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
        }
    }
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

    #[test]
    fn sort_keys_round_trip() {
        for column in SortColumn::ALL {
            assert_eq!(SortColumn::from_key(column.key()), Some(column));
        }
        assert_eq!(SortColumn::from_key("password"), None);
    }
}
