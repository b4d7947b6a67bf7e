//! The signed-in user's security settings and history: their email address (verify it, change
//! it), new sign-in alerts (on or off), and the security activity (new sign-ins, answers to
//! alerts, password and address changes). Every call is scoped to the signed-in user.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Entries of the security activity shown per page.
pub const ACTIVITY_PAGE: u32 = 25;

/// One entry of the security activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityItem {
    /// The kind, as the library names it (`sign_in.new`, `alert.denied`, `password.reset`…).
    pub kind: String,
    /// What happened, in words ("New sign-in", "Password reset with a link").
    pub title: String,
    /// Unix milliseconds.
    pub at: i64,
    /// "Firefox 128 on Linux", for sign-ins.
    pub device: Option<String>,
    /// "London, United Kingdom", when known.
    pub location: Option<String>,
    /// ISO country code, for the flag.
    pub country_code: Option<String>,
    /// The address it came from, when known.
    pub ip: Option<String>,
    /// Whether this entry calls for attention (a denied sign-in, a password set by staff).
    pub warning: bool,
}

/// The security page's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityPageData {
    /// The account's email address, if any.
    pub email: Option<String>,
    /// Whether that address is verified.
    pub email_verified: bool,
    /// Whether the user wants new sign-in alerts.
    pub sign_in_alerts: bool,
    /// Whether the service sends them at all (`SIGN_IN_ALERTS`).
    pub alerts_available: bool,
    /// This page of the activity, newest first.
    pub activity: Vec<ActivityItem>,
    /// The page shown (from 1).
    pub page: u32,
    /// Whether an older page exists.
    pub more: bool,
    /// The server's clock, Unix milliseconds, for "3 days ago".
    pub now: i64,
}

/// The signed-in user's security settings and one page (from 1) of their security activity.
#[server(prefix = "/api", endpoint = "account/security", input = GetUrl)]
pub async fn security_overview(
    /// The page of activity, from 1.
    #[server(default)]
    page: u32,
) -> Result<SecurityPageData, AppError> {
    use crate::server::request;
    use console_sessions::sessions::{now, to_millis};
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    let user = request::signed_in_user(&state, &session)
        .await?
        .ok_or(AppError::SignInRequired)?;
    let page = page.clamp(1, 10_000);
    let offset = u64::from(page - 1) * u64::from(ACTIVITY_PAGE);
    // One more than shown says whether there is an older page.
    let mut events = state
        .accounts
        .security_activity(user.id, ACTIVITY_PAGE + 1, offset)
        .await?;
    let more = events.len() > ACTIVITY_PAGE as usize;
    events.truncate(ACTIVITY_PAGE as usize);
    let shown = crate::api::shown::Shown::of(&state);
    let activity = events
        .into_iter()
        .map(|event| activity_item(event, &shown))
        .collect();
    Ok(SecurityPageData {
        email_verified: user.email.is_some() && user.email_verified_at.is_some(),
        email: user.email,
        sign_in_alerts: user.sign_in_alerts,
        alerts_available: state.accounts.config().sign_in_alerts,
        activity,
        page,
        more,
        now: to_millis(now()),
    })
}

#[cfg(feature = "ssr")]
fn activity_item(
    event: console_sessions::accounts::SecurityEvent,
    shown: &crate::api::shown::Shown<'_>,
) -> ActivityItem {
    use console_sessions::accounts::SecurityEventKind as K;
    use console_sessions::sessions::to_millis;
    let title = match event.kind {
        K::NewSignIn => "New sign-in from a device or place not seen before",
        K::AlertConfirmed => "You confirmed a new sign-in: \u{201c}Yes, it was me\u{201d}",
        K::AlertDenied => {
            "You reported a sign-in: \u{201c}This wasn't me\u{201d} — it was signed out"
        }
        K::PasswordResetRequested => "A password reset link was sent",
        K::PasswordReset => "Password reset with a link; every session was signed out",
        K::PasswordChanged => "Password changed",
        K::PasswordSetByStaff => "Password set by an administrator; every session was signed out",
        K::EmailVerified => "Email address confirmed",
        K::EmailChangeRequested => "A change of email address was asked for",
        K::EmailChanged => "Email address changed",
        K::SignInAlertsOn => "New sign-in alerts turned on",
        K::SignInAlertsOff => "New sign-in alerts turned off",
        K::TotpEnabled => "Authenticator app set up for two-step sign-in",
        K::TotpRemoved => "Authenticator app removed",
        K::RecoveryCodesRenewed => "New recovery codes made; the old ones no longer work",
        K::RecoveryCodeUsed => "A recovery code was used to sign in or confirm access",
        K::PasskeyAdded => "Passkey added",
        K::PasskeyRemoved => "Passkey removed",
    };
    let location = match (event.ip, event.place.is_empty()) {
        (Some(ip), _) => Some(shown.geoip().location(ip)),
        (None, false) => event
            .place
            .city
            .clone()
            .or(event.place.country_code.clone()),
        (None, true) => None,
    };
    ActivityItem {
        kind: event.kind.as_str().to_owned(),
        title: title.to_owned(),
        at: to_millis(event.at),
        device: event.device,
        location,
        country_code: event.place.country_code,
        ip: shown.ip(event.ip, event.at),
        warning: matches!(
            event.kind,
            K::AlertDenied | K::PasswordSetByStaff | K::TotpRemoved | K::PasskeyRemoved
        ),
    }
}

/// Sends a new link to confirm the signed-in user's email address.
#[server(prefix = "/api", endpoint = "account/send-verification")]
pub async fn send_verification(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/security", error, &[]);
    let (state, _session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    crate::api::account::send_verification_mail(&state, user_id)
        .await
        .map_err(back)?;
    if request::is_plain_form_post() {
        request::redirect("/account/security?sent=verify");
    }
    Ok(())
}

/// Asks to change the signed-in user's email address, given their current password (a session
/// alone, a browser left signed in, cannot redirect the account's mail): a link goes to the new
/// address (the change happens when it is opened), a notice to the old one.
#[server(prefix = "/api", endpoint = "account/change-email")]
pub async fn change_email(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// The new address.
    email: String,
    /// The password in force now; wrong ones count toward the account's throttle.
    current_password: String,
) -> Result<String, AppError> {
    use crate::server::request;
    let back = |error| {
        request::back_with_error_keeping("/account/security", error, &[], &[("email", &email)])
    };
    let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    state
        .accounts
        .confirm_password(user_id, &current_password)
        .await
        .map_err(|e| back(e.into()))?;
    session
        .confirm_access(console_sessions::sessions::AuthMethod::Password)
        .await
        .map_err(|e| back(e.into()))?;
    let change = state
        .accounts
        .request_email_change(user_id, &email)
        .await
        .map_err(|e| back(e.into()))?;
    let valid_for = state.accounts.config().token_lifetimes.email;
    state
        .mail
        .email_change(&change, valid_for)
        .await
        .map_err(|e| back(e.into()))?;
    if request::is_plain_form_post() {
        request::redirect("/account/security?sent=email");
    }
    Ok(change.new_email)
}

/// Turns the signed-in user's new sign-in alerts on (`on` present) or off.
#[server(prefix = "/api", endpoint = "account/sign-in-alerts")]
pub async fn set_sign_in_alerts(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// The checkbox: present (whatever its value) for on; browsers send nothing for an unticked box.
    on: Option<String>,
) -> Result<bool, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/security", error, &[]);
    let (state, _session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    let on = on.is_some();
    state
        .accounts
        .set_sign_in_alerts(user_id, on)
        .await
        .map_err(|e| back(e.into()))?;
    if request::is_plain_form_post() {
        request::redirect(&format!(
            "/account/security?alerts={}",
            if on { "on" } else { "off" }
        ));
    }
    Ok(on)
}
