//! Staff only: the sessions changelist, session details, audited sign-outs, users and the audit log.
//! Every function checks that the caller is active staff first (403 otherwise), and every one that
//! changes state checks the form token.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The changelist's query, as it travels in the URL (every field optional text). `GET
/// /api/v1/admin/sessions` takes the same parameters; values it does not know are ignored, as the
/// page ignores them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "ssr",
    derive(utoipa::IntoParams),
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

/// A session row of the changelist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AdminSession {
    /// Public id.
    pub public_id: String,
    /// Owner id.
    pub user_id: Option<i64>,
    /// Owner username.
    pub username: Option<String>,
    /// Last address.
    pub ip: Option<String>,
    /// "London, GB".
    pub location: String,
    /// ISO country code.
    pub country_code: Option<String>,
    /// "Chrome 131 on macOS".
    pub device: String,
    /// Device category key.
    pub category: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub last_activity_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Not yet expired.
    pub active: bool,
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
    /// Server clock, Unix ms.
    pub now: i64,
}

/// One session, every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSessionDetail {
    /// The row as the changelist shows it.
    pub session: AdminSession,
    /// Owner email.
    pub email: Option<String>,
    /// Full user agent.
    pub user_agent: Option<String>,
    /// Sign-in address.
    pub first_ip: Option<String>,
    /// Sign-in place.
    pub first_location: String,
    /// Client hints, as JSON.
    pub client_hints: Option<String>,
    /// Expiry policy in words.
    pub expiry: String,
    /// Last write, Unix ms.
    pub updated_at: i64,
    /// The session data, pretty JSON.
    pub data: String,
}

/// A user in the staff list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Email.
    pub email: Option<String>,
    /// Staff.
    pub is_staff: bool,
    /// May sign in.
    pub is_active: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub last_login_at: Option<i64>,
    /// Sessions not expired.
    pub active_sessions: u64,
}

/// A page of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUsers {
    /// The users.
    pub users: Vec<AdminUser>,
    /// Matching users.
    pub total: u64,
    /// The caller's id (they cannot deactivate themselves).
    pub me: i64,
}

/// One audit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    /// Unix ms.
    pub at: i64,
    /// Staff username.
    pub actor: String,
    /// Their address.
    pub actor_ip: Option<String>,
    /// What.
    pub action: String,
    /// Which user.
    pub target: Option<String>,
    /// Sessions ended.
    pub session_ids: Vec<String>,
    /// In words.
    pub detail: String,
}

#[cfg(feature = "ssr")]
fn place_label(place: &console_sessions::geo::Place) -> String {
    match (&place.city, &place.country_code) {
        (Some(city), Some(cc)) => format!("{city}, {cc}"),
        (None, Some(cc)) => cc.clone(),
        (Some(city), None) => city.clone(),
        (None, None) => "Unknown".to_owned(),
    }
}

#[cfg(feature = "ssr")]
fn admin_session(row: &console_sessions::admin::AdminRow, now: i64) -> AdminSession {
    use console_sessions::device::DeviceSummary;
    use console_sessions::sessions::to_millis;
    let record = &row.record;
    let device = DeviceSummary::from_request(
        record.user_agent.as_deref(),
        &record.client_hints.clone().unwrap_or_default(),
    );
    let expires_at = to_millis(record.expires_at);
    AdminSession {
        public_id: record.public_id.to_string(),
        user_id: record.user_id,
        username: row.username.clone(),
        ip: record.ip.map(|ip| ip.to_string()),
        location: place_label(&record.place),
        country_code: record.place.country_code.clone(),
        device: device.summary,
        category: row.category.as_str().to_owned(),
        created_at: to_millis(record.created_at),
        last_activity_at: to_millis(record.last_activity_at),
        expires_at,
        active: expires_at > now,
    }
}

/// The sessions changelist.
#[server(prefix = "/api", endpoint = "admin/sessions", input = GetUrl)]
pub async fn list_admin_sessions(
    #[server(default)] params: ChangelistParams,
) -> Result<Changelist, AppError> {
    use crate::server::request;
    let (state, staff) = request::require_staff().await?;
    request::no_store();
    let found = search_sessions(&state, &staff, &params).await?;
    let countries = console_sessions::admin::SessionAdmin::new(state.sessions.clone())
        .countries()
        .await?;
    Ok(Changelist {
        sessions: found.sessions,
        total: found.total,
        total_exact: found.total_exact,
        page: found.page,
        page_size: found.page_size,
        countries,
        user: found.user.map(|u| (u.id, u.username)),
        now: found.now,
    })
}

/// Searches every session as the changelist's query asks, for `staff` (whose own sessions `owner=mine`
/// means). Unknown values are ignored; pages are clamped to 1..=10,000.
#[cfg(feature = "ssr")]
pub async fn search_sessions(
    state: &crate::server::state::AppState,
    staff: &console_sessions::accounts::User,
    params: &ChangelistParams,
) -> Result<SessionSearch, AppError> {
    use console_sessions::admin::StateFilter;
    use console_sessions::admin::{AdminQuery, SearchTerm, SortColumn, PAGE_SIZE};
    use console_sessions::device::DeviceCategory;
    use console_sessions::sessions::{now, to_millis};
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
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let page = admin.search(&query).await?;
    let now_ms = to_millis(now_time);
    Ok(SessionSearch {
        sessions: page.rows.iter().map(|r| admin_session(r, now_ms)).collect(),
        total: page.total,
        total_exact: page.total_exact,
        page: query.page + 1,
        page_size: PAGE_SIZE,
        user,
        now: now_ms,
    })
}

/// Every field of one session (never its token).
#[server(prefix = "/api", endpoint = "admin/session", input = GetUrl)]
pub async fn get_admin_session(public_id: String) -> Result<AdminSessionDetail, AppError> {
    use crate::server::request;
    use console_sessions::sessions::{now, to_millis, Expiry, PublicId};
    let (state, _) = request::require_staff().await?;
    request::no_store();
    let id = PublicId::parse(&public_id).ok_or(AppError::NotFound)?;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let row = admin.get(&id).await?.ok_or(AppError::NotFound)?;
    let record = &row.record;
    Ok(AdminSessionDetail {
        session: admin_session(&row, to_millis(now())),
        email: row.email.clone(),
        user_agent: record.user_agent.clone(),
        first_ip: record.first_ip.map(|ip| ip.to_string()),
        first_location: place_label(&record.first_place),
        client_hints: record
            .client_hints
            .as_ref()
            .and_then(|h| serde_json::to_string_pretty(h).ok()),
        expiry: match record.expiry {
            Expiry::Default => "the configured idle timeout".to_owned(),
            Expiry::IdleSeconds(s) => format!("after {s} seconds idle"),
            Expiry::AtMillis(ms) => format!("at {}", crate::format::absolute(ms)),
            Expiry::BrowserClose => "when the browser closes".to_owned(),
        },
        updated_at: to_millis(record.updated_at),
        data: serde_json::to_string_pretty(&record.data).unwrap_or_else(|_| "{}".to_owned()),
    })
}

/// The sessions picked in the changelist (comma-separated public ids), for the confirmation page.
#[server(prefix = "/api", endpoint = "admin/selected", input = GetUrl)]
pub async fn list_selected_sessions(
    #[server(default)] ids: String,
) -> Result<Vec<AdminSession>, AppError> {
    use crate::server::request;
    use console_sessions::sessions::{now, to_millis, PublicId};
    let (state, _) = request::require_staff().await?;
    request::no_store();
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let now = to_millis(now());
    let mut found = Vec::new();
    for id in ids.split(',').filter_map(PublicId::parse).take(100) {
        if let Some(row) = admin.get(&id).await? {
            found.push(admin_session(&row, now));
        }
    }
    Ok(found)
}

/// Signs out the selected sessions (comma-separated public ids), records it, and goes back to the
/// changelist.
#[server(prefix = "/api", endpoint = "admin/sign-out-sessions")]
pub async fn admin_sign_out_sessions(
    #[server(default)] csrf_token: String,
    ids: String,
) -> Result<u64, AppError> {
    use crate::server::request;
    use console_sessions::sessions::PublicId;
    let back = |error| request::back_with_error("/admin/sessions", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff().await.map_err(back)?;
    let ids: Vec<PublicId> = ids
        .split(',')
        .filter_map(PublicId::parse)
        .take(1000)
        .collect();
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let ended = admin
        .sign_out(&request::actor(&staff), &ids)
        .await
        .map_err(|e| back(e.into()))?;
    let n = ended.len() as u64;
    request::redirect(&format!("/admin/sessions?ended={n}"));
    Ok(n)
}

/// Signs out every session of one user, records it, and goes back to that user's view.
#[server(prefix = "/api", endpoint = "admin/sign-out-user")]
pub async fn admin_sign_out_user(
    #[server(default)] csrf_token: String,
    user_id: i64,
) -> Result<u64, AppError> {
    use crate::server::request;
    let page = format!("/admin/sessions?user={user_id}");
    // `back_with_error` starts the query itself: the user goes after the error code.
    let user_param = user_id.to_string();
    let back = |error| request::back_with_error("/admin/sessions", error, &[("user", &user_param)]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff().await.map_err(back)?;
    let user = state
        .accounts
        .user(user_id)
        .await
        .map_err(|e| back(e.into()))?
        .ok_or_else(|| back(AppError::NotFound))?;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let ended = admin
        .sign_out_user(&request::actor(&staff), user.id, &user.username)
        .await
        .map_err(|e| back(e.into()))?;
    let n = ended.len() as u64;
    if request::is_plain_form_post() {
        request::redirect(&format!("{page}&ended={n}"));
    }
    Ok(n)
}

/// Users with their active-session counts.
#[server(prefix = "/api", endpoint = "admin/users", input = GetUrl)]
pub async fn list_admin_users(
    q: Option<String>,
    page: Option<u32>,
) -> Result<AdminUsers, AppError> {
    use crate::server::request;
    use console_sessions::sessions::to_millis;
    let (state, staff) = request::require_staff().await?;
    request::no_store();
    let page = page.unwrap_or(1).clamp(1, 100_000) - 1;
    let list = state
        .accounts
        .list_users(
            q.as_deref().filter(|q| q.len() <= 200),
            100,
            u64::from(page) * 100,
        )
        .await?;
    Ok(AdminUsers {
        users: list
            .users
            .into_iter()
            .map(|s| AdminUser {
                id: s.user.id,
                username: s.user.username,
                email: s.user.email,
                is_staff: s.user.is_staff,
                is_active: s.user.is_active,
                created_at: to_millis(s.user.created_at),
                last_login_at: s.user.last_login_at.map(to_millis),
                active_sessions: s.active_sessions,
            })
            .collect(),
        total: list.total,
        me: staff.id,
    })
}

/// Activates or deactivates a user; deactivating ends all their sessions. Recorded.
#[server(prefix = "/api", endpoint = "admin/set-active")]
pub async fn admin_set_active(
    #[server(default)] csrf_token: String,
    user_id: i64,
    active: bool,
) -> Result<u64, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/admin/users", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff().await.map_err(back)?;
    if user_id == staff.id && !active {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::FORBIDDEN);
        }
        return Err(back(AppError::Forbidden));
    }
    let user = state
        .accounts
        .user(user_id)
        .await
        .map_err(|e| back(e.into()))?
        .ok_or_else(|| back(AppError::NotFound))?;
    let ended = state
        .accounts
        .set_active(user_id, active)
        .await
        .map_err(|e| back(e.into()))? as u64;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let action = if active {
        "user.activate"
    } else {
        "user.deactivate"
    };
    admin
        .record(
            &request::actor(&staff),
            action,
            Some(user.id),
            Some(&user.username),
            &[],
            &format!(
                "{} {}; {ended} sessions ended",
                action.trim_start_matches("user."),
                user.username
            ),
        )
        .await
        .map_err(|e| back(e.into()))?;
    if request::is_plain_form_post() {
        request::redirect("/admin/users");
    }
    Ok(ended)
}

/// The newest audit entries.
#[server(prefix = "/api", endpoint = "admin/audit", input = GetUrl)]
pub async fn list_audit_log(page: Option<u32>) -> Result<Vec<AuditLine>, AppError> {
    use crate::server::request;
    use console_sessions::sessions::to_millis;
    let (state, _) = request::require_staff().await?;
    request::no_store();
    let page = page.unwrap_or(1).clamp(1, 100_000) - 1;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    Ok(admin
        .audit_log(100, u64::from(page) * 100)
        .await?
        .into_iter()
        .map(|e| AuditLine {
            at: to_millis(e.at),
            actor: e.actor_username,
            actor_ip: e.actor_ip,
            action: e.action,
            target: e.target_username,
            session_ids: e.session_ids,
            detail: e.detail,
        })
        .collect())
}
