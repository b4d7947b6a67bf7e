//! Passkeys on the pages: the form whose button runs a ceremony (with `public/passkeys.js`, which
//! every page loads), and the security page's card listing the user's passkeys. Renaming and
//! removing work without JavaScript; using a passkey needs it, and says so when it is off.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::passkeys::{PasskeysView, RemovePasskey, RenamePasskey};
use crate::components::base;
use crate::components::form::{form_error, invalid, ActionForm, CsrfField, Notice};
use crate::format;

pub use crate::api::passkeys::purpose;

/// A form that runs a passkey ceremony when its button is pressed: the script asks the server for
/// options, lets the browser and authenticator answer, puts the answer in the hidden `credential`
/// field and submits the form, a plain post that redirects like every other.
#[component]
pub fn PasskeyForm(
    /// One of [`purpose`]'s.
    purpose: &'static str,
    /// The form token.
    token: String,
    /// Where to go once done.
    #[prop(optional, into)]
    next: String,
    /// The button's words.
    label: &'static str,
    /// The button's test id.
    testid: &'static str,
    /// A secondary (outlined) button rather than the main one.
    #[prop(optional)]
    secondary: bool,
    /// Fields before the button (a new passkey's name).
    #[prop(optional)]
    children: Option<Children>,
) -> impl IntoView {
    let class = if secondary {
        "button secondary wide"
    } else {
        "button wide"
    };
    view! {
        <form
            method="post"
            action=base::url("/api/account/passkey/finish")
            class="passkey-form"
            data-passkey=purpose
            data-options=base::url("/api/account/passkey/options")
        >
            <CsrfField token/>
            <input type="hidden" name="purpose" value=purpose/>
            <input type="hidden" name="next" value=next/>
            <input type="hidden" name="credential" value=""/>
            // Shown once the script has run (it marks the document `passkeys-js`); without it, the
            // note below instead of a button that could do nothing.
            <div class="form passkey-js-only">
                {children.map(|children| children())}
                <button type="button" class=class data-passkey-start="" data-testid=testid>
                    {label}
                </button>
                <p class="muted small-print passkey-status" role="status" aria-live="polite" data-passkey-status=""></p>
            </div>
            <p class="muted small-print passkey-no-js" data-testid="passkey-needs-js">
                "Passkeys need JavaScript, which is off in this browser."
            </p>
        </form>
    }
}

/// The box to tick before removing the last second factor (the app, or the last passkey).
#[component]
pub fn LastFactorBox(
    /// The removal's error, to mark the box with.
    error: Signal<Option<crate::error::AppError>>,
    /// The checkbox's test id.
    testid: &'static str,
) -> impl IntoView {
    view! {
        <label class="check">
            <input
                type="checkbox"
                name="confirm"
                value="yes"
                aria-invalid=invalid(error, "confirm")
                data-testid=testid
            />
            <span>
                "I understand: this is my last second factor. Removing it turns two-step sign-in "
                "off, voids my recovery codes and signs out my other devices."
            </span>
        </label>
    }
}

fn signed_out_text(signed_out: u64) -> String {
    match signed_out {
        0 => "Passkey removed.".to_owned(),
        1 => "Passkey removed. Your last second factor is gone: 1 other device was signed out."
            .to_owned(),
        n => format!(
            "Passkey removed. Your last second factor is gone: {n} other devices were signed out."
        ),
    }
}

/// The security page's card: the user's passkeys, renamed and removed in place, and adding one.
#[component]
pub fn PasskeysCard(
    /// The user's passkeys.
    passkeys: PasskeysView,
    /// The form token.
    token: String,
    /// Renaming one.
    rename: ServerAction<RenamePasskey>,
    /// Removing one.
    remove: ServerAction<RemovePasskey>,
    /// The server's clock, Unix ms.
    now: i64,
) -> impl IntoView {
    let query = use_query_map();
    let remove_error = form_error(
        move || remove.value().get().and_then(Result::err),
        remove.version(),
    );
    let notice = Signal::derive(move || {
        if let Some(Ok(removed)) = remove.value().get() {
            return Some(signed_out_text(removed.signed_out));
        }
        if let Some(Ok(())) = rename.value().get() {
            return Some("Passkey renamed.".to_owned());
        }
        query.with(|q| match q.get("passkey").as_deref() {
            Some("added") => Some("Passkey added.".to_owned()),
            Some("renamed") => Some("Passkey renamed.".to_owned()),
            Some("removed") => Some(signed_out_text(
                q.get("signed_out")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            )),
            _ => None,
        })
    });
    let last = passkeys.factors <= 1;
    let items = passkeys
        .passkeys
        .into_iter()
        .map(|passkey| {
            let used = match passkey.last_used_at {
                Some(at) => format!("last used {}", format::relative(now, at)),
                None => "never used".to_owned(),
            };
            let rename_token = token.clone();
            let remove_token = token.clone();
            let id = passkey.id.to_string();
            let remove_id = id.clone();
            view! {
                <li class="passkey" data-testid="passkey">
                    <div class="passkey-head">
                        <strong data-testid="passkey-name">{passkey.name.clone()}</strong>
                        <span class="muted small-print">
                            {format!(" · added {} · {used}", format::relative(now, passkey.created_at))}
                        </span>
                    </div>
                    <div class="button-row">
                        <details>
                            <summary>"Rename"</summary>
                            <ActionForm action=rename>
                                <div class="form inline-form">
                                    <CsrfField token=rename_token/>
                                    <input type="hidden" name="id" value=id/>
                                    <label class="visually-hidden" for=format!("passkey-name-{}", passkey.id)>"New name"</label>
                                    <input
                                        id=format!("passkey-name-{}", passkey.id)
                                        name="name"
                                        maxlength="64"
                                        value=passkey.name
                                        data-testid="passkey-new-name"
                                    />
                                    <button type="submit" class="button secondary small" data-testid="rename-passkey">"Save"</button>
                                </div>
                            </ActionForm>
                        </details>
                        <details class="danger-zone">
                            <summary>"Remove"</summary>
                            <ActionForm action=remove>
                                <div class="form">
                                    <CsrfField token=remove_token/>
                                    <input type="hidden" name="id" value=remove_id/>
                                    {last.then(|| view! {
                                        <LastFactorBox error=remove_error testid="confirm-remove-passkey"/>
                                    })}
                                    <div>
                                        <button type="submit" class="button danger small" data-testid="remove-passkey">
                                            "Remove"
                                        </button>
                                    </div>
                                </div>
                            </ActionForm>
                        </details>
                    </div>
                </li>
            }
        })
        .collect_view();
    let add = if passkeys.available {
        view! {
            <PasskeyForm purpose=purpose::REGISTER token label="Add a passkey" testid="add-passkey" secondary=true>
                <label for="passkey_name">"Name"</label>
                <input
                    id="passkey_name"
                    name="name"
                    maxlength="64"
                    placeholder="e.g. Work laptop"
                    data-testid="passkey-name-input"
                />
            </PasskeyForm>
        }
        .into_any()
    } else {
        view! {
            <p class="muted" data-testid="passkeys-unavailable">
                "Passkeys are not available at this address of the site (they need its public "
                "name, set as PUBLIC_ORIGIN)."
            </p>
        }
        .into_any()
    };
    view! {
        <section class="card settings" aria-labelledby="passkeys-heading" data-testid="passkeys">
            <h2 id="passkeys-heading">"Passkeys"</h2>
            {move || notice.get().map(|text| view! { <Notice text/> })}
            <p class="muted">
                "Sign in with your fingerprint, face or screen lock instead of a password. After a "
                "password, a passkey also serves as your second step."
            </p>
            <ul class="passkey-list">{items}</ul>
            {add}
        </section>
    }
}
