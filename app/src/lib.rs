//! The console-sessions web application: Leptos pages and server functions (SSR + hydration), and, with
//! the `ssr` feature, the axum server and the command line that ship as the `console-sessions` binary.

#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod components;
pub mod error;
pub mod format;
pub mod pages;
pub mod paths;

#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod startup;

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Before anything renders: links, forms and server functions live under the base path.
    paths::init_client();
    leptos::mount::hydrate_body(app::App);
}
