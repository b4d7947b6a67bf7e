//! The path the site is mounted under (`BASE_PATH`, such as `/sso`), and the URLs built with it.
//!
//! Every URL the app writes into a page or a redirect goes through [`url`]: links (the router's
//! `<A href>` included: it leaves a path starting with `/` as it is), form actions, server-function
//! URLs, redirects, the stylesheet, the favicon and the hydration scripts. The `<Router base>`
//! matches routes under the base path; its navigations would add the base a second time to such a
//! URL, hence [`GoTo`].
//!
//! The server knows the base from its settings (read from the [`AppState`] in the Leptos context);
//! the browser learns it from the `<meta name="base-path">` of the server-rendered shell before it
//! hydrates ([`init_client`]).
//!
//! [`AppState`]: crate::server::state::AppState

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::NavigateOptions;

/// The `name` of the `<meta>` that carries the base path to the browser.
pub const META_NAME: &str = "base-path";

#[cfg(not(feature = "ssr"))]
static CLIENT_BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The base path: empty, or `/seg[/seg…]` with no trailing slash.
pub fn base_path() -> String {
    #[cfg(feature = "ssr")]
    {
        leptos::reactive::owner::with_context::<crate::server::state::AppState, _>(|state| {
            state.site.base_path.clone()
        })
        .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        CLIENT_BASE.get().cloned().unwrap_or_default()
    }
}

/// `path` (a path of this site starting with `/`, query allowed) under the base path.
pub fn url(path: &str) -> String {
    with_base(&base_path(), path)
}

/// `path` under `base`: `/sso` + `/sign-in` is `/sso/sign-in`; the home page `/` is `/sso/`.
pub fn with_base(base: &str, path: &str) -> String {
    format!("{base}{path}")
}

/// Whether `base` is a valid base path: empty, or `/seg[/seg…]` with no trailing slash and only
/// unreserved characters (`A-Z a-z 0-9 . _ ~ -`) in its segments, none of them `.` or `..`.
pub fn is_valid(base: &str) -> bool {
    if base.is_empty() {
        return true;
    }
    let Some(rest) = base.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
    })
}

/// In the browser, before hydrating: reads the base path from the shell's `<meta>`, and makes the
/// server functions be called under it.
#[cfg(feature = "hydrate")]
pub fn init_client() {
    let base = document()
        .query_selector(&format!("meta[name=\"{META_NAME}\"]"))
        .ok()
        .flatten()
        .and_then(|meta| meta.get_attribute("content"))
        .filter(|base| is_valid(base))
        .unwrap_or_default();
    if !base.is_empty() {
        // Once per page load: the string lives as long as the page.
        let leaked: &'static str = Box::leak(base.clone().into_boxed_str());
        let _ = leptos::server_fn::client::try_set_server_url(leaked);
    }
    let _ = CLIENT_BASE.set(base);
}

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

#[cfg(test)]
mod tests {
    use super::{is_valid, with_base};

    #[test]
    fn base_paths_are_plain_absolute_paths() {
        for good in ["", "/sso", "/a/b", "/account-v2", "/x.y_z~1"] {
            assert!(is_valid(good), "{good:?}");
        }
        for bad in [
            "/", "sso", "/sso/", "//sso", "/a//b", "/s so", "/sso?x", "/sso#x", "/é", "/..",
            "/a/.", "/%2e",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn paths_go_under_the_base() {
        assert_eq!(with_base("", "/sign-in"), "/sign-in");
        assert_eq!(
            with_base("/sso", "/sign-in?next=%2F"),
            "/sso/sign-in?next=%2F"
        );
        assert_eq!(with_base("/sso", "/"), "/sso/");
    }
}
