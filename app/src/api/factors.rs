//! Second factors: the second step of a sign-in, confirming access before a sensitive action
//! (step-up), and the signed-in user's authenticator app and recovery codes. Thin calls into the
//! library's `Accounts` (`factors.rs`) and `Session::confirm_access`.
//!
//! Every function that changes state checks the form's `csrf_token` first; adding or removing a
//! factor also needs a recent proof (`STEP_UP_WINDOW`), as every sensitive action does.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The session key under which fresh recovery codes wait for the page that shows them once.
#[cfg(feature = "ssr")]
const FRESH_CODES: &str = "_fresh_recovery_codes";

/// The signed-in user's second factors, for the security page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorsView {
    /// When the authenticator app was set up (Unix ms), if one is.
    pub totp_since: Option<i64>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
    /// Recovery codes made at the last (re)generation.
    pub recovery_codes_total: u32,
    /// Whether staff must have a second factor, and this user is staff.
    pub required: bool,
    /// Passkeys registered (each is a second factor too).
    #[serde(default)]
    pub passkeys: u32,
}

impl FactorsView {
    /// Whether signing in asks for a second step.
    pub fn any(&self) -> bool {
        self.totp_since.is_some() || self.passkeys > 0
    }

    /// Whether the authenticator app is the only second factor (removing it asks to confirm).
    pub fn totp_is_last(&self) -> bool {
        self.totp_since.is_some() && self.passkeys == 0
    }
}

/// The signed-in user's second factors.
#[server(prefix = "/api", endpoint = "account/factors", input = GetUrl)]
pub async fn my_factors() -> Result<FactorsView, AppError> {
    use crate::server::request;
    use console_sessions::sessions::to_millis;
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    let user = request::signed_in_user(&state, &session)
        .await?
        .ok_or(AppError::SignInRequired)?;
    let factors = state.accounts.second_factors(user.id).await?;
    Ok(FactorsView {
        totp_since: factors.totp_since.map(to_millis),
        recovery_codes_left: factors.recovery_codes_left,
        recovery_codes_total: factors.recovery_codes_total,
        required: user.is_staff && state.site.require_second_factor_for_staff,
        passkeys: factors.passkeys,
    })
}

/// What the second step of a sign-in can be done with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingStep {
    /// The user has an authenticator app.
    pub totp: bool,
    /// The user has a passkey (and passkeys work here).
    pub passkey: bool,
}

/// The sign-in waiting in this session for its second step, if one is (the page shows its forms,
/// or sends the person back to sign in).
#[server(prefix = "/api", endpoint = "account/second-step", input = GetUrl)]
pub async fn second_step_waiting() -> Result<Option<WaitingStep>, AppError> {
    use crate::server::request;
    use console_sessions::accounts::SecondStep;
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    let Some(step) = SecondStep::pending(&session).await? else {
        return Ok(None);
    };
    let factors = state.accounts.second_factors(step.user_id).await?;
    Ok(Some(WaitingStep {
        totp: factors.totp_since.is_some(),
        passkey: factors.passkeys > 0 && state.accounts.passkeys_available(),
    }))
}

/// The second step of a sign-in: a code from the authenticator app, or a recovery code. Signs the
/// session in (password + authenticator app, or + recovery code) and goes to `next`.
#[server(prefix = "/api", endpoint = "account/second-step")]
pub async fn second_step(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// Six digits from the app, or a recovery code (spaces and dashes are ignored).
    code: String,
    /// Where to go once signed in (as for the password step).
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::error::AccountRefusal;
    use crate::server::request;
    use console_sessions::accounts::SecondStep;
    let next_value = next.clone().unwrap_or_default();
    let back =
        |error| request::back_with_error("/sign-in/two-factor", error, &[("next", &next_value)]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    let Some(step) = SecondStep::pending(&session)
        .await
        .map_err(|e| back(e.into()))?
    else {
        return Err(request::back_with_error(
            "/sign-in",
            AccountRefusal::SignInExpired.into(),
            &[("next", &next_value)],
        ));
    };
    let method = state
        .accounts
        .verify_second_factor_from(step.user_id, &code, session.client())
        .await
        .map_err(|e| back(e.into()))?;
    step.finish(&session, method)
        .await
        .map_err(|e| back(e.into()))?;
    tracing::info!(user_id = step.user_id, method = %method, "second step passed");
    tell_if_recovery_code(&state, step.user_id, method).await;
    let url = crate::api::account::after_sign_in(&state, &session, step.user_id, next.as_deref())
        .await
        .map_err(back)?;
    request::redirect_to(&url);
    Ok(())
}

/// What the confirm-access page offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmChoices {
    /// The user has an authenticator app: a code from it will do.
    pub totp: bool,
    /// The user has a second factor, so a recovery code will do too.
    #[serde(default)]
    pub codes: bool,
    /// The user has a passkey (and passkeys work here).
    #[serde(default)]
    pub passkey: bool,
    /// How long a confirmation lasts, in seconds (`STEP_UP_WINDOW`).
    pub window_secs: u64,
}

/// What the signed-in user can confirm access with.
#[server(prefix = "/api", endpoint = "account/confirm-options", input = GetUrl)]
pub async fn confirm_options() -> Result<ConfirmChoices, AppError> {
    use crate::server::request;
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    let user_id = request::require_active_user_id(&state, &session).await?;
    let factors = state.accounts.second_factors(user_id).await?;
    Ok(ConfirmChoices {
        totp: factors.totp_since.is_some(),
        // Recovery codes stand in for any factor.
        codes: factors.any(),
        passkey: factors.passkeys > 0 && state.accounts.passkeys_available(),
        window_secs: state.site.step_up_window.as_secs(),
    })
}

/// Confirms access (step-up): the password, or a code from the authenticator app (or a recovery
/// code), checked and throttled as at sign-in. The session then counts as just proved for
/// `STEP_UP_WINDOW`, under a new token, and the browser goes back to `next`, the page of the
/// action that was interrupted.
#[server(prefix = "/api", endpoint = "account/confirm-access")]
pub async fn confirm_access(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// The password (the password form).
    password: Option<String>,
    /// A code (the code form); used when given.
    code: Option<String>,
    /// The page to go back to.
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::server::request;
    use console_sessions::sessions::AuthMethod;
    let next_value = next.clone().unwrap_or_default();
    let back = |error| request::back_with_error("/confirm-access", error, &[("next", &next_value)]);
    let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    let method = match code.filter(|code| !code.trim().is_empty()) {
        Some(code) => state
            .accounts
            .verify_second_factor_from(user_id, &code, session.client())
            .await
            .map_err(|e| back(e.into()))?,
        None => {
            state
                .accounts
                .confirm_password(user_id, password.as_deref().unwrap_or_default())
                .await
                .map_err(|e| back(e.into()))?;
            AuthMethod::Password
        }
    };
    session
        .confirm_access(method)
        .await
        .map_err(|e| back(e.into()))?;
    tracing::info!(user_id, method = %method, "access confirmed");
    tell_if_recovery_code(&state, user_id, method).await;
    request::redirect_to(&request::safe_next(
        next.as_deref(),
        &state.site.redirect_origins,
    ));
    Ok(())
}

/// Starts setting up an authenticator app (a sensitive action), then shows its QR code.
#[server(prefix = "/api", endpoint = "account/totp/start")]
pub async fn start_totp(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/security", error, &[]);
    let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    request::require_recent_proof(&state, &session, "/account/security").await?;
    state
        .accounts
        .start_totp(user_id)
        .await
        .map_err(|e| back(e.into()))?;
    request::redirect("/account/two-factor/setup");
    Ok(())
}

/// An authenticator app being set up, to show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetupView {
    /// The secret in base 32, grouped by four for typing.
    pub secret: String,
    /// The QR code, an SVG document made on the server.
    pub qr_svg: String,
    /// The `otpauth://` URL, for a link on a phone.
    pub otpauth_url: String,
}

/// The authenticator app the signed-in user is setting up; `None` when no setup waits.
#[server(prefix = "/api", endpoint = "account/totp/setup", input = GetUrl)]
pub async fn totp_setup() -> Result<Option<TotpSetupView>, AppError> {
    use crate::server::request;
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    let user_id = request::require_active_user_id(&state, &session).await?;
    // The secret is a factor: only for a session that proved itself lately, as starting it did.
    request::require_recent_proof(&state, &session, "/account/security").await?;
    Ok(state
        .accounts
        .pending_totp(user_id)
        .await?
        .map(|setup| TotpSetupView {
            secret: group_by_four(&setup.secret_base32),
            // The SVG element alone: it goes inside the page.
            qr_svg: setup
                .qr_svg
                .find("<svg")
                .map_or(setup.qr_svg.clone(), |at| setup.qr_svg[at..].to_owned()),
            otpauth_url: setup.otpauth_url,
        }))
}

#[cfg(feature = "ssr")]
fn group_by_four(text: &str) -> String {
    text.as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Confirms the authenticator app being set up with a code from it. The first factor brings
/// recovery codes, shown once on the next page.
#[server(prefix = "/api", endpoint = "account/totp/confirm")]
pub async fn confirm_totp(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// Six digits from the app.
    code: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/two-factor/setup", error, &[]);
    let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    request::require_recent_proof(&state, &session, "/account/security").await?;
    let codes = state
        .accounts
        .confirm_totp(user_id, &code, session.client().ip)
        .await
        .map_err(|e| back(e.into()))?;
    tell_owner(&state, user_id, "An authenticator app was set up").await;
    match codes {
        Some(codes) => {
            show_codes_once(&session, codes).await.map_err(back)?;
            request::redirect("/account/two-factor/recovery-codes?new=totp");
        }
        None => request::redirect("/account/security?totp=on"),
    }
    Ok(())
}

/// Tells the user by mail that their two-step sign-in changed (`change`, a sentence without its
/// full stop), with where to go if it was not them: taking over an account starts with adding a
/// factor of one's own. The change stands whether or not the notice could be queued (a failure is
/// logged).
#[cfg(feature = "ssr")]
pub(crate) async fn tell_owner(state: &crate::server::state::AppState, user_id: i64, change: &str) {
    let user = match state.accounts.user(user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(user_id, "two-step notice not queued: {error}");
            return;
        }
    };
    if let Err(error) = state.mail.two_step_changed(&user, change).await {
        tracing::warn!(user_id, "two-step notice not queued: {error}");
    }
}

/// The notice's words when a factor went, by whether it was the last.
#[cfg(feature = "ssr")]
pub(crate) fn removed_words(what: &str, last: bool) -> String {
    if last {
        format!("{what} was removed, and with it your last second factor: two-step sign-in is off")
    } else {
        format!("{what} was removed")
    }
}

/// Tells the owner when a recovery code stood in for their second factor.
#[cfg(feature = "ssr")]
pub(crate) async fn tell_if_recovery_code(
    state: &crate::server::state::AppState,
    user_id: i64,
    method: console_sessions::sessions::AuthMethod,
) {
    if method == console_sessions::sessions::AuthMethod::PasswordRecoveryCode {
        tell_owner(
            state,
            user_id,
            "A recovery code was used in place of your second factor",
        )
        .await;
    }
}

/// Keeps fresh recovery codes in the session for the page that shows them (and forgets them).
#[cfg(feature = "ssr")]
pub(crate) async fn show_codes_once(
    session: &console_sessions::Session,
    codes: console_sessions::accounts::RecoveryCodes,
) -> Result<(), AppError> {
    session.insert(FRESH_CODES, codes.0).await?;
    Ok(())
}

/// Recovery codes just made, once: taken out of the session as they are read (empty after).
#[server(prefix = "/api", endpoint = "account/recovery-codes/fresh", input = GetUrl)]
pub async fn fresh_recovery_codes() -> Result<Vec<String>, AppError> {
    use crate::server::request;
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    request::require_active_user_id(&state, &session).await?;
    Ok(session
        .remove::<Vec<String>>(FRESH_CODES)
        .await
        .unwrap_or_default()
        .unwrap_or_default())
}

/// New recovery codes (a sensitive action), voiding the old; shown once on the next page.
#[server(prefix = "/api", endpoint = "account/recovery-codes/renew")]
pub async fn renew_recovery_codes(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/security", error, &[]);
    let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    request::require_recent_proof(&state, &session, "/account/security").await?;
    let codes = state
        .accounts
        .regenerate_recovery_codes(user_id, session.client().ip)
        .await
        .map_err(|e| back(e.into()))?;
    tell_owner(
        &state,
        user_id,
        "New recovery codes were made; the old ones no longer work",
    )
    .await;
    show_codes_once(&session, codes).await.map_err(back)?;
    request::redirect("/account/two-factor/recovery-codes");
    Ok(())
}

/// What removing the authenticator app did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpRemoved {
    /// How many other sessions were signed out (removing the last factor signs them out).
    pub signed_out: u64,
}

/// Removes the authenticator app (a sensitive action). When it is the last second factor (no
/// passkey), the box saying so must be ticked, and every other session of the user is signed out:
/// one of them may be why it is being removed.
#[server(prefix = "/api", endpoint = "account/totp/remove")]
pub async fn remove_totp(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// The checkbox: present when ticked.
    confirm: Option<String>,
) -> Result<TotpRemoved, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/security", error, &[]);
    let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    request::require_recent_proof(&state, &session, "/account/security").await?;
    let last = state
        .accounts
        .second_factors(user_id)
        .await
        .map_err(|e| back(e.into()))?
        .passkeys
        == 0;
    if last && confirm.is_none() {
        return Err(back(AppError::ConfirmRemoval));
    }
    let Some(removed) = state
        .accounts
        .remove_totp(user_id, session.client().ip)
        .await
        .map_err(|e| back(e.into()))?
    else {
        return Err(back(AppError::NotFound));
    };
    tell_owner(
        &state,
        user_id,
        &removed_words("The authenticator app", removed.last),
    )
    .await;
    // The removal itself says whether it was the last (a passkey may have gone meanwhile).
    let signed_out = if removed.last {
        crate::api::sessions::sign_out_others_of(
            &state,
            &session,
            user_id,
            console_sessions::sessions::EndCause::Revoked,
        )
        .await
        .map_err(back)?
    } else {
        0
    };
    tracing::info!(
        user_id,
        signed_out,
        "authenticator app removed by its owner"
    );
    if request::is_plain_form_post() {
        request::redirect(&format!(
            "/account/security?totp=off&signed_out={signed_out}"
        ));
    }
    Ok(TotpRemoved { signed_out })
}
