//! Ended sessions for staff: `/admin/history`, a user's view's "Ended sessions", and `GET
//! /api/v1/admin/history` — one search behind the three.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A history search's query, as it travels in the URL (every field optional text; values it does
/// not know are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "ssr",
    derive(utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct HistoryParams {
    /// Only this user id's ended sessions.
    pub user: Option<String>,
    /// The search box, as on the changelist: part of a username or email, an address, the start
    /// of one, a network, or `ua:` and part of a user agent (at most 200 bytes).
    pub q: Option<String>,
    /// Why it ended: `signed_out`, `revoked`, `not_me`, `staff`, `password_changed`,
    /// `deactivated`, `idle_timeout`, `absolute_lifetime` or `session_limit`.
    pub reason: Option<String>,
    /// ISO country code (two letters) of the last address.
    pub country: Option<String>,
    /// Device category key, as on the changelist.
    pub device: Option<String>,
    /// Ended on or after this day (`YYYY-MM-DD`, UTC).
    pub from: Option<String>,
    /// Ended on or before this day (`YYYY-MM-DD`, UTC).
    pub to: Option<String>,
    /// 1-based page of 100 rows (at most 10,000).
    pub page: Option<String>,
}

/// An ended session as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AdminEnded {
    /// The public id it had.
    pub public_id: String,
    /// Owner id.
    pub user_id: i64,
    /// Owner username.
    pub username: Option<String>,
    /// The name its owner gave it.
    pub label: Option<String>,
    /// "Chrome 131 on macOS".
    pub device: String,
    /// Device category key.
    pub category: String,
    /// Last address.
    pub ip: Option<String>,
    /// "London, GB".
    pub location: String,
    /// ISO country code.
    pub country_code: Option<String>,
    /// How it signed in, in words, when recorded.
    pub auth_label: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub last_activity_at: i64,
    /// Unix ms.
    pub ended_at: i64,
    /// Why, as `HistoryParams::reason` names it.
    pub reason: String,
    /// Why, in words.
    pub reason_text: String,
    /// Who ended it, in words ("Ada (staff)", "their session Xy…"), when somebody did.
    pub ended_by: Option<String>,
}

/// One page of a history search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HistorySearch {
    /// Most recently ended first, at most `page_size`.
    pub ended: Vec<AdminEnded>,
    /// Matching entries (capped, see `total_exact`).
    pub total: u64,
    /// Whether `total` is exact.
    pub total_exact: bool,
    /// 1-based page shown.
    pub page: u32,
    /// Rows per page.
    pub page_size: u32,
    /// Server clock, Unix ms.
    pub now: i64,
}

/// The history page's search.
#[server(prefix = "/api", endpoint = "admin/history", input = GetUrl)]
pub async fn list_admin_history(
    /// The page's query; fields left out take their defaults.
    #[server(default)]
    params: HistoryParams,
) -> Result<HistorySearch, AppError> {
    use crate::server::request;
    let (state, _) = request::require_staff().await?;
    request::no_store();
    search_history(&state, &params).await
}

/// A day written `YYYY-MM-DD`, as its first moment (UTC).
#[cfg(feature = "ssr")]
fn day(text: Option<&str>) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text?.trim(), format).ok()?;
    Some(date.midnight().assume_utc())
}

/// Searches the history as `params` ask. Unknown values are ignored; pages are clamped.
#[cfg(feature = "ssr")]
pub async fn search_history(
    state: &crate::server::state::AppState,
    params: &HistoryParams,
) -> Result<HistorySearch, AppError> {
    use console_sessions::admin::{HistoryQuery, SearchTerm, SessionAdmin, PAGE_SIZE};
    use console_sessions::device::DeviceCategory;
    use console_sessions::sessions::{now, to_millis, EndCause};
    let query = HistoryQuery {
        user_id: params.user.as_deref().and_then(|u| u.parse().ok()),
        country: params
            .country
            .clone()
            .filter(|c| c.len() == 2 && c.chars().all(|c| c.is_ascii_alphabetic())),
        category: params.device.as_deref().and_then(DeviceCategory::from_key),
        reason: params.reason.as_deref().and_then(EndCause::parse),
        ended_since: day(params.from.as_deref()),
        ended_before: day(params.to.as_deref()).map(|d| d + time::Duration::days(1)),
        search: params
            .q
            .as_deref()
            .filter(|q| q.len() <= 200)
            .and_then(SearchTerm::parse),
        page: params
            .page
            .as_deref()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(1)
            .clamp(1, 10_000)
            - 1,
    };
    let page = SessionAdmin::new(state.sessions.clone())
        .history(&query)
        .await?;
    let ended = admin_ended(state, page.rows).await?;
    Ok(HistorySearch {
        ended,
        total: page.total,
        total_exact: page.total_exact,
        page: query.page + 1,
        page_size: PAGE_SIZE,
        now: to_millis(now()),
    })
}

/// History entries as staff see them, naming the staff members who ended sessions.
#[cfg(feature = "ssr")]
pub async fn admin_ended(
    state: &crate::server::state::AppState,
    rows: Vec<console_sessions::admin::HistoryEntry>,
) -> Result<Vec<AdminEnded>, AppError> {
    use console_sessions::device::DeviceSummary;
    use console_sessions::sessions::{to_millis, EndedBy};
    let shown = crate::api::shown::Shown::of(state);
    let mut staff_names = std::collections::HashMap::new();
    for row in &rows {
        if let Some(EndedBy::Staff(id)) = row.ended.by {
            if let std::collections::hash_map::Entry::Vacant(entry) = staff_names.entry(id) {
                let name = state.accounts.user(id).await?.map(|u| u.username);
                entry.insert(name.unwrap_or_else(|| format!("user {id}")));
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let ended = row.ended;
            let device = DeviceSummary::from_request(
                ended.user_agent.as_deref(),
                &ended.client_hints.clone().unwrap_or_default(),
            );
            AdminEnded {
                public_id: ended.public_id.to_string(),
                user_id: ended.user_id,
                username: row.username,
                label: ended.label.clone(),
                device: device.summary,
                category: row.category.as_str().to_owned(),
                ip: shown.ip(ended.ip, ended.last_activity_at),
                location: super::row::place_label(&ended.place),
                country_code: ended.place.country_code.clone(),
                auth_label: ended.auth_method.map(|m| m.label().to_owned()),
                created_at: to_millis(ended.created_at),
                last_activity_at: to_millis(ended.last_activity_at),
                ended_at: to_millis(ended.ended_at),
                reason: ended.reason.as_str().to_owned(),
                reason_text: ended.reason.label().to_owned(),
                ended_by: match &ended.by {
                    Some(EndedBy::Staff(id)) => {
                        staff_names.get(id).map(|name| format!("{name} (staff)"))
                    }
                    Some(EndedBy::Session(id)) => Some(format!("their session {id}")),
                    None => None,
                },
            }
        })
        .collect())
}
