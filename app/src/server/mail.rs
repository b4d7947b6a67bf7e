//! The mail the application sends: each account message put together from what the library
//! returned (a reset, a verification, an alert…) with its one-time link, and queued in the outbox.
//! Nothing here waits for a mail server: [`Outbox::enqueue`] commits the message and the worker
//! started with the server sends it, retrying while the server is down.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use console_sessions::accounts::{Alert, EmailChange, EmailVerification, PasswordReset, User};
use console_sessions::geo::GeoIp;
use console_sessions::mail::{MailError, Message, Outbox, PublicOrigin, SignInAlert};
use time::OffsetDateTime;

use super::links::LinkKind;

/// Where a notice ("your password was changed", "your address is being changed") sends someone for
/// whom it is news: "forgot password", whose link goes to the address the account has then.
const IF_NOT_YOU: &str = "/forgot-password";

/// The outbox and where the links in mail lead. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Mailer {
    outbox: Outbox,
    origin: Arc<PublicOrigin>,
}

impl Mailer {
    /// A mailer queueing into `outbox`, its links on `origin` (the public origin and base path).
    pub fn new(outbox: Outbox, origin: PublicOrigin) -> Self {
        Self {
            outbox,
            origin: Arc::new(origin),
        }
    }

    /// The outbox (staff list failed mail, the server runs its worker).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Where the links lead.
    pub fn origin(&self) -> &PublicOrigin {
        &self.origin
    }

    /// "Reset your password", to the account's address.
    pub async fn password_reset(
        &self,
        reset: &PasswordReset,
        valid_for: Duration,
    ) -> Result<(), MailError> {
        let Some(to) = reset.user.email.as_deref() else {
            return Ok(());
        };
        let link = LinkKind::ResetPassword.link(reset.token.token.expose());
        let message =
            Message::password_reset(&self.origin, to, &reset.user.username, &link, valid_for)?;
        self.queue(&message).await
    }

    /// "Your password was changed" (every session signed out), with where to go if that is news.
    pub async fn password_changed(&self, user: &User) -> Result<(), MailError> {
        let Some(to) = user.email.as_deref() else {
            return Ok(());
        };
        let message = Message::password_changed(
            &self.origin,
            to,
            &user.username,
            OffsetDateTime::now_utc(),
            IF_NOT_YOU,
        )?;
        self.queue(&message).await
    }

    /// "Two-step sign-in changed": `change` says how, with where to go if that is news.
    pub async fn two_step_changed(&self, user: &User, change: &str) -> Result<(), MailError> {
        let Some(to) = user.email.as_deref() else {
            return Ok(());
        };
        let message = Message::two_step_changed(
            &self.origin,
            to,
            &user.username,
            change,
            OffsetDateTime::now_utc(),
            IF_NOT_YOU,
        )?;
        self.queue(&message).await
    }

    /// "Confirm your email address".
    pub async fn email_verification(
        &self,
        verification: &EmailVerification,
        valid_for: Duration,
    ) -> Result<(), MailError> {
        let link = LinkKind::VerifyEmail.link(verification.token.token.expose());
        let message = Message::email_verification(
            &self.origin,
            &verification.email,
            &verification.user.username,
            &link,
            valid_for,
        )?;
        self.queue(&message).await
    }

    /// An email change: "Confirm your new email address" to the new one, and a notice to the old
    /// one (if any) saying where to act if the change is news.
    pub async fn email_change(
        &self,
        change: &EmailChange,
        valid_for: Duration,
    ) -> Result<(), MailError> {
        let link = LinkKind::ConfirmEmail.link(change.token.token.expose());
        let confirm = Message::email_change(
            &self.origin,
            &change.new_email,
            &change.user.username,
            &link,
            valid_for,
        )?;
        let notice = match change.old_email.as_deref() {
            Some(old) => Some(Message::email_change_notice(
                &self.origin,
                old,
                &change.user.username,
                &change.new_email,
                IF_NOT_YOU,
            )?),
            None => None,
        };
        self.queue(&confirm).await?;
        if let Some(notice) = notice {
            self.queue(&notice).await?;
        }
        Ok(())
    }

    /// "New sign-in to your account", with "Yes, it was me" and "This wasn't me".
    pub async fn sign_in_alert(&self, alert: &Alert, geoip: &GeoIp) -> Result<(), MailError> {
        let Some(to) = alert.user.email.as_deref() else {
            return Ok(());
        };
        let sign_in = SignInAlert {
            device: alert.device.summary.clone(),
            // Under IP_RETENTION=none there is no address to name: the place found at sign-in.
            place: alert
                .ip
                .and_then(|ip| place(geoip, ip))
                .or_else(|| alert.place.label()),
            ip: alert.ip,
            at: alert.at,
        };
        let message = Message::new_sign_in(
            &self.origin,
            to,
            &alert.user.username,
            &sign_in,
            &LinkKind::AlertItWasMe.link(alert.it_was_me.token.expose()),
            &LinkKind::AlertNotMe.link(alert.not_me.token.expose()),
        )?;
        self.queue(&message).await
    }

    async fn queue(&self, message: &Message) -> Result<(), MailError> {
        let id = self.outbox.enqueue(message).await?;
        tracing::info!(id, kind = %message.kind(), "mail queued");
        Ok(())
    }
}

/// "London, United Kingdom", or `None` when the address says nothing.
fn place(geoip: &GeoIp, ip: IpAddr) -> Option<String> {
    let location = geoip.location(ip);
    (location != console_sessions::geo::UNKNOWN_LOCATION).then_some(location)
}
