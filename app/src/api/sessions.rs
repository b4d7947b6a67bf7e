//! The signed-in user's own sessions: list them, sign one out, sign out all the others.
//!
//! Sessions are named by their public id only, and every call is scoped to the signed-in user: an id
//! that is not theirs is "not found", never revoked.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One session as the devices page (and `GET /api/v1/sessions`) shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
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
    /// How it signed in: `password`, `password_totp`, `password_recovery_code`, `passkey`,
    /// `imported`…; `null` when not recorded (signed in before this was kept).
    #[serde(default)]
    pub auth_method: Option<String>,
    /// The same in words: "Password + authenticator app".
    #[serde(default)]
    pub auth_label: Option<String>,
    /// Its authenticator assurance level: `aal1` (one factor) or `aal2` (two, or a passkey).
    #[serde(default)]
    pub aal: Option<String>,
    /// When its user last proved themselves in it (sign-in or confirmed access), Unix milliseconds.
    #[serde(default)]
    pub authenticated_at: Option<i64>,
    /// The name its owner gave it ("Work laptop"), if any.
    #[serde(default)]
    pub label: Option<String>,
}

/// One ended session as "Recently ended" (and `GET /api/v1/sessions/ended`) shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EndedDevice {
    /// The public id it had (it names nothing live any more).
    pub public_id: String,
    /// "Chrome 131 on macOS".
    pub summary: String,
    /// The name its owner gave it, if any.
    pub label: Option<String>,
    /// Stable category key, as for live sessions.
    pub category: String,
    /// Where its last address was.
    pub location: String,
    /// ISO country code of the last address.
    pub country_code: Option<String>,
    /// The last address seen.
    pub ip: Option<String>,
    /// How it signed in, in words, when recorded.
    pub auth_label: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub last_activity_at: i64,
    /// When it ended (for an expired session, when it expired), Unix milliseconds.
    pub ended_at: i64,
    /// Why: `signed_out`, `revoked`, `not_me`, `staff`, `password_changed`, `deactivated`,
    /// `idle_timeout`, `absolute_lifetime`, `session_limit`.
    pub reason: String,
    /// The same in words, naming the device it was signed out from when known ("Signed out from
    /// Firefox 128 on Linux").
    pub reason_text: String,
    /// The public id of the session it was signed out from, when it was one of the user's.
    pub ended_by_session: Option<String>,
}

/// One sign-in, or one failed attempt, as "Sign-in activity" (and `GET
/// /api/v1/account/sign-ins`) shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SignInEntry {
    /// Unix milliseconds.
    pub at: i64,
    /// Whether it signed in.
    pub succeeded: bool,
    /// A success's method (`password`, `password_totp`, `passkey`, …), or the step a failure
    /// failed at (`password`, `second_factor`).
    pub method: String,
    /// In words: "Signed in with a passkey", "Wrong password", "Wrong code".
    pub text: String,
    /// "Chrome 131 on macOS".
    pub summary: String,
    /// Device category key.
    pub category: String,
    /// Where the address is.
    pub location: String,
    /// ISO country code.
    pub country_code: Option<String>,
    /// The address.
    pub ip: Option<String>,
    /// The public id of the session a success signed in.
    pub session: Option<String>,
}

/// The devices page's data (and `GET /api/v1/sessions`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MySessions {
    /// The current session first, then newest activity first.
    pub sessions: Vec<DeviceSession>,
    /// The most recently ended sessions (at most [`RECENTLY_ENDED`]), most recent first.
    #[serde(default)]
    pub ended: Vec<EndedDevice>,
    /// The latest sign-ins and failed attempts (at most [`RECENTLY_ENDED`]), newest first.
    #[serde(default)]
    pub sign_ins: Vec<SignInEntry>,
    /// The server's clock, Unix milliseconds, for "3 days ago".
    pub now: i64,
}

/// Every active session of the signed-in user.
#[server(prefix = "/api", endpoint = "sessions/mine", input = GetUrl)]
pub async fn list_my_sessions() -> Result<MySessions, AppError> {
    use crate::server::request;
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    my_sessions(&state, &session).await
}

/// Every active session of the session's user, this one first: the devices page's data. Sessions are
/// named by their public id, never their token.
#[cfg(feature = "ssr")]
pub async fn my_sessions(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
) -> Result<MySessions, AppError> {
    use console_sessions::sessions::{now, to_millis};
    let (user_id, sessions) = live_sessions(state, session).await?;
    let ended = ended_devices(state, user_id, &sessions, RECENTLY_ENDED).await?;
    let sign_ins = sign_in_entries(state, user_id, RECENTLY_ENDED).await?;
    Ok(MySessions {
        sessions,
        ended,
        sign_ins,
        now: to_millis(now()),
    })
}

/// The session's user (active, or refused) and their live sessions, this one first, then newest
/// activity first.
#[cfg(feature = "ssr")]
pub async fn live_sessions(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
) -> Result<(i64, Vec<DeviceSession>), AppError> {
    let user_id = crate::server::request::require_active_user_id(state, session).await?;
    let current = session.public_id().await?;
    let shown = crate::api::shown::Shown::of(state);
    let mut sessions: Vec<DeviceSession> = state
        .sessions
        .list_for_user(user_id)
        .await?
        .iter()
        .map(|record| device_session(record, current.as_ref(), &shown))
        .collect();
    // Newest activity first (the store's order), with this browser pinned on top.
    sessions.sort_by_key(|s| !s.current);
    Ok((user_id, sessions))
}

/// How many ended sessions the devices page shows.
pub const RECENTLY_ENDED: u32 = 10;

/// The user's `limit` latest sign-ins and failed attempts, newest first.
#[cfg(feature = "ssr")]
pub async fn sign_in_entries(
    state: &crate::server::state::AppState,
    user_id: i64,
    limit: u32,
) -> Result<Vec<SignInEntry>, AppError> {
    use console_sessions::accounts::FAILED_SECOND_FACTOR;
    use console_sessions::device::DeviceSummary;
    use console_sessions::sessions::{to_millis, AuthMethod};
    let shown = crate::api::shown::Shown::of(state);
    Ok(state
        .accounts
        .sign_in_activity(user_id, limit)
        .await?
        .into_iter()
        .map(|attempt| {
            let device = DeviceSummary::from_request(
                attempt.user_agent.as_deref(),
                &attempt.client_hints.clone().unwrap_or_default(),
            );
            let text = match (attempt.succeeded, attempt.method.as_str()) {
                (true, method) => format!("Signed in: {}", AuthMethod::parse(method).label()),
                (false, FAILED_SECOND_FACTOR) => "Wrong code at the second step".to_owned(),
                (false, _) => "Wrong password".to_owned(),
            };
            SignInEntry {
                at: to_millis(attempt.at),
                succeeded: attempt.succeeded,
                method: attempt.method,
                text,
                summary: device.summary,
                category: device.category.as_str().to_owned(),
                location: shown.location(attempt.ip, &attempt.place),
                ip: shown.ip(attempt.ip, attempt.at),
                country_code: attempt.place.country_code,
                session: attempt.session.map(|id| id.to_string()),
            }
        })
        .collect())
}

/// The user's `limit` most recently ended sessions, each saying which of `live` (or of
/// themselves) it was signed out from.
#[cfg(feature = "ssr")]
pub async fn ended_devices(
    state: &crate::server::state::AppState,
    user_id: i64,
    live: &[DeviceSession],
    limit: u32,
) -> Result<Vec<EndedDevice>, AppError> {
    use console_sessions::device::DeviceSummary;
    use console_sessions::sessions::{to_millis, EndedBy};
    let shown = crate::api::shown::Shown::of(state);
    let history = state.sessions.ended_sessions(user_id, limit).await?;
    // What each session is called, to say where a session was signed out from.
    let mut names: std::collections::HashMap<String, String> = live
        .iter()
        .map(|s| {
            let name = if s.current {
                "this device".to_owned()
            } else {
                s.label.clone().unwrap_or_else(|| s.summary.clone())
            };
            (s.public_id.clone(), name)
        })
        .collect();
    let devices: Vec<(EndedDevice, Option<String>)> = history
        .iter()
        .map(|ended| {
            let device = DeviceSummary::from_request(
                ended.user_agent.as_deref(),
                &ended.client_hints.clone().unwrap_or_default(),
            );
            let by = match &ended.by {
                Some(EndedBy::Session(id)) => Some(id.to_string()),
                _ => None,
            };
            let entry = EndedDevice {
                public_id: ended.public_id.to_string(),
                summary: device.summary,
                label: ended.label.clone(),
                category: device.category.as_str().to_owned(),
                location: shown.location(ended.ip, &ended.place),
                country_code: ended.place.country_code.clone(),
                ip: shown.ip(ended.ip, ended.last_activity_at),
                auth_label: ended.auth_method.map(|m| m.label().to_owned()),
                created_at: to_millis(ended.created_at),
                last_activity_at: to_millis(ended.last_activity_at),
                ended_at: to_millis(ended.ended_at),
                reason: ended.reason.as_str().to_owned(),
                reason_text: ended.reason.label().to_owned(),
                ended_by_session: by.clone(),
            };
            (entry, by)
        })
        .collect();
    for (entry, _) in &devices {
        names
            .entry(entry.public_id.clone())
            .or_insert_with(|| entry.label.clone().unwrap_or_else(|| entry.summary.clone()));
    }
    Ok(devices
        .into_iter()
        .map(|(mut entry, by)| {
            if let Some(name) = by.and_then(|id| names.get(&id)) {
                entry.reason_text = match entry.reason.as_str() {
                    "password_changed" => {
                        format!("Signed out when the password was changed on {name}")
                    }
                    _ => format!("Signed out from {name}"),
                };
            }
            entry
        })
        .collect())
}

/// One stored session as the devices page shows it; `current` is the public id of the session
/// looking at it.
#[cfg(feature = "ssr")]
pub fn device_session(
    record: &console_sessions::sessions::SessionRecord,
    current: Option<&console_sessions::sessions::PublicId>,
    shown: &crate::api::shown::Shown<'_>,
) -> DeviceSession {
    use console_sessions::device::DeviceSummary;
    use console_sessions::sessions::to_millis;
    let device = DeviceSummary::from_request(
        record.user_agent.as_deref(),
        &record.client_hints.clone().unwrap_or_default(),
    );
    let location = shown.location(record.ip, &record.place);
    // A cut first address differs from the whole last one it may well be: compare networks.
    let moved = |first: std::net::IpAddr, last: std::net::IpAddr| {
        use console_sessions::sessions::{is_cut, truncate_ip};
        if is_cut(first) {
            truncate_ip(last) != first
        } else {
            first != last
        }
    };
    let signed_in_from = match (record.first_ip, record.ip) {
        (Some(first), Some(last)) if moved(first, last) => Some(format!(
            "{} ({})",
            shown.ip(Some(first), record.created_at).unwrap_or_default(),
            shown.location(Some(first), &record.first_place)
        )),
        _ => None,
    };
    DeviceSession {
        current: current == Some(&record.public_id),
        public_id: record.public_id.to_string(),
        summary: device.summary,
        category: device.category.as_str().to_owned(),
        location,
        country_code: record.place.country_code.clone(),
        ip: shown.ip(record.ip, record.last_activity_at),
        signed_in_from,
        created_at: to_millis(record.created_at),
        last_activity_at: to_millis(record.last_activity_at),
        expires_at: to_millis(record.expires_at),
        browser_session: record.expiry.ends_with_browser(),
        auth_method: record.assurance.map(|a| a.method.as_str().to_owned()),
        auth_label: record.assurance.map(|a| a.method.label().to_owned()),
        aal: record.assurance.map(|a| a.level.as_str().to_owned()),
        authenticated_at: record.assurance.map(|a| to_millis(a.authenticated_at)),
        label: record.label.clone(),
    }
}

/// Which session [`end_own_session`] ended.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The caller's own session: they are signed out.
    Current,
    /// Another session of theirs.
    Other,
}

/// Ends one of the signed-in user's sessions, named by its public id. Ending the current one is
/// signing out. An id that is malformed, unknown or someone else's is [`AppError::NotFound`], and
/// nothing is ended.
#[cfg(feature = "ssr")]
pub async fn end_own_session(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
    public_id: &str,
) -> Result<Ended, AppError> {
    use crate::server::request;
    use console_sessions::sessions::PublicId;
    let user_id = request::require_active_user_id(state, session).await?;
    let id = PublicId::parse(public_id).ok_or(AppError::NotFound)?;
    // A signed-in user's session is stored, so it has a public id.
    let Some(current) = session.public_id().await? else {
        return Err(AppError::NotFound);
    };
    if current == id {
        session.sign_out().await?;
        return Ok(Ended::Current);
    }
    let ending = console_sessions::sessions::Ending::from_session(&current);
    if !state.sessions.end_session(user_id, &id, ending).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(user_id, public_id = %id, "session signed out by its owner");
    Ok(Ended::Other)
}

/// Ends every session of the signed-in user but this one; answers how many ended. A sensitive
/// action: the session must have proved itself within `STEP_UP_WINDOW`
/// ([`AppError::ConfirmAccessRequired`], coming back to the devices page, otherwise).
#[cfg(feature = "ssr")]
pub async fn end_other_sessions(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
) -> Result<u64, AppError> {
    use crate::server::request;
    let user_id = request::require_active_user_id(state, session).await?;
    request::require_recent_proof(state, session, "/account/sessions").await?;
    let ended = sign_out_others_of(
        state,
        session,
        user_id,
        console_sessions::sessions::EndCause::Revoked,
    )
    .await?;
    tracing::info!(user_id, ended, "other sessions signed out by their owner");
    Ok(ended)
}

/// Ends every session of `user_id` but `session` (when it is stored), for this reason (their
/// history says it, and that `session` did it); answers how many ended. For callers that checked
/// what they need first (a recent proof, the current password).
#[cfg(feature = "ssr")]
pub async fn sign_out_others_of(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
    user_id: i64,
    cause: console_sessions::sessions::EndCause,
) -> Result<u64, AppError> {
    Ok(match session.public_id().await? {
        Some(keep) => state.sessions.end_others(user_id, &keep, cause).await? as u64,
        None => 0,
    })
}

/// Signs out one of the user's sessions. Signing out the current one is signing out.
#[server(prefix = "/api", endpoint = "sessions/sign-out")]
pub async fn sign_out_session(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// The session to end, by public id: one of the caller's own (any other id is not found).
    public_id: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/sessions", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    match end_own_session(&state, &session, &public_id)
        .await
        .map_err(back)?
    {
        Ended::Current => request::redirect("/sign-in?signed_out=1"),
        Ended::Other if request::is_plain_form_post() => {
            request::redirect("/account/sessions?signed_out=session");
        }
        Ended::Other => {}
    }
    Ok(())
}

/// Signs out every session of the user but this one; answers how many ended.
#[server(prefix = "/api", endpoint = "sessions/sign-out-others")]
pub async fn sign_out_other_sessions(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
) -> Result<u64, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/sessions", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    let ended = end_other_sessions(&state, &session).await.map_err(back)?;
    if request::is_plain_form_post() {
        request::redirect(&format!("/account/sessions?signed_out={ended}"));
    }
    Ok(ended)
}

/// Names one of the signed-in user's sessions ("Work laptop"; empty forgets the name). An id that
/// is malformed, unknown or someone else's is [`AppError::NotFound`]; a name over
/// [`MAX_LABEL_CHARS`](console_sessions::sessions::MAX_LABEL_CHARS) characters is refused.
#[cfg(feature = "ssr")]
pub async fn rename_own_session(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
    public_id: &str,
    label: &str,
) -> Result<(), AppError> {
    use crate::server::request;
    use console_sessions::sessions::{PublicId, MAX_LABEL_CHARS};
    let user_id = request::require_active_user_id(state, session).await?;
    let id = PublicId::parse(public_id).ok_or(AppError::NotFound)?;
    if label.trim().chars().count() > MAX_LABEL_CHARS {
        return Err(AppError::DeviceNameTooLong);
    }
    if !state.sessions.rename(user_id, &id, label).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(user_id, public_id = %id, "session renamed by its owner");
    Ok(())
}

/// Names one of the user's sessions (an empty name forgets it).
#[server(prefix = "/api", endpoint = "sessions/rename")]
pub async fn rename_session(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// The session to name, by public id: one of the caller's own.
    public_id: String,
    /// The name; empty forgets it.
    #[server(default)]
    label: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/sessions", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    rename_own_session(&state, &session, &public_id, &label)
        .await
        .map_err(back)?;
    if request::is_plain_form_post() {
        request::redirect("/account/sessions?renamed=1");
    }
    Ok(())
}
