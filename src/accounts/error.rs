//! [`AccountError`]: every way an account operation can fail, with messages a page can show as they
//! are. Storage and internal failures say only that something went wrong; their cause stays in
//! [`std::error::Error::source`] (or the `Debug` form) for the logs.

use crate::refusal::AccountRefusal;
use crate::sessions::StoreError;

/// Why an account operation failed.
///
/// Either the service refused ([`AccountError::Refused`], with an [`AccountRefusal`] whose text is
/// fit to show and which a browser build can read too), the user is unknown, or the service failed:
/// for [`AccountError::Database`], [`AccountError::Sessions`] and [`AccountError::Internal`] the text
/// is deliberately generic; see [`AccountError::is_internal`].
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Refused for a reason the person can act on: input to fix, wrong credentials, too many
    /// attempts, sign-up closed, a dead link.
    #[error(transparent)]
    Refused(#[from] AccountRefusal),
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

    /// The refusal, when the service refused (rather than failed or found no such user).
    pub fn refusal(&self) -> Option<AccountRefusal> {
        match self {
            Self::Refused(refusal) => Some(*refusal),
            _ => None,
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

impl From<crate::sessions::SessionError> for AccountError {
    fn from(error: crate::sessions::SessionError) -> Self {
        match error {
            crate::sessions::SessionError::Store(error) => Self::Sessions(error),
            other => Self::internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_do_not_leak_details() {
        let error = AccountError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(
            error.to_string(),
            "The account service is unavailable. Try again later."
        );
        assert!(error.is_internal());
        assert!(!AccountError::from(AccountRefusal::InvalidCredentials).is_internal());
    }
}
