use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::system::SystemStatus;

/// The landing page: what the product is, and a live check of the service.
#[component]
pub fn HomePage() -> impl IntoView {
    let check = ServerAction::<SystemStatus>::new();
    let result = check.value();

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
            <ActionForm action=check attr:class="inline-form">
                <button type="submit" class="button" data-testid="check-status">
                    "Check status"
                </button>
            </ActionForm>
            <p class="status" data-testid="status" aria-live="polite">
                {move || match result.get() {
                    None if check.pending().get() => "Checking…".to_owned(),
                    None => "Not checked yet.".to_owned(),
                    Some(Ok(status)) if status.database_ok => {
                        format!("All systems normal: the {} database answers.", status.backend)
                    }
                    Some(Ok(status)) => {
                        format!("The {} database is not answering.", status.backend)
                    }
                    Some(Err(error)) => error.to_string(),
                }}
            </p>
        </section>
    }
}
