//! The one error type that crosses the server-function boundary. Internal causes are logged on the
//! server; the browser only ever sees the short, safe message of a variant.
//!
//! Without JavaScript a form post cannot receive a value, so a failed form is redirected back to its
//! page with `?error=<code>` ([`AppError::code`]); the page turns the code back into the error with
//! [`AppError::from_code`]. Codes name variants only, so a crafted link can never put words of its
//! own on our page.

#[cfg(feature = "ssr")]
pub mod api;

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
    /// Unknown username, wrong password or inactive account — deliberately one message.
    #[error("The username or password is incorrect.")]
    InvalidCredentials,
    /// Too many failed attempts for this account or address.
    #[error("Too many failed attempts. Try again in {}.", wait_text(*retry_after_secs))]
    Throttled {
        /// Seconds until the next attempt is accepted.
        retry_after_secs: u64,
    },
    /// Sign-up is turned off by configuration.
    #[error("Sign-up is closed. Ask an administrator for an account.")]
    SignUpClosed,
    /// Changing a password: the current one is wrong.
    #[error("The current password is incorrect.")]
    WrongCurrentPassword,
    /// The new password and its confirmation differ.
    #[error("The two passwords do not match.")]
    PasswordsDoNotMatch,
    /// The username is empty.
    #[error("Enter a username.")]
    UsernameRequired,
    /// The username is too long.
    #[error("A username can have at most {max} characters.")]
    UsernameTooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// The username has control or invisible characters.
    #[error("A username cannot contain control characters or invisible formatting characters.")]
    UsernameInvalidCharacters,
    /// Another account has this username, ignoring case.
    #[error("This username is already taken.")]
    UsernameTaken,
    /// The email address does not look like one.
    #[error("Enter a valid email address (or leave it empty).")]
    EmailInvalid,
    /// The password is empty.
    #[error("Enter a password.")]
    PasswordRequired,
    /// The new password is too short.
    #[error("The password must have at least {min} characters.")]
    PasswordTooShort {
        /// The fewest characters allowed.
        min: usize,
    },
    /// The password is too long.
    #[error("The password can have at most {max} characters.")]
    PasswordTooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// The new password is the username.
    #[error("The password cannot be the same as the username.")]
    PasswordEqualsUsername,
}

/// "1 second", "40 seconds", "3 minutes".
fn wait_text(seconds: u64) -> String {
    let (count, unit) = match seconds.max(1) {
        s if s < 60 => (s, "second"),
        s => (s.div_ceil(60), "minute"),
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

impl AppError {
    /// A short code naming the error, for `?error=` after a form post without JavaScript.
    pub fn code(&self) -> String {
        match self {
            Self::Throttled { retry_after_secs } => format!("throttled.{retry_after_secs}"),
            Self::UsernameTooLong { max } => format!("username_too_long.{max}"),
            Self::PasswordTooShort { min } => format!("password_too_short.{min}"),
            Self::PasswordTooLong { max } => format!("password_too_long.{max}"),
            Self::DatabaseUnavailable => "database_unavailable".into(),
            Self::Internal | Self::Transport(_) => "internal".into(),
            Self::CsrfFailed => "csrf".into(),
            Self::SignInRequired => "sign_in_required".into(),
            Self::Forbidden => "forbidden".into(),
            Self::NotFound => "not_found".into(),
            Self::InvalidCredentials => "invalid_credentials".into(),
            Self::SignUpClosed => "sign_up_closed".into(),
            Self::WrongCurrentPassword => "wrong_current_password".into(),
            Self::PasswordsDoNotMatch => "passwords_do_not_match".into(),
            Self::UsernameRequired => "username_required".into(),
            Self::UsernameInvalidCharacters => "username_invalid_characters".into(),
            Self::UsernameTaken => "username_taken".into(),
            Self::EmailInvalid => "email_invalid".into(),
            Self::PasswordRequired => "password_required".into(),
            Self::PasswordEqualsUsername => "password_equals_username".into(),
        }
    }

    /// The error a [`AppError::code`] names; `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        let (name, number) = match code.split_once('.') {
            Some((name, number)) => (name, Some(number.parse::<u64>().ok()?)),
            None => (code, None),
        };
        // Numbers come from a URL: keep them to what the server could have sent.
        let small = |n: u64| usize::try_from(n.min(100_000)).ok();
        Some(match (name, number) {
            ("throttled", Some(n)) => Self::Throttled {
                retry_after_secs: n.min(86_400),
            },
            ("username_too_long", Some(n)) => Self::UsernameTooLong { max: small(n)? },
            ("password_too_short", Some(n)) => Self::PasswordTooShort { min: small(n)? },
            ("password_too_long", Some(n)) => Self::PasswordTooLong { max: small(n)? },
            (_, Some(_)) => return None,
            ("database_unavailable", None) => Self::DatabaseUnavailable,
            ("internal", None) => Self::Internal,
            ("csrf", None) => Self::CsrfFailed,
            ("sign_in_required", None) => Self::SignInRequired,
            ("forbidden", None) => Self::Forbidden,
            ("not_found", None) => Self::NotFound,
            ("invalid_credentials", None) => Self::InvalidCredentials,
            ("sign_up_closed", None) => Self::SignUpClosed,
            ("wrong_current_password", None) => Self::WrongCurrentPassword,
            ("passwords_do_not_match", None) => Self::PasswordsDoNotMatch,
            ("username_required", None) => Self::UsernameRequired,
            ("username_invalid_characters", None) => Self::UsernameInvalidCharacters,
            ("username_taken", None) => Self::UsernameTaken,
            ("email_invalid", None) => Self::EmailInvalid,
            ("password_required", None) => Self::PasswordRequired,
            ("password_equals_username", None) => Self::PasswordEqualsUsername,
            _ => return None,
        })
    }

    /// The HTTP status a server function answers with this error: 503 for the database, 401/403
    /// for who may do what, 429 when throttled, 400 for input to fix, 500 for our own failures. Load
    /// balancers and metrics then tell a wrong password from a bug.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::DatabaseUnavailable => 503,
            Self::Internal | Self::Transport(_) => 500,
            Self::SignInRequired | Self::InvalidCredentials => 401,
            Self::CsrfFailed | Self::Forbidden | Self::SignUpClosed => 403,
            Self::NotFound => 404,
            Self::Throttled { .. } => 429,
            Self::WrongCurrentPassword
            | Self::PasswordsDoNotMatch
            | Self::UsernameRequired
            | Self::UsernameTooLong { .. }
            | Self::UsernameInvalidCharacters
            | Self::UsernameTaken
            | Self::EmailInvalid
            | Self::PasswordRequired
            | Self::PasswordTooShort { .. }
            | Self::PasswordTooLong { .. }
            | Self::PasswordEqualsUsername => 400,
        }
    }

    /// The form field the error is about, so the page can mark it.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::UsernameRequired
            | Self::UsernameTooLong { .. }
            | Self::UsernameInvalidCharacters
            | Self::UsernameTaken => Some("username"),
            Self::EmailInvalid => Some("email"),
            Self::WrongCurrentPassword => Some("current_password"),
            Self::PasswordRequired
            | Self::PasswordTooShort { .. }
            | Self::PasswordTooLong { .. }
            | Self::PasswordEqualsUsername => Some("password"),
            Self::PasswordsDoNotMatch => Some("password_confirm"),
            _ => None,
        }
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

#[cfg(feature = "ssr")]
impl From<console_sessions::accounts::AccountError> for AppError {
    fn from(error: console_sessions::accounts::AccountError) -> Self {
        use console_sessions::accounts::AccountError as A;
        match error {
            A::UsernameRequired => Self::UsernameRequired,
            A::UsernameTooLong { max } => Self::UsernameTooLong { max },
            A::UsernameInvalidCharacters => Self::UsernameInvalidCharacters,
            A::UsernameTaken => Self::UsernameTaken,
            A::EmailInvalid => Self::EmailInvalid,
            A::PasswordRequired => Self::PasswordRequired,
            A::PasswordTooShort { min } => Self::PasswordTooShort { min },
            A::PasswordTooLong { max } => Self::PasswordTooLong { max },
            A::PasswordEqualsUsername => Self::PasswordEqualsUsername,
            A::WrongCurrentPassword => Self::WrongCurrentPassword,
            A::InvalidCredentials => Self::InvalidCredentials,
            A::Throttled { retry_after } => Self::Throttled {
                retry_after_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
            },
            A::SignUpClosed => Self::SignUpClosed,
            A::UserNotFound => Self::NotFound,
            error @ (A::Database(_) | A::Sessions(_)) => {
                tracing::error!(error = ?error, "account storage failed");
                database_unavailable()
            }
            error => {
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
            AppError::InvalidCredentials,
            AppError::Throttled {
                retry_after_secs: 90,
            },
            AppError::SignUpClosed,
            AppError::WrongCurrentPassword,
            AppError::PasswordsDoNotMatch,
            AppError::UsernameRequired,
            AppError::UsernameTooLong { max: 150 },
            AppError::UsernameInvalidCharacters,
            AppError::UsernameTaken,
            AppError::EmailInvalid,
            AppError::PasswordRequired,
            AppError::PasswordTooShort { min: 10 },
            AppError::PasswordTooLong { max: 1024 },
            AppError::PasswordEqualsUsername,
        ];
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

    #[test]
    fn waits_read_as_words() {
        assert_eq!(wait_text(0), "1 second");
        assert_eq!(wait_text(1), "1 second");
        assert_eq!(wait_text(59), "59 seconds");
        assert_eq!(wait_text(60), "1 minute");
        assert_eq!(wait_text(61), "2 minutes");
    }
}
