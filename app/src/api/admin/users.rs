//! Users: the list with active-session counts, and (audited) activation and deactivation.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

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

/// Users with their active-session counts.
#[server(prefix = "/api", endpoint = "admin/users", input = GetUrl)]
pub async fn list_admin_users(
    /// The search box: part of a username or email (longer than 200 bytes, it is ignored).
    q: Option<String>,
    /// 1-based page of 100 users (default 1, at most 100,000).
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
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// The user to change; staff cannot deactivate themselves (403).
    user_id: i64,
    /// `true` lets the user sign in again; `false` stops them and ends all their sessions.
    active: bool,
) -> Result<u64, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/admin/users", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff_action("/admin/users")
        .await
        .map_err(back)?;
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
    let action = if active {
        "user.activate"
    } else {
        "user.deactivate"
    };
    let detail = format!(
        "{} {}; {ended} sessions ended",
        action.trim_start_matches("user."),
        user.username
    );
    record(&state, &staff, action, &user, &detail)
        .await
        .map_err(back)?;
    if request::is_plain_form_post() {
        request::redirect("/admin/users");
    }
    Ok(ended)
}

/// Sends a user a link to choose a new password (to their address, through the outbox). Recorded.
#[server(prefix = "/api", endpoint = "admin/send-reset-link")]
pub async fn admin_send_reset_link(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// The user to send it to (they need an email address).
    user_id: i64,
) -> Result<String, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/admin/users", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff_action("/admin/users")
        .await
        .map_err(back)?;
    let reset = state
        .accounts
        .password_reset_for(user_id)
        .await
        .map_err(|e| back(e.into()))?;
    let valid_for = state.accounts.config().token_lifetimes.password_reset;
    state
        .mail
        .password_reset(&reset, valid_for)
        .await
        .map_err(|e| back(e.into()))?;
    record(
        &state,
        &staff,
        "user.send_reset_link",
        &reset.user,
        &format!("password reset link sent to {}", reset.user.username),
    )
    .await
    .map_err(back)?;
    if request::is_plain_form_post() {
        request::redirect("/admin/users?done=reset_link");
    }
    Ok(reset.user.username)
}

/// Sets a user's password (no current password needed). Every session of theirs ends, and their
/// address is told. Recorded (never the password).
#[server(prefix = "/api", endpoint = "admin/set-password")]
pub async fn admin_set_password(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// The user whose password to set.
    user_id: i64,
    /// The new password, held to the configured rules.
    password: String,
    /// The new password typed again.
    password_confirm: String,
) -> Result<u64, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/admin/users", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff_action("/admin/users")
        .await
        .map_err(back)?;
    if password != password_confirm {
        return Err(back(AppError::PasswordsDoNotMatch));
    }
    let user = state
        .accounts
        .user(user_id)
        .await
        .map_err(|e| back(e.into()))?
        .ok_or_else(|| back(AppError::NotFound))?;
    let ended = state
        .accounts
        .set_password(user_id, &password)
        .await
        .map_err(|e| back(e.into()))? as u64;
    record(
        &state,
        &staff,
        "user.set_password",
        &user,
        &format!("password of {} set; {ended} sessions ended", user.username),
    )
    .await
    .map_err(back)?;
    if let Err(error) = state.mail.password_changed(&user).await {
        tracing::error!(%error, user_id, "cannot queue a password changed mail");
    }
    if request::is_plain_form_post() {
        request::redirect("/admin/users?done=password");
    }
    Ok(ended)
}

/// Adds a staff action on `user` to the audit log.
#[cfg(feature = "ssr")]
async fn record(
    state: &crate::server::state::AppState,
    staff: &console_sessions::accounts::User,
    action: &str,
    user: &console_sessions::accounts::User,
    detail: &str,
) -> Result<(), AppError> {
    use crate::server::request;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    admin
        .record(
            &request::actor(staff),
            action,
            Some(user.id),
            Some(&user.username),
            &[],
            detail,
        )
        .await?;
    Ok(())
}
