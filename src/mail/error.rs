//! [`MailError`]: what can go wrong configuring mail, writing a message or putting it in the outbox.
//! Failures to deliver are not errors of the caller's: the worker records them on the message
//! (see [`OutboxEntry::last_error`](super::OutboxEntry::last_error)).

/// Why a mail operation failed. No message ever contains a password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `MAIL_URL` is not one this crate understands, or is ambiguous; the text says which form to use.
    #[error("MAIL_URL is malformed: {0}")]
    InvalidUrl(String),
    /// An address (`MAIL_FROM`, or a recipient) is not a mailbox.
    #[error("{what} is not a valid email address: {reason}")]
    InvalidAddress {
        /// Which address: `MAIL_FROM`, or "the recipient".
        what: &'static str,
        /// Why, from the address parser.
        reason: String,
    },
    /// The public origin is not an `http(s)://host[:port][/base]` URL.
    #[error("the public origin is malformed: {0}")]
    InvalidOrigin(String),
    /// A link for a message is not a path on the public origin.
    #[error("a mail link must be a path starting with one `/`, got {0:?}")]
    InvalidLink(String),
    /// A template failed to render (a bug of ours, not the input's).
    #[error("cannot render the {kind} message: {detail}")]
    Template {
        /// Which message.
        kind: &'static str,
        /// The template engine's reason.
        detail: String,
    },
    /// The message could not be put together as MIME.
    #[error("cannot build the {kind} message: {detail}")]
    Build {
        /// Which message.
        kind: &'static str,
        /// lettre's reason.
        detail: String,
    },
    /// The SMTP transport could not be set up from the settings.
    #[error("cannot set up mail to {server}: {detail}")]
    Transport {
        /// The server, as `host:port`.
        server: String,
        /// lettre's reason.
        detail: String,
    },
    /// The outbox table could not be read or written.
    #[error("the mail outbox is unavailable: {0}")]
    Database(#[from] sqlx::Error),
}
