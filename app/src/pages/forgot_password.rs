//! `/forgot-password`: ask for a link to choose a new password. The answer is the same whether or
//! not an account matches.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::sign_in::ErrorCard;
use crate::api::recovery::ForgotPassword;
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, invalid, ActionForm, CsrfField, FormError, Notice};
use crate::format;

/// What the page says once a link was asked for, whoever asked; `valid_for` in seconds.
pub fn sent_text(valid_for: u64) -> String {
    format!(
        "If an account with that username or email address exists and has an email address, a \
         link to choose a new password is on its way to it. It works once, for {}. Nothing \
         arrived? Check the spam folder, or ask again in a few minutes.",
        format::lifetime(valid_for)
    )
}

/// `/forgot-password`: a username or an email address, and "Send me a link".
#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    let action = ServerAction::<ForgotPassword>::new();
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    // With JavaScript the answer arrives here; without, as `?sent=1` after the redirect.
    let sent = Signal::derive(move || {
        if action.version().get() > 0 {
            matches!(action.value().get(), Some(Ok(())))
        } else {
            query.with(|q| q.get("sent").is_some())
        }
    });
    view! {
        <Title text="Forgot your password?"/>
        <Transition fallback=|| ()>
            {move || {
                auth.viewer
                    .get()
                    .map(|viewer| match viewer {
                        Ok(viewer) => {
                            let login = viewer.typed("login");
                            let valid_for = viewer.link_lifetimes.reset;
                            view! {
                                <section class="card narrow auth">
                                    <h1>"Forgot your password?"</h1>
                                    <p class="muted">
                                        "Enter your username or email address. We will send a link "
                                        "to choose a new password to the address on the account."
                                    </p>
                                    {move || sent.get().then(|| view! { <Notice text=sent_text(valid_for)/> })}
                                    <FormError error/>
                                    <ActionForm action>
                                        <div class="form">
                                            <CsrfField token=viewer.csrf_token/>
                                            <label for="login">"Username or email address"</label>
                                            <input
                                                id="login"
                                                name="login"
                                                autocomplete="username"
                                                autocapitalize="none"
                                                spellcheck="false"
                                                required
                                                maxlength="254"
                                                value=login
                                                aria-invalid=invalid(error, "login")
                                            />
                                            <button type="submit" class="button wide" data-testid="send-reset-link">
                                                "Send me a link"
                                            </button>
                                        </div>
                                    </ActionForm>
                                    <p class="muted form-footer">
                                        "Remembered it? " <a href=base::url("/sign-in")>"Sign in"</a>
                                    </p>
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
