//! The one error type that crosses the server-function boundary. Internal causes are logged on the
//! server; the browser only ever sees the short, safe message of a variant.
//!
//! Without JavaScript a form post cannot receive a value, so a failed form is redirected back to its
//! page with `?error=<code>` ([`AppError::code`]); the page turns the code back into the error with
//! [`AppError::from_code`]. Codes name variants only, so a crafted link can never put words of its
//! own on our page.

#[cfg(feature = "ssr")]
pub mod api;

/// Why the account service refused: the library's own type, carried as it is. Without features the
/// library is only this (serde and no more), so the browser build reads the same definition.
pub use console_sessions::refusal::AccountRefusal;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error a page can show to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The database did not answer in time; the request changed nothing.
    #[error(
        "The database is unavailable right now. Nothing was changed; please try again in a moment."
    )]
    DatabaseUnavailable,
    /// Something failed on the server; details are in the server log.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request could not be carried to or from the server function.
    #[error("The request could not be completed: {0}")]
    Transport(String),
    /// The form's anti-forgery token is missing or stale (an old tab, or a forged request).
    #[error("This form has expired. Reload the page and try again.")]
    CsrfFailed,
    /// The page or action needs a signed-in user.
    #[error("Please sign in to continue.")]
    SignInRequired,
    /// The signed-in user may not do this.
    #[error("You do not have permission to do this.")]
    Forbidden,
    /// What was asked for does not exist (or is not yours).
    #[error("Not found. It may already have been removed.")]
    NotFound,
    /// The new password and its confirmation differ.
    #[error("The two passwords do not match.")]
    PasswordsDoNotMatch,
    /// A sensitive action, and the session has not proved itself recently enough: confirm access
    /// with the password or a code first (`STEP_UP_WINDOW`).
    #[error("Confirm it's you first: enter your password or a code from your authenticator app.")]
    ConfirmAccessRequired,
    /// Staff must set up a second factor before using the admin (`REQUIRE_SECOND_FACTOR_FOR_STAFF`).
    #[error("Staff accounts need a second factor: set up an authenticator app first.")]
    SecondFactorRequired,
    /// Removing the last second factor needs the box ticked that says so.
    #[error("Tick the box to confirm: this removes your last second factor.")]
    ConfirmRemoval,
    /// A device's name is longer than a session's name may be.
    #[error("A device name can be at most 60 characters.")]
    DeviceNameTooLong,
    /// The account service refused: input to fix, wrong credentials, too many attempts.
    /// Untagged, so that on the wire it is the refusal itself (`"InvalidCredentials"`,
    /// `{"Throttled":{"retry_after_secs":30}}`): the hydrated page and API clients read these names.
    #[error(transparent)]
    #[serde(untagged)]
    Account(AccountRefusal),
}

impl AppError {
    /// A short code naming the error, for `?error=` after a form post without JavaScript.
    pub fn code(&self) -> String {
        match self {
            Self::Account(refusal) => refusal.code(),
            Self::DatabaseUnavailable => "database_unavailable".into(),
            Self::Internal | Self::Transport(_) => "internal".into(),
            Self::CsrfFailed => "csrf".into(),
            Self::SignInRequired => "sign_in_required".into(),
            Self::Forbidden => "forbidden".into(),
            Self::NotFound => "not_found".into(),
            Self::PasswordsDoNotMatch => "passwords_do_not_match".into(),
            Self::ConfirmAccessRequired => "confirm_access".into(),
            Self::SecondFactorRequired => "second_factor_required".into(),
            Self::ConfirmRemoval => "confirm_removal".into(),
            Self::DeviceNameTooLong => "device_name_too_long".into(),
        }
    }

    /// The error a [`AppError::code`] names; `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "database_unavailable" => Self::DatabaseUnavailable,
            "internal" => Self::Internal,
            "csrf" => Self::CsrfFailed,
            "sign_in_required" => Self::SignInRequired,
            "forbidden" => Self::Forbidden,
            "not_found" => Self::NotFound,
            "passwords_do_not_match" => Self::PasswordsDoNotMatch,
            "confirm_access" => Self::ConfirmAccessRequired,
            "second_factor_required" => Self::SecondFactorRequired,
            "confirm_removal" => Self::ConfirmRemoval,
            "device_name_too_long" => Self::DeviceNameTooLong,
            _ => return AccountRefusal::from_code(code).map(Self::Account),
        })
    }

    /// The HTTP status a server function answers with this error: 503 for the database, 401/403
    /// for who may do what, 429 when throttled, 400 for input to fix, 500 for our own failures. Load
    /// balancers and metrics then tell a wrong password from a bug.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Account(refusal) => refusal.status_code(),
            Self::DatabaseUnavailable => 503,
            Self::Internal | Self::Transport(_) => 500,
            Self::SignInRequired => 401,
            Self::CsrfFailed
            | Self::Forbidden
            | Self::ConfirmAccessRequired
            | Self::SecondFactorRequired => 403,
            Self::NotFound => 404,
            Self::PasswordsDoNotMatch | Self::ConfirmRemoval | Self::DeviceNameTooLong => 400,
        }
    }

    /// The form field the error is about, so the page can mark it.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Account(refusal) => refusal.field(),
            Self::PasswordsDoNotMatch => Some("password_confirm"),
            Self::ConfirmRemoval => Some("confirm"),
            Self::DeviceNameTooLong => Some("label"),
            _ => None,
        }
    }
}

impl From<AccountRefusal> for AppError {
    fn from(refusal: AccountRefusal) -> Self {
        Self::Account(refusal)
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

/// [`AppError::DatabaseUnavailable`], with the response being built marked 503 (a page rendered on
/// the server, or a server function's answer), so that neither a person nor a load balancer reads
/// the failure as a success or as a bug.
#[cfg(feature = "ssr")]
fn database_unavailable() -> AppError {
    mark_unavailable();
    AppError::DatabaseUnavailable
}

/// Marks the response being built (a page rendered on the server, or a server function's answer) as
/// 503 Service Unavailable, to be retried shortly and never cached. A redirect set afterwards (a
/// plain form sent back to its page with `?error=`) still wins.
#[cfg(feature = "ssr")]
pub fn mark_unavailable() {
    use axum::http::header::{CACHE_CONTROL, RETRY_AFTER};
    use axum::http::{HeaderValue, StatusCode};
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(StatusCode::SERVICE_UNAVAILABLE);
        response.insert_header(RETRY_AFTER, HeaderValue::from_static("5"));
        response.insert_header(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(feature = "ssr")]
impl From<console_sessions::DbError> for AppError {
    fn from(error: console_sessions::DbError) -> Self {
        tracing::error!(%error, "database error in a server function");
        database_unavailable()
    }
}

#[cfg(feature = "ssr")]
impl From<console_sessions::sessions::SessionError> for AppError {
    fn from(error: console_sessions::sessions::SessionError) -> Self {
        use console_sessions::sessions::SessionError;
        match error {
            SessionError::Store(error) => {
                tracing::error!(%error, "session store failed in a server function");
                database_unavailable()
            }
            SessionError::Value { key, source } => {
                tracing::error!(%key, %source, "session value has an unexpected shape");
                AppError::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl From<console_sessions::sessions::StoreError> for AppError {
    fn from(error: console_sessions::sessions::StoreError) -> Self {
        tracing::error!(%error, "session store failed in a server function");
        database_unavailable()
    }
}

/// Mail that could not be queued: the outbox is in the database, so that is the database (503);
/// anything else (a message that would not render) is ours.
#[cfg(feature = "ssr")]
impl From<console_sessions::mail::MailError> for AppError {
    fn from(error: console_sessions::mail::MailError) -> Self {
        use console_sessions::mail::MailError;
        match error {
            MailError::Database(error) => {
                tracing::error!(%error, "cannot queue mail");
                database_unavailable()
            }
            error => {
                tracing::error!(%error, "cannot write mail");
                Self::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl From<console_sessions::accounts::AccountError> for AppError {
    fn from(error: console_sessions::accounts::AccountError) -> Self {
        use console_sessions::accounts::AccountError as A;
        match error {
            A::Refused(refusal) => Self::Account(refusal),
            A::UserNotFound => Self::NotFound,
            error @ (A::Database(_) | A::Sessions(_)) => {
                tracing::error!(error = ?error, "account storage failed");
                database_unavailable()
            }
            error @ A::Internal { .. } => {
                tracing::error!(error = ?error, "account operation failed");
                Self::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_the_same_error() {
        let errors = [
            AppError::DatabaseUnavailable,
            AppError::Internal,
            AppError::CsrfFailed,
            AppError::SignInRequired,
            AppError::Forbidden,
            AppError::NotFound,
            AppError::PasswordsDoNotMatch,
            AppError::ConfirmAccessRequired,
            AppError::SecondFactorRequired,
            AppError::ConfirmRemoval,
        ]
        .into_iter()
        .chain(every_refusal().map(AppError::Account));
        for error in errors {
            assert_eq!(AppError::from_code(&error.code()), Some(error.clone()));
        }
    }

    #[test]
    fn crafted_codes_are_ignored() {
        for code in [
            "",
            "nope",
            "internal.3",
            "throttled",
            "throttled.x",
            "<b>hi</b>",
        ] {
            assert_eq!(AppError::from_code(code), None, "{code}");
        }
        assert_eq!(
            AppError::Transport("call this number".into()).code(),
            "internal"
        );
        assert_eq!(
            AppError::from_code("throttled.99999999999").map(|e| e.to_string()),
            Some("Too many failed attempts. Try again in 1440 minutes.".into())
        );
    }

    fn every_refusal() -> impl Iterator<Item = AccountRefusal> {
        AccountRefusal::samples().into_iter()
    }

    #[test]
    fn refusals_keep_their_own_names_on_the_wire() {
        let json = |error: &AppError| serde_json::to_value(error).unwrap();
        assert_eq!(
            json(&AppError::Account(AccountRefusal::InvalidCredentials)),
            "InvalidCredentials"
        );
        assert_eq!(
            json(&AppError::Account(AccountRefusal::Throttled {
                retry_after_secs: 30
            })),
            serde_json::json!({"Throttled": {"retry_after_secs": 30}})
        );
        assert_eq!(json(&AppError::CsrfFailed), "CsrfFailed");
        for error in [
            AppError::Transport("lost".into()),
            AppError::PasswordsDoNotMatch,
        ]
        .into_iter()
        .chain(every_refusal().map(AppError::Account))
        {
            let back: AppError = serde_json::from_value(json(&error)).unwrap();
            assert_eq!(back, error);
        }
    }
}
