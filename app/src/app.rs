//! The HTML shell, the application component and its routes.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, SsrMode};

use crate::pages::{home::HomePage, not_found::NotFound};

/// The document around the app, rendered on the server for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The application: header, routes, footer.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: the mark tells tests (and curious people) the page is live.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/console-sessions.css"/>
        <Title formatter=|page: String| format!("{page} · console-sessions")/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◉"</span>
                    " console-sessions"
                </A>
            </header>
            <main class="container">
                <Routes fallback=NotFound>
                    // Async: the whole page, data included, is in the HTML the server sends, so it
                    // reads the same with JavaScript off.
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer class="footer muted">"console-sessions — server-side sessions you can see."</footer>
        </Router>
    }
}
