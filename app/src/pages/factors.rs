//! Second factors: the second step of a sign-in (`/sign-in/two-factor`), confirming access before
//! a sensitive action (`/confirm-access`), setting up an authenticator app
//! (`/account/two-factor/setup`), recovery codes shown once (`/account/two-factor/recovery-codes`),
//! and the security page's card for all of them. Every form works without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::passkeys::{purpose, LastFactorBox, PasskeyForm};
use super::sign_in::ErrorCard;
use crate::api::factors::{
    confirm_options, fresh_recovery_codes, second_step_waiting, totp_setup, ConfirmAccess,
    ConfirmTotp, FactorsView, RemoveTotp, RenewRecoveryCodes, SecondStep, StartTotp,
};
use crate::components::auth::{Auth, RequireSignIn};
use crate::components::base;
use crate::components::form::{form_error, invalid, ActionForm, CsrfField, FormError, Notice};
use crate::format;

/// The viewer's form token (empty until it is known).
fn csrf_token(auth: Auth) -> String {
    auth.viewer
        .get()
        .and_then(Result::ok)
        .map(|viewer| viewer.csrf_token)
        .unwrap_or_default()
}

/// The one-time code field: digits from an app, or a recovery code.
#[component]
fn CodeField(
    /// The error to mark the field with.
    error: Signal<Option<crate::error::AppError>>,
    /// The field's label.
    label: &'static str,
) -> impl IntoView {
    view! {
        <label for="code">{label}</label>
        <input
            id="code"
            name="code"
            autocomplete="one-time-code"
            autocapitalize="none"
            spellcheck="false"
            required
            maxlength="32"
            class="code-input"
            aria-invalid=invalid(error, "code")
            data-testid="code"
        />
    }
}

/// `/sign-in/two-factor`: the code after the password.
#[component]
pub fn SecondStepPage() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    let action = ServerAction::<SecondStep>::new();
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    let waiting = Resource::new(|| (), |_| second_step_waiting());
    view! {
        <Title text="Two-step sign-in"/>
        <Transition fallback=|| ()>
            {move || {
                let next = query.get_untracked().get("next").unwrap_or_default();
                waiting
                    .get()
                    .map(|result| match result {
                        Ok(Some(step)) => {
                            let passkey = step.passkey.then(|| {
                                view! {
                                    <PasskeyForm
                                        purpose=purpose::SECOND_STEP
                                        token=csrf_token(auth)
                                        next=next.clone()
                                        label="Use a passkey"
                                        testid="second-step-passkey"
                                    />
                                    <p class="divider muted">"or"</p>
                                }
                            });
                            let hint = if step.totp {
                                "Enter the 6-digit code from your authenticator app. Lost your phone? Enter one of your recovery codes instead."
                            } else {
                                "Lost your passkey? Enter one of your recovery codes."
                            };
                            view! {
                                <section class="card narrow auth">
                                    <h1>"Two-step sign-in"</h1>
                                    <FormError error/>
                                    {passkey}
                                    <p class="muted">{hint}</p>
                                    <ActionForm action>
                                        <div class="form">
                                            <CsrfField token=csrf_token(auth)/>
                                            <input type="hidden" name="next" value=next/>
                                            <CodeField error label="Code"/>
                                            <button type="submit" class="button wide" data-testid="verify-code">
                                                "Verify"
                                            </button>
                                        </div>
                                    </ActionForm>
                                    <p class="muted form-footer">
                                        <a href=base::url("/sign-in")>"Sign in as someone else"</a>
                                    </p>
                                </section>
                            }
                                .into_any()
                        }
                        Ok(None) => {
                            view! {
                                <section class="card narrow auth" data-testid="second-step-expired">
                                    <h1>"Two-step sign-in"</h1>
                                    <p>"There is no sign-in waiting for a code here, or it took too long."</p>
                                    <a class="button" href=base::url("/sign-in")>"Sign in again"</a>
                                </section>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <ErrorCard error/> }.into_any(),
                    })
            }}
        </Transition>
    }
}

/// `/confirm-access?next=…`: the password or a code, before a sensitive action.
#[component]
pub fn ConfirmAccessPage() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    let action = ServerAction::<ConfirmAccess>::new();
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    let choices = Resource::new(|| (), |_| confirm_options());
    view! {
        <Title text="Confirm access"/>
        <RequireSignIn>
            <Transition fallback=|| ()>
                {move || {
                    let next = query.get_untracked().get("next").unwrap_or_default();
                    // Adding a passkey to an account with a second factor asks for one.
                    let factor_only = query.get_untracked().get("factor").is_some();
                    choices
                        .get()
                        .map(|result| match result {
                            Ok(choices) => {
                                let minutes = format::lifetime(choices.window_secs);
                                let code_label = if choices.totp {
                                    "Code from your authenticator app"
                                } else {
                                    "Recovery code"
                                };
                                let code_class = if choices.passkey {
                                    "button secondary wide"
                                } else {
                                    "button wide"
                                };
                                let code_form = choices.codes.then(|| {
                                    let next = next.clone();
                                    view! {
                                        <ActionForm action>
                                            <div class="form">
                                                <CsrfField token=csrf_token(auth)/>
                                                <input type="hidden" name="next" value=next/>
                                                <CodeField error label=code_label/>
                                                <button type="submit" class=code_class data-testid="confirm-with-code">
                                                    "Confirm with a code"
                                                </button>
                                            </div>
                                        </ActionForm>
                                        <p class="divider muted">"or"</p>
                                    }
                                });
                                view! {
                                    <section class="card narrow auth">
                                        <h1>"Confirm access"</h1>
                                        <p class="muted">
                                            "You are about to do something sensitive. Confirm it's you; "
                                            {format!("we won't ask again for {minutes}.")}
                                        </p>
                                        <FormError error/>
                                        {choices.passkey.then(|| view! {
                                            <PasskeyForm
                                                purpose=purpose::CONFIRM
                                                token=csrf_token(auth)
                                                next=next.clone()
                                                label="Confirm with a passkey"
                                                testid="confirm-with-passkey"
                                            />
                                            <p class="divider muted">"or"</p>
                                        })}
                                        {code_form}
                                        {factor_only.then(|| view! {
                                            <p class="muted" data-testid="factor-only">
                                                "To add a passkey, confirm with one of your second factors: "
                                                "your password alone is not enough."
                                            </p>
                                        })}
                                        <ActionForm action>
                                            <div class="form" hidden=factor_only>
                                                <CsrfField token=csrf_token(auth)/>
                                                <input type="hidden" name="next" value=next/>
                                                <label for="confirm_password">"Password"</label>
                                                <input
                                                    id="confirm_password"
                                                    type="password"
                                                    name="password"
                                                    autocomplete="current-password"
                                                    required
                                                    aria-invalid=invalid(error, "current_password")
                                                    data-testid="confirm-password"
                                                />
                                                <button
                                                    type="submit"
                                                    class=if choices.codes { "button secondary wide" } else { "button wide" }
                                                    data-testid="confirm-with-password"
                                                >
                                                    "Confirm with your password"
                                                </button>
                                            </div>
                                        </ActionForm>
                                    </section>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <ErrorCard error/> }.into_any(),
                        })
                }}
            </Transition>
        </RequireSignIn>
    }
}

/// `/account/two-factor/setup`: the QR code and secret of the app being set up, and its first
/// code.
#[component]
pub fn TotpSetupPage() -> impl IntoView {
    let auth = Auth::get();
    let action = ServerAction::<ConfirmTotp>::new();
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    let setup = Resource::new(|| (), |_| totp_setup());
    view! {
        <Title text="Set up an authenticator app"/>
        <RequireSignIn>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    setup
                        .get()
                        .map(|result| match result {
                            Ok(Some(setup)) => {
                                view! {
                                    <section class="card narrow setup">
                                        <h1>"Set up an authenticator app"</h1>
                                        <ol class="steps">
                                            <li>
                                                "Scan this code with an authenticator app "
                                                "(Google Authenticator, Microsoft Authenticator, 1Password, Aegis…)."
                                            </li>
                                        </ol>
                                        <div class="qr" data-testid="totp-qr" inner_html=setup.qr_svg></div>
                                        <p class="muted small-print">
                                            "Can't scan it? Enter this key instead: "
                                            <span class="mono secret" data-testid="totp-secret">{setup.secret}</span>
                                        </p>
                                        <ol class="steps" start="2">
                                            <li>"Enter the 6-digit code the app shows."</li>
                                        </ol>
                                        <FormError error/>
                                        <ActionForm action>
                                            <div class="form">
                                                <CsrfField token=csrf_token(auth)/>
                                                <CodeField error label="Code"/>
                                                <button type="submit" class="button wide" data-testid="confirm-totp">
                                                    "Turn on two-step sign-in"
                                                </button>
                                            </div>
                                        </ActionForm>
                                        <p class="muted form-footer">
                                            <a href=base::url("/account/security")>"Cancel"</a>
                                        </p>
                                    </section>
                                }
                                    .into_any()
                            }
                            Ok(None) => {
                                view! {
                                    <section class="card narrow" data-testid="no-setup">
                                        <h1>"Set up an authenticator app"</h1>
                                        <p>"No setup is waiting, or it has expired. Start again from your security settings."</p>
                                        <a class="button" href=base::url("/account/security")>"Security settings"</a>
                                    </section>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <ErrorCard error/> }.into_any(),
                        })
                }}
            </Transition>
        </RequireSignIn>
    }
}

/// `/account/two-factor/recovery-codes`: codes just made, shown this once.
#[component]
pub fn RecoveryCodesPage() -> impl IntoView {
    let query = use_query_map();
    let codes = Resource::new(|| (), |_| fresh_recovery_codes());
    view! {
        <Title text="Recovery codes"/>
        <RequireSignIn>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let new_totp = query.get_untracked().get("new").is_some();
                    codes
                        .get()
                        .map(|result| match result {
                            Ok(codes) if !codes.is_empty() => {
                                view! {
                                    <section class="card narrow">
                                        <h1>"Your recovery codes"</h1>
                                        {new_totp.then(|| view! { <Notice text="Two-step sign-in is on.".to_owned()/> })}
                                        <p>
                                            "If you lose your phone, each of these codes signs you in once in place of "
                                            "a code from the app. Keep them somewhere safe, like a password manager. "
                                            <strong>"They are shown only now."</strong>
                                        </p>
                                        <ol class="recovery-codes mono" data-testid="recovery-codes">
                                            {codes
                                                .into_iter()
                                                .map(|code| view! { <li>{code}</li> })
                                                .collect_view()}
                                        </ol>
                                        <a class="button" href=base::url("/account/security") data-testid="codes-saved">
                                            "I have saved them"
                                        </a>
                                    </section>
                                }
                                    .into_any()
                            }
                            Ok(_) => {
                                view! {
                                    <section class="card narrow" data-testid="codes-gone">
                                        <h1>"Recovery codes"</h1>
                                        <p>
                                            "Recovery codes are shown only once, right after they are made. "
                                            "Lost them? Make new ones from your security settings."
                                        </p>
                                        <a class="button" href=base::url("/account/security")>"Security settings"</a>
                                    </section>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <ErrorCard error/> }.into_any(),
                        })
                }}
            </Transition>
        </RequireSignIn>
    }
}

/// The security page's card: two-step sign-in on or off, recovery codes, and the buttons.
#[component]
pub fn TwoFactorCard(
    /// The user's second factors.
    factors: FactorsView,
    /// The form token.
    token: String,
    /// Starting a setup.
    start: ServerAction<StartTotp>,
    /// New recovery codes.
    renew: ServerAction<RenewRecoveryCodes>,
    /// Removing the app.
    remove: ServerAction<RemoveTotp>,
    /// The server's clock, Unix ms.
    now: i64,
) -> impl IntoView {
    let remove_error = form_error(
        move || remove.value().get().and_then(Result::err),
        remove.version(),
    );
    let on = factors.any();
    let mut how = Vec::new();
    if let Some(since) = factors.totp_since {
        how.push(format!(
            "authenticator app since {}",
            format::relative(now, since)
        ));
    }
    match factors.passkeys {
        0 => {}
        1 => how.push("1 passkey".to_owned()),
        n => how.push(format!("{n} passkeys")),
    }
    let status = view! {
        <p class="setting-line">
            "Two-step sign-in is "
            {if on {
                view! { <span class="badge ok" data-testid="totp-status">"On"</span> }.into_any()
            } else {
                view! { <span class="badge muted-badge" data-testid="totp-status">"Off"</span> }.into_any()
            }}
            {(!how.is_empty()).then(|| view! {
                <span class="muted small-print">{format!(" · {}", how.join(" · "))}</span>
            })}
        </p>
    };
    let intro = (!on).then(|| {
        let required = factors.required.then(|| {
            view! {
                <p class="alert warn" role="status" data-testid="factor-required">
                    "Staff accounts need two-step sign-in: set it up to use the admin pages."
                </p>
            }
        });
        view! {
            {required}
            <p class="muted">
                "After your password, we will ask for a code from an app on your phone, or for "
                "a passkey, so a stolen password alone cannot open your account."
            </p>
        }
    });
    let codes = on.then(|| {
        let codes_line = format!(
            "{} of {} recovery codes left.",
            factors.recovery_codes_left, factors.recovery_codes_total
        );
        let low = factors.recovery_codes_left <= 2;
        let token = token.clone();
        view! {
            <p class:warn-text=low data-testid="codes-left">{codes_line}</p>
            <div class="button-row">
                <ActionForm action=renew>
                    <CsrfField token/>
                    <button type="submit" class="button secondary small" data-testid="renew-codes">
                        "Make new recovery codes"
                    </button>
                </ActionForm>
            </div>
        }
    });
    let last = factors.totp_is_last();
    let app = match factors.totp_since {
        None => view! {
            <ActionForm action=start>
                <CsrfField token/>
                <button type="submit" class="button" data-testid="start-totp">
                    "Set up an authenticator app"
                </button>
            </ActionForm>
        }
        .into_any(),
        Some(_) => view! {
            <details class="danger-zone">
                <summary>"Remove the authenticator app"</summary>
                <ActionForm action=remove>
                    <div class="form">
                        <CsrfField token/>
                        {last.then(|| view! {
                            <LastFactorBox error=remove_error testid="confirm-remove"/>
                        })}
                        <div>
                            <button type="submit" class="button danger small" data-testid="remove-totp">
                                "Remove"
                            </button>
                        </div>
                    </div>
                </ActionForm>
            </details>
        }
        .into_any(),
    };
    let body = view! { {status} {intro} {codes} {app} };
    view! {
        <section class="card settings" aria-labelledby="two-factor-heading" data-testid="two-factor">
            <h2 id="two-factor-heading">"Two-step sign-in"</h2>
            {body}
        </section>
    }
}
