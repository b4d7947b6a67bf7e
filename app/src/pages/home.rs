use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::system::{system_status, ServiceStatus};
use crate::error::AppError;

fn describe(result: &Result<ServiceStatus, AppError>) -> String {
    match result {
        Ok(status) if status.database_ok => {
            format!(
                "All systems normal: the {} database answers.",
                status.backend
            )
        }
        Ok(status) => format!("The {} database is not answering.", status.backend),
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
        <section class="card">
            <h2>"Service status"</h2>
            <Transition fallback=|| view! { <p class="status">"Checking…"</p> }>
                <p class="status" data-testid="status" aria-live="polite">
                    {move || status.get().map(|result| describe(&result))}
                </p>
            </Transition>
            <form
                method="get"
                action="/"
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
