//! `/sign-in`, and the error card every page shows when its data cannot be loaded.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::passkeys::{purpose, PasskeyForm};
use crate::components::auth::{still_at, Auth};
use crate::components::base::{self, GoTo};
use crate::components::form::{form_error, invalid, ActionForm, CsrfField, FormError, Notice};
use crate::paths::safe_next;

/// `/sign-in`: username and password. Already signed in: straight to the devices page.
#[component]
pub fn SignInPage() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    let error = form_error(
        move || auth.sign_in.value().get().and_then(Result::err),
        auth.sign_in.version(),
    );
    view! {
        <Title text="Sign in"/>
        <Transition fallback=|| ()>
            {move || {
                auth.viewer
                    .get()
                    .map(|viewer| match viewer {
                        Ok(viewer) if viewer.user.is_some() => {
                            if !still_at(&base::url("/sign-in")) {
                                return ().into_any();
                            }
                            let url = safe_next(
                                query.get_untracked().get("next").as_deref(),
                                &viewer.redirect_origins,
                            );
                            view! { <GoTo url/> }.into_any()
                        }
                        Ok(viewer) => {
                            let q = query.get_untracked();
                            let next = q.get("next").unwrap_or_default();
                            let next_for_passkey = next.clone();
                            let passkey_token = viewer.csrf_token.clone();
                            // Typed before a failed sign-in without JavaScript: from a flash
                            // cookie, never the URL.
                            let username = viewer.typed("username");
                            let notice = if q.get("reset").is_some() {
                                Some("Your password was changed, and every device was signed out. Sign in with your new password.")
                            } else if q.get("verify").is_some() {
                                Some("Your account is created. We sent a link to your email address: open it to confirm the address, then sign in.")
                            } else if q.get("signed_out").is_some() {
                                Some("You have been signed out.")
                            } else if q.get("ended").is_some() || viewer.session_ended {
                                Some("Your session has ended. Please sign in again.")
                            } else if !next.is_empty() {
                                Some("Please sign in to continue.")
                            } else {
                                None
                            };
                            let sign_up_link = (viewer.signup_open || viewer.first_run)
                                .then(|| {
                                    view! {
                                        <p class="muted form-footer">
                                            "New here? " <a href=base::url("/sign-up")>"Create an account"</a>
                                        </p>
                                    }
                                });
                            view! {
                                <section class="card narrow auth">
                                    <h1>"Sign in"</h1>
                                    {notice.map(|text| view! { <Notice text=text.to_owned()/> })}
                                    <FormError error/>
                                    <ActionForm action=auth.sign_in>
                                        <div class="form">
                                            <CsrfField token=viewer.csrf_token.clone()/>
                                            <input type="hidden" name="next" value=next/>
                                            <label for="username">"Username"</label>
                                            <input
                                                id="username"
                                                name="username"
                                                autocomplete="username"
                                                autocapitalize="none"
                                                spellcheck="false"
                                                required
                                                maxlength="150"
                                                value=username
                                                aria-invalid=invalid(error, "username")
                                            />
                                            <label for="password">"Password"</label>
                                            <input
                                                id="password"
                                                type="password"
                                                name="password"
                                                autocomplete="current-password"
                                                required
                                            />
                                            // Unticked: the session ends with the browser (and
                                            // after BROWSER_SESSION_IDLE_TIMEOUT unused).
                                            <input type="hidden" name="remember_asked" value="1"/>
                                            <label class="check">
                                                <input
                                                    type="checkbox"
                                                    name="remember"
                                                    value="on"
                                                    checked
                                                    data-testid="remember-me"
                                                />
                                                <span>"Keep me signed in on this device"</span>
                                            </label>
                                            <button type="submit" class="button wide" data-testid="sign-in">
                                                "Sign in"
                                            </button>
                                        </div>
                                    </ActionForm>
                                    {viewer.passkeys.then(|| {
                                        view! {
                                            <p class="divider muted">"or"</p>
                                            <PasskeyForm
                                                purpose=purpose::SIGN_IN
                                                token=passkey_token
                                                next=next_for_passkey
                                                label="Sign in with a passkey"
                                                testid="sign-in-passkey"
                                                secondary=true
                                            />
                                        }
                                    })}
                                    <p class="muted form-footer">
                                        <a href=base::url("/forgot-password") data-testid="forgot-password">"Forgot your password?"</a>
                                    </p>
                                    {sign_up_link}
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

/// A page-sized message for a failure to load the page's data.
#[component]
pub fn ErrorCard(
    /// Why the data could not be loaded; its message is shown as it is.
    error: crate::error::AppError,
) -> impl IntoView {
    view! {
        <section class="card narrow" role="alert" data-testid="page-error">
            <h1>"Something is not working"</h1>
            <p>{error.to_string()}</p>
            <a class="button secondary" href="">"Try again"</a>
        </section>
    }
}
