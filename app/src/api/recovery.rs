//! Getting back into an account, and the links mail carries: "forgot password", choosing a new
//! password with a reset link, confirming an email address (or a new one), and answering a new
//! sign-in alert.
//!
//! A link's token reaches these functions in the link cookie, never as an argument (see
//! `server::links`): the page is opened from the mail, and its form, with the anti-forgery token,
//! uses the link. Each works without JavaScript (a plain form post, then a redirect) and with it.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Asks for a password reset link. The answer is the same, and as quick, whether or not an account
/// matches: the lookup, the token and the mail happen after it, in the background. Requests over
/// the library's limits (per name typed, per client address) are refused there, silently: the
/// page says the same, and no mail goes out.
#[server(prefix = "/api", endpoint = "account/forgot-password")]
pub async fn forgot_password(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// A username or an email address.
    login: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| {
        request::back_with_error_keeping("/forgot-password", error, &[], &[("login", &login)])
    };
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    let client_ip = session.client().ip;
    // A match writes a token and queues a mail, which takes measurably longer than no match:
    // none of it happens before the answer. Its log lines keep this request's id.
    let work = async move {
        let valid_for = state.accounts.config().token_lifetimes.password_reset;
        match state
            .accounts
            .request_password_reset(&login, client_ip)
            .await
        {
            Ok(Some(reset)) => {
                if let Err(error) = state.mail.password_reset(&reset, valid_for).await {
                    tracing::error!(%error, user_id = reset.user.id, "cannot queue a password reset mail");
                }
            }
            Ok(None) => tracing::info!("password reset asked for no reachable account"),
            Err(error) => tracing::warn!(%error, "password reset request refused"),
        }
    };
    tokio::spawn(tracing::Instrument::instrument(
        work,
        tracing::Span::current(),
    ));
    if request::is_plain_form_post() {
        request::redirect("/forgot-password?sent=1");
    }
    Ok(())
}

/// The account the reset link this browser opened would set a new password for (its username),
/// or `None` when there is no such link or it no longer works.
#[server(prefix = "/api", endpoint = "account/reset-link", input = GetUrl)]
pub async fn reset_link() -> Result<Option<String>, AppError> {
    use crate::server::links::LinkKind;
    use crate::server::request;
    let state = request::state()?;
    request::no_store();
    let Some(token) = request::link_token(&state, LinkKind::ResetPassword) else {
        return Ok(None);
    };
    let user = state.accounts.password_reset_user(&token).await?;
    if user.is_none() {
        request::clear_link(&state);
    }
    Ok(user.map(|user| user.username))
}

/// What setting a new password did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetDone {
    /// How many sessions were signed out.
    pub sessions_ended: u64,
}

/// Sets a new password with the reset link this browser opened. Every session of the account ends
/// (this browser's too, if it was signed in as them), the link stops working, and the account's
/// address is told.
#[server(prefix = "/api", endpoint = "account/reset-password")]
pub async fn reset_password(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// The new password.
    password: String,
    /// The new password typed again.
    password_confirm: String,
) -> Result<PasswordResetDone, AppError> {
    use crate::server::links::LinkKind;
    use crate::server::request;
    let back = |error| request::back_with_error("/reset-password", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let token = take_link(&state, LinkKind::ResetPassword).map_err(back)?;
    if password != password_confirm {
        return Err(back(AppError::PasswordsDoNotMatch));
    }
    // A password the rules refuse leaves the link usable.
    let done = used(
        &state,
        state.accounts.reset_password(&token, &password).await,
    )
    .map_err(back)?;
    if let Err(error) = state.mail.password_changed(&done.user).await {
        tracing::error!(%error, user_id = done.user.id, "cannot queue a password changed mail");
    }
    let sessions_ended = done.sessions_ended as u64;
    request::redirect("/sign-in?reset=1");
    Ok(PasswordResetDone { sessions_ended })
}

/// Whether this browser opened a link of `kind` (`verify`, `email`, `yes` or `no`) that still
/// works; one that no longer does is forgotten.
#[server(prefix = "/api", endpoint = "account/pending-link", input = GetUrl)]
pub async fn pending_link(
    /// Which link: `verify` (email verification), `email` (email change), `yes` or `no` (the
    /// answers to a sign-in alert).
    kind: String,
) -> Result<bool, AppError> {
    use crate::server::request;
    let state = request::state()?;
    request::no_store();
    let Some(kind) = crate::server::links::LinkKind::from_tag(&kind) else {
        return Ok(false);
    };
    let Some(token) = request::link_token(&state, kind) else {
        return Ok(false);
    };
    let live = state.accounts.token_is_live(&token, kind.purpose()).await?;
    if !live {
        request::clear_link(&state);
    }
    Ok(live)
}

/// The token of the link of `kind` this browser opened, or an invalid-token refusal when it
/// opened none.
#[cfg(feature = "ssr")]
fn take_link(
    state: &crate::server::state::AppState,
    kind: crate::server::links::LinkKind,
) -> Result<String, AppError> {
    crate::server::request::link_token(state, kind).ok_or(AppError::Account(
        crate::error::AccountRefusal::InvalidToken,
    ))
}

/// What using a link gave: done, the link cookie is forgotten; refused because the link is dead,
/// forgotten too; refused for anything else (a password the rules refuse, the database down), kept
/// for another try.
#[cfg(feature = "ssr")]
fn used<T>(
    state: &crate::server::state::AppState,
    result: Result<T, console_sessions::accounts::AccountError>,
) -> Result<T, AppError> {
    match result {
        Ok(value) => {
            crate::server::request::clear_link(state);
            Ok(value)
        }
        Err(error) => Err(forget_if_dead(state, error.into())),
    }
}

/// Forgets the link cookie when `error` says its token no longer works; returns the error.
#[cfg(feature = "ssr")]
fn forget_if_dead(state: &crate::server::state::AppState, error: AppError) -> AppError {
    if error == AppError::Account(crate::error::AccountRefusal::InvalidToken) {
        crate::server::request::clear_link(state);
    }
    error
}

/// Confirms the email address with the verification link this browser opened.
#[server(prefix = "/api", endpoint = "account/verify-email")]
pub async fn verify_email(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
) -> Result<(), AppError> {
    use crate::server::links::LinkKind;
    use crate::server::request;
    let back = |error| request::back_with_error("/verify-email", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let token = take_link(&state, LinkKind::VerifyEmail).map_err(back)?;
    let user = used(&state, state.accounts.verify_email(&token).await).map_err(back)?;
    tracing::info!(user_id = user.id, "email address verified from a link");
    request::redirect("/verify-email?done=1");
    Ok(())
}

/// Confirms a new email address with the change link this browser opened; answers the address now
/// in force.
#[server(prefix = "/api", endpoint = "account/confirm-email")]
pub async fn confirm_email(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
) -> Result<String, AppError> {
    use crate::server::links::LinkKind;
    use crate::server::request;
    let back = |error| request::back_with_error("/confirm-email", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let token = take_link(&state, LinkKind::ConfirmEmail).map_err(back)?;
    // Taken meanwhile (EmailTaken): the link still works should the other account let it go.
    let (user, _old) =
        used(&state, state.accounts.confirm_email_change(&token).await).map_err(back)?;
    request::redirect("/confirm-email?done=1");
    Ok(user.email.unwrap_or_default())
}

/// What answering a sign-in alert did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertAnswered {
    /// "This wasn't me": whether the session was still there and has now been signed out.
    pub session_ended: bool,
}

/// Answers a new sign-in alert with the link this browser opened: `yes` ("it was me") or `no`
/// ("this wasn't me": that session ends at once, and the browser goes on to choose a new password
/// with a reset link made for it).
#[server(prefix = "/api", endpoint = "account/answer-alert")]
pub async fn answer_alert(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// `yes` or `no`: which link the page was opened with.
    answer: String,
) -> Result<AlertAnswered, AppError> {
    use crate::server::links::LinkKind;
    use crate::server::request;
    use console_sessions::accounts::AlertAnswer;
    let (kind, library_answer) = match LinkKind::from_tag(&answer) {
        Some(LinkKind::AlertNotMe) => (LinkKind::AlertNotMe, AlertAnswer::NotMe),
        _ => (LinkKind::AlertItWasMe, AlertAnswer::ItWasMe),
    };
    let page = kind.landing();
    let back = |error| request::back_with_error(&page, error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let token = take_link(&state, kind).map_err(back)?;
    let answered = match state.accounts.answer_alert(&token, library_answer).await {
        Err(error) => return Err(back(forget_if_dead(&state, error.into()))),
        Ok(answered) => answered,
    };
    match answered.password_reset {
        Some(reset) => {
            // Straight on to a new password, as if the reset link had been opened: the link
            // cookie now holds the reset token (one Set-Cookie, replacing the answer's).
            request::give_link(&state, LinkKind::ResetPassword, reset.token.expose());
            request::redirect("/reset-password?from=alert");
        }
        None => {
            request::clear_link(&state);
            request::redirect("/sign-in-alert?done=yes");
        }
    }
    Ok(AlertAnswered {
        session_ended: answered.session_ended,
    })
}
