//! Single sessions: details, the selection to confirm, and the audited sign-outs (of the selected
//! sessions, or of every session of one user).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use super::row::AdminSession;
#[cfg(feature = "ssr")]
use super::row::{admin_session, place_label};
use crate::error::AppError;

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

/// Every field of one session (never its token).
#[server(prefix = "/api", endpoint = "admin/session", input = GetUrl)]
pub async fn get_admin_session(
    /// The session, by public id; one that is malformed or names no session is not found.
    public_id: String,
) -> Result<AdminSessionDetail, AppError> {
    use crate::server::request;
    use console_sessions::sessions::{to_millis, Expiry, PublicId};
    let (state, _) = request::require_staff().await?;
    request::no_store();
    let id = PublicId::parse(&public_id).ok_or(AppError::NotFound)?;
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let row = admin.get(&id).await?.ok_or(AppError::NotFound)?;
    let shown = crate::api::shown::Shown::of(&state);
    let record = &row.record;
    Ok(AdminSessionDetail {
        session: admin_session(&row, &shown),
        email: row.email.clone(),
        user_agent: record.user_agent.clone(),
        first_ip: shown.ip(record.first_ip, record.created_at),
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
            Expiry::Limited {
                idle_seconds,
                absolute_seconds,
                browser,
            } => {
                format!(
                "after {idle_seconds} seconds idle or {absolute_seconds} seconds in all (staff){}",
                if browser { ", or when the browser closes" } else { "" }
            )
            }
        },
        updated_at: to_millis(record.updated_at),
        data: serde_json::to_string_pretty(&shown_data(&record.data))
            .unwrap_or_else(|_| "{}".to_owned()),
    })
}

/// The session data staff may read: the application's own keys (`_…`: a sign-in waiting for its
/// second step, recovery codes about to be shown once) are named but not shown.
#[cfg(feature = "ssr")]
fn shown_data(
    data: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    data.iter()
        .map(|(key, value)| {
            let value = if key.starts_with('_') {
                serde_json::Value::String("(hidden)".to_owned())
            } else {
                value.clone()
            };
            (key.clone(), value)
        })
        .collect()
}

/// The sessions picked in the changelist (comma-separated public ids), for the confirmation page.
#[server(prefix = "/api", endpoint = "admin/selected", input = GetUrl)]
pub async fn list_selected_sessions(
    /// Comma-separated public ids, as the confirmation page's URL carries them; the first 100 valid
    /// ones are looked up.
    #[server(default)]
    ids: String,
) -> Result<Vec<AdminSession>, AppError> {
    use crate::server::request;
    use console_sessions::sessions::PublicId;
    let (state, _) = request::require_staff().await?;
    request::no_store();
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    let shown = crate::api::shown::Shown::of(&state);
    let mut found = Vec::new();
    for id in ids.split(',').filter_map(PublicId::parse).take(100) {
        if let Some(row) = admin.get(&id).await? {
            found.push(admin_session(&row, &shown));
        }
    }
    Ok(found)
}

/// Signs out the selected sessions (comma-separated public ids), records it, and goes back to the
/// changelist.
#[server(prefix = "/api", endpoint = "admin/sign-out-sessions")]
pub async fn admin_sign_out_sessions(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// Comma-separated public ids; the first 1000 valid ones are signed out.
    ids: String,
) -> Result<u64, AppError> {
    use crate::server::request;
    use console_sessions::sessions::PublicId;
    let back = |error| request::back_with_error("/admin/sessions", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff_action("/admin/sessions")
        .await
        .map_err(back)?;
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
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// The user whose every session ends.
    user_id: i64,
) -> Result<u64, AppError> {
    use crate::server::request;
    let page = format!("/admin/sessions?user={user_id}");
    // `back_with_error` starts the query itself: the user goes after the error code.
    let user_param = user_id.to_string();
    let back = |error| request::back_with_error("/admin/sessions", error, &[("user", &user_param)]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff_action("/admin/sessions")
        .await
        .map_err(back)?;
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
