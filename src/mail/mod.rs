//! Mail: the messages of account recovery and new sign-in alerts, sent through an outbox.
//!
//! - [`MailConfig`] says where mail goes (`MAIL_URL`: SMTP with STARTTLS or TLS, plain SMTP to a
//!   local test server, or a folder of `.eml` files; see [`MailTransport`]) and who it is from
//!   (`MAIL_FROM`). No password is ever shown: not by `Debug`, not in errors, not in logs.
//! - [`Message`] renders each message the accounts need, text and HTML, from askama templates,
//!   every link absolute on the site's [`PublicOrigin`].
//! - [`Outbox::enqueue`] writes a message to the `mail_outbox` table and returns: the caller never
//!   waits for an SMTP server, and the message survives a crash. A worker
//!   ([`Outbox::spawn_worker`]) sends due messages under a lease, retries failures on the
//!   [`RetryPolicy`] schedule and gives up as `failed`; several nodes on one PostgreSQL database
//!   share the work without sending a message twice in normal operation (see `worker.rs`).
//! - Staff list pending and failed mail ([`Outbox::list`]), count it ([`Outbox::counts`]) and
//!   send a failed message again ([`Outbox::retry`]).
//!
//! ```no_run
//! # async fn doc(db: console_sessions::Database) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use console_sessions::mail::{MailConfig, Message, Outbox, PublicOrigin};
//!
//! let config = MailConfig::new("smtps://mailer:secret@mail.example.com", "Accounts <no-reply@example.com>")?;
//! let outbox = Outbox::new(db, config)?;
//! let worker = outbox.spawn_worker();
//!
//! let origin = PublicOrigin::parse("https://account.example.com")?;
//! let reset = Message::password_reset(
//!     &origin, "alice@example.com", "alice", "/reset?token=…", Duration::from_secs(3600),
//! )?;
//! outbox.enqueue(&reset).await?; // committed; the worker sends it
//!
//! worker.stop().await; // at shutdown: finishes the message in hand, if any
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod message;
mod outbox;
mod transport;
mod worker;

pub use config::{
    MailAddress, MailConfig, MailTransport, RetryPolicy, SmtpCredentials, SmtpSecurity, SmtpServer,
    SUBMISSIONS_PORT, SUBMISSION_PORT,
};
pub use error::MailError;
pub use message::{Message, MessageKind, PublicOrigin, SignInAlert};
pub use outbox::{MailCounts, MailPage, MailState, Outbox, OutboxEntry, MAX_PAGE_SIZE};
pub use worker::MailWorker;
