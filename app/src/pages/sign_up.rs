//! `/sign-up`: creating an account (the very first one becomes staff).

use leptos::prelude::*;
use leptos_meta::Title;

use super::sign_in::ErrorCard;
use crate::components::auth::{still_at, Auth};
use crate::components::base::{self, GoTo};
use crate::components::form::{
    form_error, invalid, ActionForm, CsrfField, FormError, NewPasswordFields,
};

/// `/sign-up`: a new account. While no account exists at all, this creates the first staff account,
/// whether or not sign-up is open.
#[component]
pub fn SignUpPage() -> impl IntoView {
    let auth = Auth::get();
    let error = form_error(
        move || auth.sign_up.value().get().and_then(Result::err),
        auth.sign_up.version(),
    );
    view! {
        <Title text="Create an account"/>
        <Transition fallback=|| ()>
            {move || {
                auth.viewer
                    .get()
                    .map(|viewer| match viewer {
                        Ok(viewer) if viewer.user.is_some() => {
                            if !still_at(&base::url("/sign-up")) {
                                return ().into_any();
                            }
                            view! { <GoTo url=base::url("/account/sessions")/> }.into_any()
                        }
                        Ok(viewer) if !viewer.signup_open && !viewer.first_run => {
                            view! {
                                <section class="card narrow" data-testid="sign-up-closed">
                                    <h1>"Sign-up is closed"</h1>
                                    <p class="muted">
                                        "New accounts are created by an administrator."
                                    </p>
                                    <a class="button" href=base::url("/sign-in")>"Sign in"</a>
                                </section>
                            }
                                .into_any()
                        }
                        Ok(viewer) => {
                            // Typed before a failed sign-up without JavaScript: from a flash
                            // cookie, never the URL.
                            let (username, email) = (viewer.typed("username"), viewer.typed("email"));
                            let (title, lead) = if viewer.first_run {
                                (
                                    "Create the first staff account",
                                    "No account exists yet. This one will be able to administer every session.",
                                )
                            } else {
                                ("Create an account", "See and sign out every device you use.")
                            };
                            view! {
                                <section class="card narrow auth">
                                    <h1>{title}</h1>
                                    <p class="muted">{lead}</p>
                                    <FormError error/>
                                    <ActionForm action=auth.sign_up>
                                        <div class="form">
                                            <CsrfField token=viewer.csrf_token/>
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
                                            <label for="email">
                                                "Email "
                                                {(!viewer.email_required).then(|| view! { <span class="muted">"(optional: for a forgotten password)"</span> })}
                                            </label>
                                            <input
                                                id="email"
                                                name="email"
                                                type="email"
                                                autocomplete="email"
                                                required=viewer.email_required
                                                maxlength="254"
                                                value=email
                                                aria-invalid=invalid(error, "email")
                                            />
                                            <NewPasswordFields
                                                error
                                                min_chars=viewer.min_password_chars
                                                label="Password"
                                                repeat_label="Repeat the password"
                                                hint="A passphrase is easiest to remember."
                                            />
                                            <button type="submit" class="button wide" data-testid="sign-up">
                                                "Create account"
                                            </button>
                                        </div>
                                    </ActionForm>
                                    <p class="muted form-footer">
                                        "Already have an account? " <a href=base::url("/sign-in")>"Sign in"</a>
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
