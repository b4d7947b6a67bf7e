//! What server functions need from the request they serve: its session, its anti-forgery token,
//! whether it is a plain form post, and where to send the browser afterwards.

use axum::http::header::ACCEPT;
use axum::http::request::Parts;
use console_sessions::Session;
use leptos::prelude::*;

use super::cookies;
use super::csrf::CsrfToken;
use super::state::AppState;
use crate::error::{AccountRefusal, AppError};

fn parts() -> Result<Parts, AppError> {
    use_context::<Parts>().ok_or_else(|| {
        tracing::error!("request parts are missing from the Leptos context");
        AppError::Internal
    })
}

/// The request's session (the session layer put it there).
pub fn session() -> Result<Session, AppError> {
    parts()?
        .extensions
        .get::<Session>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("the session layer is not installed");
            AppError::Internal
        })
}

/// The request's anti-forgery token (the CSRF middleware put it there).
pub fn csrf_token() -> Result<CsrfToken, AppError> {
    parts()?
        .extensions
        .get::<CsrfToken>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("the CSRF middleware is not installed");
            AppError::Internal
        })
}

/// Refuses a form whose hidden token is not the client's cookie.
pub fn check_csrf(submitted: &str) -> Result<(), AppError> {
    if csrf_token()?.verify(submitted) {
        Ok(())
    } else {
        tracing::warn!("form refused: anti-forgery token missing or wrong");
        Err(AppError::CsrfFailed)
    }
}

/// A form posted by the browser itself (JavaScript off), as opposed to a call from the hydrated page.
pub fn is_plain_form_post() -> bool {
    use_context::<Parts>().is_some_and(|parts| {
        parts
            .headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

/// The session's user id, whether or not that user is still active: only for callers that check
/// the user themselves ([`active_staff`]).
async fn require_user_id(session: &Session) -> Result<i64, AppError> {
    session.user_id().await?.ok_or(AppError::SignInRequired)
}

/// The active user the session is signed in as, if any. A session of a deactivated or deleted
/// user (deactivation ends sessions; one that slipped through) is ended here.
pub async fn signed_in_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<console_sessions::accounts::User>, AppError> {
    let Some(id) = session.user_id().await? else {
        return Ok(None);
    };
    match state.accounts.user(id).await? {
        Some(user) if user.is_active => Ok(Some(user)),
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// What every form on one's own account begins with: the form token checked, then the state,
/// the session and the signed-in, active user's id; each failure goes through `back` (see
/// [`back_with_error`]).
pub async fn own_account_form(
    csrf_token: &str,
    back: impl Fn(AppError) -> AppError,
) -> Result<(AppState, Session, i64), AppError> {
    check_csrf(csrf_token).map_err(&back)?;
    let state = state().map_err(&back)?;
    let session = session().map_err(&back)?;
    let user_id = require_active_user_id(&state, &session)
        .await
        .map_err(&back)?;
    Ok((state, session, user_id))
}

/// The signed-in user's id when that user is active, or [`AppError::SignInRequired`] (a session
/// of an inactive or deleted user is ended): what every operation on one's own account asks.
pub async fn require_active_user_id(state: &AppState, session: &Session) -> Result<i64, AppError> {
    signed_in_user(state, session)
        .await?
        .map(|user| user.id)
        .ok_or(AppError::SignInRequired)
}

/// Lets a sensitive action go ahead when the session proved itself (signed in, or confirmed
/// access) within `STEP_UP_WINDOW`. Otherwise the browser is sent to confirm access, to come back
/// to `return_to` (a path of this site: the page whose form was interrupted), and the answer is
/// [`AppError::ConfirmAccessRequired`]: do not send it back with [`back_with_error`], which would
/// redirect elsewhere.
pub async fn require_recent_proof(
    state: &AppState,
    session: &Session,
    return_to: &str,
) -> Result<(), AppError> {
    if session.confirmed_within(state.site.step_up_window).await? {
        return Ok(());
    }
    Err(send_to_confirm(&confirm_access_path(return_to)))
}

/// Sends the browser to `page`, the confirm-access page, and answers
/// [`AppError::ConfirmAccessRequired`].
fn send_to_confirm(page: &str) -> AppError {
    // The status first: a redirect set after it wins for a plain form post.
    let error = AppError::ConfirmAccessRequired;
    mark_status(&error);
    redirect(page);
    error
}

/// Where to confirm access before adding a factor that signs in by itself (a passkey), if the
/// session must first: [`require_recent_proof`]'s question, and for an account that has a second
/// factor, whether the session proved itself with one (`aal2`). A password, which someone else may
/// know, must not be enough to add a way in that needs no password.
pub async fn factor_proof_needed(
    state: &AppState,
    session: &Session,
    user_id: i64,
    return_to: &str,
) -> Result<Option<String>, AppError> {
    if !session.confirmed_within(state.site.step_up_window).await? {
        return Ok(Some(confirm_access_path(return_to)));
    }
    let strong = session
        .assurance()
        .await?
        .is_some_and(|assurance| assurance.level == console_sessions::sessions::Aal::Aal2);
    if strong || !state.accounts.second_factors(user_id).await?.any() {
        return Ok(None);
    }
    Ok(Some(format!("{}&factor=1", confirm_access_path(return_to))))
}

/// [`factor_proof_needed`] as [`require_recent_proof`] asks it: the browser is sent to confirm
/// access when it must, and the answer is [`AppError::ConfirmAccessRequired`].
pub async fn require_factor_proof(
    state: &AppState,
    session: &Session,
    user_id: i64,
    return_to: &str,
) -> Result<(), AppError> {
    match factor_proof_needed(state, session, user_id, return_to).await? {
        Some(page) => Err(send_to_confirm(&page)),
        None => Ok(()),
    }
}

/// The confirm-access page, coming back to `return_to` (a path of this site) once done.
pub fn confirm_access_path(return_to: &str) -> String {
    format!(
        "/confirm-access?next={}",
        urlencoding::encode(&crate::paths::url(return_to))
    )
}

/// [`require_staff`] for a staff action (anything that changes something): also
/// [`require_recent_proof`], coming back to `return_to`.
pub async fn require_staff_action(
    return_to: &str,
) -> Result<(AppState, console_sessions::accounts::User), AppError> {
    let (state, user) = require_staff().await?;
    require_recent_proof(&state, &session()?, return_to).await?;
    Ok((state, user))
}

/// Sends the browser to `path`, a path of this site we built (such as `/account/sessions`): under
/// the base path.
pub fn redirect(path: &str) {
    leptos_axum::redirect(&crate::paths::url(path));
}

/// Sends the browser to `url` as it is: a URL already complete, such as [`safe_next`]'s answer.
pub fn redirect_to(url: &str) {
    leptos_axum::redirect(url);
}

/// How `<Redirect>` (so the pages' `GoTo`) answers while a page renders on the server: a 302, always.
///
/// leptos_axum's own redirect makes it a 302 only when `Accept` names `text/html`, because it
/// serves server functions too, whose JavaScript callers follow a header of their own instead. A
/// page, though, is rendered only for a request of the document itself, whatever its `Accept`:
/// curl's `*/*`, or none at all, must be sent to sign in as a browser is, not be given the empty
/// page with a 200.
pub fn page_redirect(url: &str) {
    use axum::http::header::LOCATION;
    use axum::http::{HeaderValue, StatusCode};
    let Some(response) = use_context::<leptos_axum::ResponseOptions>() else {
        tracing::error!("a page redirect found no response in the Leptos context");
        return;
    };
    match HeaderValue::from_str(url) {
        Ok(location) => {
            response.insert_header(LOCATION, location);
            response.set_status(StatusCode::FOUND);
        }
        Err(_) => tracing::error!("a page redirect target is not a valid Location"),
    }
}

/// For a plain form post, sends the browser back to `page` (a path of this site, put under the base
/// path) with the error's code and the given
/// fields in the query, so the page can show the message and keep what was chosen (never what names
/// or identifies a person, such as a username: see [`back_with_error_keeping`]; never passwords).
/// The hydrated page gets the error itself and shows it in place. Returns the error, for `Err(...)`.
pub fn back_with_error(page: &str, error: AppError, keep: &[(&str, &str)]) -> AppError {
    // These sent the browser on to confirm access or to set up a factor themselves.
    if matches!(
        error,
        AppError::ConfirmAccessRequired | AppError::SecondFactorRequired
    ) {
        return error;
    }
    mark_status(&error);
    if is_plain_form_post() {
        let mut url = format!("{page}?error={}", urlencoding::encode(&error.code()));
        for (name, value) in keep {
            if !value.is_empty() && value.len() <= 2048 {
                url.push('&');
                url.push_str(name);
                url.push('=');
                url.push_str(&urlencoding::encode(value));
            }
        }
        redirect(&url);
    }
    error
}

/// [`back_with_error`], also keeping `typed` — what the person typed that may name them (a
/// username, an email address) — for the page in a short-lived flash cookie instead of the URL,
/// where proxies' logs and the browser's history would keep it. The page reads it through
/// [`take_typed`] (the viewer's `typed`).
pub fn back_with_error_keeping(
    page: &str,
    error: AppError,
    keep: &[(&str, &str)],
    typed: &[(&str, &str)],
) -> AppError {
    if is_plain_form_post() {
        if let Ok(state) = state() {
            let path = crate::paths::url(page);
            set_cookie(cookies::flash_header(&path, typed, secure_cookies(&state)));
        }
    }
    back_with_error(page, error, keep)
}

/// What was typed into the form of the page being rendered before the browser was sent back to it
/// ([`back_with_error_keeping`]); the flash cookie is cleared as it is read. Empty for any other
/// request: the cookie is sent to its page only.
pub fn take_typed() -> Vec<(String, String)> {
    let (Ok(parts), Ok(state)) = (parts(), state()) else {
        return Vec::new();
    };
    match cookies::take_flash(&parts.headers, parts.uri.path(), secure_cookies(&state)) {
        Some(flash) => {
            set_cookie(flash.removal);
            flash.fields
        }
        None => Vec::new(),
    }
}

/// The device cookie the request presented (see [`cookies`]), if any.
pub fn device_cookie(state: &AppState) -> Option<String> {
    let parts = parts().ok()?;
    cookies::device_cookie(&parts.headers, secure_cookies(state)).map(str::to_owned)
}

/// Gives the browser its new device cookie, after a successful sign-in.
pub fn give_device_cookie(state: &AppState, token: &console_sessions::accounts::DeviceToken) {
    set_cookie(cookies::device_cookie_header(token, secure_cookies(state)));
}

/// The token of the one-time link of `kind` this browser opened last (the link cookie, see
/// [`super::links`]), if that is the kind it opened.
pub fn link_token(state: &AppState, kind: super::links::LinkKind) -> Option<String> {
    let parts = parts().ok()?;
    let value = cookies::link_cookie(&parts.headers, secure_cookies(state))?;
    match super::links::LinkKind::from_cookie_value(value) {
        Some((found, token)) if found == kind => Some(token.to_owned()),
        _ => None,
    }
}

/// Forgets the link this browser opened: its token was used, or is dead.
pub fn clear_link(state: &AppState) {
    set_cookie(cookies::link_cookie_removal(secure_cookies(state)));
}

/// Hands this browser a one-time link's token of our own making, as if it had opened the link:
/// "This wasn't me" leads straight to choosing a new password with the reset token it made.
pub fn give_link(state: &AppState, kind: super::links::LinkKind, token: &str) {
    set_cookie(cookies::link_cookie_header(
        &kind.cookie_value(token),
        secure_cookies(state),
    ));
}

/// How secure the cookies of the forms are: as the session cookie, for a request of `session`.
pub fn cookie_security(state: &AppState, session: Option<&Session>) -> cookies::Security {
    cookies::Security::of(state.sessions.config().secure, session)
}

/// [`cookie_security`] for the request being served.
fn secure_cookies(state: &AppState) -> cookies::Security {
    cookie_security(state, session().ok().as_ref())
}

fn set_cookie(value: Option<axum::http::HeaderValue>) {
    if let (Some(value), Some(response)) = (value, use_context::<leptos_axum::ResponseOptions>()) {
        response.append_header(axum::http::header::SET_COOKIE, value);
    }
}

pub use crate::paths::safe_next;

pub use crate::error::mark_unavailable;

/// Gives a server function's failed answer the status of its error ([`AppError::status_code`])
/// rather than a blanket 500.
fn mark_status(error: &AppError) {
    use axum::http::StatusCode;
    if *error == AppError::DatabaseUnavailable {
        mark_unavailable();
    } else if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = StatusCode::from_u16(error.status_code()) {
            response.set_status(status);
        }
        if let AppError::Account(AccountRefusal::Throttled { retry_after_secs }) = error {
            response.insert_header(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_secs),
            );
        }
    }
}

/// The application state, for server functions.
pub fn state() -> Result<AppState, AppError> {
    AppState::from_context()
}

/// The application state and the signed-in user, when that user is active staff:
/// [`AppError::SignInRequired`] for visitors, [`AppError::Forbidden`] (and a 403) for anyone else.
pub async fn require_staff() -> Result<(AppState, console_sessions::accounts::User), AppError> {
    let state = state()?;
    let session = session()?;
    match active_staff(&state, &session).await {
        Err(AppError::Forbidden) => {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(axum::http::StatusCode::FORBIDDEN);
            }
            Err(AppError::Forbidden)
        }
        Ok(user) => match staff_policy(&state, &user).await {
            Err(error) => {
                mark_status(&error);
                redirect("/account/security?enrol=staff");
                Err(error)
            }
            Ok(()) => Ok((state, user)),
        },
        Err(error) => Err(error),
    }
}

/// `REQUIRE_SECOND_FACTOR_FOR_STAFF`: [`AppError::SecondFactorRequired`] for staff without one
/// (the pages, the forms and the JSON API all ask this).
pub async fn staff_policy(
    state: &AppState,
    user: &console_sessions::accounts::User,
) -> Result<(), AppError> {
    if state.site.require_second_factor_for_staff
        && !state.accounts.second_factors(user.id).await?.any()
    {
        tracing::info!(user_id = user.id, "staff without a second factor refused");
        return Err(AppError::SecondFactorRequired);
    }
    Ok(())
}

/// The session's user, when that user is active staff: [`AppError::SignInRequired`] for visitors,
/// [`AppError::Forbidden`] for anyone else. Server functions and the JSON API both ask this.
pub async fn active_staff(
    state: &AppState,
    session: &Session,
) -> Result<console_sessions::accounts::User, AppError> {
    let user_id = require_user_id(session).await?;
    match state.accounts.user(user_id).await? {
        Some(user) if user.is_staff && user.is_active => Ok(user),
        _ => {
            tracing::warn!(user_id, "non-staff user refused an admin function");
            Err(AppError::Forbidden)
        }
    }
}

/// The staff user acting, for the audit log.
pub fn actor(user: &console_sessions::accounts::User) -> console_sessions::admin::Actor {
    actor_from(user, session().ok().as_ref())
}

/// The staff user acting from this session (its client's address), for the audit log.
pub fn actor_from(
    user: &console_sessions::accounts::User,
    session: Option<&Session>,
) -> console_sessions::admin::Actor {
    console_sessions::admin::Actor {
        user_id: user.id,
        username: user.username.clone(),
        ip: session.and_then(|s| s.client().ip),
    }
}

/// Marks the response as never to be stored by any cache (it shows addresses, sessions, users).
pub fn no_store() {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.insert_header(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
}
