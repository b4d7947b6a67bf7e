//! `/api/v1/auth/*` and `/api/v1/me`: signing in and out with the session cookie, the CSRF token,
//! and who is signed in.

use axum::extract::{Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiSession, ErrorBody};
use crate::api::account::{check_password, start_session, ViewerUser};
use crate::error::AppError;
use crate::server::csrf::CsrfToken;
use crate::server::request::signed_in_user;
use crate::server::state::AppState;
use crate::server::{cookies, request};

/// `POST /api/v1/auth/sign-in`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignInRequest {
    /// The username (case and compatibility forms are ignored, as on the sign-in page).
    #[schema(min_length = 1, max_length = 150)]
    pub username: String,
    /// The password.
    #[schema(format = Password, min_length = 1, max_length = 1024)]
    pub password: String,
    /// For an account with a second factor: six digits from its authenticator app, or a recovery
    /// code. Without it such an account answers 400 `code_required`.
    #[serde(default)]
    pub code: Option<String>,
}

/// `POST /api/v1/auth/confirm`'s body: one of the two.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConfirmRequest {
    /// The password.
    #[schema(format = Password, min_length = 1, max_length = 1024)]
    #[serde(default)]
    pub password: Option<String>,
    /// A code from the authenticator app, or a recovery code; used when given.
    #[serde(default)]
    pub code: Option<String>,
}

/// The anti-forgery token to send as `X-CSRF-Token`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CsrfTokenBody {
    /// The value of the client's `csrftoken` cookie.
    pub csrf_token: String,
}

/// Signs in with a username and password: the session cookie is set as the sign-in form sets it.
///
/// Failed attempts are throttled as on the sign-in page, and a success sets the same device cookie:
/// a client that keeps it is not locked out by others' failures on its account. The session
/// gets a new token (a token planted before sign-in is worthless); a session of another user in the
/// same client is replaced by a fresh one.
#[utoipa::path(
    post,
    path = "/api/v1/auth/sign-in",
    tag = "auth",
    operation_id = "sign_in",
    request_body = SignInRequest,
    security(("csrf_header" = [])),
    responses(
        (status = 200, description = "Signed in; `Set-Cookie` carries the session cookie and the device cookie", body = ViewerUser,
            headers(("Set-Cookie" = String, description = "The session cookie and the device cookie (HttpOnly)"))),
        (status = 400, description = "`malformed_json`, `invalid_body`, `username_required`, `password_required`... (`field` names the input)", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: unknown user, wrong password or inactive account", body = ErrorBody),
        (status = 403, description = "`csrf_failed` (X-CSRF-Token) or `cross_origin`; `email_not_verified`: with REQUIRE_VERIFIED_EMAIL, the right password to an account whose address is not confirmed yet (a new link was sent to it)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = ErrorBody),
        (status = 429, description = "`throttled`: too many failed attempts; `retry_after_secs` says for how long", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    request_headers: HeaderMap,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<Response, ApiError> {
    let security = request::cookie_security(&state, Some(&session));
    let device = cookies::device_cookie(&request_headers, security);
    let signed_in = check_password(
        &state,
        &body.username,
        &body.password,
        session.client(),
        device,
    )
    .await?;
    // The device cookie presented is void from now on: the new one goes out whatever follows.
    let mut headers = HeaderMap::new();
    if let Some(cookie) = cookies::device_cookie_header(&signed_in.device_token, security) {
        headers.append(SET_COOKIE, cookie);
    }
    let second_factor = match state.accounts.second_factors(signed_in.user.id).await {
        Ok(factors) => factors.any(),
        Err(error) => return Ok((headers, ApiError::from(AppError::from(error))).into_response()),
    };
    if second_factor {
        let method = match body.code.as_deref().filter(|code| !code.trim().is_empty()) {
            None => Err(AppError::from(crate::error::AccountRefusal::CodeRequired)),
            Some(code) => state
                .accounts
                .verify_second_factor_from(signed_in.user.id, code, session.client())
                .await
                .map_err(AppError::from),
        };
        let signed = match method {
            Ok(method) => session
                .sign_in(signed_in.user.id, method)
                .await
                .map_err(AppError::from),
            Err(error) => Err(error),
        };
        return Ok(answer_sign_in(&state, &session, headers, signed_in.user, signed).await);
    }
    let signed = start_session(&session, signed_in.user.id, true).await;
    Ok(answer_sign_in(&state, &session, headers, signed_in.user, signed).await)
}

/// The answer to a sign-in: the user, once `MAX_SESSIONS_PER_USER` is enforced, or the error.
async fn answer_sign_in(
    state: &AppState,
    session: &console_sessions::Session,
    headers: HeaderMap,
    user: console_sessions::accounts::User,
    signed: Result<(), AppError>,
) -> axum::response::Response {
    let limited = match signed {
        Ok(()) => match crate::api::account::apply_staff_lifetimes(state, session, user.id).await {
            Ok(()) => crate::api::account::enforce_session_limit(state, session, user.id)
                .await
                .map(drop),
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    match limited {
        Ok(()) => (headers, Json(ViewerUser::from(user))).into_response(),
        Err(error) => (headers, ApiError::from(error)).into_response(),
    }
}

/// Confirms access (step-up) before a sensitive call — signing out the other sessions, every staff
/// action — with the password or a code, checked and throttled as at sign-in. The session counts
/// as just proved for `STEP_UP_WINDOW`, under a new token (`Set-Cookie`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/confirm",
    tag = "auth",
    operation_id = "confirm_access",
    request_body = ConfirmRequest,
    security(("session_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 204, description = "Confirmed; `Set-Cookie` carries the session's new token"),
        (status = 400, description = "`wrong_current_password`, `invalid_body`...", body = ErrorBody),
        (status = 401, description = "`sign_in_required`; `invalid_code`", body = ErrorBody),
        (status = 403, description = "`csrf_failed` (X-CSRF-Token) or `cross_origin`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/json`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn confirm(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
    ApiJson(body): ApiJson<ConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    use console_sessions::sessions::AuthMethod;
    let user_id = request::require_active_user_id(&state, &session).await?;
    let method = match body.code.filter(|code| !code.trim().is_empty()) {
        Some(code) => state
            .accounts
            .verify_second_factor_from(user_id, &code, session.client())
            .await
            .map_err(AppError::from)?,
        None => {
            state
                .accounts
                .confirm_password(user_id, body.password.as_deref().unwrap_or_default())
                .await
                .map_err(AppError::from)?;
            AuthMethod::Password
        }
    };
    session
        .confirm_access(method)
        .await
        .map_err(AppError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out: the session ends on the server and its cookie is removed. Signed out already is fine.
#[utoipa::path(
    post,
    path = "/api/v1/auth/sign-out",
    tag = "auth",
    operation_id = "sign_out",
    security(("session_cookie" = [], "csrf_header" = [])),
    responses(
        (status = 204, description = "Signed out; `Set-Cookie` removes the session cookie"),
        (status = 403, description = "`csrf_failed` (X-CSRF-Token) or `cross_origin`", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn sign_out(ApiSession(session): ApiSession) -> Result<StatusCode, ApiError> {
    session.sign_out().await.map_err(AppError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The anti-forgery token: send it back as `X-CSRF-Token` on every POST and DELETE. When the client
/// has no `csrftoken` cookie yet, this answer sets it (the token is then good from the next request
/// on).
#[utoipa::path(
    get,
    path = "/api/v1/auth/csrf",
    tag = "auth",
    operation_id = "csrf_token",
    security(()),
    responses(
        (status = 200, description = "The token; `Set-Cookie` sets the `csrftoken` cookie when the client had none", body = CsrfTokenBody),
    ),
)]
pub async fn csrf_token(request: Request) -> Result<Json<CsrfTokenBody>, ApiError> {
    let token = request.extensions().get::<CsrfToken>().ok_or_else(|| {
        tracing::error!("the CSRF middleware is not installed");
        ApiError::from(AppError::Internal)
    })?;
    Ok(Json(CsrfTokenBody {
        csrf_token: token.value().to_owned(),
    }))
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "auth",
    operation_id = "me",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The signed-in user", body = ViewerUser),
        (status = 401, description = "`sign_in_required`: no session, or it has ended", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
)]
pub async fn me(
    State(state): State<AppState>,
    ApiSession(session): ApiSession,
) -> Result<Json<ViewerUser>, ApiError> {
    match signed_in_user(&state, &session).await? {
        Some(user) => Ok(Json(user.into())),
        None => Err(AppError::SignInRequired.into()),
    }
}
