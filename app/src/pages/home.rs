//! `/`: the landing page, with a live check of the service.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::system::{system_status, ServiceStatus};
use crate::components::auth::Auth;
use crate::components::base;
use crate::error::AppError;

fn describe(result: &Result<ServiceStatus, AppError>) -> String {
    match result {
        Ok(status) => {
            // Only staff are told which database it is ("the sqlite database").
            let engine = status
                .backend
                .as_deref()
                .map(|backend| format!("{backend} "))
                .unwrap_or_default();
            if status.database_ok {
                format!("All systems normal: the {engine}database answers.")
            } else {
                format!("The {engine}database is not answering.")
            }
        }
        Err(error) => error.to_string(),
    }
}

/// The landing page: what the product is, and a live check of the service.
///
/// The status is rendered on the server, so it reads the same without JavaScript; "Check again"
/// reloads the page without JavaScript and re-asks the server in place with it.
#[component]
pub fn HomePage() -> impl IntoView {
    let (checks, set_checks) = signal(1u32);
    let status = Resource::new(move || checks.get(), |_| system_status());
    let auth = Auth::get();

    view! {
        <Title text="Home"/>
        <section class="hero">
            <h1>"Your sessions, under control"</h1>
            <p class="lead">
                "console-sessions keeps every sign-in on the server and knows where it came from: "
                "the device, the browser, the address and the place. Review your devices, sign out the "
                "ones you do not recognise, and let administrators find and end any session at once."
            </p>
        </section>
        <Transition fallback=|| ()>
            {move || {
                auth.viewer
                    .get()
                    .and_then(Result::ok)
                    .map(|viewer| {
                        if viewer.first_run {
                            view! {
                                <section class="card setup" data-testid="first-run">
                                    <h2>"Welcome! Let's set up"</h2>
                                    <p class="muted">
                                        "There are no accounts yet. Create the first one: it will be a staff "
                                        "account, able to find and end any session."
                                    </p>
                                    <a class="button" href=base::url("/sign-up")>"Create the first staff account"</a>
                                </section>
                            }
                                .into_any()
                        } else if let Some(user) = viewer.user {
                            view! {
                                <section class="card">
                                    <h2>{format!("Welcome back, {}", user.username)}</h2>
                                    <a class="button" href=base::url("/account/sessions")>"Review your devices"</a>
                                </section>
                            }
                                .into_any()
                        } else {
                            view! {
                                <section class="card cta">
                                    <a class="button" href=base::url("/sign-in")>"Sign in"</a>
                                    {viewer
                                        .signup_open
                                        .then(|| {
                                            view! {
                                                <a class="button secondary" href=base::url("/sign-up")>
                                                    "Create an account"
                                                </a>
                                            }
                                        })}
                                </section>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
        <section class="card">
            <h2>"Service status"</h2>
            <Transition fallback=|| view! { <p class="status">"Checking…"</p> }>
                <p class="status" data-testid="status" aria-live="polite">
                    {move || status.get().map(|result| describe(&result))}
                </p>
            </Transition>
            <form
                method="get"
                action=base::url("/")
                class="inline-form"
                on:submit=move |event| {
                    event.prevent_default();
                    set_checks.update(|n| *n += 1);
                }
            >
                <button type="submit" class="button secondary" data-testid="check-status">
                    "Check again"
                </button>
            </form>
            <span class="muted checks" data-testid="checks">
                {move || match checks.get() {
                    1 => "Checked once".to_owned(),
                    n => format!("Checked {n} times"),
                }}
            </span>
        </section>
    }
}
