//! Passkeys: the signed-in user's list (add, rename, remove), and the two halves of every passkey
//! ceremony, for the browser's `public/passkeys.js`. Thin calls into the library's `Accounts`
//! (`passkeys.rs`).
//!
//! A ceremony is two requests. [`passkey_options`] (fetched by the script) begins it and answers
//! the options for `navigator.credentials`, or where to send the browser instead (a page showing
//! the error, or confirming access first). [`passkey_finish`] is a plain form post the script
//! submits with the authenticator's answer: it redirects as every form does, errors included.
//! Both check the form's `csrf_token`; adding a passkey needs a recent proof, as every change of a
//! factor does.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The kinds of ceremony: the `purpose` field of both requests.
pub mod purpose {
    /// Adding a passkey to the signed-in account.
    pub const REGISTER: &str = "register";
    /// Signing in with a passkey alone.
    pub const SIGN_IN: &str = "sign-in";
    /// The second step of a sign-in whose password was right.
    pub const SECOND_STEP: &str = "second-step";
    /// Confirming access before a sensitive action.
    pub const CONFIRM: &str = "confirm";
}

/// One of the signed-in user's passkeys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    /// Its id, for the rename and remove forms.
    pub id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// When it was added (Unix ms).
    pub created_at: i64,
    /// When it was last used (Unix ms).
    pub last_used_at: Option<i64>,
}

/// The signed-in user's passkeys, for the security page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeysView {
    /// Whether passkeys work at this site's address.
    pub available: bool,
    /// Oldest first.
    pub passkeys: Vec<PasskeyView>,
    /// Second factors in all (the app counts one): removing the last one asks to confirm.
    pub factors: u32,
}

/// The signed-in user's passkeys.
#[server(prefix = "/api", endpoint = "account/passkeys", input = GetUrl)]
pub async fn my_passkeys() -> Result<PasskeysView, AppError> {
    use crate::server::request;
    use console_sessions::sessions::to_millis;
    let state = request::state()?;
    let session = request::session()?;
    request::no_store();
    let user_id = request::require_active_user_id(&state, &session).await?;
    let passkeys = state.accounts.passkeys(user_id).await?;
    Ok(PasskeysView {
        available: state.accounts.passkeys_available(),
        passkeys: passkeys
            .into_iter()
            .map(|passkey| PasskeyView {
                id: passkey.id,
                name: passkey.name,
                created_at: to_millis(passkey.created_at),
                last_used_at: passkey.last_used_at.map(to_millis),
            })
            .collect(),
        factors: state.accounts.second_factors(user_id).await?.count(),
    })
}

/// The first half of a ceremony, for the script: the options, or where to go instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyStart {
    /// The JSON for `PublicKeyCredential.parseCreationOptionsFromJSON` (adding) or
    /// `parseRequestOptionsFromJSON` (the rest), under `publicKey`.
    pub options: Option<String>,
    /// Where to send the browser instead: the page of the ceremony with the error, or confirming
    /// access first.
    pub go: Option<String>,
}

/// The page a ceremony's errors are shown on, with its `next`.
#[cfg(feature = "ssr")]
fn page_of(purpose: &str, next: &str) -> String {
    let page = match purpose {
        purpose::SIGN_IN => "/sign-in",
        purpose::SECOND_STEP => "/sign-in/two-factor",
        purpose::CONFIRM => "/confirm-access",
        _ => "/account/security",
    };
    if next.is_empty() {
        page.to_owned()
    } else {
        format!("{page}?next={}", urlencoding::encode(next))
    }
}

/// Begins a passkey ceremony (see the module): the options for the browser, kept server-side in
/// the session until [`passkey_finish`].
#[server(prefix = "/api", endpoint = "account/passkey/options")]
pub async fn passkey_options(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// `register`, `sign-in`, `second-step` or `confirm`.
    purpose: String,
    /// Where the form goes once done (kept on the error page).
    next: Option<String>,
) -> Result<PasskeyStart, AppError> {
    use crate::server::request;
    let next = next.unwrap_or_default();
    request::no_store();
    match start(&csrf_token, &purpose).await {
        Ok(start) => Ok(start),
        Err(error) => {
            let page = match error {
                AppError::Account(crate::error::AccountRefusal::SignInExpired) => {
                    page_of(purpose::SIGN_IN, &next)
                }
                _ => page_of(&purpose, &next),
            };
            let join = if page.contains('?') { '&' } else { '?' };
            Ok(PasskeyStart {
                options: None,
                go: Some(crate::paths::url(&format!(
                    "{page}{join}error={}",
                    urlencoding::encode(&error.code())
                ))),
            })
        }
    }
}

#[cfg(feature = "ssr")]
async fn start(csrf_token: &str, purpose: &str) -> Result<PasskeyStart, AppError> {
    use crate::error::AccountRefusal;
    use crate::server::request;
    use console_sessions::accounts::SecondStep;
    request::check_csrf(csrf_token)?;
    let state = request::state()?;
    let session = request::session()?;
    let accounts = &state.accounts;
    let options = match purpose {
        purpose::REGISTER => {
            let user_id = request::require_active_user_id(&state, &session).await?;
            let confirm =
                request::factor_proof_needed(&state, &session, user_id, "/account/security")
                    .await?;
            if let Some(page) = confirm {
                return Ok(PasskeyStart {
                    options: None,
                    go: Some(crate::paths::url(&page)),
                });
            }
            accounts
                .start_passkey_registration(&session, user_id)
                .await?
        }
        purpose::SIGN_IN => accounts.start_passkey_sign_in(&session).await?,
        purpose::SECOND_STEP => {
            let step = SecondStep::pending(&session)
                .await?
                .ok_or(AccountRefusal::SignInExpired)?;
            accounts.start_passkey_check(&session, step.user_id).await?
        }
        purpose::CONFIRM => {
            let user_id = request::require_active_user_id(&state, &session).await?;
            accounts.start_passkey_check(&session, user_id).await?
        }
        _ => return Err(AppError::NotFound),
    };
    Ok(PasskeyStart {
        options: Some(options),
        go: None,
    })
}

/// Finishes a passkey ceremony with the authenticator's answer (a plain form post, which the script
/// submits): adds the passkey, signs in, passes the second step or confirms access, then goes on
/// as the password forms do.
#[server(prefix = "/api", endpoint = "account/passkey/finish")]
pub async fn passkey_finish(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// As for [`passkey_options`].
    purpose: String,
    /// The authenticator's answer: `PublicKeyCredential.toJSON()`, as JSON. Empty without
    /// JavaScript, which passkeys need.
    #[server(default)]
    credential: String,
    /// The new passkey's name (adding one).
    name: Option<String>,
    /// Where to go once done (signing in and confirming access).
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::server::request;
    use console_sessions::accounts::SecondStep;
    use console_sessions::sessions::AuthMethod;
    let next_value = next.clone().unwrap_or_default();
    let error_page = page_of(&purpose, "");
    let back = |error| request::back_with_error(&error_page, error, &[("next", &next_value)]);
    let go_next = |state: &crate::server::state::AppState| {
        request::redirect_to(&request::safe_next(
            next.as_deref(),
            &state.site.redirect_origins,
        ));
    };
    match purpose.as_str() {
        purpose::REGISTER => {
            let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
            request::require_factor_proof(&state, &session, user_id, "/account/security").await?;
            let codes = state
                .accounts
                .finish_passkey_registration(
                    &session,
                    user_id,
                    name.as_deref().unwrap_or_default(),
                    &credential,
                    session.client().ip,
                )
                .await
                .map_err(|e| back(e.into()))?;
            crate::api::factors::tell_owner(&state, user_id, "A passkey was added").await;
            match codes {
                Some(codes) => {
                    crate::api::factors::show_codes_once(&session, codes)
                        .await
                        .map_err(back)?;
                    request::redirect("/account/two-factor/recovery-codes?new=passkey");
                }
                None => request::redirect("/account/security?passkey=added"),
            }
        }
        purpose::SIGN_IN => {
            request::check_csrf(&csrf_token).map_err(back)?;
            let state = request::state().map_err(back)?;
            let session = request::session().map_err(back)?;
            let user = state
                .accounts
                .finish_passkey_sign_in(&session, &credential, session.client().ip)
                .await
                .map_err(|e| back(e.into()))?;
            SecondStep::cancel(&session)
                .await
                .map_err(|e| back(e.into()))?;
            session
                .sign_in(user.id, AuthMethod::Passkey)
                .await
                .map_err(|e| back(e.into()))?;
            let url =
                crate::api::account::after_sign_in(&state, &session, user.id, next.as_deref())
                    .await
                    .map_err(back)?;
            request::redirect_to(&url);
        }
        purpose::SECOND_STEP => {
            request::check_csrf(&csrf_token).map_err(back)?;
            let state = request::state().map_err(back)?;
            let session = request::session().map_err(back)?;
            let Some(step) = SecondStep::pending(&session)
                .await
                .map_err(|e| back(e.into()))?
            else {
                return Err(request::back_with_error(
                    "/sign-in",
                    crate::error::AccountRefusal::SignInExpired.into(),
                    &[("next", &next_value)],
                ));
            };
            let method = state
                .accounts
                .finish_passkey_check(&session, step.user_id, &credential, session.client().ip)
                .await
                .map_err(|e| back(e.into()))?;
            step.finish(&session, method)
                .await
                .map_err(|e| back(e.into()))?;
            tracing::info!(user_id = step.user_id, "second step passed with a passkey");
            let url =
                crate::api::account::after_sign_in(&state, &session, step.user_id, next.as_deref())
                    .await
                    .map_err(back)?;
            request::redirect_to(&url);
        }
        purpose::CONFIRM => {
            let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
            let method = state
                .accounts
                .finish_passkey_check(&session, user_id, &credential, session.client().ip)
                .await
                .map_err(|e| back(e.into()))?;
            session
                .confirm_access(method)
                .await
                .map_err(|e| back(e.into()))?;
            tracing::info!(user_id, "access confirmed with a passkey");
            go_next(&state);
        }
        _ => return Err(back(AppError::NotFound)),
    }
    Ok(())
}

/// Renames one of the signed-in user's passkeys.
#[server(prefix = "/api", endpoint = "account/passkey/rename")]
pub async fn rename_passkey(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// Which passkey.
    id: i64,
    /// Its new name (empty: "Passkey").
    name: String,
) -> Result<(), AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/security", error, &[]);
    let (state, _session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    if !state
        .accounts
        .rename_passkey(user_id, id, &name)
        .await
        .map_err(|e| back(e.into()))?
    {
        return Err(back(AppError::NotFound));
    }
    if request::is_plain_form_post() {
        request::redirect("/account/security?passkey=renamed");
    }
    Ok(())
}

/// What removing a passkey did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyRemoved {
    /// How many other sessions were signed out (removing the last factor signs them out).
    pub signed_out: u64,
}

/// Removes one of the signed-in user's passkeys (a sensitive action). When it is their last
/// second factor the box saying so must be ticked, and every other session is signed out, as for
/// the authenticator app.
#[server(prefix = "/api", endpoint = "account/passkey/remove")]
pub async fn remove_passkey(
    /// The form's anti-forgery token.
    #[server(default)]
    csrf_token: String,
    /// Which passkey.
    id: i64,
    /// The checkbox: present when ticked (needed for the last factor).
    confirm: Option<String>,
) -> Result<PasskeyRemoved, AppError> {
    use crate::server::request;
    let back = |error| request::back_with_error("/account/security", error, &[]);
    let (state, session, user_id) = request::own_account_form(&csrf_token, &back).await?;
    request::require_recent_proof(&state, &session, "/account/security").await?;
    let last = state
        .accounts
        .second_factors(user_id)
        .await
        .map_err(|e| back(e.into()))?
        .count()
        <= 1;
    if last && confirm.is_none() {
        return Err(back(AppError::ConfirmRemoval));
    }
    let Some(removed) = state
        .accounts
        .remove_passkey(user_id, id, session.client().ip)
        .await
        .map_err(|e| back(e.into()))?
    else {
        return Err(back(AppError::NotFound));
    };
    crate::api::factors::tell_owner(
        &state,
        user_id,
        &crate::api::factors::removed_words("A passkey", removed.last),
    )
    .await;
    // The removal itself says whether it was the last (another may have gone meanwhile).
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
    tracing::info!(user_id, signed_out, "passkey removed by its owner");
    if request::is_plain_form_post() {
        request::redirect(&format!(
            "/account/security?passkey=removed&signed_out={signed_out}"
        ));
    }
    Ok(PasskeyRemoved { signed_out })
}
