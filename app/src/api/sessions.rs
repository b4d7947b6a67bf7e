//! The signed-in user's own sessions: list them, sign one out, sign out all the others.
//!
//! Sessions are named by their public id only, and every call is scoped to the signed-in user: an id
//! that is not theirs is "not found", never revoked.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One session as the devices page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSession {
    /// The session's public id (never its token).
    pub public_id: String,
    /// Whether this is the session of the browser looking at the page.
    pub current: bool,
    /// "Chrome 131 on macOS".
    pub summary: String,
    /// Stable category key: desktop, smartphone, mobilephone, appliance, crawler, unknown.
    pub category: String,
    /// "London, United Kingdom", "Local network" or "Unknown location".
    pub location: String,
    /// ISO country code of the last address, for the flag.
    pub country_code: Option<String>,
    /// The last address seen.
    pub ip: Option<String>,
    /// Where the sign-in came from, when it differs from the last address.
    pub signed_in_from: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub last_activity_at: i64,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// The session ends when the browser closes rather than at `expires_at`.
    pub browser_session: bool,
}

/// The devices page's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MySessions {
    /// The current session first, then newest activity first.
    pub sessions: Vec<DeviceSession>,
    /// The server's clock, Unix milliseconds, for "3 days ago".
    pub now: i64,
}

/// Every active session of the signed-in user.
#[server(prefix = "/api", endpoint = "sessions/mine", input = GetUrl)]
pub async fn list_my_sessions() -> Result<MySessions, AppError> {
    use crate::server::request;
    use console_sessions::device::DeviceSummary;
    use console_sessions::sessions::{now, to_millis};
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    let user_id = request::require_user_id(&session).await?;
    let current = session.public_id().await?;
    let geoip = state.sessions.geoip();
    let mut sessions: Vec<DeviceSession> = state
        .sessions
        .list_for_user(user_id)
        .await?
        .into_iter()
        .map(|record| {
            let device = DeviceSummary::from_request(
                record.user_agent.as_deref(),
                &record.client_hints.clone().unwrap_or_default(),
            );
            let location = record
                .ip
                .map(|ip| geoip.location(ip))
                .unwrap_or_else(|| "Unknown location".to_owned());
            let signed_in_from = match (record.first_ip, record.ip) {
                (Some(first), Some(last)) if first != last => {
                    Some(format!("{first} ({})", geoip.location(first)))
                }
                _ => None,
            };
            DeviceSession {
                current: current.as_ref() == Some(&record.public_id),
                public_id: record.public_id.to_string(),
                summary: device.summary,
                category: device.category.as_str().to_owned(),
                location,
                country_code: record.place.country_code.clone(),
                ip: record.ip.map(|ip| ip.to_string()),
                signed_in_from,
                created_at: to_millis(record.created_at),
                last_activity_at: to_millis(record.last_activity_at),
                expires_at: to_millis(record.expires_at),
                browser_session: matches!(
                    record.expiry,
                    console_sessions::sessions::Expiry::BrowserClose
                ),
            }
        })
        .collect();
    // Newest activity first (the store's order), with this browser pinned on top.
    sessions.sort_by_key(|s| !s.current);
    Ok(MySessions {
        sessions,
        now: to_millis(now()),
    })
}

/// Signs out one of the user's sessions. Signing out the current one is signing out.
#[server(prefix = "/api", endpoint = "sessions/sign-out")]
pub async fn sign_out_session(
    #[server(default)] csrf_token: String,
    public_id: String,
) -> Result<(), AppError> {
    use crate::server::request;
    use console_sessions::sessions::PublicId;
    let back = |error| request::back_with_error("/account/sessions", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    let user_id = request::require_user_id(&session).await.map_err(back)?;
    let id = PublicId::parse(&public_id).ok_or_else(|| back(AppError::NotFound))?;
    if session.public_id().await.map_err(|e| back(e.into()))? == Some(id.clone()) {
        session.flush().await.map_err(|e| back(e.into()))?;
        request::redirect("/sign-in?signed_out=1");
        return Ok(());
    }
    if !state
        .sessions
        .revoke(user_id, &id)
        .await
        .map_err(|e| back(e.into()))?
    {
        return Err(back(AppError::NotFound));
    }
    tracing::info!(user_id, public_id = %id, "session signed out by its owner");
    if request::is_plain_form_post() {
        request::redirect("/account/sessions?signed_out=session");
    }
    Ok(())
}

/// Signs out every session of the user but this one; answers how many ended.
#[server(prefix = "/api", endpoint = "sessions/sign-out-others")]
pub async fn sign_out_other_sessions(
    #[server(default)] csrf_token: String,
) -> Result<u64, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/sessions", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    let user_id = request::require_user_id(&session).await.map_err(back)?;
    let keep = session
        .public_id()
        .await
        .map_err(|e| back(e.into()))?
        .ok_or_else(|| back(AppError::SignInRequired))?;
    let ended = state
        .sessions
        .revoke_others(user_id, &keep)
        .await
        .map_err(|e| back(e.into()))? as u64;
    tracing::info!(user_id, ended, "other sessions signed out by their owner");
    if request::is_plain_form_post() {
        request::redirect(&format!("/account/sessions?signed_out={ended}"));
    }
    Ok(ended)
}
