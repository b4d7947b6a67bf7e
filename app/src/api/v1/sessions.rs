//! `/api/v1/sessions*`: the signed-in user's own sessions, named by public id (never by token), and
//! always scoped to that user: an id that is not theirs is 404 `not_found`, never revoked.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, ApiSession, ErrorBody};
use crate::api::sessions::{
    end_other_sessions, end_own_session, ended_devices, live_sessions, my_sessions,
    rename_own_session, sign_in_entries, EndedDevice, MySessions, SignInEntry,
};
use crate::server::state::AppState;

/// How many sessions were signed out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    /// Sessions ended.
    pub revoked: u64,
}

/// Every active session of the signed-in user: this one first (`current`), then newest activity
/// first.
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "sessions",
    operation_id = "list_sessions",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The user's sessions", body = MySessions),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
) -> Result<Json<MySessions>, ApiError> {
    Ok(Json(my_sessions(&state, &session).await?))
}

/// Signs out one of the user's sessions. Signing out the current one is signing out (its cookie is
/// removed).
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{public_id}",
    tag = "sessions",
    operation_id = "revoke_session",
    params(("public_id" = String, Path, description = "The session's public id (22 characters)")),
    security(("session_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 204, description = "The session ended"),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 403, description = "`csrf_failed` (X-CSRF-Token) or `cross_origin`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such session of this user (malformed, unknown, ended, or another user's)", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(public_id): ApiPath,
) -> Result<StatusCode, ApiError> {
    end_own_session(&state, &session, &public_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out every session of the user but this one.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/revoke-others",
    tag = "sessions",
    operation_id = "revoke_other_sessions",
    security(("session_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 200, description = "How many sessions ended", body = Revoked),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 403, description = "`csrf_failed` (X-CSRF-Token), `cross_origin`, or `confirm_access`: the session has not proved itself within STEP_UP_WINDOW (POST /api/v1/auth/confirm first)", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn revoke_others(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
) -> Result<Json<Revoked>, ApiError> {
    let revoked = end_other_sessions(&state, &session).await?;
    Ok(Json(Revoked { revoked }))
}

/// The user's ended sessions, most recently ended first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndedSessions {
    /// At most `limit` of them, kept `SESSION_HISTORY_DAYS`.
    pub ended: Vec<EndedDevice>,
    /// The server's clock, Unix milliseconds.
    pub now: i64,
}

/// How many entries to answer.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndedQuery {
    /// 1 to 100 (default 50); anything else is 400 `invalid_query`.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl EndedQuery {
    /// The `limit` asked for, refused (not clamped) outside 1 to 100: a client asking for 500
    /// would otherwise take 100 for everything there is.
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(limit @ 1..=100) => Ok(limit),
            Some(_) => Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_query",
                "The query string could not be read. limit: 1 to 100",
            )),
        }
    }
}

/// The user's ended sessions and why each ended (signed out, from which device, by an
/// administrator, expired, …), most recently ended first.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/ended",
    tag = "sessions",
    operation_id = "list_ended_sessions",
    params(EndedQuery),
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The user's ended sessions", body = EndedSessions),
        (status = 400, description = "`invalid_query`: the query string could not be read, or `limit` is not 1 to 100", body = ErrorBody),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn ended(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiQuery(query): ApiQuery<EndedQuery>,
) -> Result<Json<EndedSessions>, ApiError> {
    use console_sessions::sessions::{now, to_millis};
    // The live sessions name the devices sessions were signed out from.
    let (user_id, live) = live_sessions(&state, &session).await?;
    let limit = query.limit()?;
    Ok(Json(EndedSessions {
        ended: ended_devices(&state, user_id, &live, limit).await?,
        now: to_millis(now()),
    }))
}

/// A session's new name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Rename {
    /// At most 60 characters once trimmed; empty forgets the name.
    #[schema(max_length = 60)]
    pub label: String,
}

/// Names one of the user's sessions ("Work laptop"), shown on its card and to staff.
#[utoipa::path(
    patch,
    path = "/api/v1/sessions/{public_id}",
    tag = "sessions",
    operation_id = "rename_session",
    params(("public_id" = String, Path, description = "The session's public id (22 characters)")),
    request_body = Rename,
    security(("session_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 204, description = "Renamed"),
        (status = 400, description = "`device_name_too_long`, or a body that is not `{\"label\": …}`", body = ErrorBody),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 403, description = "`csrf_failed` (X-CSRF-Token) or `cross_origin`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such session of this user", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn rename(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiPath(public_id): ApiPath,
    ApiJson(body): ApiJson<Rename>,
) -> Result<StatusCode, ApiError> {
    rename_own_session(&state, &session, &public_id, &body.label).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's sign-ins and failed attempts, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignIns {
    /// At most `limit` of them, kept `SESSION_HISTORY_DAYS`.
    pub sign_ins: Vec<SignInEntry>,
}

/// The signed-in user's sign-in activity: each successful sign-in and each failed attempt on
/// the account (a wrong password, a wrong second-step code), with when, where and on what.
#[utoipa::path(
    get,
    path = "/api/v1/account/sign-ins",
    tag = "sessions",
    operation_id = "list_sign_ins",
    params(EndedQuery),
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The user's sign-in activity", body = SignIns),
        (status = 400, description = "`invalid_query`: the query string could not be read, or `limit` is not 1 to 100", body = ErrorBody),
        (status = 401, description = "`sign_in_required`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn sign_ins(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiQuery(query): ApiQuery<EndedQuery>,
) -> Result<Json<SignIns>, ApiError> {
    let user_id = crate::server::request::require_active_user_id(&state, &session).await?;
    let limit = query.limit()?;
    Ok(Json(SignIns {
        sign_ins: sign_in_entries(&state, user_id, limit).await?,
    }))
}
