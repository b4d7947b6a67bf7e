//! [`AccountError`]: every way an account operation can fail, with messages a page can show as they
//! are. Storage and internal failures say only that something went wrong; their cause stays in
//! [`std::error::Error::source`] (or the `Debug` form) for the logs.

use std::time::Duration;

use crate::sessions::StoreError;

/// Why an account operation failed.
///
/// The `Display` text of every variant is fit to show to the person at the form. For
/// [`AccountError::Database`], [`AccountError::Sessions`] and [`AccountError::Internal`] it is
/// deliberately generic; see [`AccountError::is_internal`].
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The username is empty (or only spaces).
    #[error("Enter a username.")]
    UsernameRequired,
    /// The username is longer than allowed.
    #[error("A username can have at most {max} characters.")]
    UsernameTooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// The username contains control or invisible formatting characters.
    #[error("A username cannot contain control characters or invisible formatting characters.")]
    UsernameInvalidCharacters,
    /// Another account has this username, ignoring case.
    #[error("This username is already taken.")]
    UsernameTaken,
    /// The email address does not look like one.
    #[error("Enter a valid email address (or leave it empty).")]
    EmailInvalid,
    /// Another account has this email address, ignoring case.
    #[error("Another account uses this email address.")]
    EmailTaken,
    /// The account has no email address to send a link to.
    #[error("This account has no email address.")]
    EmailRequired,
    /// A link's one-time token is malformed, unknown, used, expired, or for something else.
    #[error("This link is invalid, has expired or has been used already.")]
    InvalidToken,
    /// The password is empty.
    #[error("Enter a password.")]
    PasswordRequired,
    /// The new password is shorter than allowed.
    #[error("The password must have at least {min} characters.")]
    PasswordTooShort {
        /// The fewest characters allowed.
        min: usize,
    },
    /// The password is longer than allowed (it was not hashed).
    #[error("The password can have at most {max} characters.")]
    PasswordTooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// The new password is the username.
    #[error("The password cannot be the same as the username.")]
    PasswordEqualsUsername,
    /// Changing a password: the current password given is wrong. Nothing was changed.
    #[error("The current password is incorrect.")]
    WrongCurrentPassword,
    /// Signing in failed: unknown username, wrong password or inactive account — deliberately the
    /// same error for all three.
    #[error("The username or password is incorrect.")]
    InvalidCredentials,
    /// Too many failed attempts for this account or from this address: try again after `retry_after`.
    #[error("Too many failed attempts. Try again in {}.", wait_text(*retry_after))]
    Throttled {
        /// How long until the next attempt is accepted.
        retry_after: Duration,
    },
    /// Sign-up is closed by configuration.
    #[error("Sign-up is closed.")]
    SignUpClosed,
    /// No user has this id.
    #[error("This user does not exist.")]
    UserNotFound,
    /// The database failed or could not be reached; nothing was half-written.
    #[error("The account service is unavailable. Try again later.")]
    Database(#[source] sqlx::Error),
    /// Ending the user's sessions failed.
    #[error("The account service is unavailable. Try again later.")]
    Sessions(#[source] StoreError),
    /// Something that should not happen (a hashing task panicked, say). The detail is for the logs.
    #[error("Something went wrong. Try again later.")]
    Internal {
        /// What went wrong, for the logs. Never contains a password or a hash.
        detail: String,
    },
}

impl AccountError {
    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        Self::Internal {
            detail: detail.into(),
        }
    }

    /// Whether this is a failure of the service (storage or internal) rather than of the input:
    /// log it, and answer with a server error.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Database(_) | Self::Sessions(_) | Self::Internal { .. }
        )
    }
}

impl From<sqlx::Error> for AccountError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl From<StoreError> for AccountError {
    fn from(error: StoreError) -> Self {
        Self::Sessions(error)
    }
}

/// "1 second", "40 seconds", "3 minutes": a wait rounded up, in words.
fn wait_text(wait: Duration) -> String {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    if seconds < 60 {
        plural(seconds, "second")
    } else {
        plural(seconds.div_ceil(60), "minute")
    }
}

fn plural(count: u64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_says_how_long_to_wait_rounded_up() {
        let message = |ms| {
            AccountError::Throttled {
                retry_after: Duration::from_millis(ms),
            }
            .to_string()
        };
        assert_eq!(
            message(10),
            "Too many failed attempts. Try again in 1 second."
        );
        assert_eq!(
            message(29_001),
            "Too many failed attempts. Try again in 30 seconds."
        );
        assert_eq!(
            message(61_000),
            "Too many failed attempts. Try again in 2 minutes."
        );
        assert_eq!(
            message(900_000),
            "Too many failed attempts. Try again in 15 minutes."
        );
    }

    #[test]
    fn storage_errors_do_not_leak_details() {
        let error = AccountError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(
            error.to_string(),
            "The account service is unavailable. Try again later."
        );
        assert!(error.is_internal());
        assert!(!AccountError::InvalidCredentials.is_internal());
    }
}
