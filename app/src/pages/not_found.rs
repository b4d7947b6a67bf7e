//! The 404 page, for any path no route matches.

use leptos::prelude::*;

/// Shown for any path no route matches, with a 404 status.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p class="muted">"There is nothing at this address."</p>
            <a class="button" href=crate::components::base::url("/")>"Go home"</a>
        </section>
    }
}
