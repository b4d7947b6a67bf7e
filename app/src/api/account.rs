//! Who is signed in, and signing in, up and out, and changing the password.
//!
//! Every function that changes state takes the form's `csrf_token` and checks it first. Without
//! JavaScript a failure sends the browser back to its form with `?error=` (see
//! [`crate::error::AppError::code`]); with JavaScript the page gets the error and shows it in place.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The signed-in user, as pages (and the JSON API, as `User`) see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema), schema(as = User))]
pub struct ViewerUser {
    /// Database id.
    pub id: i64,
    /// Username as chosen.
    pub username: String,
    /// Email address, if any.
    pub email: Option<String>,
    /// Whether the staff pages are open to them.
    pub is_staff: bool,
}

#[cfg(feature = "ssr")]
impl From<console_sessions::accounts::User> for ViewerUser {
    fn from(user: console_sessions::accounts::User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            email: user.email,
            is_staff: user.is_staff,
        }
    }
}

/// How long each kind of one-time link works, in seconds (the library's `TokenLifetimes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkLifetimes {
    /// A password reset link.
    pub reset: u64,
    /// An email confirmation or change link.
    pub email: u64,
    /// The answers to a new sign-in alert.
    pub alert: u64,
}

/// What every page needs to know about the person looking at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// The signed-in user, if any.
    pub user: Option<ViewerUser>,
    /// The anti-forgery token every form carries.
    pub csrf_token: String,
    /// Whether the sign-up page accepts new accounts.
    pub signup_open: bool,
    /// No account exists yet: the sign-up page creates the first (staff) account.
    pub first_run: bool,
    /// The browser presented a session that has ended (signed out elsewhere, revoked or expired).
    pub session_ended: bool,
    /// Fewest characters of a new password.
    pub min_password_chars: usize,
    /// Accounts need a confirmed email address (`REQUIRE_VERIFIED_EMAIL`): sign-up asks for one.
    #[serde(default)]
    pub email_required: bool,
    /// How long the links mail carries work, for the pages that say so.
    #[serde(default)]
    pub link_lifetimes: LinkLifetimes,
    /// Origins besides ours that `next` may lead to after sign-in.
    pub redirect_origins: Vec<String>,
    /// Whether passkeys work at this site's address (`PUBLIC_ORIGIN` names a host).
    #[serde(default)]
    pub passkeys: bool,
    /// What was typed into this page's form (never a password) before a failed plain form post sent
    /// the browser back to it: carried in a flash cookie the page reads once, never in the URL.
    #[serde(default)]
    pub typed: Vec<(String, String)>,
}

impl Viewer {
    /// The value typed into the form field `name` before the browser was sent back (empty if none).
    pub fn typed(&self, name: &str) -> String {
        self.typed
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    }
}

/// The person looking at the page, with the form token.
#[server(prefix = "/api", endpoint = "account/viewer", input = GetUrl)]
pub async fn get_viewer() -> Result<Viewer, AppError> {
    use crate::server::request;
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    let user = request::signed_in_user(&state, &session)
        .await?
        .map(ViewerUser::from);
    // A session that just ended here (its user is no longer active) renews the token.
    let token = request::csrf_token()?;
    let csrf_token = if session.user_changed().await {
        token.renewed().to_owned()
    } else {
        token.value().to_owned()
    };
    let first_run = user.is_none() && !state.accounts.has_users().await?;
    let session_ended = user.is_none() && session.cookie_ended().await?;
    Ok(Viewer {
        user,
        csrf_token,
        signup_open: state.accounts.config().signup_open,
        first_run,
        session_ended,
        min_password_chars: state.accounts.config().min_password_chars,
        email_required: state.accounts.config().require_verified_email,
        link_lifetimes: {
            let lifetimes = &state.accounts.config().token_lifetimes;
            LinkLifetimes {
                reset: lifetimes.password_reset.as_secs(),
                email: lifetimes.email.as_secs(),
                alert: lifetimes.alert_answer.as_secs(),
            }
        },
        redirect_origins: state.site.redirect_origins.clone(),
        passkeys: state.accounts.passkeys_available(),
        typed: request::take_typed(),
    })
}

/// Signs in with a username and password, then goes to `next` (a local path) or the devices page.
#[server(prefix = "/api", endpoint = "account/sign-in")]
pub async fn sign_in(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// The account to sign in to; kept in the form when sign-in fails.
    username: String,
    /// The account's password; unlike the username, never put back in the form.
    password: String,
    /// Where to go once signed in: followed only to a path on this site or an allowed origin.
    next: Option<String>,
    /// "Keep me signed in": present when ticked.
    remember: Option<String>,
    /// Present when the form offered "keep me signed in" at all: only then does an unticked box
    /// mean a browser session (a client that never offered it keeps the persistent lifetime).
    remember_asked: Option<String>,
) -> Result<(), AppError> {
    use crate::server::request;
    let remember = remember.is_some() || remember_asked.is_none();
    let next_value = next.clone().unwrap_or_default();
    let back = |error| {
        request::back_with_error_keeping(
            "/sign-in",
            error,
            &[("next", &next_value)],
            &[("username", &username)],
        )
    };
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    let device = request::device_cookie(&state);
    let signed_in = check_password(
        &state,
        &username,
        &password,
        session.client(),
        device.as_deref(),
    )
    .await
    .map_err(back)?;
    // Before anything else can fail: the device cookie presented is void from now on.
    request::give_device_cookie(&state, &signed_in.device_token);
    if state
        .accounts
        .second_factors(signed_in.user.id)
        .await
        .map_err(|e| back(e.into()))?
        .any()
    {
        // Not signed in yet: the session only remembers whose second step it waits for.
        console_sessions::accounts::SecondStep::begin(&session, signed_in.user.id, remember)
            .await
            .map_err(|e| back(e.into()))?;
        let mut page = "/sign-in/two-factor".to_owned();
        if !next_value.is_empty() {
            page.push_str("?next=");
            page.push_str(&urlencoding::encode(&next_value));
        }
        request::redirect(&page);
        return Ok(());
    }
    start_session(&session, signed_in.user.id, remember)
        .await
        .map_err(back)?;
    let url = after_sign_in(&state, &session, signed_in.user.id, next.as_deref())
        .await
        .map_err(back)?;
    request::redirect_to(&url);
    Ok(())
}

/// Gives a staff member's new session staff's shorter lifetimes (`STAFF_SESSION_IDLE_TIMEOUT`,
/// `STAFF_SESSION_ABSOLUTE_LIFETIME`), keeping "keep me signed in" unticked as it was. Set at
/// sign-in: a session signed in before its user became staff keeps its own until it ends.
#[cfg(feature = "ssr")]
pub async fn apply_staff_lifetimes(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
    user_id: i64,
) -> Result<(), AppError> {
    let Some((idle, absolute)) = state.site.staff_lifetimes else {
        return Ok(());
    };
    if !state
        .accounts
        .user(user_id)
        .await?
        .is_some_and(|user| user.is_staff)
    {
        return Ok(());
    }
    let browser = session.expires_at_browser_close().await?;
    let seconds = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    session
        .set_expiry(console_sessions::sessions::Expiry::Limited {
            idle_seconds: seconds(idle),
            absolute_seconds: seconds(absolute),
            browser,
        })
        .await?;
    Ok(())
}

/// Keeps the user who just signed in to `MAX_SESSIONS_PER_USER`: their least recently active
/// other sessions end (`SessionEngine::enforce_session_limit`). How many ended.
#[cfg(feature = "ssr")]
pub async fn enforce_session_limit(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
    user_id: i64,
) -> Result<usize, AppError> {
    let max = state.site.max_sessions_per_user;
    if max == 0 {
        return Ok(0);
    }
    let keep = session.public_id().await?;
    let ended = state
        .sessions
        .enforce_session_limit(user_id, keep.as_ref(), max)
        .await?
        .len();
    if ended > 0 {
        tracing::info!(
            user_id,
            ended,
            max,
            "session limit: the least recently active signed out"
        );
    }
    Ok(ended)
}

/// What every form does once a session is signed in (the password, the second step, a
/// passkey): keeps the user to `MAX_SESSIONS_PER_USER` ([`enforce_session_limit`]), then answers
/// where to go: `next` (as [`crate::paths::safe_next`] allows it), or the devices page, which then
/// says how many sessions the limit signed out (`?limited=N`).
#[cfg(feature = "ssr")]
pub async fn after_sign_in(
    state: &crate::server::state::AppState,
    session: &console_sessions::Session,
    user_id: i64,
    next: Option<&str>,
) -> Result<String, AppError> {
    apply_staff_lifetimes(state, session, user_id).await?;
    let ended = enforce_session_limit(state, session, user_id).await?;
    let url = crate::server::request::safe_next(next, &state.site.redirect_origins);
    Ok(
        if ended > 0 && url == crate::paths::url("/account/sessions") {
            format!("{url}?limited={ended}")
        } else {
            url
        },
    )
}

/// The library's sign-in check (password, throttling, device cookie) for the forms and the JSON
/// API. When the account's email address must be verified first (`REQUIRE_VERIFIED_EMAIL`), the
/// refusal also sends a new link to it.
#[cfg(feature = "ssr")]
pub async fn check_password(
    state: &crate::server::state::AppState,
    username: &str,
    password: &str,
    client: &console_sessions::sessions::ClientInfo,
    device: Option<&str>,
) -> Result<console_sessions::accounts::SignedIn, AppError> {
    use crate::error::AccountRefusal;
    use console_sessions::accounts::AccountError;
    match state
        .accounts
        .sign_in_from(username, password, client, device)
        .await
    {
        Err(AccountError::Refused(AccountRefusal::EmailNotVerified)) => {
            if let Ok(Some(user)) = state.accounts.user_by_username(username).await {
                // Logged inside; the refusal says what to do either way.
                let _ = send_verification_mail(state, user.id).await;
            }
            Err(AccountRefusal::EmailNotVerified.into())
        }
        result => result.map_err(AppError::from),
    }
}

/// Queues a link to confirm the user's email address (voiding earlier ones). A failure is logged
/// where it happens (see `AppError`'s conversions); the person can ask again from the security
/// page, or by signing in again.
#[cfg(feature = "ssr")]
pub async fn send_verification_mail(
    state: &crate::server::state::AppState,
    user_id: i64,
) -> Result<(), AppError> {
    let valid_for = state.accounts.config().token_lifetimes.email;
    let verification = state.accounts.start_email_verification(user_id).await?;
    state
        .mail
        .email_verification(&verification, valid_for)
        .await?;
    Ok(())
}

/// Signs the session in as `user_id` after a password was checked (the library's
/// `Session::sign_in`: a new token, another user's session replaced, the sign-in event). Every
/// sign-in and sign-up (the forms' and the JSON API's) goes through here.
#[cfg(feature = "ssr")]
pub async fn start_session(
    session: &console_sessions::Session,
    user_id: i64,
    remember: bool,
) -> Result<(), AppError> {
    // A second step another account left waiting in this browser is over.
    console_sessions::accounts::SecondStep::cancel(session).await?;
    session
        .sign_in(user_id, console_sessions::sessions::AuthMethod::Password)
        .await?;
    if !remember {
        session
            .set_expiry(console_sessions::sessions::Expiry::BrowserClose)
            .await?;
    }
    Ok(())
}

/// Creates an account and signs it in. While no account exists, the first one is made staff
/// (exactly one, however many arrive at once), whether or not sign-up is open.
#[server(prefix = "/api", endpoint = "account/sign-up")]
pub async fn sign_up(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// The new account's name; kept in the form when sign-up fails.
    username: String,
    /// Optional; a blank field counts as none.
    email: Option<String>,
    /// The new account's password, held to the configured minimum length.
    password: String,
    /// The password typed again, to catch a typo before it locks the account's owner out.
    password_confirm: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let email_value = email.clone().unwrap_or_default();
    let back = |error| {
        request::back_with_error_keeping(
            "/sign-up",
            error,
            &[],
            &[("username", &username), ("email", &email_value)],
        )
    };
    request::check_csrf(&csrf_token).map_err(back)?;
    let state = request::state().map_err(back)?;
    let session = request::session().map_err(back)?;
    if password != password_confirm {
        return Err(back(AppError::PasswordsDoNotMatch));
    }
    let email = email.filter(|e| !e.trim().is_empty());
    let user = state
        .accounts
        .sign_up_first_or_open(&username, email.as_deref(), &password, session.client().ip)
        .await
        .map_err(|e| back(e.into()))?;
    tracing::info!(
        user_id = user.id,
        first_run = user.is_staff,
        "account created by sign-up"
    );
    if user.email.is_some() {
        // The account exists either way; a link that could not be queued is asked for again.
        let _ = send_verification_mail(&state, user.id).await;
    }
    if state.accounts.config().require_verified_email {
        // Signed in once the address is confirmed.
        request::redirect("/sign-in?verify=1");
        return Ok(());
    }
    start_session(&session, user.id, true).await.map_err(back)?;
    // The first account is made staff: its session gets staff's lifetimes from the start.
    apply_staff_lifetimes(&state, &session, user.id)
        .await
        .map_err(back)?;
    request::redirect("/account/sessions");
    Ok(())
}

/// Signs out: the session ends on the server and its cookie is removed.
#[server(prefix = "/api", endpoint = "account/sign-out")]
pub async fn sign_out(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/", error, &[]);
    request::check_csrf(&csrf_token).map_err(back)?;
    let session = request::session().map_err(back)?;
    session.sign_out().await.map_err(|e| back(e.into()))?;
    request::no_store();
    request::redirect("/sign-in?signed_out=1");
    Ok(())
}

/// What a password change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    /// How many other sessions were signed out.
    pub signed_out: u64,
}

/// Changes the password (the current one is required). With `sign_out_others` (the checkbox, on by
/// default) every other session of the user ends; this one stays, under a new token.
#[server(prefix = "/api", endpoint = "account/change-password")]
pub async fn change_password(
    /// The form's anti-forgery token; a missing one reads as empty, which the check refuses like a
    /// wrong one.
    #[server(default)]
    csrf_token: String,
    /// The password in force now: a session alone (a browser left signed in) cannot change it.
    current_password: String,
    /// The new password, held to the configured minimum length.
    password: String,
    /// The new password typed again, to catch a typo before it locks the user out.
    password_confirm: String,
    /// The checkbox: present (whatever its value) to sign out every other session. Browsers send
    /// nothing for an unticked box, hence an option rather than a `bool`.
    sign_out_others: Option<String>,
) -> Result<PasswordChanged, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/password", error, &[]);
    let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    if password != password_confirm {
        return Err(back(AppError::PasswordsDoNotMatch));
    }
    state
        .accounts
        .change_password(user_id, &current_password, &password)
        .await
        .map_err(|e| back(e.into()))?;
    // The current password was just proved: sensitive actions need not ask again for a while
    // (and the session gets a new token, as on every change of privilege).
    session
        .confirm_access(console_sessions::sessions::AuthMethod::Password)
        .await
        .map_err(|e| back(e.into()))?;
    let mut signed_out = 0;
    if sign_out_others.is_some() {
        signed_out = crate::api::sessions::sign_out_others_of(
            &state,
            &session,
            user_id,
            console_sessions::sessions::EndCause::PasswordChanged,
        )
        .await
        .map_err(back)?;
    }
    tracing::info!(user_id, signed_out, "password changed");
    if request::is_plain_form_post() {
        request::redirect(&format!("/account/password?changed={signed_out}"));
    }
    Ok(PasswordChanged { signed_out })
}
