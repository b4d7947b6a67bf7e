//! `/reset-password`: choose a new password with the reset link from a mail (or after answering
//! "This wasn't me" to a sign-in alert). The link's token waits in a cookie (see
//! `server::links`); the page names the account before the link is used.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::sign_in::ErrorCard;
use crate::api::recovery::{reset_link, ResetPassword};
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, CsrfField, FormError, NewPasswordFields, Notice};

/// `/reset-password`: the new password twice. Every session of the account ends with it.
#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let auth = Auth::get();
    let query = use_query_map();
    // Never dispatched (the form posts itself): errors come back as `?error=`.
    let error = form_error(|| None, RwSignal::new(0));
    let link = Resource::new(|| (), |_| reset_link());
    let from_alert = move || query.with(|q| q.get("from").as_deref() == Some("alert"));
    view! {
        <Title text="Choose a new password"/>
        <Transition fallback=|| ()>
            {move || {
                let viewer = auth.viewer.get()?;
                let link = link.get()?;
                Some(match (viewer, link) {
                    (Ok(viewer), Ok(Some(username))) => {
                        view! {
                            <section class="card narrow auth">
                                <h1>"Choose a new password"</h1>
                                {from_alert()
                                    .then(|| {
                                        view! {
                                            <Notice text="That sign-in has been signed out. Choose a new password now, so that whoever it was cannot sign in again.".to_owned()/>
                                        }
                                    })}
                                <p class="muted">
                                    "For the account " <strong data-testid="reset-username">{username}</strong>
                                    ". Every device signed in to it will be signed out."
                                </p>
                                <FormError error/>
                                // A plain form even with JavaScript: the new password may end this
                                // browser's own session, and the sign-in page that follows must
                                // load afresh, not show what this tab knew of the viewer.
                                <form method="post" action=base::url(ResetPassword::url())>
                                    <div class="form">
                                        <CsrfField token=viewer.csrf_token/>
                                        <NewPasswordFields error min_chars=viewer.min_password_chars/>
                                        <button type="submit" class="button wide" data-testid="reset-password">
                                            "Set the new password"
                                        </button>
                                    </div>
                                </form>
                            </section>
                        }
                            .into_any()
                    }
                    (Ok(viewer), Ok(None)) => {
                        view! { <DeadLink error valid_for=viewer.link_lifetimes.reset/> }.into_any()
                    }
                    (Err(error), _) | (_, Err(error)) => view! { <ErrorCard error/> }.into_any(),
                })
            }}
        </Transition>
    }
}

/// The link is missing, used or expired: say so, and offer a new one.
#[component]
fn DeadLink(
    error: Signal<Option<crate::error::AppError>>,
    /// How long a reset link works, in seconds.
    valid_for: u64,
) -> impl IntoView {
    view! {
        <section class="card narrow auth" data-testid="dead-link">
            <h1>"This link no longer works"</h1>
            <FormError error/>
            <p>
                {format!(
                    "A password reset link works once, for {}, and only the newest one sent. \
                     Ask for a new one and use it from the same browser.",
                    crate::format::lifetime(valid_for)
                )}
            </p>
            <a class="button" href=base::url("/forgot-password")>"Send me a new link"</a>
        </section>
    }
}
