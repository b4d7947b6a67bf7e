//! The outbox: messages are written to the `mail_outbox` table (migration `0009_mail_outbox.sql`)
//! and sent later by a worker ([`Outbox::spawn_worker`]), so a request never waits for an SMTP
//! server and a message survives a crash from the moment [`Outbox::enqueue`] returns. Staff read
//! and retry it here.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::MultiPart;
use sqlx::QueryBuilder;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::transport::Sender;
use super::{MailConfig, MailError, Message};
use crate::clock::{from_millis, now, to_millis};
use crate::db::{with_pool, Database};

/// Most entries one [`Outbox::list`] page returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailState {
    /// Waiting for its first or next attempt, or being sent now.
    Pending,
    /// Accepted by the SMTP server (or written to its file). Its content is no longer kept: the
    /// links in it open accounts.
    Sent,
    /// Given up on after its last attempt, or for its age; staff may [retry](Outbox::retry) it.
    Failed,
}

impl MailState {
    /// The name stored in the table: `pending`, `sent` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    fn from_stored(text: &str) -> Self {
        match text {
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            // The table allows no other value (a CHECK constraint).
            _ => Self::Pending,
        }
    }
}

/// A message in the outbox as staff see it: who, what and how it went; never its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its id in the outbox.
    pub id: i64,
    /// Which message ([`MessageKind::as_str`](super::MessageKind::as_str)).
    pub kind: String,
    /// The recipient's address.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// Where it is.
    pub state: MailState,
    /// Attempts so far (since staff last retried it).
    pub attempts: u32,
    /// When it was first queued.
    pub created_at: OffsetDateTime,
    /// When it was last tried, if ever.
    pub last_attempt_at: Option<OffsetDateTime>,
    /// When it is tried next, while pending.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Whether a worker is sending it now (its lease has not run out).
    pub sending: bool,
    /// When it was sent.
    pub sent_at: Option<OffsetDateTime>,
    /// Why its last attempt failed (the server's answer, or what went wrong), while not sent.
    pub last_error: Option<String>,
}

/// One page of [`Outbox::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailPage {
    /// The entries of this page, newest first.
    pub entries: Vec<OutboxEntry>,
    /// How many entries match in all.
    pub total: u64,
}

/// How many messages are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailCounts {
    /// Waiting or being sent.
    pub pending: u64,
    /// Sent.
    pub sent: u64,
    /// Given up on.
    pub failed: u64,
}

/// The outbox over a database, with the settings its workers send by. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) db: Database,
    pub(super) config: MailConfig,
    pub(super) sender: Sender,
    /// Wakes a worker of this outbox when a message is queued or retried.
    pub(super) wake: Notify,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("backend", &self.inner.db.backend())
            .field("transport", &self.inner.config.transport.to_string())
            .finish_non_exhaustive()
    }
}

const ENTRY_COLUMNS: &str = "id, kind, recipient, subject, state, attempts, created_at, \
                             last_attempt_at, next_attempt_at, locked_until, sent_at, last_error";

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    kind: String,
    recipient: String,
    subject: String,
    state: String,
    attempts: i64,
    created_at: i64,
    last_attempt_at: Option<i64>,
    next_attempt_at: i64,
    locked_until: i64,
    sent_at: Option<i64>,
    last_error: Option<String>,
}

impl EntryRow {
    fn into_entry(self, now: i64) -> OutboxEntry {
        let state = MailState::from_stored(&self.state);
        let pending = state == MailState::Pending;
        OutboxEntry {
            id: self.id,
            kind: self.kind,
            recipient: self.recipient,
            subject: self.subject,
            state,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            created_at: from_millis(self.created_at),
            last_attempt_at: self.last_attempt_at.map(from_millis),
            next_attempt_at: pending.then(|| from_millis(self.next_attempt_at)),
            sending: pending && self.locked_until > now,
            sent_at: self.sent_at.map(from_millis),
            last_error: self.last_error,
        }
    }
}

impl Outbox {
    /// The outbox over `db` (migrated with [`Database::migrate`]), sending as `config` says. Fails
    /// only when the SMTP transport cannot be set up (its TLS settings); nothing is connected yet.
    pub fn new(db: Database, config: MailConfig) -> Result<Self, MailError> {
        let sender = Sender::new(&config.transport, config.send_timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                config,
                sender,
                wake: Notify::new(),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &MailConfig {
        &self.inner.config
    }

    /// Puts `message` in the outbox and returns its id. Nothing is sent here: a worker sends it
    /// (this outbox's own is woken at once). Once this returns, the message is committed and
    /// survives a crash.
    pub async fn enqueue(&self, message: &Message) -> Result<i64, MailError> {
        let bytes = self.format(message)?;
        let now = to_millis(now());
        let (id,): (i64,) = with_pool!(&self.inner.db, |pool| {
            sqlx::query_as(
            "INSERT INTO mail_outbox (kind, sender, recipient, subject, message, state, attempts, \
             created_at, queued_at, next_attempt_at, locked_until, claim) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6, 0, 0) RETURNING id"
        )
        .bind(message.kind().as_str())
        .bind(self.inner.config.from.email())
        .bind(message.to().email())
        .bind(message.subject())
        .bind(bytes)
        .bind(now)
        .fetch_one(pool)
        .await
        })?;
        self.inner.wake.notify_one();
        Ok(id)
    }

    /// The whole message as it goes on the wire, From and Message-ID included, so that every
    /// attempt sends the same bytes (a receiving server that got it twice can tell).
    fn format(&self, message: &Message) -> Result<Vec<u8>, MailError> {
        let kind = message.kind().as_str();
        let from = &self.inner.config.from;
        let message_id = format!("<{:032x}@{}>", rand::random::<u128>(), from.domain());
        // RFC 3834: out-of-office and other robots should not answer this.
        let auto_submitted = HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        );
        let email = lettre::Message::builder()
            .from(from.0.clone())
            .to(message.to().0.clone())
            .subject(message.subject())
            .message_id(Some(message_id))
            .raw_header(auto_submitted)
            .multipart(MultiPart::alternative_plain_html(
                message.text().to_owned(),
                message.html().to_owned(),
            ))
            .map_err(|e| MailError::Build {
                kind,
                detail: e.to_string(),
            })?;
        Ok(email.formatted())
    }

    /// Entries in any of `states` (every state when empty), newest first: `limit` of them (at most
    /// [`MAX_PAGE_SIZE`]) after skipping `offset`.
    pub async fn list(
        &self,
        states: &[MailState],
        limit: u32,
        offset: u64,
    ) -> Result<MailPage, MailError> {
        let limit = i64::from(limit.min(MAX_PAGE_SIZE));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (rows, total): (Vec<EntryRow>, i64) = with_pool!(&self.inner.db, |pool| {
            let mut page = QueryBuilder::new(format!("SELECT {ENTRY_COLUMNS} FROM mail_outbox"));
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM mail_outbox");
            if !states.is_empty() {
                for builder in [&mut page, &mut count] {
                    builder.push(" WHERE state IN (");
                    let mut list = builder.separated(", ");
                    for state in states {
                        list.push_bind(state.as_str());
                    }
                    builder.push(")");
                }
            }
            page.push(" ORDER BY id DESC LIMIT ")
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(offset);
            let rows = page.build_query_as().fetch_all(pool).await?;
            let (total,): (i64,) = count.build_query_as().fetch_one(pool).await?;
            Ok::<_, sqlx::Error>((rows, total))
        })?;
        let now = to_millis(now());
        Ok(MailPage {
            entries: rows.into_iter().map(|row| row.into_entry(now)).collect(),
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    /// One entry by id.
    pub async fn get(&self, id: i64) -> Result<Option<OutboxEntry>, MailError> {
        let row: Option<EntryRow> = with_pool!(&self.inner.db, |pool| sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM mail_outbox WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        let now = to_millis(now());
        Ok(row.map(|row| row.into_entry(now)))
    }

    /// Queues a failed message again, due now, with its attempts and its age counted afresh.
    /// Returns whether there was such a failed message (one pending or sent is left alone).
    pub async fn retry(&self, id: i64) -> Result<bool, MailError> {
        let now = to_millis(now());
        let updated = with_pool!(&self.inner.db, |pool| sqlx::query(
            "UPDATE mail_outbox SET state = 'pending', attempts = 0, queued_at = $1, \
             next_attempt_at = $1, locked_until = 0 WHERE id = $2 AND state = 'failed'"
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        if updated > 0 {
            self.inner.wake.notify_one();
        }
        Ok(updated > 0)
    }

    /// Deletes sent messages sent more than `sent` ago and failed ones last tried (or queued) more
    /// than `failed` ago; returns how many went. Pending messages are never deleted. A sent row
    /// keeps no content already; a failed one still holds its message (its links, dead by then),
    /// which staff may want to see for a while.
    pub async fn purge(&self, sent: Duration, failed: Duration) -> Result<u64, MailError> {
        let now = to_millis(now());
        let ago =
            |age: Duration| now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
        let deleted = with_pool!(&self.inner.db, |pool| sqlx::query(
            "DELETE FROM mail_outbox WHERE (state = 'sent' AND sent_at < $1) \
             OR (state = 'failed' AND COALESCE(last_attempt_at, queued_at) < $2)"
        )
        .bind(ago(sent))
        .bind(ago(failed))
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        if deleted > 0 {
            tracing::info!(deleted, "old mail purged from the outbox");
        }
        Ok(deleted)
    }

    /// How many messages are in each state.
    pub async fn counts(&self) -> Result<MailCounts, MailError> {
        let rows: Vec<(String, i64)> = with_pool!(&self.inner.db, |pool| sqlx::query_as(
            "SELECT state, COUNT(*) FROM mail_outbox GROUP BY state"
        )
        .fetch_all(pool)
        .await)?;
        let mut counts = MailCounts::default();
        for (state, count) in rows {
            let count = u64::try_from(count).unwrap_or(0);
            match MailState::from_stored(&state) {
                MailState::Pending => counts.pending += count,
                MailState::Sent => counts.sent += count,
                MailState::Failed => counts.failed += count,
            }
        }
        Ok(counts)
    }
}
