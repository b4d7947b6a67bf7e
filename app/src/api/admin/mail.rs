//! Mail: what the outbox holds (pending, sent, failed), and (audited) sending a failed message
//! again.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Messages per page of the staff's mail list.
pub const MAIL_PAGE: u32 = 50;

/// One message of the outbox, as staff see it (never its body: it may hold a one-time link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminMail {
    /// Id.
    pub id: i64,
    /// Which message: `password_reset`, `new_sign_in`…
    pub kind: String,
    /// The recipient's address.
    pub recipient: String,
    /// The subject.
    pub subject: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last attempt.
    pub last_attempt_at: Option<i64>,
    /// Unix ms of the next attempt (pending only).
    pub next_attempt_at: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A page of the outbox, and how many messages are in each state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminMailPage {
    /// The messages, newest first.
    pub messages: Vec<AdminMail>,
    /// Messages in the states shown.
    pub total: u64,
    /// Waiting to be sent (retries included).
    pub pending: u64,
    /// Sent.
    pub sent: u64,
    /// Given up on.
    pub failed: u64,
    /// The server's clock, Unix ms.
    pub now: i64,
}

/// The outbox: `state` `failed` (the default), `pending`, `sent` or `all`; 1-based pages of 50.
#[server(prefix = "/api", endpoint = "admin/mail", input = GetUrl)]
pub async fn list_admin_mail(
    /// Which messages: `failed` (default), `pending`, `sent` or `all`.
    state: Option<String>,
    /// 1-based page (default 1).
    page: Option<u32>,
) -> Result<AdminMailPage, AppError> {
    use crate::server::request;
    use console_sessions::mail::MailState;
    use console_sessions::sessions::{now, to_millis};
    let (app, _staff) = request::require_staff().await?;
    request::no_store();
    let states: &[MailState] = match state.as_deref() {
        Some("pending") => &[MailState::Pending],
        Some("sent") => &[MailState::Sent],
        Some("all") => &[],
        _ => &[MailState::Failed],
    };
    let page = page.unwrap_or(1).clamp(1, 100_000) - 1;
    let outbox = app.mail.outbox();
    let list = outbox
        .list(states, MAIL_PAGE, u64::from(page) * u64::from(MAIL_PAGE))
        .await?;
    let counts = outbox.counts().await?;
    Ok(AdminMailPage {
        messages: list
            .entries
            .into_iter()
            .map(|entry| AdminMail {
                id: entry.id,
                kind: entry.kind,
                recipient: entry.recipient,
                subject: entry.subject,
                state: entry.state.as_str().to_owned(),
                attempts: entry.attempts,
                created_at: to_millis(entry.created_at),
                last_attempt_at: entry.last_attempt_at.map(to_millis),
                next_attempt_at: entry.next_attempt_at.map(to_millis),
                last_error: entry.last_error,
            })
            .collect(),
        total: list.total,
        pending: counts.pending,
        sent: counts.sent,
        failed: counts.failed,
        now: to_millis(now()),
    })
}

/// Queues a failed message again, due now. Recorded.
#[server(prefix = "/api", endpoint = "admin/retry-mail")]
pub async fn admin_retry_mail(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// The failed message.
    id: i64,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/admin/mail", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let (state, staff) = request::require_staff_action("/admin/mail")
        .await
        .map_err(back)?;
    let outbox = state.mail.outbox();
    let entry = outbox
        .get(id)
        .await
        .map_err(|e| back(e.into()))?
        .ok_or_else(|| back(AppError::NotFound))?;
    if !outbox.retry(id).await.map_err(|e| back(e.into()))? {
        // Sent or pending meanwhile: nothing to do, as a second click would find.
        return Err(back(AppError::NotFound));
    }
    let admin = console_sessions::admin::SessionAdmin::new(state.sessions.clone());
    admin
        .record(
            &request::actor(&staff),
            "mail.retry",
            None,
            None,
            &[],
            &format!(
                "{} mail #{id} to {} queued again",
                entry.kind, entry.recipient
            ),
        )
        .await
        .map_err(|e| back(e.into()))?;
    if request::is_plain_form_post() {
        request::redirect("/admin/mail?done=retry");
    }
    Ok(())
}
