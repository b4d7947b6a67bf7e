//! The pages one-time links from mail open, besides the password reset: `/verify-email` (confirm
//! the address), `/confirm-email` (confirm a new address) and `/sign-in-alert` (answer a new
//! sign-in alert). Each asks for one click on a button: the link's token waits in a cookie (see
//! `server::links`) and is used only by that form, so a mail scanner opening the link uses
//! nothing.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::sign_in::ErrorCard;
use crate::api::account::LinkLifetimes;
use crate::api::recovery::{pending_link, AnswerAlert, ConfirmEmail, VerifyEmail};
use crate::components::auth::Auth;
use crate::components::base;
use crate::components::form::{form_error, ActionForm, CsrfField, FormError};
use crate::error::AppError;
use crate::format;

/// `/verify-email`: "Confirm your email address".
#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let action = ServerAction::<VerifyEmail>::new();
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    let pending = Resource::new(
        move || action.version().get(),
        |_| pending_link("verify".into()),
    );
    let query = use_query_map();
    let done = Signal::derive(move || query.with(|q| q.get("done").is_some()));
    view! {
        <Title text="Confirm your email address"/>
        <LinkCard
            pending
            done
            error
            done_title="Your email address is confirmed"
            done_text="Thank you. Mail about your account goes to this address."
            dead_text=|lifetimes| format!("An email confirmation link works once, for {}, and only the newest one sent. Send a new one from your security page.", format::lifetime(lifetimes.email))
            let:token
        >
            <h1>"Confirm your email address"</h1>
            <p>"Confirm that this address is yours, so that mail about your account can reach you."</p>
            <ActionForm action>
                <CsrfField token/>
                <button type="submit" class="button wide" data-testid="confirm-link">
                    "Confirm my email address"
                </button>
            </ActionForm>
        </LinkCard>
    }
}

/// `/confirm-email`: "Confirm your new email address".
#[component]
pub fn ConfirmEmailPage() -> impl IntoView {
    let action = ServerAction::<ConfirmEmail>::new();
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    let pending = Resource::new(
        move || action.version().get(),
        |_| pending_link("email".into()),
    );
    let query = use_query_map();
    let done = Signal::derive(move || query.with(|q| q.get("done").is_some()));
    view! {
        <Title text="Confirm your new email address"/>
        <LinkCard
            pending
            done
            error
            done_title="Your email address has been changed"
            done_text="Mail about your account now goes to the new address, which is confirmed."
            dead_text=|lifetimes| format!("An email change link works once, for {}, and only the newest one sent. Ask for the change again from your security page.", format::lifetime(lifetimes.email))
            let:token
        >
            <h1>"Confirm your new email address"</h1>
            <p>"Your account's email address changes to this one when you confirm."</p>
            <ActionForm action>
                <CsrfField token/>
                <button type="submit" class="button wide" data-testid="confirm-link">
                    "Confirm the new address"
                </button>
            </ActionForm>
        </LinkCard>
    }
}

/// `/sign-in-alert?answer=yes|no`: the answer to "New sign-in to your account".
#[component]
pub fn SignInAlertPage() -> impl IntoView {
    let action = ServerAction::<AnswerAlert>::new();
    let error = form_error(
        move || action.value().get().and_then(Result::err),
        action.version(),
    );
    let query = use_query_map();
    let answer = query.with_untracked(|q| match q.get("answer").as_deref() {
        Some("no") => "no",
        _ => "yes",
    });
    let pending = Resource::new(
        move || action.version().get(),
        move |_| pending_link(answer.to_owned()),
    );
    let done = Signal::derive(move || query.with(|q| q.get("done").is_some()));
    view! {
        <Title text="New sign-in to your account"/>
        <LinkCard
            pending
            done
            error
            done_title="Thank you"
            done_text="You confirmed the sign-in. There is nothing else to do."
            dead_text=|lifetimes| format!("This answer was given already, or the link is older than {}. If a sign-in still worries you, sign it out from your devices page and change your password.", format::lifetime(lifetimes.alert))
            let:token
        >
            <AlertAnswerForm action answer token/>
        </LinkCard>
    }
}

/// The answer's own words and button.
#[component]
fn AlertAnswerForm(
    action: ServerAction<AnswerAlert>,
    answer: &'static str,
    token: String,
) -> impl IntoView {
    if answer == "no" {
        view! {
            <h1>"This wasn't you?"</h1>
            <p>
                "We will sign that session out at once, then ask you for a new password, so "
                "that whoever it was cannot sign in again."
            </p>
            <ActionForm action>
                <CsrfField token/>
                <input type="hidden" name="answer" value="no"/>
                <button type="submit" class="button danger wide" data-testid="answer-not-me">
                    "Sign it out and secure my account"
                </button>
            </ActionForm>
        }
        .into_any()
    } else {
        view! {
            <h1>"Was this you?"</h1>
            <p>"Confirm that the new sign-in to your account was you."</p>
            <ActionForm action>
                <CsrfField token/>
                <input type="hidden" name="answer" value="yes"/>
                <button type="submit" class="button wide" data-testid="answer-it-was-me">
                    "Yes, it was me"
                </button>
            </ActionForm>
        }
        .into_any()
    }
}

/// The card of a link page: what the link does (its form, from `children` with the form token)
/// while the link waits, what was done once it is used, or that it no longer works.
#[component]
fn LinkCard<F, V>(
    pending: Resource<Result<bool, AppError>>,
    done: Signal<bool>,
    error: Signal<Option<AppError>>,
    done_title: &'static str,
    done_text: &'static str,
    /// Why the link no longer works, saying how long such links work.
    dead_text: fn(&LinkLifetimes) -> String,
    children: F,
) -> impl IntoView
where
    F: Fn(String) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let auth = Auth::get();
    let children = StoredValue::new(children);
    view! {
        <Transition fallback=|| ()>
            {move || {
                let viewer = auth.viewer.get()?;
                let pending = pending.get()?;
                Some(match (viewer, pending) {
                    _ if done.get() => {
                        view! {
                            <section class="card narrow auth" data-testid="link-done">
                                <h1>{done_title}</h1>
                                <p>{done_text}</p>
                                <a class="button secondary" href=base::url("/account/security")>"Your security settings"</a>
                            </section>
                        }
                            .into_any()
                    }
                    (Ok(viewer), Ok(true)) => {
                        view! {
                            <section class="card narrow auth" data-testid="link-pending">
                                <FormError error/>
                                {children.with_value(|children| children(viewer.csrf_token.clone()))}
                            </section>
                        }
                            .into_any()
                    }
                    (Ok(viewer), Ok(false)) => {
                        view! {
                            <section class="card narrow auth" data-testid="dead-link">
                                <h1>"This link no longer works"</h1>
                                <FormError error/>
                                <p>{dead_text(&viewer.link_lifetimes)}</p>
                                <a class="button secondary" href=base::url("/account/security")>"Your security settings"</a>
                            </section>
                        }
                            .into_any()
                    }
                    (Err(error), _) | (_, Err(error)) => view! { <ErrorCard error/> }.into_any(),
                })
            }}
        </Transition>
    }
}
