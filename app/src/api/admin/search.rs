//! The sessions changelist: its query as it travels in the URL, and the search behind both the page
//! and `GET /api/v1/admin/sessions`.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::row::admin_session;
use super::row::AdminSession;
use crate::error::AppError;

/// The changelist's query, as it travels in the URL (every field optional text). `GET
/// /api/v1/admin/sessions` takes the same parameters; values it does not know are ignored, as the
/// page ignores them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "ssr",
    derive(utoipa::IntoParams, utoipa::ToSchema),
    into_params(parameter_in = Query)
)]
pub struct ChangelistParams {
    /// `active` (default), `expired` or `all`.
    pub state: Option<String>,
    /// `mine` for the caller's own sessions.
    pub owner: Option<String>,
    /// A user's view: only this user id (an id that names no user limits nothing).
    pub user: Option<String>,
    /// ISO country code (two letters) of the last address.
    pub country: Option<String>,
    /// Device category key: `desktop`, `smartphone`, `mobilephone`, `appliance`, `crawler` or
    /// `unknown`.
    pub device: Option<String>,
    /// `today`, `week` or `month`.
    pub since: Option<String>,
    /// Assurance level of signed-in sessions: `aal1` (one factor) or `aal2` (two, or a passkey).
    pub aal: Option<String>,
    /// The search box: part of a username or email, an address, the start of one (`10.1.`), a
    /// network (`10.1.0.0/16`), or `ua:` and part of a user agent (at most 200 bytes).
    pub q: Option<String>,
    /// Sort column key: `user`, `ip`, `location`, `device`, `signed_in`, `last_active` or `expires`
    /// (the default).
    pub sort: Option<String>,
    /// `asc` or `desc` (default: newest first for `expires`, ascending for the others).
    pub dir: Option<String>,
    /// 1-based page of 100 rows (at most 10,000).
    pub page: Option<String>,
}

/// The user a search is limited to (`user=<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SearchUser {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
}

/// One page of a staff search over every session: the changelist's rows, and the answer of `GET
/// /api/v1/admin/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SessionSearch {
    /// The rows, at most `page_size`.
    pub sessions: Vec<AdminSession>,
    /// Matching sessions (capped, see `total_exact`).
    pub total: u64,
    /// Whether `total` is exact.
    pub total_exact: bool,
    /// 1-based page shown.
    pub page: u32,
    /// Rows per page.
    pub page_size: u32,
    /// The user the search is limited to, when `user` names one (an unknown id limits nothing).
    pub user: Option<SearchUser>,
    /// Server clock, Unix ms.
    pub now: i64,
}

/// One changelist page and what the filter panel needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changelist {
    /// The rows.
    pub sessions: Vec<AdminSession>,
    /// Matching sessions (capped, see `total_exact`).
    pub total: u64,
    /// Whether `total` is exact.
    pub total_exact: bool,
    /// 1-based page shown.
    pub page: u32,
    /// Rows per page.
    pub page_size: u32,
    /// Countries to filter by.
    pub countries: Vec<String>,
    /// The user of a user's view.
    pub user: Option<(i64, String)>,
    /// A user's view's ended sessions, most recently ended first (empty otherwise).
    #[serde(default)]
    pub ended: Vec<super::AdminEnded>,
    /// Server clock, Unix ms.
    pub now: i64,
}

/// The sessions changelist.
#[server(prefix = "/api", endpoint = "admin/sessions", input = GetUrl)]
pub async fn list_admin_sessions(
    /// The changelist's query from the page's URL; fields left out take their defaults.
    #[server(default)]
    params: ChangelistParams,
) -> Result<Changelist, AppError> {
    use crate::server::request;
    let (state, staff) = request::require_staff().await?;
    request::no_store();
    let found = search_sessions(&state, &staff, &params).await?;
    let countries = console_sessions::admin::SessionAdmin::new(state.sessions.clone())
        .countries()
        .await?;
    // A user's view shows what ended beside what is live.
    let ended = match &found.user {
        Some(user) => {
            let params = super::HistoryParams {
                user: Some(user.id.to_string()),
                ..super::HistoryParams::default()
            };
            super::search_history(&state, &params).await?.ended
        }
        None => Vec::new(),
    };
    Ok(Changelist {
        sessions: found.sessions,
        total: found.total,
        total_exact: found.total_exact,
        page: found.page,
        page_size: found.page_size,
        countries,
        user: found.user.map(|u| (u.id, u.username)),
        ended,
        now: found.now,
    })
}

/// The library's query for the changelist's `params`, for `staff` (whose own sessions
/// `owner=mine` means), and the user of a user's view. Unknown values are ignored; pages are
/// clamped to 1..=10,000.
#[cfg(feature = "ssr")]
pub async fn changelist_query(
    state: &crate::server::state::AppState,
    staff: &console_sessions::accounts::User,
    params: &ChangelistParams,
) -> Result<(console_sessions::admin::AdminQuery, Option<SearchUser>), AppError> {
    use console_sessions::admin::StateFilter;
    use console_sessions::admin::{AdminQuery, SearchTerm, SortColumn};
    use console_sessions::device::DeviceCategory;
    use console_sessions::sessions::now;
    let now_time = now();
    let start_of_day = now_time.replace_time(time::Time::MIDNIGHT);
    let sort = params
        .sort
        .as_deref()
        .and_then(SortColumn::from_key)
        .unwrap_or_default();
    let user = match params.user.as_deref().and_then(|u| u.parse::<i64>().ok()) {
        Some(id) => state.accounts.user(id).await?.map(|u| SearchUser {
            id: u.id,
            username: u.username,
        }),
        None => None,
    };
    let query = AdminQuery {
        state: match params.state.as_deref() {
            Some("expired") => StateFilter::Expired,
            Some("all") => StateFilter::All,
            _ => StateFilter::Active,
        },
        user_id: match (&user, params.owner.as_deref()) {
            (Some(user), _) => Some(user.id),
            (None, Some("mine")) => Some(staff.id),
            _ => None,
        },
        country: params
            .country
            .clone()
            .filter(|c| c.len() == 2 && c.chars().all(|c| c.is_ascii_alphabetic())),
        category: params.device.as_deref().and_then(DeviceCategory::from_key),
        aal: params
            .aal
            .as_deref()
            .and_then(console_sessions::sessions::Aal::parse),
        created_since: match params.since.as_deref() {
            Some("today") => Some(start_of_day),
            Some("week") => Some(now_time - time::Duration::days(7)),
            Some("month") => now_time
                .replace_day(1)
                .ok()
                .map(|d| d.replace_time(time::Time::MIDNIGHT)),
            _ => None,
        },
        search: params
            .q
            .as_deref()
            .filter(|q| q.len() <= 200)
            .and_then(SearchTerm::parse),
        sort,
        descending: match params.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => sort == SortColumn::Expires,
        },
        page: params
            .page
            .as_deref()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(1)
            .clamp(1, 10_000)
            - 1,
    };
    Ok((query, user))
}

/// Searches every session as the changelist's query asks, for `staff` (whose own sessions `owner=mine`
/// means). Unknown values are ignored; pages are clamped to 1..=10,000.
#[cfg(feature = "ssr")]
pub async fn search_sessions(
    state: &crate::server::state::AppState,
    staff: &console_sessions::accounts::User,
    params: &ChangelistParams,
) -> Result<SessionSearch, AppError> {
    use console_sessions::admin::PAGE_SIZE;
    let (query, user) = changelist_query(state, staff, params).await?;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let page = admin.search(&query).await?;
    let shown = crate::api::shown::Shown::of(state);
    let now_ms = shown.now_ms();
    Ok(SessionSearch {
        sessions: page.rows.iter().map(|r| admin_session(r, &shown)).collect(),
        total: page.total,
        total_exact: page.total_exact,
        page: query.page + 1,
        page_size: PAGE_SIZE,
        user,
        now: now_ms,
    })
}
