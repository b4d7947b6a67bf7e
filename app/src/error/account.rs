//! [`AccountRefusal`]: why the account service refused what a person asked, the part of the
//! library's `AccountError` a page shows.
//!
//! Restated rather than carried: the library (`console-sessions`) is a dependency of the server
//! build only — it needs a database — while these errors also travel to the browser, whose
//! WebAssembly build must read, show and turn them back from `?error=` codes. So this is the one
//! place the app names them: variants (the server functions' JSON), codes, statuses, fields and
//! messages. The server maps the library's error here in one match (`From<AccountError>` in the
//! parent module), and a test there checks every message against the library's, so the two cannot
//! drift apart.

use serde::{Deserialize, Serialize};

/// An account operation refused for a reason the person can act on: input to fix, wrong
/// credentials, too many attempts, sign-up closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AccountRefusal {
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

impl AccountRefusal {
    /// A short code naming the refusal, for `?error=` (see [`super::AppError::code`]).
    pub fn code(&self) -> String {
        match self {
            Self::Throttled { retry_after_secs } => format!("throttled.{retry_after_secs}"),
            Self::UsernameTooLong { max } => format!("username_too_long.{max}"),
            Self::PasswordTooShort { min } => format!("password_too_short.{min}"),
            Self::PasswordTooLong { max } => format!("password_too_long.{max}"),
            Self::InvalidCredentials => "invalid_credentials".into(),
            Self::SignUpClosed => "sign_up_closed".into(),
            Self::WrongCurrentPassword => "wrong_current_password".into(),
            Self::UsernameRequired => "username_required".into(),
            Self::UsernameInvalidCharacters => "username_invalid_characters".into(),
            Self::UsernameTaken => "username_taken".into(),
            Self::EmailInvalid => "email_invalid".into(),
            Self::PasswordRequired => "password_required".into(),
            Self::PasswordEqualsUsername => "password_equals_username".into(),
        }
    }

    /// The refusal a [`code`](Self::code) names, split into its name and its number (if any);
    /// `None` for anything else.
    pub(super) fn from_code(name: &str, number: Option<u64>) -> Option<Self> {
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
            ("invalid_credentials", None) => Self::InvalidCredentials,
            ("sign_up_closed", None) => Self::SignUpClosed,
            ("wrong_current_password", None) => Self::WrongCurrentPassword,
            ("username_required", None) => Self::UsernameRequired,
            ("username_invalid_characters", None) => Self::UsernameInvalidCharacters,
            ("username_taken", None) => Self::UsernameTaken,
            ("email_invalid", None) => Self::EmailInvalid,
            ("password_required", None) => Self::PasswordRequired,
            ("password_equals_username", None) => Self::PasswordEqualsUsername,
            _ => return None,
        })
    }

    /// 401 for wrong credentials, 403 when sign-up is closed, 429 when throttled, 400 for input
    /// to fix.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::InvalidCredentials => 401,
            Self::SignUpClosed => 403,
            Self::Throttled { .. } => 429,
            Self::WrongCurrentPassword
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

    /// The form field the refusal is about, so the page can mark it.
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
            Self::InvalidCredentials | Self::Throttled { .. } | Self::SignUpClosed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::wait_text;

    #[test]
    fn waits_read_as_words() {
        assert_eq!(wait_text(0), "1 second");
        assert_eq!(wait_text(1), "1 second");
        assert_eq!(wait_text(59), "59 seconds");
        assert_eq!(wait_text(60), "1 minute");
        assert_eq!(wait_text(61), "2 minutes");
    }
}
