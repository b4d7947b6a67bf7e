//! The worker that empties the outbox: it claims one due message at a time under a lease, sends
//! it, and records what happened.
//!
//! Claiming sets the message's `locked_until` (the lease), a fresh random `claim` and one more
//! attempt in one statement; on PostgreSQL the candidate row is picked `FOR UPDATE SKIP LOCKED`,
//! so workers on several nodes never take the same message while its lease holds. Only the
//! worker holding the latest claim can record the outcome, so a worker that lost its lease (it
//! hung past it) cannot overwrite what the next one recorded. A worker that dies mid-send leaves
//! the lease to run out; the message is then due again and sent by whoever claims it next. The
//! one way a message goes out twice is therefore a worker dying, or losing the database, between
//! the server's acceptance and the row being marked sent.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::transport::Outgoing;
use super::{MailError, Outbox};
use crate::clock::{now, to_millis};
use crate::db::{with_pool, Backend};

/// The shortest wait between two looks at the outbox: a due message that could not be claimed is
/// held by another worker's statement for an instant, not worth spinning for.
const MIN_WAIT: Duration = Duration::from_millis(50);

/// A running worker ([`Outbox::spawn_worker`]). Stop it with [`MailWorker::stop`]; dropping the
/// handle stops it too, without waiting.
#[derive(Debug)]
pub struct MailWorker {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MailWorker {
    /// Stops the worker and waits until it has. A message being sent is finished first (sent
    /// and marked, or its failure recorded), which takes at most the send timeout; nothing is
    /// abandoned mid-send.
    pub async fn stop(mut self) {
        // Nobody listening means the task has ended already.
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::error!(%error, "the mail worker ended abnormally");
            }
        }
    }
}

impl Drop for MailWorker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    kind: String,
    sender: String,
    recipient: String,
    message: Vec<u8>,
    attempts: i64,
    queued_at: i64,
}

/// What one look at the outbox did.
enum Turn {
    /// A message was claimed and dealt with: look again at once.
    Handled,
    /// Nothing is due.
    Idle,
}

impl Outbox {
    /// Starts a worker on the current tokio runtime. It sends due messages one at a time, wakes
    /// when this outbox queues or retries one, and otherwise looks again when the next retry
    /// falls due or after [`MailConfig::poll_interval`](super::MailConfig::poll_interval),
    /// whichever is sooner. Several workers (on several nodes over one PostgreSQL database) share
    /// the work without sending a message twice.
    pub fn spawn_worker(&self) -> MailWorker {
        let (stop, stopped) = watch::channel(false);
        let outbox = self.clone();
        // Its lines (and its statements') belong to the process, not to the request that was
        // being served when it started.
        let span = tracing::info_span!(parent: None, "mail_worker");
        let task = tokio::spawn(
            async move {
                tracing::info!(transport = %outbox.inner.config.transport, "mail worker started");
                outbox.work(stopped).await
            }
            .instrument(span),
        );
        MailWorker {
            stop,
            task: Some(task),
        }
    }

    async fn work(self, mut stopped: watch::Receiver<bool>) {
        let poll = self.inner.config.poll_interval.max(MIN_WAIT);
        loop {
            if *stopped.borrow() {
                break;
            }
            let wait = match self.turn().await {
                Ok(Turn::Handled) => continue,
                Ok(Turn::Idle) => self.until_next_due().await.clamp(MIN_WAIT, poll),
                Err(error) => {
                    tracing::warn!(%error, "the mail worker cannot use the outbox; trying again");
                    poll
                }
            };
            tokio::select! {
                changed = stopped.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("mail worker stopped");
    }

    /// Claims the next due message, if any, and sends it or records why not.
    async fn turn(&self) -> Result<Turn, MailError> {
        let started = to_millis(now());
        let Some(row) = self.claim(started).await? else {
            return Ok(Turn::Idle);
        };
        let claim = row.claim;
        let row = row.row;
        let config = &self.inner.config;
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let max_age = millis(config.retry.max_age);
        if started.saturating_sub(row.queued_at) > max_age {
            let error = format!(
                "not sent within {} of being queued; not tried again",
                hours_or_seconds(config.retry.max_age)
            );
            tracing::error!(id = row.id, kind = %row.kind, %error, "mail given up");
            crate::metrics::mail_failed();
            self.record_expired(row.id, claim, &error).await?;
            return Ok(Turn::Handled);
        }
        let outgoing = Outgoing {
            id: row.id,
            queued_at: row.queued_at,
            sender: &row.sender,
            recipient: &row.recipient,
            message: &row.message,
        };
        let sent = match tokio::time::timeout(
            config.send_timeout,
            self.inner.sender.send(&outgoing),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {} s",
                config.send_timeout.as_secs_f64()
            )),
        };
        match sent {
            Ok(()) => {
                tracing::info!(id = row.id, kind = %row.kind, attempts, "mail sent");
                crate::metrics::mail_sent();
                self.record_sent(row.id, claim).await?;
            }
            Err(error) if attempts >= config.retry.max_attempts.max(1) => {
                tracing::error!(id = row.id, kind = %row.kind, attempts, %error, "mail given up");
                crate::metrics::mail_failed();
                self.record_failure(row.id, claim, &error, None).await?;
            }
            Err(error) => {
                let delay = config.retry.delay_after(attempts);
                tracing::warn!(
                    id = row.id,
                    kind = %row.kind,
                    attempts,
                    retry_in_secs = delay.as_secs_f64(),
                    %error,
                    "mail not delivered; trying again later"
                );
                crate::metrics::mail_retried();
                let next = to_millis(now()).saturating_add(millis(delay));
                self.record_failure(row.id, claim, &error, Some(next))
                    .await?;
            }
        }
        Ok(Turn::Handled)
    }

    /// Takes the due message that has waited longest: leased to this worker until `now` plus the
    /// lease, under a new claim, its attempt counted.
    async fn claim(&self, now: i64) -> Result<Option<Claimed>, MailError> {
        let lease_until = now.saturating_add(millis(self.inner.config.effective_lease()));
        let claim = rand::random::<i64>();
        // PostgreSQL: a candidate another worker is claiming is skipped rather than waited for
        // (and, once theirs, no longer matches). SQLite runs one write at a time anyway.
        let skip_locked = match self.inner.db.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE mail_outbox SET locked_until = $1, claim = $2, attempts = attempts + 1, \
             last_attempt_at = $3 \
             WHERE id = (SELECT id FROM mail_outbox WHERE state = 'pending' \
                         AND next_attempt_at <= $3 AND locked_until <= $3 \
                         ORDER BY next_attempt_at, id LIMIT 1{skip_locked}) \
             AND state = 'pending' AND locked_until <= $3 \
             RETURNING id, kind, sender, recipient, message, attempts, queued_at"
        );
        let row: Option<ClaimedRow> = with_pool!(&self.inner.db, |pool| sqlx::query_as(&sql)
            .bind(lease_until)
            .bind(claim)
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|row| Claimed { row, claim }))
    }

    /// Marks a claimed message sent, and forgets its content.
    async fn record_sent(&self, id: i64, claim: i64) -> Result<(), MailError> {
        let now = to_millis(now());
        let updated = with_pool!(&self.inner.db, |pool| {
            sqlx::query(
            "UPDATE mail_outbox SET state = 'sent', sent_at = $1, locked_until = 0, message = $2, \
             last_error = NULL WHERE id = $3 AND claim = $4"
        )
        .bind(now)
        .bind(Vec::<u8>::new())
        .bind(id)
        .bind(claim)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        })?;
        lease_check(id, updated);
        Ok(())
    }

    /// Records a failed attempt: due again at `next` (Unix milliseconds), or `failed` for good.
    async fn record_failure(
        &self,
        id: i64,
        claim: i64,
        error: &str,
        next: Option<i64>,
    ) -> Result<(), MailError> {
        let (state, next) = match next {
            Some(next) => ("pending", next),
            None => ("failed", 0),
        };
        let updated = with_pool!(&self.inner.db, |pool| sqlx::query(
            "UPDATE mail_outbox SET state = $1, next_attempt_at = CASE WHEN $1 = 'pending' \
             THEN $2 ELSE next_attempt_at END, locked_until = 0, last_error = $3 \
             WHERE id = $4 AND claim = $5"
        )
        .bind(state)
        .bind(next)
        .bind(error)
        .bind(id)
        .bind(claim)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        lease_check(id, updated);
        Ok(())
    }

    /// Marks a claimed message `failed` for its age, without counting the claim as an attempt:
    /// nothing was tried.
    async fn record_expired(&self, id: i64, claim: i64, error: &str) -> Result<(), MailError> {
        let updated = with_pool!(&self.inner.db, |pool| {
            sqlx::query(
            "UPDATE mail_outbox SET state = 'failed', attempts = attempts - 1, locked_until = 0, \
             last_error = $1 WHERE id = $2 AND claim = $3"
        )
        .bind(error)
        .bind(id)
        .bind(claim)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        })?;
        lease_check(id, updated);
        Ok(())
    }

    /// How long until the earliest pending message is due (its retry time, or its lease running
    /// out); the poll interval when none is pending or the outbox cannot be read.
    async fn until_next_due(&self) -> Duration {
        let poll = self.inner.config.poll_interval;
        let due: Result<(Option<i64>,), sqlx::Error> = with_pool!(&self.inner.db, |pool| {
            sqlx::query_as(
                "SELECT MIN(CASE WHEN locked_until > next_attempt_at THEN locked_until \
                 ELSE next_attempt_at END) FROM mail_outbox WHERE state = 'pending'",
            )
            .fetch_one(pool)
            .await
        });
        match due {
            Ok((Some(due),)) => {
                let wait = due.saturating_sub(to_millis(now()));
                Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(poll)
            }
            Ok((None,)) | Err(_) => poll,
        }
    }
}

/// A claimed row and the claim that lets this worker record its outcome.
struct Claimed {
    row: ClaimedRow,
    claim: i64,
}

/// Says so when an outcome was not recorded because the claim was no longer this worker's: its
/// lease ran out mid-send and another worker took the message, which may then go out twice.
fn lease_check(id: i64, updated: u64) {
    if updated == 0 {
        tracing::warn!(
            id,
            "a mail's lease ran out while it was being sent; another worker has it now"
        );
    }
}

/// "24 h", or "90 s" for what is not whole hours.
fn hours_or_seconds(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds > 0 && seconds.is_multiple_of(3600) {
        format!("{} h", seconds / 3600)
    } else {
        format!("{seconds} s")
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
