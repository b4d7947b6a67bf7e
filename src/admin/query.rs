//! The changelist's question: its filters, search box, order and page, and the SQL they become.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use sqlx::QueryBuilder;
use time::OffsetDateTime;

use crate::clock::to_millis;
use crate::device::DeviceCategory;
use crate::sessions::Aal;
use crate::sessions::SessionRecord;

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

    pub(super) fn order_by(self) -> &'static [&'static str] {
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
            // `::1` starts with a colon.
            && text.chars().next().is_some_and(|c| c.is_ascii_hexdigit() || c == ':');
        if looks_like_prefix {
            return Some(SearchTerm::IpPrefix(text.to_ascii_lowercase()));
        }
        Some(SearchTerm::Person(text.to_lowercase()))
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
    /// Only signed-in sessions of this assurance level ([`Aal::Aal1`] includes sessions signed in
    /// before levels were recorded).
    pub aal: Option<Aal>,
    /// Only sessions created at or after this moment ("today", "past 7 days", "this month").
    pub created_since: Option<OffsetDateTime>,
    /// The search box.
    pub search: Option<SearchTerm>,
    /// Sort column.
    pub sort: SortColumn,
    /// Descending order (the default for expiry).
    pub descending: bool,
    /// Zero-based page of [`PAGE_SIZE`](super::PAGE_SIZE) rows.
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
    /// Up to [`PAGE_SIZE`](super::PAGE_SIZE) rows.
    pub rows: Vec<AdminRow>,
    /// Matching sessions, counted up to [`COUNT_LIMIT`](super::COUNT_LIMIT).
    pub total: u64,
    /// `false` when there are more than [`COUNT_LIMIT`](super::COUNT_LIMIT) (then `total` is the limit).
    pub total_exact: bool,
}

pub(crate) fn push_filters<'q, DB>(
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
    match query.aal {
        Some(Aal::Aal2) => {
            builder
                .push(" AND s.aal = ")
                .push_bind(i64::from(Aal::Aal2.number()));
        }
        Some(Aal::Aal1) => {
            builder
                .push(" AND s.user_id IS NOT NULL AND COALESCE(s.aal, 1) = ")
                .push_bind(i64::from(Aal::Aal1.number()));
        }
        None => {}
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
pub(crate) enum ResolvedSearch {
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
    pub(super) fn uses_index(&self) -> bool {
        match self {
            ResolvedSearch::Ranges { use_index, .. } | ResolvedSearch::People { use_index, .. } => {
                *use_index
            }
            ResolvedSearch::TextPrefix(_) | ResolvedSearch::UserAgent(_) => false,
        }
    }

    pub(super) fn with_index(self, use_index: bool) -> Self {
        match self {
            ResolvedSearch::Ranges { ranges, .. } => ResolvedSearch::Ranges { ranges, use_index },
            ResolvedSearch::People { pattern, .. } => ResolvedSearch::People { pattern, use_index },
            other => other,
        }
    }
}

pub(super) fn push_search<'q, DB>(builder: &mut QueryBuilder<'q, DB>, search: &'q ResolvedSearch)
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
            SearchTerm::parse(":"),
            Some(SearchTerm::IpPrefix(":".into()))
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
