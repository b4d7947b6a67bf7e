//! Going to a URL under the base path from a page ([`GoTo`]); the base-path helpers themselves are
//! in [`crate::paths`] (re-exported here for the pages that use them as `base::url`).
//!
//! The `<Router base>` matches routes under the base path; its navigations would add the base a
//! second time to a URL made with [`url`], hence [`GoTo`].

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::NavigateOptions;

pub use crate::paths::{base_path, url, META_NAME};

/// Sends the browser to `url`, a URL already complete (made with [`url`], or a `next` taken from the
/// browser's own location): on the server a 302, in the browser a navigation that does not add the
/// router's base a second time (which `<Redirect>` would).
#[component]
pub fn GoTo(
    /// Where to go.
    url: String,
) -> impl IntoView {
    view! {
        <Redirect
            path=url
            options=NavigateOptions {
                resolve: false,
                ..NavigateOptions::default()
            }
        />
    }
}
