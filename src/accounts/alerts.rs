//! New sign-in alerts, and the account's security activity.
//!
//! Every sign-in the engine reports ([`SessionEvent::SignedIn`]) is compared with what the user
//! signed in from before: browser family, operating system and country
//! ([`Accounts::note_sign_in`]). A combination not seen before is a *new* sign-in: it is kept in
//! the account's security activity, and, when the user has alerts on and an email address, answered
//! with an [`Alert`] for the app to mail. The very first sign-in an account makes (or the first
//! since this feature came) is not new: there is nothing to compare it with, and an alert for every
//! account's first sign-in would teach people to ignore them.
//!
//! What is compared depends on what the build knows: without the `device` feature the browser and
//! system are unknown (the same for every sign-in), and without a GeoIP database (the `geo`
//! feature and an engine made with one) the country is; an unknown part matches only unknown.
//!
//! An alert carries two single-use tokens, one per answer, rather than one token with the answer in
//! the link: either can be given alone to a link scanner or a mistaken click without deciding the
//! other. "It was me" ([`AlertAnswer::ItWasMe`]) records the answer and leaves "this wasn't me"
//! usable (a scanner that follows every link of a mail must not take away the way to report a
//! stranger); "this wasn't me" ([`AlertAnswer::NotMe`]) ends that session at once, records the
//! answer, voids "it was me", and hands back a password reset token. Neither needs the person to be
//! signed in: the token is the proof.

use std::future::Future;

use tokio::sync::broadcast::error::RecvError;

use super::tokens::{consume_token, insert_token, Claim, TokenPurpose};
use super::*;
use crate::geo::Place;
use crate::sessions::{parse_stored_ip, ClientInfo, PublicId, SessionEvent};

/// Most security events one [`Accounts::security_activity`] page returns.
pub const MAX_ACTIVITY_PAGE: u32 = 200;

/// What happened, in the account's security activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEventKind {
    /// A sign-in from a browser, system or country the user had not signed in from before.
    NewSignIn,
    /// The user answered a new sign-in alert "it was me".
    AlertConfirmed,
    /// The user answered a new sign-in alert "this wasn't me": the session was ended.
    AlertDenied,
    /// Someone asked for a password reset link for the account.
    PasswordResetRequested,
    /// The password was reset with a link; every session ended.
    PasswordReset,
    /// The user changed their password, giving the current one.
    PasswordChanged,
    /// Staff set the password; every session ended.
    PasswordSetByStaff,
    /// The email address was verified.
    EmailVerified,
    /// A change of email address was asked for (not done until the new address confirms).
    EmailChangeRequested,
    /// The email address was changed (and verified by the change).
    EmailChanged,
    /// New sign-in alerts were turned on.
    SignInAlertsOn,
    /// New sign-in alerts were turned off.
    SignInAlertsOff,
    /// An authenticator app was set up as a second factor.
    TotpEnabled,
    /// The authenticator app was removed.
    TotpRemoved,
    /// New recovery codes were made, voiding the old ones.
    RecoveryCodesRenewed,
    /// A recovery code was used in place of the second factor.
    RecoveryCodeUsed,
    /// A passkey was added.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
}

impl SecurityEventKind {
    const ALL: [Self; 18] = [
        Self::NewSignIn,
        Self::AlertConfirmed,
        Self::AlertDenied,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::PasswordChanged,
        Self::PasswordSetByStaff,
        Self::EmailVerified,
        Self::EmailChangeRequested,
        Self::EmailChanged,
        Self::SignInAlertsOn,
        Self::SignInAlertsOff,
        Self::TotpEnabled,
        Self::TotpRemoved,
        Self::RecoveryCodesRenewed,
        Self::RecoveryCodeUsed,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
    ];

    /// The name the database keeps, e.g. `sign_in.new`, `alert.denied`, `password.reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewSignIn => "sign_in.new",
            Self::AlertConfirmed => "alert.confirmed",
            Self::AlertDenied => "alert.denied",
            Self::PasswordResetRequested => "password.reset_requested",
            Self::PasswordReset => "password.reset",
            Self::PasswordChanged => "password.changed",
            Self::PasswordSetByStaff => "password.set_by_staff",
            Self::EmailVerified => "email.verified",
            Self::EmailChangeRequested => "email.change_requested",
            Self::EmailChanged => "email.changed",
            Self::SignInAlertsOn => "alerts.on",
            Self::SignInAlertsOff => "alerts.off",
            Self::TotpEnabled => "second_factor.totp_enabled",
            Self::TotpRemoved => "second_factor.totp_removed",
            Self::RecoveryCodesRenewed => "second_factor.recovery_codes_renewed",
            Self::RecoveryCodeUsed => "second_factor.recovery_code_used",
            Self::PasskeyAdded => "second_factor.passkey_added",
            Self::PasskeyRemoved => "second_factor.passkey_removed",
        }
    }

    /// The kind a stored name stands for, if this version knows it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One entry of an account's security activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// What happened.
    pub kind: SecurityEventKind,
    /// When.
    pub at: OffsetDateTime,
    /// The session it was about or done from, if any.
    pub session: Option<PublicId>,
    /// The client address, if known.
    pub ip: Option<IpAddr>,
    /// The device, as one line ("Firefox 128 on Linux"), if known.
    pub device: Option<String>,
    /// Where, as far as known.
    pub place: Place,
    /// More, for people: the addresses of an email change, what an alert's answer did.
    pub detail: String,
}

/// A security event to store.
pub(super) struct NewEvent<'a> {
    pub(super) user_id: i64,
    pub(super) kind: SecurityEventKind,
    pub(super) session: Option<&'a PublicId>,
    pub(super) ip: Option<IpAddr>,
    pub(super) device: Option<&'a str>,
    pub(super) place: Option<&'a Place>,
    pub(super) detail: &'a str,
}

impl<'a> NewEvent<'a> {
    /// An event of `user_id` with nothing known of where it came from.
    pub(super) fn of(user_id: i64, kind: SecurityEventKind) -> Self {
        Self {
            user_id,
            kind,
            session: None,
            ip: None,
            device: None,
            place: None,
            detail: "",
        }
    }

    /// The same, from this client address.
    pub(super) fn with_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    /// The same, about this session.
    pub(super) fn about(mut self, session: Option<&'a PublicId>) -> Self {
        self.session = session;
        self
    }

    /// The same, with this detail.
    pub(super) fn detail(mut self, detail: &'a str) -> Self {
        self.detail = detail;
        self
    }
}

/// Binds: user, kind, at, session public id, ip, device, country code, city, detail.
pub(super) const INSERT_EVENT: &str = "\
    INSERT INTO security_events \
        (user_id, kind, at, session_public_id, ip, device, country_code, city, detail) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Runs [`INSERT_EVENT`] for a [`NewEvent`] at `at` (Unix ms) on an executor of either backend.
macro_rules! record_event {
    ($executor:expr, $event:expr, $at:expr) => {{
        let event: &$crate::accounts::alerts::NewEvent<'_> = $event;
        let place = event.place;
        sqlx::query($crate::accounts::alerts::INSERT_EVENT)
            .bind(event.user_id)
            .bind(event.kind.as_str())
            .bind($at)
            .bind(event.session.map(|id| id.as_str()))
            .bind(event.ip.map($crate::sessions::ip_text))
            .bind(event.device)
            .bind(place.and_then(|place| place.country_code.as_deref()))
            .bind(place.and_then(|place| place.city.as_deref()))
            .bind(event.detail)
            .execute($executor)
            .await
    }};
}
pub(super) use record_event;

#[derive(sqlx::FromRow)]
struct EventRow {
    kind: String,
    at: i64,
    session_public_id: Option<String>,
    ip: Option<String>,
    device: Option<String>,
    country_code: Option<String>,
    city: Option<String>,
    detail: String,
}

/// What is known of the device a sign-in came from: what contexts are compared by, and the line an
/// alert shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignInDevice {
    /// Browser family ("Firefox", "Chrome"), without its version, if known.
    pub browser: Option<String>,
    /// Operating system ("Windows 11", "Android"), if known.
    pub os: Option<String>,
    /// One line for people ("Firefox 128 on Linux"); the user agent itself without the `device`
    /// feature, or [`UNKNOWN_DEVICE`](crate::device::UNKNOWN_DEVICE).
    pub summary: String,
}

impl SignInDevice {
    /// What a client's user agent and client hints tell: browser and system with the `device`
    /// feature; without it, nothing to compare (both unknown) and the user agent as the summary.
    pub fn of(client: &ClientInfo) -> Self {
        #[cfg(feature = "device")]
        return Self::from(&crate::device::DeviceSummary::from_request(
            client.user_agent.as_deref(),
            &client.hints,
        ));
        #[cfg(not(feature = "device"))]
        Self {
            browser: None,
            os: None,
            summary: client
                .user_agent
                .clone()
                .unwrap_or_else(|| crate::device::UNKNOWN_DEVICE.to_owned()),
        }
    }
}

#[cfg(feature = "device")]
impl From<&crate::device::DeviceSummary> for SignInDevice {
    fn from(summary: &crate::device::DeviceSummary) -> Self {
        Self {
            browser: summary.browser.clone(),
            os: summary.os.clone(),
            summary: summary.summary.clone(),
        }
    }
}

/// A new sign-in to tell the user about by mail: everything the mail says, and its two answers.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The user (username and email address for the mail; the address is always there).
    pub user: User,
    /// The session that signed in (under its public id).
    pub session: PublicId,
    /// When it signed in.
    pub at: OffsetDateTime,
    /// From which address, if known.
    pub ip: Option<IpAddr>,
    /// On which device.
    pub device: SignInDevice,
    /// Where, as far as known.
    pub place: Place,
    /// "It was me": give back to [`Accounts::answer_alert`] with [`AlertAnswer::ItWasMe`].
    pub it_was_me: IssuedToken,
    /// "This wasn't me": give back with [`AlertAnswer::NotMe`].
    pub not_me: IssuedToken,
}

/// The answer to a new sign-in alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAnswer {
    /// The sign-in was the user's.
    ItWasMe,
    /// It was not: end that session and set a new password.
    NotMe,
}

impl AlertAnswer {
    fn purpose(self) -> TokenPurpose {
        match self {
            Self::ItWasMe => TokenPurpose::AlertConfirm,
            Self::NotMe => TokenPurpose::AlertDeny,
        }
    }
}

/// What answering an alert did.
#[derive(Debug)]
pub struct AlertAnswered {
    /// The user the alert was about.
    pub user: User,
    /// The session the alert was about.
    pub session: Option<PublicId>,
    /// The answer recorded.
    pub answer: AlertAnswer,
    /// "This wasn't me": whether the session was still there and has now ended.
    pub session_ended: bool,
    /// "This wasn't me": a password reset token, so the app can lead straight to a new password
    /// (as [`Accounts::reset_password`] takes it). `None` for "it was me".
    pub password_reset: Option<IssuedToken>,
}

impl Accounts {
    /// Looks at a sign-in the engine reported: the device from its client, the place from the
    /// engine's GeoIP database (nothing without the `geo` feature or with none configured). See
    /// [`Accounts::note_sign_in`].
    pub async fn note_sign_in_event(
        &self,
        event: &crate::sessions::SignedIn,
    ) -> Result<Option<Alert>, AccountError> {
        self.record_sign_in_attempt(
            event.user_id,
            true,
            event.method.as_str(),
            &event.client,
            Some(&event.public_id),
        )
        .await;
        let place = event
            .client
            .ip
            .map(|ip| self.engine().place(ip))
            .unwrap_or_default();
        let device = SignInDevice::of(&event.client);
        self.note_sign_in(event, &place, &device).await
    }

    /// Records where a sign-in came from among the user's known sign-in contexts (browser family,
    /// operating system, country), and says whether it is new (see the module documentation; the
    /// user's first ever is not). A new one is kept in the security activity; when the user also
    /// has alerts on and an email address, it gives an [`Alert`] to mail, with its two answer
    /// tokens. `None` for a known context, alerts off, no address, or a user gone meanwhile.
    pub async fn note_sign_in(
        &self,
        event: &crate::sessions::SignedIn,
        place: &Place,
        device: &SignInDevice,
    ) -> Result<Option<Alert>, AccountError> {
        let Some(user) = self.user(event.user_id).await? else {
            return Ok(None);
        };
        let at = now();
        let at_ms = to_millis(at);
        let key = |part: Option<&str>| part.map(str::trim).unwrap_or_default().to_owned();
        let (browser, os) = (key(device.browser.as_deref()), key(device.os.as_deref()));
        let country = key(place.country_code.as_deref());
        let wants_alert =
            self.inner.config.sign_in_alerts && user.sign_in_alerts && user.email.is_some();
        let tokens = wants_alert.then(|| {
            [TokenPurpose::AlertConfirm, TokenPurpose::AlertDeny]
                .map(|purpose| self.new_token(purpose, user.id, None, Some(&event.public_id), at))
        });
        let detail = if wants_alert {
            "alert sent"
        } else {
            "no alert"
        };
        let new_event = NewEvent {
            user_id: user.id,
            kind: SecurityEventKind::NewSignIn,
            session: Some(&event.public_id),
            ip: self.kept_ip(event.client.ip),
            device: Some(&device.summary),
            place: Some(place),
            detail,
        };
        let noted: Result<bool, sqlx::Error> = with_pool!(self.db(), |pool| async {
            let mut tx = pool.begin().await?;
            // The write comes first: on SQLite a transaction that reads and then writes fails at
            // once (SQLITE_BUSY, no busy wait) when another connection wrote in between, such as
            // the signing-in request saving its session; one that writes first waits its turn.
            let inserted: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO sign_in_contexts \
                     (user_id, browser, os, country_code, first_seen_at, last_seen_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (user_id, browser, os, country_code) DO NOTHING RETURNING id",
            )
            .bind(user.id)
            .bind(&browser)
            .bind(&os)
            .bind(&country)
            .bind(at_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if inserted.is_none() {
                sqlx::query(
                    "UPDATE sign_in_contexts SET last_seen_at = $1 \
                     WHERE user_id = $2 AND browser = $3 AND os = $4 AND country_code = $5",
                )
                .bind(at_ms)
                .bind(user.id)
                .bind(&browser)
                .bind(&os)
                .bind(&country)
                .execute(&mut *tx)
                .await?;
            }
            let (known,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM sign_in_contexts WHERE user_id = $1")
                    .bind(user.id)
                    .fetch_one(&mut *tx)
                    .await?;
            // `known` counts the context just inserted too: new, and not the user's first.
            let is_new = inserted.is_some() && known > 1;
            if is_new {
                record_event!(&mut *tx, &new_event, at_ms)?;
                for (_, stored) in tokens.iter().flatten() {
                    insert_token!(&mut *tx, stored)?;
                }
            }
            tx.commit().await?;
            Ok(is_new)
        }
        .await);
        let is_new = match noted {
            Ok(is_new) => is_new,
            // Deleted between the read and the insert: nobody to tell.
            Err(error) if is_foreign_key_violation(&error) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        if !is_new {
            return Ok(None);
        }
        tracing::info!(
            user_id = user.id,
            alert = wants_alert,
            "new sign-in context"
        );
        let Some([(it_was_me, _), (not_me, _)]) = tokens else {
            return Ok(None);
        };
        Ok(Some(Alert {
            user,
            session: event.public_id.clone(),
            at,
            ip: self.kept_ip(event.client.ip),
            device: device.clone(),
            place: place.clone(),
            it_was_me,
            not_me,
        }))
    }

    /// Answers a new sign-in alert with the token of that answer (no sign-in needed: the token is
    /// the proof). A token of the other answer, or one used, expired or unknown, gives
    /// [`AccountRefusal::InvalidToken`].
    ///
    /// "It was me" records the answer. "This wasn't me" ends that session (database and cache)
    /// at once, records the answer, voids the alert's "it was me", and returns a password reset
    /// token (replacing earlier unused ones) so the app can lead straight to a new password. "This
    /// wasn't me" still works after "it was me".
    pub async fn answer_alert(
        &self,
        token: &str,
        answer: AlertAnswer,
    ) -> Result<AlertAnswered, AccountError> {
        let Some(hash) = OneTimeToken::hash_of(token) else {
            return Err(AccountError::Refused(AccountRefusal::InvalidToken));
        };
        let answered_at = now();
        let at = to_millis(answered_at);
        let (kind, detail) = match answer {
            AlertAnswer::ItWasMe => (SecurityEventKind::AlertConfirmed, "it was me"),
            AlertAnswer::NotMe => (
                SecurityEventKind::AlertDenied,
                "this wasn't me: session ended",
            ),
        };
        let claimed: Option<Claim> = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let Some(claim) = consume_token!(&mut *tx, &hash, answer.purpose(), at)? else {
                return Err(AccountError::Refused(AccountRefusal::InvalidToken));
            };
            let session = claim.session_public_id.as_deref().and_then(PublicId::parse);
            let event = NewEvent::of(claim.user_id, kind)
                .about(session.as_ref())
                .detail(detail);
            record_event!(&mut *tx, &event, at)?;
            if answer == AlertAnswer::NotMe {
                // The same alert cannot be confirmed once denied.
                sqlx::query(
                    "UPDATE account_tokens SET used_at = $1 WHERE user_id = $2 \
                     AND purpose = $3 AND session_public_id = $4 AND used_at IS NULL",
                )
                .bind(at)
                .bind(claim.user_id)
                .bind(TokenPurpose::AlertConfirm.as_str())
                .bind(claim.session_public_id.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, AccountError>(Some(claim))
        })?;
        let Some(claim) = claimed else {
            return Err(AccountError::Refused(AccountRefusal::InvalidToken));
        };
        let user = self
            .user(claim.user_id)
            .await?
            .ok_or(AccountError::Refused(AccountRefusal::InvalidToken))?;
        let session = claim.session_public_id.as_deref().and_then(PublicId::parse);
        if answer == AlertAnswer::ItWasMe {
            tracing::info!(user_id = user.id, "new sign-in confirmed");
            return Ok(AlertAnswered {
                user,
                session,
                answer,
                session_ended: false,
                password_reset: None,
            });
        }
        let session_ended = match &session {
            Some(public_id) => {
                self.inner
                    .engine
                    .end_session(user.id, public_id, EndCause::NotMe)
                    .await?
            }
            None => false,
        };
        let reset = self.issue_password_reset(&user, None, false).await?;
        tracing::warn!(user_id = user.id, session_ended, "new sign-in denied");
        Ok(AlertAnswered {
            user,
            session,
            answer,
            session_ended,
            password_reset: Some(reset),
        })
    }

    /// Turns a user's new sign-in alerts on or off (recorded in their security activity).
    pub async fn set_sign_in_alerts(&self, user_id: i64, on: bool) -> Result<(), AccountError> {
        let kind = if on {
            SecurityEventKind::SignInAlertsOn
        } else {
            SecurityEventKind::SignInAlertsOff
        };
        let at = to_millis(now());
        let event = NewEvent::of(user_id, kind);
        let updated = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query("UPDATE users SET sign_in_alerts = $1 WHERE id = $2")
                .bind(on)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 1 {
                record_event!(&mut *tx, &event, at)?;
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(updated)
        })?;
        if updated == 0 {
            return Err(AccountError::UserNotFound);
        }
        tracing::info!(user_id, on, "sign-in alerts set");
        Ok(())
    }

    /// A user's security activity, newest first: `limit` (at most [`MAX_ACTIVITY_PAGE`]) events
    /// after skipping `offset`. Events of kinds this version does not know are left out.
    pub async fn security_activity(
        &self,
        user_id: i64,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<SecurityEvent>, AccountError> {
        let limit = i64::from(limit.min(MAX_ACTIVITY_PAGE));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows: Vec<EventRow> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT kind, at, session_public_id, ip, device, country_code, city, detail \
             FROM security_events WHERE user_id = $1 ORDER BY at DESC, id DESC \
             LIMIT $2 OFFSET $3"
        )
        .bind(user_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(SecurityEvent {
                    kind: SecurityEventKind::parse(&row.kind)?,
                    at: from_millis(row.at),
                    session: row.session_public_id.as_deref().and_then(PublicId::parse),
                    ip: row.ip.as_deref().and_then(parse_stored_ip),
                    device: row.device,
                    place: Place {
                        country_code: row.country_code,
                        city: row.city,
                    },
                    detail: row.detail,
                })
            })
            .collect())
    }

    /// Starts the task that hears every sign-in of the engine ([`SessionEngine::subscribe`],
    /// subscribed before this returns), looks at it ([`Accounts::note_sign_in_event`]) and hands
    /// each [`Alert`] to `handler`, which only has to send the mail. It runs until
    /// [`SignInAlerts::stop`] (or until the engine is dropped); whether alerts are mailed at all is
    /// [`AccountsConfig::sign_in_alerts`].
    ///
    /// Events are handled one at a time, so `handler` should queue the mail rather than wait for
    /// the mail server. When the task falls more than [`EVENT_BUFFER`](crate::sessions::EVENT_BUFFER)
    /// events behind, the oldest are lost (a broadcast keeps no more): it logs how many and
    /// carries on, and those sign-ins are neither compared nor recorded. A failure to look at one
    /// sign-in is logged and the task carries on too.
    pub fn spawn_sign_in_alerts<F, Fut>(&self, handler: F) -> SignInAlerts
    where
        F: Fn(Alert) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut events = self.engine().subscribe();
        let accounts = self.clone();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let span = tracing::info_span!(parent: None, "sign_in_alerts");
        let task = async move {
            loop {
                let received = tokio::select! {
                    biased;
                    received = events.recv() => received,
                    _ = stopped.wait_for(|stop| *stop) => {
                        // What was sent before the stop is still handled; nothing after.
                        match events.try_recv() {
                            Ok(event) => Ok(event),
                            Err(_) => return,
                        }
                    }
                };
                let signed_in = match received {
                    Ok(SessionEvent::SignedIn(signed_in)) => signed_in,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "sign-in alerts fell behind; sign-ins were missed");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                match accounts.note_sign_in_event(&signed_in).await {
                    Ok(Some(alert)) => handler(alert).await,
                    Ok(None) => {}
                    Err(error) => tracing::warn!(
                        %error,
                        user_id = signed_in.user_id,
                        "cannot check a sign-in for an alert"
                    ),
                }
            }
        };
        SignInAlerts {
            stop,
            task: tokio::spawn(tracing::Instrument::instrument(task, span)),
        }
    }
}

/// The running task of [`Accounts::spawn_sign_in_alerts`].
#[derive(Debug)]
pub struct SignInAlerts {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SignInAlerts {
    /// Stops the task once it has handled the sign-ins reported so far (their alerts handed to
    /// the handler, so queued), and waits for it: at shutdown, after the server stopped taking
    /// requests and before the mail worker stops, no alert of a sign-in that happened is lost.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the sign-in alerts task ended abnormally");
        }
    }
}

/// Whether a query failed on a foreign key (same meaning on both backends).
fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_foreign_key_violation())
}
